"""How a run with a fan-out reads (issue 16, phase 2): the text report's group line carries the
fan-out row, a fan-out of more than 50 instances shows only its unsuccessful and slowest rows,
Mermaid names every instance `dev[i]`, and the Web UI details put a running fan-out in one line.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from pee.engine.compile.fan_out_slice import expand_agent, group_instances
from pee.engine.compile.graph import compile_plan
from pee.engine.compile.load import loads_plan
from pee.engine.states import AgentStatus, GroupStatus
from pee.runtime.progress import FAN_OUT_ROWS, format_group, format_summary
from pee.runtime.report_mermaid import render_mermaid
from pee.workflows.state import (
    AgentState,
    GroupState,
    RunState,
    build_report,
    current_details,
    fan_out_report,
)

PLAN = """\
name: views
agents:
  sm: {kind: simulate, duration: 1s, outputs: [stories]}
  dev: {kind: simulate, duration: 2s, for_each: sm.stories, inputs: [item], outputs: [code]}
"""
START = datetime(2026, 12, 7, tzinfo=timezone.utc)


def run_over(items: int, failed: tuple[int, ...] = (), running: tuple[int, ...] = ()) -> RunState:
    """A run whose dev fan-out expanded to `items` instances: instance i took i/10 + 1 s."""
    plan = compile_plan(loads_plan(PLAN, file="views.yaml"))
    expansion = expand_agent(plan.agent("dev"), plan.group("dev"), list(range(items)))
    plan.agents.extend(expansion.instances)
    plan.groups[[g.id for g in plan.groups].index("dev")] = expansion.group
    agents = {a.id: AgentState() for a in plan.agents}
    for i, instance in enumerate(expansion.instances):
        state = agents[instance.id]
        state.started_s, state.busy_s = 1.0, round(1 + i / 10, 3)
        state.status = AgentStatus.SUCCEEDED
        state.ended_s = 1.0 + state.busy_s
        if i in failed:
            state.status = AgentStatus.FAILED
        if i in running:
            state.status, state.ended_s, state.run_started_s, state.busy_s = (
                AgentStatus.RUNNING,
                None,
                1.0,
                0.0,
            )
    groups = {g.id: GroupState() for g in plan.groups}
    groups["dev"].status = GroupStatus.RUNNING if running else GroupStatus.SUCCEEDED
    return RunState(plan=plan, started=START, time_scale=1.0, agents=agents, groups=groups)


def test_fan_out_row_counts_items_and_their_durations() -> None:
    """Four items, item 2 failed: 3 succeeded, 1 failed, nearest-rank p50/p95/max."""
    row = fan_out_report(run_over(4, failed=(2,)), run_over(4).plan.group("dev"), 10.0)
    assert (4, 3, 1, 0) == (row["items"], row["succeeded"], row["failed"], row["defaulted"])
    assert (1.1, 1.3, 1.3) == (row["p50_s"], row["p95_s"], row["max_s"])
    line = format_group("dev", {"status": "partial", "fan_out": row})
    assert "for each sm.stories: 4 items, 3 succeeded, 1 failed; took p50 1.10s" in line


def test_a_large_fan_out_shows_its_failed_and_slowest_rows() -> None:
    """60 instances, one failed: the table keeps it and the five slowest, and says how many
    rows it left out."""
    run = run_over(60, failed=(3,))
    report: dict[str, Any] = {
        "status": "completed",
        "agents": {
            a: {"status": s.status, "group": "dev", "duration_s": s.busy_s}
            for a, s in run.agents.items()
        },
        "groups": {"dev": {"agents": run.plan.group("dev").agents, "fan_out": {"items": 60}}},
    }
    text = format_summary(report)
    shown = [f"dev[{i}]" for i in range(60) if f"dev[{i}] " in text]
    assert ["dev[3]", "dev[55]", "dev[56]", "dev[57]", "dev[58]", "dev[59]"] == shown
    assert 60 > FAN_OUT_ROWS
    assert "group dev: 54 of 60 instance rows left out" in text


def test_mermaid_names_each_instance() -> None:
    """Each instance is a task of the dev section, named dev[i]."""
    report = {
        "plan": "views",
        "status": "completed",
        "started_at": START.isoformat(),
        "makespan_s": 3.0,
        "agents": {
            f"dev[{i}]": {
                "status": "succeeded",
                "group": "dev",
                "started_at": START.isoformat(),
                "finished_at": START.isoformat(),
                "duration_s": 1.0,
            }
            for i in range(3)
        },
        "groups": {"dev": {"agents": ["dev[0]", "dev[1]", "dev[2]"], "started_at": None}},
    }
    chart = render_mermaid(report)
    assert all(f"    dev[{i}] :done" in chart for i in range(3)), chart


def test_web_ui_details_put_a_running_fan_out_in_one_line() -> None:
    """`dev` running with 5 items, two running and one failed: one line, not a row each."""
    run = run_over(5, failed=(0,), running=(3, 4))
    details = current_details(run, 5.0)
    assert "- group `dev` running: 3/5 items (2 running, 1 failed)" in details
    assert "dev[3]" not in details


def test_mermaid_draws_a_large_fan_out_as_one_bar() -> None:
    """25 instances (more than 20): one bar `dev[0] .. dev[24] (25)` from the first start to the
    last end, no bar per instance."""
    agents = {
        f"dev[{i}]": {
            "status": "succeeded",
            "group": "dev",
            "started_at": START.isoformat(),
            "finished_at": START.replace(second=1 + i % 3).isoformat(),
        }
        for i in range(25)
    }
    report = {
        "plan": "views",
        "status": "completed",
        "started_at": START.isoformat(),
        "makespan_s": 3.0,
        "agents": agents,
        "groups": {"dev": {"agents": list(agents), "fan_out": {"items": 25}}},
    }
    chart = render_mermaid(report)
    assert "    dev[0] .. dev[24] (25) :done, a1, 0, 3000" in chart, chart
    assert "dev[3] :" not in chart


def test_html_timeline_keeps_a_lane_for_the_failed_and_slowest_of_a_large_fan_out() -> None:
    """60 instances, one failed: lanes for it and the five slowest, and a line saying how many
    more instances there are."""
    from pee.runtime.report_html import render_html

    report: dict[str, Any] = {
        "plan": "views",
        "status": "completed",
        "started_at": START.isoformat(),
        "makespan_s": 8.0,
        "agents": {
            f"dev[{i}]": {
                "status": "failed" if i == 3 else "succeeded",
                "group": "dev",
                "started_at": START.isoformat(),
                "finished_at": START.replace(second=1 + i // 10).isoformat(),
                "duration_s": 1.0 + i / 10,
            }
            for i in range(60)
        },
        "groups": {"dev": {"agents": [f"dev[{i}]" for i in range(60)], "fan_out": {"items": 60}}},
    }
    page = render_html(report)
    assert "54 more instances of dev (the agents table lists them)" in page


GROUP_PLAN = """\
name: group_views
agents:
  po: {kind: simulate, duration: 1s, outputs: [epics]}
  story: {kind: simulate, duration: 1s, inputs: [item], outputs: [text]}
  implement: {kind: simulate, duration: 1s, inputs: [story.text], outputs: [code]}
  review: {kind: simulate, duration: 1s, inputs: [implement.code], outputs: [verdict]}
  summary: {kind: simulate, duration: 1s, inputs: [review.verdict], outputs: [out]}
groups:
  per_epic: {agents: [story, implement, review], for_each: po.epics}
"""


def group_run(slow: int) -> RunState:
    """po, then three items of story -> implement -> review (item `slow`'s implement takes 5 s,
    every other agent 1 s, each starting when its predecessor ended), then summary."""
    plan = compile_plan(loads_plan(GROUP_PLAN, file="group_views.yaml"))
    group = plan.group("per_epic")
    members = [plan.agent(a) for a in group.agents]
    instances, expanded = group_instances(members, group, 3)
    plan.agents.extend(instances)
    plan.groups[[g.id for g in plan.groups].index("per_epic")] = expanded
    agents = {a.id: AgentState(status=AgentStatus.SUCCEEDED) for a in plan.agents}

    def ran(agent_id: str, start: float, took: float) -> float:
        agents[agent_id].started_s, agents[agent_id].busy_s = start, took
        agents[agent_id].ended_s = start + took
        return start + took

    end = ran("po", 0.0, 1.0)
    last = end
    for i in range(3):
        at = end
        for member in ("story", "implement", "review"):
            at = ran(f"{member}[{i}]", at, 5.0 if (i, member) == (slow, "implement") else 1.0)
        last = max(last, at)
    ran("summary", last, 1.0)
    groups = {g.id: GroupState(status=GroupStatus.SUCCEEDED) for g in plan.groups}
    return RunState(plan=plan, started=START, time_scale=1.0, agents=agents, groups=groups)


def test_the_critical_path_runs_through_the_slowest_items_chain() -> None:
    """Item 1's implement is the slow one: the actual critical path is po -> story[1] ->
    implement[1] -> review[1] -> summary, no template on it."""
    report = build_report(group_run(slow=1), "wf", "run", 20.0)
    assert ["po", "story[1]", "implement[1]", "review[1]", "summary"] == report["critical_path"]


def test_the_table_shows_the_instances_not_the_fanned_out_template() -> None:
    """The agents table has a row per instance `member[i]` and none for the templates story,
    implement and review (the group line sums the items up)."""
    text = format_summary(build_report(group_run(slow=0), "wf", "run", 20.0))
    names = [line.split()[0] for line in text.splitlines() if line.split()]
    assert {"story[0]", "implement[2]", "review[1]", "summary"} <= set(names)
    assert not {"story", "implement", "review"} & set(names)
