"""A run report (the `--report` JSON) as one self-contained HTML page: `starter.py report
WORKFLOW_ID --format html`.

Pure: report dict in, HTML text out. Inline CSS and inline SVG only, no JavaScript and no
external resources, so the page opens offline. It shows a Gantt timeline of the agents by
group (bars from started_at to finished_at, coloured by status; markers for barrier decisions,
alerts and conflicts), the agent DAG (pee.runtime.report_agent_dag, up to 60 agents) and the group
DAG with the actual critical path highlighted, and the metrics.
Every piece of report text goes through html.escape.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

from pee.runtime.progress import offset_s, ordered_agents, ordered_groups, shown_instances
from pee.runtime.report_agent_dag import agent_dag

# barrier decisions worth a marker on the timeline (all_completed is the uneventful case)
MARKED_DECISIONS = (
    # the deadline passed while an agent waited for a worker (engine or worker lag)
    "postpone_deadline",
    "extend_timeout",
    "continue_with_partial",
    "abort_and_fallback",
    # adaptive allocation moved the deadline (pee.engine.rules.adaptive)
    "timeout_adapted",
)
STATUS_COLOURS = {
    "succeeded": "#2e9d4f",
    "cached": "#5aa9e6",
    "resumed": "#9ec9a8",
    "defaulted": "#e0a526",
    "failed": "#d64541",
    "timed_out": "#b0306a",
    "cancelled": "#7d7d7d",
    "skipped": "#c4c4c4",
    "running": "#3f6fd1",
    "blocked": "#9b59b6",
    "pending": "#e6e6e6",
}
# a queued agent's wait before its bar, and the barrier's wait on a straggler on its group's row
QUEUED_COLOUR = "#9aa5b1"
# a group's row: from its start to its barrier (thinner and darker than a queue wait)
GROUP_SPAN_COLOUR = "#495057"
STRAGGLER_COLOUR = "#f59f00"
DECISION_COLOURS = {
    "postpone_deadline": "#9aa5b1",
    "extend_timeout": "#e0a526",
    "continue_with_partial": "#3f6fd1",
    "abort_and_fallback": "#d64541",
    "timeout_adapted": "#1c7c7d",
}

LABEL_W = 230
CHART_W = 760
ROW_H = 18
# a marker's width: closer ones on one row are stacked
MARKER_W = 12
# how far above the group graph's nodes an edge that skips a column arches
BOW_H = 36
# group names in the graph's nodes are cut after this many characters
NODE_CHARS = 34
AXIS_H = 24

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:24px;
color:#222;background:#fff}
h1{font-size:20px;margin:0 0 4px}h2{font-size:16px;margin:28px 0 8px}
h3{font-size:14px;margin:14px 0 6px}.bottlenecks table{margin:8px 0}
.sub{color:#666;font-size:13px}
table{border-collapse:collapse;font-size:13px}
td,th{border:1px solid #ddd;padding:3px 8px;text-align:left;vertical-align:top}
th{background:#f4f4f4}
td.num{text-align:right;font-variant-numeric:tabular-nums}
svg text{font-size:11px;font-family:inherit}
.legend span{display:inline-block;margin-right:12px;font-size:12px}
.legend i{display:inline-block;width:12px;height:12px;margin-right:4px;vertical-align:-2px}
.bar.crit{stroke:#000;stroke-width:2}
.grouprow{fill:#f6f6f6}
.node rect{fill:#fff;stroke:#888;stroke-width:1}
.node.crit rect{fill:#fff4e0;stroke:#d9480f;stroke-width:3}
.edge{stroke:#999;stroke-width:1.2;fill:none}
.edge.crit{stroke:#d9480f;stroke-width:3}
.scroll{overflow-x:auto}
.anode rect.box{fill:#fff;stroke:#999;stroke-width:1}
.anode.crit rect.box{fill:#fff4e0;stroke:#d9480f;stroke-width:3}
.aedge{stroke:#aaa;stroke-width:1.1;fill:none}
.aedge.crit{stroke:#d9480f;stroke-width:3}
"""


def _e(value: Any) -> str:
    return escape("" if value is None else str(value), quote=True)


def _num(value: Any, digits: int = 2, suffix: str = "") -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return "-"
    return f"{value:.{digits}f}{suffix}"


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def agent_span(report: dict[str, Any], agent: dict[str, Any], now_s: float) -> tuple[float, float]:
    """Seconds from the run's start to the agent's start and end. An agent that never started
    sits at its end (or 0); a running one reaches ``now_s``; one without an end has no length."""
    start = offset_s(report, agent.get("started_at"))
    end = offset_s(report, agent.get("finished_at"))
    if start is None:
        start = end if end is not None else 0.0
    if end is None:
        end = max(now_s, start) if agent.get("status") == "running" else start
    return start, end


# statuses only the views show: an agent that "succeeded" without running here (see agent_status)
DISPLAY_ONLY = ("cached", "resumed")


def agent_status(agent: dict[str, Any]) -> str:
    """The status a bar is coloured by: `cached`, `resumed` (reused from an earlier run) and
    `defaulted` refine `succeeded`."""
    status = str(agent.get("status") or "pending")
    if agent.get("resumed"):
        return "resumed"
    if agent.get("cached"):
        return "cached"
    if status == "succeeded" and agent.get("defaulted_outputs"):
        return "defaulted"
    return status


def _span_s(report: dict[str, Any]) -> float:
    """The timeline's length: the makespan, or the last known instant if later."""
    ends = [report.get("makespan_s") or 0.0]
    for agent in (report.get("agents") or {}).values():
        for key in ("started_at", "finished_at"):
            at = offset_s(report, agent.get(key))
            if at is not None:
                ends.append(at)
    return max(max(float(x) for x in ends), 1e-3)


def _critical_groups(report: dict[str, Any]) -> list[str]:
    agents = report.get("agents") or {}
    path: list[str] = []
    for agent_id in report.get("critical_path") or []:
        group = (agents.get(agent_id) or {}).get("group")
        if group and (not path or path[-1] != group):
            path.append(group)
    return path


def _markers(report: dict[str, Any]) -> list[tuple[str | None, float, str, str, str]]:
    """(group or None, offset s, kind class, colour, tooltip) for every marked event."""
    marks: list[tuple[str | None, float, str, str, str]] = []
    for group_id, group in ordered_groups(report):
        barrier = group.get("barrier") or {}
        for entry in barrier.get("history") or []:
            decision = str(entry.get("decision") or "")
            at = offset_s(report, entry.get("at"))
            if decision in MARKED_DECISIONS and at is not None:
                marks.append(
                    (
                        group_id,
                        at,
                        f"decision decision-{decision}",
                        DECISION_COLOURS[decision],
                        f"{group_id}: {decision} — {entry.get('reason') or ''}",
                    )
                )
    for alert in report.get("alerts") or []:
        at = offset_s(report, alert.get("at"))
        if at is not None:
            marks.append(
                (
                    alert.get("group"),
                    at,
                    "alert",
                    "#f08c00",
                    f"alert {alert.get('level') or ''}: {alert.get('message') or ''}",
                )
            )
    agents = report.get("agents") or {}
    for conflict in report.get("conflicts") or []:
        at = offset_s(report, conflict.get("opened_at"))
        if at is None:
            continue
        writers = conflict.get("writers") or []
        writers_group = next((agents[w].get("group") for w in writers if w in agents), None)
        marks.append(
            (
                writers_group,
                at,
                "conflict",
                "#862e9c",
                f"conflict {conflict.get('id') or ''} on {conflict.get('key') or ''} "
                f"({conflict.get('kind') or ''}, {conflict.get('status') or ''})",
            )
        )
    return marks


def _gantt(report: dict[str, Any]) -> str:
    span = _span_s(report)
    scale = CHART_W / span
    critical = set(report.get("critical_path") or [])
    agents = dict(ordered_agents(report))
    groups = ordered_groups(report)
    marks = _markers(report)
    stragglers: dict[str, list[dict[str, Any]]] = {}
    for straggler in (report.get("bottlenecks") or {}).get("stragglers") or []:
        stragglers.setdefault(str(straggler.get("group")), []).append(straggler)
    rows: list[str] = []
    y = AXIS_H
    placed: set[str] = set()
    group_y: dict[str, float] = {}
    # a fan-out of more than 50 instances: a lane for its unsuccessful and slowest ones only
    hidden, _ = shown_instances(report)

    def x_of(seconds: float) -> float:
        return LABEL_W + max(0.0, min(seconds, span)) * scale

    def agent_row(agent_id: str, agent: dict[str, Any], y: float) -> str:
        status = agent_status(agent)
        start, end = agent_span(report, agent, span)
        note = ""
        if agent.get("started_at") is None and agent.get("finished_at") is None:
            # never ran: a sliver where its group started (not at 0 s), saying so
            group_start = offset_s(
                report,
                (report.get("groups") or {}).get(str(agent.get("group")), {}).get("started_at"),
            )
            start = end = group_start if group_start is not None else 0.0
            note = (
                f'<text class="never-started" x="{x_of(start) + 5:.1f}" y="{y + 13:.1f}" '
                f'fill="#777">{_e(status)}: never started</text>'
            )
        x0, x1 = x_of(start), x_of(end)
        width = max(x1 - x0, 2.0)
        crit = " crit" if agent_id in critical else ""
        tip = (
            f"{agent_id} ({status}) {_num(agent.get('duration_s'), 3)} s, "
            f"attempts {agent.get('attempts', '-')}" + (", critical path" if crit else "")
        )
        colour = STATUS_COLOURS.get(status, "#999")
        label = _clip(("★ " if crit else "") + agent_id, 36)
        waited = agent.get("queue_wait_s")
        queued = ""
        if isinstance(waited, (int, float)) and waited > 0 and agent.get("started_at"):
            # the time it was ready but waited for resources, just before its bar
            qx = x_of(start - waited)
            queued = (
                f'<rect class="queued" data-agent="{_e(agent_id)}" x="{qx:.1f}" '
                f'y="{y + 7:.1f}" width="{max(x0 - qx, 1.0):.1f}" height="4" '
                f'fill="{QUEUED_COLOUR}"><title>{_e(agent_id)} queued '
                f"{_num(waited, 3)} s for resources</title></rect>"
            )
        return (
            queued + f'<text x="{LABEL_W - 6}" y="{y + 13:.1f}" text-anchor="end">'
            f"{_e(label)}<title>{_e(agent_id)}</title></text>"
            f'<rect class="bar status-{_e(status)}{crit}" data-agent="{_e(agent_id)}" '
            f'x="{x0:.1f}" y="{y + 3:.1f}" width="{width:.1f}" height="{ROW_H - 6}" '
            f'rx="2" fill="{colour}"><title>{_e(tip)}</title></rect>' + note
        )

    for group_id, group in groups:
        group_y[group_id] = y
        decision = (group.get("barrier") or {}).get("decision")
        start = offset_s(report, group.get("started_at"))
        end = offset_s(report, group.get("finished_at"))
        rows.append(
            f'<rect class="grouprow" x="0" y="{y:.1f}" width="{LABEL_W + CHART_W}" '
            f'height="{ROW_H}"/>'
        )
        # the uneventful decision goes without saying (it is in the tooltip)
        notable = decision if decision and decision != "all_completed" else None
        label = _clip(group_id + (f" [{notable}]" if notable else ""), 36)
        rows.append(
            f'<text x="4" y="{y + 13:.1f}" font-weight="bold">{_e(label)}'
            f"<title>{_e(group_id)}: {_e(group.get('status'))}"
            + (f", {_e(decision)}" if decision else "")
            + "</title></text>"
        )
        if start is not None:
            x1 = x_of(end if end is not None else span)
            rows.append(
                f'<rect class="groupspan" x="{x_of(start):.1f}" y="{y + 8:.1f}" '
                f'width="{max(x1 - x_of(start), 1):.1f}" height="2" '
                f'fill="{GROUP_SPAN_COLOUR}"/>'
            )
        for straggler in stragglers.get(group_id, []):
            # the stretch the barrier waited on the straggler alone (pee.engine.report.bottleneck)
            last = offset_s(report, (agents.get(straggler["agent"]) or {}).get("finished_at"))
            if last is not None:
                w0 = x_of(last - float(straggler.get("waited_s") or 0.0))
                rows.append(
                    f'<rect class="straggler-wait" data-group="{_e(group_id)}" '
                    f'x="{w0:.1f}" y="{y + 4:.1f}" width="{max(x_of(last) - w0, 1.0):.1f}" '
                    f'height="10" fill="{STRAGGLER_COLOUR}" fill-opacity="0.55">'
                    f"<title>barrier waited {_num(straggler.get('waited_s'), 3)} s for "
                    f"{_e(straggler['agent'])} alone</title></rect>"
                )
        y += ROW_H
        for agent_id in group.get("agents") or []:
            if agent_id in agents and agent_id not in placed:
                placed.add(agent_id)
                if agent_id in hidden:
                    continue
                rows.append(agent_row(agent_id, agents[agent_id], y))
                y += ROW_H
        left_out = sum(a in hidden for a in group.get("agents") or [])
        if left_out:
            rows.append(
                f'<text class="fan-out-more" x="4" y="{y + 13:.1f}">{left_out} more '
                f"instances of {_e(group_id)} (the agents table lists them)</text>"
            )
            y += ROW_H
    leftover = [a for a in agents if a not in placed]
    if leftover:
        rows.append(f'<text x="4" y="{y + 13:.1f}" font-weight="bold">(no group)</text>')
        y += ROW_H
        for agent_id in leftover:
            rows.append(agent_row(agent_id, agents[agent_id], y))
            y += ROW_H
    marker_svg: list[str] = []
    # markers at the same spot of a row would hide each other: each one that lands within
    # MARKER_W of an earlier one on its row drops half a row lower
    taken: dict[float, list[float]] = {}
    for mark_group, at, kind, colour, tip in marks:
        top = group_y.get(mark_group, AXIS_H - 10) if mark_group else AXIS_H - 10
        cx = x_of(at)
        near = [x for x in taken.setdefault(top, []) if abs(x - cx) < MARKER_W]
        taken[top].append(cx)
        top += len(near) * ROW_H / 2
        if kind.startswith("decision"):
            shape = (
                f'<path d="M{cx:.1f} {top + 1:.1f} l6 8 l-6 8 l-6 -8 z" '
                f'fill="{colour}" stroke="#000" stroke-width="0.7"/>'
            )
        elif kind == "alert":
            shape = (
                f'<path d="M{cx:.1f} {top + 2:.1f} l6 13 h-12 z" fill="{colour}" '
                f'stroke="#000" stroke-width="0.7"/>'
            )
        else:
            shape = (
                f'<circle cx="{cx:.1f}" cy="{top + 9:.1f}" r="5" fill="{colour}" '
                f'stroke="#000" stroke-width="0.7"/>'
            )
        marker_svg.append(f'<g class="marker {kind}">{shape}<title>{_e(tip)}</title></g>')
    axis: list[str] = []
    step = _tick_step(span)
    tick = 0.0
    while tick <= span + 1e-9:
        x = x_of(tick)
        axis.append(
            f'<line x1="{x:.1f}" y1="{AXIS_H - 4}" x2="{x:.1f}" y2="{y:.1f}" '
            f'stroke="#e4e4e4"/><text x="{x:.1f}" y="{AXIS_H - 8}" '
            f'text-anchor="middle">{_tick_label(tick)}</text>'
        )
        tick += step
    height = y + 6
    return (
        f'<svg class="gantt" '
        f'width="{LABEL_W + CHART_W + 10}" height="{height:.0f}" role="img" '
        f'aria-label="Gantt timeline of the run">'
        + "".join(axis)
        + "".join(rows)
        + "".join(marker_svg)
        + "</svg>"
    )


def _tick_step(span: float) -> float:
    for step in (
        0.01,
        0.02,
        0.05,
        0.1,
        0.2,
        0.5,
        1,
        2,
        5,
        10,
        15,
        30,
        60,
        120,
        300,
        600,
        900,
        1800,
        3600,
        7200,
        14400,
        43200,
        86400,
    ):
        if span / step <= 12:
            return float(step)
    return span / 10


def _tick_label(seconds: float) -> str:
    if seconds >= 3600:
        return f"{seconds / 3600:g}h"
    if seconds >= 60:
        return f"{seconds / 60:g}m"
    return f"{round(seconds, 2):g}s"


def _layers(groups: dict[str, list[str]]) -> dict[str, int]:
    layer: dict[str, int] = {}

    def depth(group_id: str, seen: frozenset[str]) -> int:
        if group_id in layer:
            return layer[group_id]
        deps = [d for d in groups.get(group_id, []) if d in groups and d not in seen]
        value = 1 + max((depth(d, seen | {group_id}) for d in deps), default=-1)
        layer[group_id] = value
        return value

    for group_id in groups:
        depth(group_id, frozenset())
    return layer


def _node_detail(group: dict[str, Any] | None) -> str:
    group = group or {}
    decision = (group.get("barrier") or {}).get("decision") or ""
    return str(group.get("status") or "pending") + (f" · {decision}" if decision else "")


def _dag(report: dict[str, Any], plan: dict[str, Any] | None) -> str:
    deps: dict[str, list[str]] = {}
    for group_id, group in ordered_groups(report):
        deps[group_id] = [str(d) for d in group.get("depends_on") or []]
    if plan:
        for group in plan.get("groups") or []:
            if isinstance(group, dict) and group.get("id") in deps:
                deps[group["id"]] = [str(d) for d in group.get("depends_on") or []]
    if not deps:
        return "<p>No groups.</p>"
    layer = _layers(deps)
    columns: dict[int, list[str]] = {}
    for group_id in deps:
        columns.setdefault(layer[group_id], []).append(group_id)
    # wide enough for the longest name (bold 11 px: about 7 px a character) and status line
    # (about 6 px), within bounds
    groups_report = report.get("groups") or {}
    longest = max(
        max(7 * len(_clip(g, NODE_CHARS)), 6 * len(_node_detail(groups_report.get(g))))
        for g in deps
    )
    node_w, node_h, gap_x, gap_y = max(150, min(280, longest + 20)), 40, 60, 16
    # an edge that skips a column would run behind the nodes between: it arches over them,
    # through a band above the first row
    skips = any(layer[g] - layer[d] > 1 for g, ds in deps.items() for d in ds if d in layer)
    top = 10 + (BOW_H if skips else 0)
    pos: dict[str, tuple[float, float]] = {}
    for col, members in columns.items():
        for row, group_id in enumerate(members):
            pos[group_id] = (10 + col * (node_w + gap_x), top + row * (node_h + gap_y))
    width = 20 + (max(columns) + 1) * (node_w + gap_x)
    height = top + 10 + max(len(m) for m in columns.values()) * (node_h + gap_y)
    path = _critical_groups(report)
    crit_nodes = set(path)
    crit_edges = set(zip(path, path[1:], strict=False))
    groups = report.get("groups") or {}
    parts: list[str] = []
    for group_id, dependencies in deps.items():
        for dep in dependencies:
            if dep not in pos:
                continue
            (x0, y0), (x1, y1) = pos[dep], pos[group_id]
            crit = " crit" if (dep, group_id) in crit_edges else ""
            if layer[group_id] - layer[dep] > 1:
                sx, sy, ex, ey = x0 + node_w * 0.75, y0, x1 + node_w * 0.25, y1
                over = min(y0, y1) - BOW_H + 4
                curve = (
                    f"M{sx:.1f} {sy:.1f} C{sx:.1f} {over:.1f} {ex:.1f} {over:.1f} {ex:.1f} {ey:.1f}"
                )
            else:
                sx, sy, ex, ey = x0 + node_w, y0 + node_h / 2, x1, y1 + node_h / 2
                mid = (sx + ex) / 2
                curve = (
                    f"M{sx:.1f} {sy:.1f} C{mid:.1f} {sy:.1f} {mid:.1f} {ey:.1f} {ex:.1f} {ey:.1f}"
                )
            arrow = "arrow-crit" if crit else "arrow"
            parts.append(
                f'<path class="edge{crit}" data-from="{_e(dep)}" data-to="{_e(group_id)}" '
                f'd="{curve}" marker-end="url(#{arrow})"/>'
            )
    for group_id, (x, y) in pos.items():
        group = groups.get(group_id) or {}
        crit = " crit" if group_id in crit_nodes else ""
        name = _clip(group_id, NODE_CHARS)
        detail = _node_detail(group)
        parts.append(
            f'<g class="node{crit}" data-group="{_e(group_id)}">'
            f'<rect x="{x:.1f}" y="{y:.1f}" width="{node_w}" height="{node_h}" rx="5"/>'
            f'<text x="{x + 8:.1f}" y="{y + 16:.1f}" font-weight="bold">{_e(name)}</text>'
            f'<text x="{x + 8:.1f}" y="{y + 31:.1f}" fill="#555">{_e(detail)}</text>'
            f"<title>{_e(group_id)}: {_e(detail)}</title></g>"
        )
    return (
        f'<svg class="dag" width="{width}" '
        f'height="{height}" role="img" aria-label="group dependency graph">'
        # arrowheads in user units, so a thick critical edge does not get a huge one
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="9" '
        'markerHeight="9" markerUnits="userSpaceOnUse" orient="auto-start-reverse">'
        '<path d="M0 0 L10 5 L0 10 z" fill="#777"/></marker>'
        '<marker id="arrow-crit" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="12" '
        'markerHeight="12" markerUnits="userSpaceOnUse" orient="auto-start-reverse">'
        '<path d="M0 0 L10 5 L0 10 z" fill="#d9480f"/></marker></defs>' + "".join(parts) + "</svg>"
    )


def _metrics(report: dict[str, Any]) -> str:
    resources = report.get("resources") or {}
    cache = report.get("cache") or {}
    rows: list[tuple[str, str]] = [
        ("status", _e(report.get("status"))),
        ("makespan", _num(report.get("makespan_s"), 3, " s")),
        ("estimated makespan", _num(report.get("estimated_makespan_s"), 3, " s")),
        ("sequential (sum of agent times)", _num(report.get("sequential_s"), 3, " s")),
        ("parallel efficiency", _num(report.get("parallel_efficiency"), 3)),
        ("context lock wait", _num(report.get("context_lock_wait_s"), 3, " s")),
        ("peak concurrent agents", _e(resources.get("peak_agents", "-"))),
        ("peak cpu", _num(resources.get("peak_cpu"), 1, " %")),
        ("peak memory", _num(resources.get("peak_memory"), 1, " %")),
        ("resource utilisation", _num(resources.get("utilisation_percentage"), 1, " %")),
        ("conflicts", str(len(report.get("conflicts") or []))),
        ("alerts", str(len(report.get("alerts") or []))),
        ("time scale", _e(report.get("time_scale", "-"))),
    ]
    for name, stats in sorted(cache.items()):
        if isinstance(stats, dict):
            rows.append((f"cache {name}", _cache_level_cell(stats)))
    if "bytes_saved_by_compression" in cache:
        rows.append(
            ("cache bytes saved by compression", _e(cache.get("bytes_saved_by_compression")))
        )
    for group_id, score in sorted((report.get("output_quality_scores") or {}).items()):
        rows.append((f"output quality {group_id}", _num(score, 3)))
    body = "".join(f'<tr><th>{_e(k)}</th><td class="num">{v}</td></tr>' for k, v in rows)
    return f'<table class="metrics">{body}</table>'


def _cache_level_cell(stats: dict[str, Any]) -> str:
    """Hits, misses and ratio of one cache level; a level nobody looked up says so rather than
    showing a hit ratio of 0 (the snapshot level is only written to during a run)."""
    hits, misses = int(stats.get("hits") or 0), int(stats.get("misses") or 0)
    parts = (
        [f"{hits} hits, {misses} misses, hit ratio {_num(stats.get('hit_ratio'), 2)}"]
        if hits + misses
        else ["no lookups"]
    )
    if stats.get("stored"):
        parts.append(f"{_e(stats['stored'])} stored")
    return ", ".join(parts)


def _agents_table(report: dict[str, Any]) -> str:
    critical = set(report.get("critical_path") or [])
    head = (
        "<tr><th>agent</th><th>group</th><th>status</th><th>duration s</th>"
        "<th>queue wait s</th><th>slack s</th><th>attempts</th><th>critical</th>"
        "<th>error</th></tr>"
    )
    slack = (report.get("bottlenecks") or {}).get("slack_s") or {}
    rows = []
    for agent_id, agent in ordered_agents(report):
        rows.append(
            f'<tr class="agent status-{_e(agent_status(agent))}"><td>{_e(agent_id)}</td>'
            f"<td>{_e(agent.get('group'))}</td><td>{_e(agent_status(agent))}</td>"
            f'<td class="num">{_num(agent.get("duration_s"), 3)}</td>'
            f'<td class="num">{_num(agent.get("queue_wait_s"), 3)}</td>'
            f'<td class="num">{_num(slack.get(agent_id), 3)}</td>'
            f'<td class="num">{_e(agent.get("attempts", "-"))}</td>'
            f"<td>{'yes' if agent_id in critical else ''}</td>"
            f"<td>{_e(agent.get('error') or '')}</td></tr>"
        )
    return f'<table class="agents">{head}{"".join(rows)}</table>'


def _decisions_table(report: dict[str, Any]) -> str:
    rows = []
    for group_id, group in ordered_groups(report):
        for entry in (group.get("barrier") or {}).get("history") or []:
            at = offset_s(report, entry.get("at"))
            rows.append(
                f"<tr><td>{_e(group_id)}</td><td>{_e(entry.get('decision'))}</td>"
                f'<td class="num">{_num(at, 3)}</td><td>{_e(entry.get("reason"))}</td>'
                "</tr>"
            )
    if not rows:
        return "<p>No barrier decisions.</p>"
    return (
        "<table class='decisions'><tr><th>group</th><th>decision</th><th>at s</th>"
        f"<th>reason</th></tr>{''.join(rows)}</table>"
    )


def _bottlenecks(report: dict[str, Any]) -> str:
    """The report's `bottlenecks` (pee.engine.report.bottleneck): what bounds the makespan,
    stragglers, costly queue waits and the suggestions with their numbers."""
    found = report.get("bottlenecks")
    if not found:
        return "<p>No bottleneck analysis (the run is still going, or predates it).</p>"
    parts = [
        f'<p class="bound">Lower bound {_num(found.get("lower_bound_s"), 3, " s")} '
        f"(the critical path on actual durations) of a makespan of "
        f"{_num(found.get('makespan_s'), 3, ' s')}: overhead "
        f"{_num(found.get('overhead_s'), 3, ' s')}.</p>"
    ]
    critical = found.get("critical") or []
    if critical:
        rows = "".join(
            f'<tr class="critical-agent" data-agent="{_e(c.get("agent"))}">'
            f"<td>{_e(c.get('agent'))}</td><td>{_e(c.get('group'))}</td>"
            f'<td class="num">{_num(c.get("duration_s"), 3)}</td>'
            f'<td class="num">{_num(100 * (c.get("share") or 0), 0, " %")}</td>'
            # its own work apart from its wait for a person (reports before: all work)
            f'<td class="num">{_num(c.get("work_s", c.get("duration_s")), 3)}</td>'
            f'<td class="num">{_num(c.get("waiting_for_person_s") or 0, 3)}</td></tr>'
            for c in critical
        )
        parts.append(
            "<table class='critical'><tr><th>bounds the makespan</th><th>group</th>"
            "<th>duration s</th><th>of makespan</th><th>work s</th>"
            f"<th>waiting for a person s</th></tr>{rows}</table>"
        )
    stragglers = found.get("stragglers") or []
    if stragglers:
        rows = "".join(
            f'<tr class="straggler" data-group="{_e(x.get("group"))}"><td>{_e(x.get("group"))}'
            f'</td><td>{_e(x.get("agent"))}</td><td class="num">{_num(x.get("waited_s"), 3)}'
            f'</td><td class="num">{_num(x.get("duration_s"), 3)}</td><td class="num">'
            f"{_num(x.get('others_median_s'), 3)}</td></tr>"
            for x in stragglers
        )
        parts.append(
            "<table class='stragglers'><tr><th>group</th><th>straggler</th>"
            "<th>barrier waited on it alone s</th><th>its duration s</th>"
            f"<th>median of the others s</th></tr>{rows}</table>"
        )
    waits = found.get("queue_waits") or []
    if waits:
        rows = "".join(
            f'<tr class="queue-wait"><td>{_e(w.get("agent"))}</td><td class="num">'
            f'{_num(w.get("queue_wait_s"), 3)}</td><td class="num">{_num(w.get("slack_s"), 3)}'
            f'</td><td class="num">{_num(w.get("cost_s"), 3)}</td></tr>'
            for w in waits
        )
        parts.append(
            "<table class='queue-waits'><tr><th>queued agent</th><th>waited s</th>"
            f"<th>slack s</th><th>cost s</th></tr>{rows}</table>"
        )
    suggestions = found.get("suggestions") or []
    items = "".join(
        f'<li class="suggestion" data-action="{_e(x.get("action"))}">'
        f"<b>{_e(x.get('action'))}</b>: {_e(x.get('message'))}</li>"
        for x in suggestions
    )
    parts.append(
        f"<h3>Suggestions</h3><ul class='suggestions'>{items}</ul>"
        if items
        else "<p>No suggestions: nothing cost a noticeable share of the makespan.</p>"
    )
    return f'<div class="bottlenecks">{"".join(parts)}</div>'


def _legend() -> str:
    items = [
        f'<span><i style="background:{c}"></i>{_e(s)}</span>' for s, c in STATUS_COLOURS.items()
    ]
    items += [
        f'<span><i style="background:{c};transform:rotate(45deg) scale(.8)"></i>{_e(d)}</span>'
        for d, c in DECISION_COLOURS.items()
    ]
    items.append('<span><i style="background:#f08c00"></i>alert</span>')
    items.append('<span><i style="background:#862e9c;border-radius:6px"></i>conflict</span>')
    items.append(
        '<span><i style="background:#fff;border:2px solid #000"></i>critical path (★)</span>'
    )
    items.append(
        f'<span><i style="background:{GROUP_SPAN_COLOUR};height:2px"></i>'
        "group, start to barrier</span>"
    )
    items.append(
        f'<span><i style="background:{QUEUED_COLOUR};height:4px"></i>queued for resources</span>'
    )
    items.append(
        f'<span><i style="background:{STRAGGLER_COLOUR};opacity:.55"></i>'
        "barrier waiting on a straggler</span>"
    )
    return f'<div class="legend">{"".join(items)}</div>'


def render_html(
    report: dict[str, Any],
    plan: dict[str, Any] | None = None,
    agent_deps: Mapping[str, Sequence[str]] | None = None,
) -> str:
    """The whole page. `plan`, optional, is the compiled plan as a dict (its `groups`' depends_on
    replace the report's for the DAG). `agent_deps` (agent id -> the agents it waits for, from
    the compiled plan: pee.engine.dag.agent_dependencies) draws the agent graph; without it the
    page says why there is none."""
    title = f"Run report: {report.get('plan') or '?'} ({report.get('workflow_id') or '?'})"
    critical = " → ".join(str(a) for a in report.get("critical_path") or []) or "-"
    sub = (
        f"status {report.get('status')} · started {report.get('started_at')} · finished "
        f"{report.get('finished_at') or '-'} · run {report.get('run_id') or '-'}"
    )
    error = report.get("error")
    alerts = "".join(
        f"<li>{_e(a.get('level'))} {_e(a.get('group') or '')}: {_e(a.get('message'))}</li>"
        for a in report.get("alerts") or []
    )
    conflicts = "".join(
        f"<li>{_e(c.get('id'))} {_e(c.get('kind'))} on {_e(c.get('key'))} "
        f"({_e(c.get('status'))}) writers {_e(', '.join(map(str, c.get('writers') or [])))}"
        "</li>"
        for c in report.get("conflicts") or []
    )
    return "".join(
        [
            '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">',
            f"<title>{_e(title)}</title><style>{CSS}</style></head><body>",
            f'<h1>{_e(title)}</h1><p class="sub">{_e(sub)}</p>',
            f'<p class="error"><b>error:</b> {_e(error)}</p>' if error else "",
            "<h2>Timeline</h2>",
            _legend(),
            f'<div class="scroll">{_gantt(report)}</div>',
            "<h2>Agent graph</h2>",
            f'<p>Actual critical path: <span class="critical-path">{_e(critical)}</span> '
            "(★, highlighted)</p>",
            '<div class="scroll">'
            + agent_dag(report, agent_deps, agent_status, STATUS_COLOURS)
            + "</div>",
            "<h2>Group graph</h2>",
            f'<div class="scroll">{_dag(report, plan)}</div>',
            "<h2>Metrics</h2>",
            _metrics(report),
            "<h2>Bottlenecks</h2>",
            _bottlenecks(report),
            "<h2>Barrier decisions</h2>",
            _decisions_table(report),
            f"<h2>Alerts</h2><ul>{alerts}</ul>" if alerts else "",
            f"<h2>Conflicts</h2><ul>{conflicts}</ul>" if conflicts else "",
            "<h2>Agents</h2>",
            _agents_table(report),
            "</body></html>\n",
        ]
    )
