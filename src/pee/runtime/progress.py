"""Human-readable progress lines and the final summary, from the workflow's status/report dict.

The report shape is the workflow's (see workflows/): `agents` and `groups` are mappings keyed by
id in plan order, `events` a list of {seq, at_s, event, id}, `alerts` a list of {at, group,
level, message}. Anything missing prints as "-", so a half-filled status of a starting run is fine.
"""

from __future__ import annotations

import shlex
import sys
import time
from datetime import datetime, timezone
from typing import Any, TextIO

from pee.engine.report.bottleneck import format_bottlenecks
from pee.engine.states import AGENT_RAN, AGENT_UNFINISHED
from pee.workflows.state import resolution_line

# while nothing happens, say what is running this often (seconds), so a long agent is not silence
QUIET_NOTE_S = 5.0


# a fan-out with more instances than this shows only its unsuccessful and slowest rows
FAN_OUT_ROWS = 50
SLOWEST_ROWS = 5


def parse_time(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        # Python 3.10's fromisoformat does not take a "Z" suffix
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def offset_s(report: dict[str, Any], when: str | None) -> float | None:
    """Seconds from the run's start to `when` (both ISO 8601), or None."""
    start, at = parse_time(report.get("started_at")), parse_time(when)
    if start is None or at is None:
        return None
    return (at - start).total_seconds()


def elapsed_s(report: dict[str, Any]) -> float | None:
    """How long the run has been going: the workflow's makespan once it has ended; while it runs,
    our clock against its start (the status query's makespan is as of its last event)."""
    if report.get("status") != "running":
        return report.get("makespan_s")
    start = parse_time(report.get("started_at"))
    if start is None:
        return report.get("makespan_s")
    return max(0.0, (datetime.now(timezone.utc) - start).total_seconds())


def _num(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _percent(value: float | None) -> str:
    return "" if value is None else f" {value * 100:.0f}%"


class ProgressPrinter:
    """Prints each recorded workflow event and alert once, however often the status is polled,
    and while nothing happens a line every QUIET_NOTE_S saying what is still running."""

    def __init__(self, out: TextIO | None = None, quiet_note_s: float = QUIET_NOTE_S) -> None:
        self.out = out or sys.stdout
        self.last_seq = -1
        self.alerts_seen = 0
        self.quiet_note_s = quiet_note_s
        self.last_line_at = time.monotonic()

    def _print(self, line: str) -> None:
        print(line, file=self.out, flush=True)
        self.last_line_at = time.monotonic()

    def update(self, status: dict[str, Any] | None) -> None:
        if not status:
            return
        agents = status.get("agents") or {}
        groups = status.get("groups") or {}
        width = max([len(name) for name in (*agents, *groups)] + [8])
        for position, event in enumerate(status.get("events") or []):
            seq = event.get("seq", position)
            if seq <= self.last_seq:
                continue
            self.last_seq = seq
            self._print(format_event(event, agents, groups, width))
        alerts = status.get("alerts") or []
        for alert in alerts[self.alerts_seen :]:
            self._print(format_alert(alert))
        self.alerts_seen = max(self.alerts_seen, len(alerts))
        if (
            status.get("status") == "running"
            and time.monotonic() - self.last_line_at >= self.quiet_note_s
        ):
            running = [
                f"{agent_id}{_percent(agent.get('progress'))}"
                for agent_id, agent in agents.items()
                if agent.get("status") == "running"
            ] + [
                f"{agent_id} (blocked by conflict {', '.join(agent.get('blocked_on') or [])})"
                for agent_id, agent in agents.items()
                if agent.get("status") == "blocked"
            ]
            if running:
                self._print(f"[{_num(elapsed_s(status)):>8}s] still running: {', '.join(running)}")


def _group_start(group: dict[str, Any]) -> str:
    fan_out = group.get("fan_out")
    if fan_out:
        # every item's instances are the group's agents: listing them would read as one wide
        # parallel group, when each item runs the members' chain on its own
        count = fan_out.get("items")
        over = fan_out.get("source") if count is None else f"{count} item(s) of {fan_out['source']}"
        return f"fan-out over {over}: {', '.join(fan_out.get('members', []))} per item"
    agents = group.get("agents", [])
    mode = "parallel" if group.get("parallel", True) and len(agents) > 1 else "agents"
    return f"{mode}: {', '.join(agents)}"


def format_event(
    event: dict[str, Any],
    agents: dict[str, Any],
    groups: dict[str, Any],
    width: int = 16,
) -> str:
    kind, _, what = str(event.get("event", "")).partition("_")
    ident = str(event.get("id", ""))
    stamp = f"[{_num(event.get('at_s')):>8}s]"
    if kind == "group":
        group = groups.get(ident, {})
        detail = ""
        if what == "started":
            detail = _group_start(group)
        # how a group ended is on the barrier line just before
        return f"{stamp} group {ident:<{width}} {what:<9} {detail}".rstrip()
    if kind == "agent":
        agent = agents.get(ident, {})
        detail = ""
        if what in AGENT_RAN:
            took = agent.get("duration_s")
            tries = agent.get("attempts")
            detail = ", ".join(
                part
                for part in (
                    f"{took:.2f}s" if took is not None else "",
                    f"attempt {tries}" if tries and tries > 1 else "",
                    agent.get("error") or "" if what != "succeeded" else "",
                )
                if part
            )
        elif what == "defaulted":
            detail = f"defaults for {', '.join(agent.get('defaulted_outputs') or []) or 'nothing'}"
        return f"{stamp}   agent {ident:<{width - 2}} {what:<9} {detail}".rstrip()
    if kind == "barrier":
        barrier = groups.get(ident, {}).get("barrier") or {}
        reasons = [
            entry.get("reason")
            for entry in barrier.get("history") or []
            if entry.get("decision") == what and entry.get("reason")
        ]
        reason = reasons[-1] if reasons else barrier.get("reason")
        detail = f" ({reason})" if reason else ""
        return f"{stamp} barrier {ident:<{width - 2}} {what}{detail}"
    # fallbacks, retries, conflicts...: whatever else the workflow records
    return f"{stamp} {event.get('event')} {ident}".rstrip()


def format_alert(alert: dict[str, Any]) -> str:
    level = str(alert.get("level") or "warning").upper()
    where = f" group {alert['group']}:" if alert.get("group") else ""
    return f"ALERT {level}{where} {alert.get('message', '')}"


def ordered_groups(report: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """Groups in the order they started, then the rest as given: the report crosses the wire as
    JSON with sorted keys, so the mapping's own order is alphabetical, not the plan's."""
    groups = report.get("groups") or {}
    first_seen: dict[str, int] = {}
    for position, event in enumerate(report.get("events") or []):
        if str(event.get("event", "")).startswith("group_"):
            first_seen.setdefault(str(event.get("id")), position)
    rest = len(first_seen)
    order = {group_id: first_seen.get(group_id, rest + n) for n, group_id in enumerate(groups)}
    return sorted(groups.items(), key=lambda item: order[item[0]])


def ordered_agents(report: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """Agents group by group (in start order), each group's in its own list order."""
    agents = report.get("agents") or {}
    rank: dict[str, int] = {}
    for _group_id, group in ordered_groups(report):
        for agent_id in group.get("agents") or []:
            rank.setdefault(agent_id, len(rank))
    rest = len(rank)
    order = {agent_id: rank.get(agent_id, rest + n) for n, agent_id in enumerate(agents)}
    return sorted(agents.items(), key=lambda item: order[item[0]])


def format_summary(report: dict[str, Any]) -> str:
    """The end-of-run table: a row per agent, a line per group's barrier, alerts, totals."""
    rows = [("agent", "group", "status", "tries", "start s", "took s", "notes")]
    hidden, left_out = shown_instances(report)
    for agent_id, agent in ordered_agents(report):
        if agent_id in hidden:
            continue
        settled = agent.get("status") not in AGENT_UNFINISHED
        notes = []
        if agent.get("cached"):
            notes.append("cached: its activity did not run")
        if agent.get("resumed"):
            notes.append(f"resumed from {report.get('resumed_from')}: did not run")
        if agent.get("queue_wait_s"):
            notes.append(f"queued {_num(agent['queue_wait_s'])}s for resources")
        if agent.get("status") == "blocked" and agent.get("blocked_on"):
            notes.append(
                f"waits for a person on conflict {', '.join(agent['blocked_on'])}"
                + (f" since {agent['blocked_since']}" if agent.get("blocked_since") else "")
            )
        if agent.get("defaulted_outputs"):
            notes.append(f"defaults: {', '.join(agent['defaulted_outputs'])}")
        if agent.get("missing_inputs"):
            notes.append(f"missing: {', '.join(agent['missing_inputs'])}")
        if agent.get("status") == "running" and agent.get("progress") is not None:
            notes.append(f"progress{_percent(agent['progress'])}")
        if agent.get("error"):
            notes.append(str(agent["error"]))
        rows.append(
            (
                agent_id,
                str(agent.get("group") or ""),
                str(agent.get("status") or ""),
                str(agent["attempts"]) if agent.get("attempts") else "-",
                _num(offset_s(report, agent.get("started_at"))),
                _num(agent.get("duration_s")) if settled else "-",
                "; ".join(notes),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    lines = []
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row[:-1], widths, strict=True)]
        lines.append("  ".join([*cells, row[-1]]).rstrip())
    lines.insert(1, "-" * max(len(line) for line in lines))
    lines += left_out
    lines.append("")
    for group_id, group in ordered_groups(report):
        lines.append(format_group(group_id, group))
    for alert in report.get("alerts") or []:
        lines.append(format_alert(alert))
    lines += format_conflicts(report)
    lines.append(format_totals(report))
    cache = format_cache(report)
    if cache:
        lines.append(cache)
    if report.get("critical_path") and report.get("status") != "running":
        efficiency = report.get("parallel_efficiency")
        lines.append(
            f"critical path (actual): {' -> '.join(report['critical_path'])}"
            + (f"; parallel efficiency {efficiency:.2f}" if efficiency is not None else "")
        )
    lines += format_bottlenecks(report.get("bottlenecks"))
    earlier = report.get("earlier_runs") or []
    if earlier:
        lines.append(
            f"continued as new {len(earlier)} time(s) to keep each history small; "
            f"earlier runs: {', '.join(earlier)}"
        )
    if report.get("error"):
        lines.append(f"error: {report['error']}")
    return "\n".join(lines)


def format_group(group_id: str, group: dict[str, Any]) -> str:
    barrier = group.get("barrier") or {}
    parts = [f"group {group_id}: {group.get('status', '-')}"]
    if barrier.get("decision"):
        text = f"barrier {barrier['decision']}"
        if barrier.get("extensions"):
            text += f" after {barrier['extensions']} extension(s)"
        parts.append(text)
    line = ", ".join(parts)
    if barrier.get("reason"):
        line += f" ({barrier['reason']})"
    if barrier.get("quality_impact"):
        line += f"; quality impact {barrier['quality_impact']}"
    fan_out = group.get("fan_out")
    if fan_out:
        line += f"; {format_fan_out(fan_out)}"
    return line


def format_fan_out(fan_out: dict[str, Any]) -> str:
    """`for each sm.stories: 5 items, 4 succeeded, 1 failed; took p50 2s, p95 3s, max 3s`."""
    head = f"for each {fan_out.get('source')}"
    if fan_out.get("items") is None:
        return f"{head}: list not read yet"
    text = f"{head}: {fan_out['items']} items, {fan_out.get('succeeded', 0)} succeeded"
    for key in ("running", "failed", "defaulted"):
        if fan_out.get(key):
            text += f", {fan_out[key]} {key}"
    if fan_out.get("max_s") is not None:
        text += (
            f"; took p50 {_num(fan_out.get('p50_s'))}s, p95 {_num(fan_out.get('p95_s'))}s, "
            f"max {_num(fan_out.get('max_s'))}s"
        )
    return text


def shown_instances(report: dict[str, Any]) -> tuple[set[str], list[str]]:
    """Instance rows the text table leaves out, and a line per fan-out saying so: above
    FAN_OUT_ROWS instances a fan-out shows its unsuccessful and SLOWEST_ROWS slowest ones
    (`--format json` has every row)."""
    hidden: set[str] = set()
    notes = []
    agents = report.get("agents") or {}
    for group_id, group in (report.get("groups") or {}).items():
        ids = list(group.get("agents") or [])
        fan_out = group.get("fan_out") or {}
        members = list(fan_out.get("members") or [])
        if fan_out and ids != members:
            # the instances have rows of their own: the template's row would read like one
            # more agent (its group line sums the items up)
            hidden.update(members)
        if not fan_out or len(ids) <= FAN_OUT_ROWS:
            continue
        rows = [(a, agents.get(a) or {}) for a in ids]
        slowest = sorted(rows, key=lambda r: -(r[1].get("duration_s") or 0.0))[:SLOWEST_ROWS]
        keep = {a for a, _ in slowest} | {
            a for a, row in rows if row.get("status") not in ("succeeded", "running")
        }
        left_out = [a for a in ids if a not in keep]
        hidden.update(left_out)
        notes.append(
            f"group {group_id}: {len(left_out)} of {len(ids)} instance rows left out (shown: "
            "the unsuccessful and the slowest); `pee report WORKFLOW_ID --format json` lists all"
        )
    return hidden, notes


def format_cache(report: dict[str, Any]) -> str:
    """One line of what the cache levels did (docs/reference/caching.md, "The report's cache");
    "" when nothing."""
    cache = report.get("cache") or {}
    parts = []
    for level in ("agent_output", "template_render", "context_snapshot", "prefetch"):
        stats = cache.get(level)
        if not isinstance(stats, dict):
            continue
        hits, misses = int(stats.get("hits") or 0), int(stats.get("misses") or 0)
        text = f"{level} {hits}/{hits + misses} hits" if hits + misses else ""
        if stats.get("stored"):
            text = ", ".join(filter(None, [text, f"{level} {stats['stored']} stored"]))
        if text:
            parts.append(text)
    saved = cache.get("bytes_saved_by_compression") or 0
    if saved:
        parts.append(f"{saved:,} bytes saved by lz4")
    return "cache: " + "; ".join(parts) if parts else ""


def _blocked_on_a_person(report: dict[str, Any]) -> bool:
    """Some agent waits on a conflict: the rule of the PeeStatus search attribute."""
    return any(a.get("status") == "blocked" for a in (report.get("agents") or {}).values())


def format_totals(report: dict[str, Any]) -> str:
    scale = report.get("time_scale") or 1.0
    status = report.get("status", "-")
    verb = "running for" if status == "running" else "took"
    if status == "running" and _blocked_on_a_person(report):
        # "run running" hid that nothing moves until someone resolves a conflict
        status = "waiting for a person"
    return (
        f"run {status}: {verb} {_num(elapsed_s(report))}s"
        f" (estimated {_num(report.get('estimated_makespan_s'))}s,"
        f" one after another {_num(report.get('sequential_s'))}s"
        + (f"; durations scaled by {scale:g})" if scale != 1 else ")")
    )


def format_conflicts(report: dict[str, Any]) -> list[str]:
    """What the run waits on a person for (since when, how to resolve), how each conflict
    ended (choice, by, version) and the resolutions it refused."""
    lines = []
    workflow_id = shlex.quote(str(report.get("workflow_id") or "WORKFLOW_ID"))
    for conflict in report.get("conflicts") or []:
        ended = resolution_line(conflict)
        if ended is not None:
            lines.append(f"conflict {ended}")
            continue
        blocked = conflict.get("blocked_agents") or []
        agents = report.get("agents") or {}
        since = [agents.get(a, {}).get("blocked_since") for a in blocked]
        first = min((s for s in since if s), default=None)
        who = (
            f"blocks {', '.join(blocked)}" + (f" since {first}" if first else "")
            if blocked
            else "blocks nobody yet"
        )
        lines.append(
            f"waiting for a person: conflict {conflict.get('id')} on '{conflict.get('key')}' "
            f"({conflict.get('kind')}, opened {conflict.get('opened_at')}) {who}; "
            f"resolve: pee resolve {workflow_id} {conflict.get('id')} --choice "
            f"current|incoming --expected-version {conflict.get('current_version')} "
            f"(pee conflicts {workflow_id} shows both values)"
        )
    for rejected in report.get("rejected_resolutions") or []:
        lines.append(
            f"rejected resolution of {rejected.get('conflict_id') or '?'} by "
            f"{rejected.get('by') or '?'} at {rejected.get('at')}: "
            f"{rejected.get('reason')}"
        )
    return lines
