"""Human-readable progress lines and the final summary, from the workflow's status/report dict."""

from __future__ import annotations

import sys
from typing import Any, TextIO


class ProgressPrinter:
    """Prints each recorded workflow event once, however often the status is polled."""

    def __init__(self, out: TextIO | None = None) -> None:
        self.out = out or sys.stdout
        self.seen = 0

    def update(self, status: dict[str, Any] | None) -> None:
        if not status:
            return
        events = status.get("events") or []
        agents = {agent["id"]: agent for agent in status.get("agents", [])}
        groups = {group["id"]: group for group in status.get("groups", [])}
        width = max([len(name) + 2 for name in agents] + [len(name) for name in groups] + [8])
        for event in events[self.seen:]:
            print(format_event(event, agents, groups, width), file=self.out, flush=True)
        self.seen = max(self.seen, len(events))


def format_event(
    event: dict[str, Any], agents: dict[str, Any], groups: dict[str, Any], width: int = 20
) -> str:
    kind, _, what = event["event"].partition("_")
    ident = event["id"]
    stamp = f"[{event['at_s']:8.2f}s]"
    if kind == "group":
        group = groups.get(ident, {})
        if what == "started":
            mode = "parallel" if group.get("parallel", True) else "sequential"
            detail = f"{mode}: {', '.join(group.get('agents', []))}"
        else:
            detail = group.get("reason") or ""
        return f"{stamp} group {ident:<{width}} {what:<9} {detail}".rstrip()
    agent = agents.get(ident, {})
    detail = ""
    if what == "succeeded" and agent.get("attempts"):
        detail = f"attempt {agent['attempts']}"
    elif what == "failed":
        detail = agent.get("error") or ""
    elif what == "defaulted":
        detail = f"defaults for {agent.get('defaulted_outputs') or 'nothing'}"
    return f"{stamp}   agent {ident:<{width - 2}} {what:<9} {detail}".rstrip()


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def format_summary(report: dict[str, Any]) -> str:
    rows = [("agent", "group", "status", "tries", "start s", "end s", "took s", "notes")]
    for agent in report.get("agents", []):
        took = None
        if agent.get("started_s") is not None and agent.get("ended_s") is not None:
            took = agent["ended_s"] - agent["started_s"]
        notes = []
        if agent.get("defaulted_outputs"):
            notes.append(f"defaults: {', '.join(agent['defaulted_outputs'])}")
        if agent.get("missing_inputs"):
            notes.append(f"missing: {', '.join(agent['missing_inputs'])}")
        if agent.get("error"):
            notes.append(agent["error"])
        rows.append((
            agent["id"], agent.get("group", ""), agent.get("status", ""),
            "-" if agent.get("attempts") is None else str(agent["attempts"]),
            _num(agent.get("started_s")), _num(agent.get("ended_s")), _num(took),
            "; ".join(notes),
        ))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    lines = []
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row[:-1], widths, strict=True)]
        lines.append("  ".join([*cells, row[-1]]).rstrip())
    lines.insert(1, "-" * max(len(line) for line in lines))
    lines.append("")
    for group in report.get("groups", []):
        decision = group.get("decision") or "-"
        reason = f" ({group['reason']})" if group.get("reason") else ""
        lines.append(f"group {group['id']}: {group.get('status')}, barrier {decision}{reason}")
    scale = report.get("time_scale", 1.0)
    lines.append(
        f"run {report.get('status')}: makespan {report.get('makespan_s', 0):.2f}s"
        f" (estimated {report.get('estimated_makespan_s', 0):.2f}s,"
        f" one after another {report.get('sequential_s', 0):.2f}s"
        + (f", durations scaled by {scale:g})" if scale != 1 else ")")
    )
    if report.get("error"):
        lines.append(f"error: {report['error']}")
    return "\n".join(lines)
