"""The run report's agent graph (pee.runtime.report_html): agents as nodes in columns by dependency
depth, edges from their dependencies, the actual critical path's agents and edges highlighted.

The report does not carry agent-level edges (they would grow every run's result with the
plan): the caller passes them, from the run's compiled plan (pee.engine.dag.agent_dependencies).
Beyond AGENT_DAG_LIMIT agents the graph is left out with a note; the group graph stays.
Pure: inline SVG text, every piece of report text escaped.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from html import escape
from typing import Any

from pee.runtime.progress import ordered_agents

# beyond this many agents nodes and edges become a thicket: only the group graph is drawn
AGENT_DAG_LIMIT = 60
# agent ids in nodes are cut after this many characters (the tooltip has the whole id)
AGENT_CHARS = 24
NODE_H, GAP_X, GAP_Y, PAD = 34, 56, 8, 10
CRIT_COLOUR = "#d9480f"


def _e(value: Any) -> str:
    return escape("" if value is None else str(value), quote=True)


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def depths(order: Sequence[str], deps: Mapping[str, Sequence[str]]) -> dict[str, int]:
    """Each agent's column: 0 without dependencies, else one past its deepest dependency
    (a cycle, which a compiled plan never has, is cut where it closes)."""
    known = set(order)
    found: dict[str, int] = {}

    def depth(agent_id: str, seen: frozenset[str]) -> int:
        if agent_id in found:
            return found[agent_id]
        before = [d for d in deps.get(agent_id, ()) if d in known and d not in seen]
        value = 1 + max((depth(d, seen | {agent_id}) for d in before), default=-1)
        found[agent_id] = value
        return value

    for agent_id in order:
        depth(agent_id, frozenset())
    return found


def _detail(entry: dict[str, Any], status: str) -> str:
    """The node's second line: group, status and duration."""
    text = f"{_clip(str(entry.get('group') or ''), 14)} · {status}"
    duration = entry.get("duration_s")
    return text + (f" · {duration:.2f}s" if isinstance(duration, int | float) else "")


def critical_edges(path: Sequence[str], deps: Mapping[str, Sequence[str]]) -> set[tuple[str, str]]:
    """(from, to) of consecutive critical agents joined by a real dependency."""
    return {(a, b) for a, b in zip(path, path[1:], strict=False) if a in deps.get(b, ())}


def agent_dag(
    report: dict[str, Any],
    deps: Mapping[str, Sequence[str]] | None,
    status_of: Callable[[dict[str, Any]], str],
    colours: Mapping[str, str],
) -> str:
    """The agent graph's HTML: an SVG, or a note saying why there is none."""
    agents = ordered_agents(report)
    if not agents:
        return ""
    if len(agents) > AGENT_DAG_LIMIT:
        return (
            f'<p class="agent-dag-note">{len(agents)} agents: the agent graph is drawn for '
            f"up to {AGENT_DAG_LIMIT} (beyond that its nodes and edges are unreadable); the "
            "group graph below shows the structure and the critical path.</p>"
        )
    if deps is None:
        return (
            '<p class="agent-dag-note">No agent graph: this report comes without the '
            "plan's agent dependencies (<code>pee report WORKFLOW_ID --format html"
            "</code> reads them from the run's plan); the group graph below shows the "
            "structure.</p>"
        )
    order = [agent_id for agent_id, _ in agents]
    column = depths(order, deps)
    columns: dict[int, list[str]] = {}
    for agent_id in order:  # group by group, each group's in its list order
        columns.setdefault(column[agent_id], []).append(agent_id)
    details = {agent_id: _detail(entry, status_of(entry)) for agent_id, entry in agents}
    # wide enough for the longest name (bold 11 px: about 7 px a character) and detail line
    # (about 6 px), within bounds
    node_w = max(
        110,
        min(
            230,
            max(max(7 * len(_clip(a, AGENT_CHARS)) + 22, 6 * len(details[a]) + 22) for a in order),
        ),
    )
    pos: dict[str, tuple[float, float]] = {}
    for col, members in columns.items():
        for row, agent_id in enumerate(members):
            pos[agent_id] = (PAD + col * (node_w + GAP_X), PAD + row * (NODE_H + GAP_Y))
    width = 2 * PAD + (max(columns) + 1) * (node_w + GAP_X) - GAP_X
    height = 2 * PAD + max(len(m) for m in columns.values()) * (NODE_H + GAP_Y) - GAP_Y
    path = [str(a) for a in report.get("critical_path") or []]
    crit_nodes = set(path)
    crit = critical_edges(path, deps)
    edges: list[str] = []
    # critical edges last, so they are drawn over the others
    pairs = [(d, a) for a in order for d in deps.get(a, ()) if d in pos]
    for dep, agent_id in sorted(pairs, key=lambda p: p in crit):
        (x0, y0), (x1, y1) = pos[dep], pos[agent_id]
        sx, sy, ex, ey = x0 + node_w, y0 + NODE_H / 2, x1, y1 + NODE_H / 2
        mid = sx + min(GAP_X, (ex - sx) / 2)
        mark = " crit" if (dep, agent_id) in crit else ""
        arrow = "a-arrow-crit" if mark else "a-arrow"
        edges.append(
            f'<path class="aedge{mark}" data-from="{_e(dep)}" data-to="{_e(agent_id)}" '
            f'd="M{sx:.1f} {sy:.1f} C{mid:.1f} {sy:.1f} {ex - GAP_X / 2:.1f} {ey:.1f} '
            f'{ex:.1f} {ey:.1f}" marker-end="url(#{arrow})"/>'
        )
    nodes: list[str] = []
    for agent_id, entry in agents:
        x, y = pos[agent_id]
        status = status_of(entry)
        detail = details[agent_id]
        mark = " crit" if agent_id in crit_nodes else ""
        star = "★ " if mark else ""
        nodes.append(
            f'<g class="anode{mark} status-{_e(status)}" data-agent="{_e(agent_id)}">'
            f'<rect class="box" x="{x:.1f}" y="{y:.1f}" width="{node_w}" height="{NODE_H}" '
            'rx="4"/>'
            f'<rect class="stripe" x="{x + 1.5:.1f}" y="{y + 1.5:.1f}" width="5" '
            f'height="{NODE_H - 3}" '
            f'fill="{colours.get(status, "#999")}"/>'
            f'<text x="{x + 12:.1f}" y="{y + 14:.1f}" font-weight="bold">'
            f"{_e(star + _clip(agent_id, AGENT_CHARS))}</text>"
            f'<text x="{x + 12:.1f}" y="{y + 27:.1f}" fill="#555">'
            f"{_e(detail)}</text>"
            f"<title>{_e(agent_id)}: {_e(detail)}</title></g>"
        )
    return (
        f'<svg class="agent-dag" width="{width:.0f}" height="{height:.0f}" role="img" '
        'aria-label="agent dependency graph"><defs>'
        '<marker id="a-arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="8" '
        'markerHeight="8" markerUnits="userSpaceOnUse" orient="auto-start-reverse">'
        '<path d="M0 0 L10 5 L0 10 z" fill="#888"/></marker>'
        '<marker id="a-arrow-crit" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="11" '
        'markerHeight="11" markerUnits="userSpaceOnUse" orient="auto-start-reverse">'
        f'<path d="M0 0 L10 5 L0 10 z" fill="{CRIT_COLOUR}"/></marker></defs>'
        + "".join(edges)
        + "".join(nodes)
        + "</svg>"
    )
