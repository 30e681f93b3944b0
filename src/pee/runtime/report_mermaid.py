"""A run report as a Mermaid `gantt`: `starter.py report WORKFLOW_ID --format mermaid`.

One section per group (in start order), one task per agent. Times are whole milliseconds from
the run's start (`dateFormat x`, Unix milliseconds, so the chart starts at 00:00). Tags: `crit`
for agents on the actual critical path, `active` for running ones, `done` for the rest that
finished. Barrier decisions other than all_completed become milestones in their group's section.
"""

from __future__ import annotations

import re
from typing import Any

from pee.engine.states import AGENT_FINISHED
from pee.runtime.progress import offset_s, ordered_agents, ordered_groups
from pee.runtime.report_html import DISPLAY_ONLY, MARKED_DECISIONS, agent_span, agent_status

# a bar that has ended: the agent statuses, and the display statuses refining "succeeded"
FINISHED = (*AGENT_FINISHED, *DISPLAY_ONLY)
# a fan-out of more instances is drawn as one bar
FAN_OUT_TASKS = 20
# at least this long so a zero-length task still shows (a millisecond: the output's unit)
MIN_TASK_S = 0.001


def _text(value: Any) -> str:
    """A task or section name: Mermaid ends a name at ':' and a statement at ';' or '#'."""
    text = re.sub(r"[:;#\n\r]+", " ", str(value)).strip()
    return text or "-"


def _s(seconds: float) -> str:
    # whole milliseconds: mermaid's `dateFormat x` (dayjs) rejects fractions, and `X` (seconds)
    # rejects "0.000" too, so sub-second runs need milliseconds
    return str(round(max(seconds, 0.0) * 1000))


def _axis_format(span_s: float) -> str:
    """Tick labels that tell ticks apart: sub-10-second runs tick in fractions of a second."""
    if span_s < 10:
        return "%S.%L"
    return "%M:%S" if span_s < 3600 else "%H:%M:%S"


def render_mermaid(report: dict[str, Any]) -> str:
    critical = set(report.get("critical_path") or [])
    agents = dict(ordered_agents(report))
    span = float(report.get("makespan_s") or 0.0)
    lines = [
        "gantt",
        f"    title {_text(report.get('plan') or '?')} ({_text(report.get('workflow_id') or '?')}"
        f", {_text(report.get('status') or '?')})",
        "    dateFormat x",
        f"    axisFormat {_axis_format(span)}",
    ]
    placed: set[str] = set()
    n = 0
    milestones = 0

    def task(agent_id: str, agent: dict[str, Any]) -> str:
        nonlocal n
        n += 1
        status = agent_status(agent)
        start, end = agent_span(report, agent, span)
        end = max(end, start + MIN_TASK_S)
        tags = []
        if agent_id in critical:
            tags.append("crit")
        if status == "running":
            tags.append("active")
        elif status in FINISHED:
            tags.append("done")
        name = (
            _text(agent_id)
            if status in ("succeeded", "running")
            else f"{_text(agent_id)} ({status})"
        )
        tag_text = ", ".join(tags + [f"a{n}"])
        return f"    {name} :{tag_text}, {_s(start)}, {_s(end)}"

    for group_id, group in ordered_groups(report):
        lines.append(f"    section {_text(group_id)}")
        members = [a for a in group.get("agents") or [] if a in agents and a not in placed]
        if group.get("fan_out") and len(members) > FAN_OUT_TASKS:
            # a large fan-out: one bar over all its instances, not a bar each
            placed.update(members)
            n += 1
            spans = [agent_span(report, agents[a], span) for a in members]
            start = min(s for s, _ in spans)
            end = max(max(e for _, e in spans), start + MIN_TASK_S)
            running = any(agent_status(agents[a]) == "running" for a in members)
            name = f"{_text(members[0])} .. {_text(members[-1])} ({len(members)})"
            tag = "active" if running else "done"
            lines.append(f"    {name} :{tag}, a{n}, {_s(start)}, {_s(end)}")
            members = []
        for agent_id in members:
            placed.add(agent_id)
            lines.append(task(agent_id, agents[agent_id]))
        for entry in (group.get("barrier") or {}).get("history") or []:
            decision = entry.get("decision")
            at = offset_s(report, entry.get("at"))
            if decision in MARKED_DECISIONS and at is not None:
                milestones += 1
                lines.append(f"    {_text(decision)} :milestone, m{milestones}, {_s(at)}, {_s(at)}")
    leftover = [a for a in agents if a not in placed]
    if leftover:
        lines.append("    section (no group)")
        lines.extend(task(agent_id, agents[agent_id]) for agent_id in leftover)
    return "\n".join(lines) + "\n"
