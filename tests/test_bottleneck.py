"""Bottleneck detection (pee.engine.report.bottleneck) on constructed runs whose bottleneck is
known: the agents that bound the makespan, every agent's slack, queue waits that cost time,
stragglers a barrier waited on, and the suggestions with their numbers. Table-driven: each case is a
plan, the actual start/end of every agent, and what the analysis must find."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest

from pee.engine.compiled import CompiledAgent, CompiledGroup
from pee.engine.report.bottleneck import analyse, format_bottlenecks, slack
from tests.helpers import compiled_plan, group, sim, starter, with_sections


def at(seconds: float) -> str:
    return f"2026-01-01T10:00:{seconds:06.3f}+00:00"


def report_of(
    agents: dict[str, tuple[float, float, dict[str, Any]]],
    groups: list[CompiledGroup],
    makespan: float,
    time_scale: float = 1.0,
) -> dict[str, Any]:
    """A run report with the given (start, end, extra fields) per agent."""
    rows = {}
    for agent_id, (start, end, extra) in agents.items():
        rows[agent_id] = {
            "status": "succeeded",
            "started_at": at(start),
            "finished_at": at(end),
            "duration_s": round(end - start, 3),
            "queue_wait_s": 0.0,
            "blocked_s": 0.0,
            "cached": False,
            **extra,
        }
    group_rows = {}
    for g in groups:
        starts = [agents[a][0] for a in g.agents if a in agents]
        ends = [agents[a][1] for a in g.agents if a in agents]
        group_rows[g.id] = {
            "started_at": at(min(starts)),
            "finished_at": at(max(ends)),
            "barrier": {"decision": "all_completed", "extensions": 0},
        }
    return {
        "started_at": at(0),
        "makespan_s": makespan,
        "time_scale": time_scale,
        "agents": rows,
        "groups": group_rows,
    }


@dataclass
class Case:
    name: str
    agents: list[CompiledAgent]
    groups: list[CompiledGroup]
    times: dict[str, tuple[float, float, dict[str, Any]]]
    makespan: float
    critical: list[str]
    slack: dict[str, float]
    actions: list[tuple[str, str]] = field(default_factory=list)
    stragglers: list[tuple[str, str, float]] = field(default_factory=list)
    queue_costs: dict[str, float] = field(default_factory=dict)
    caching: dict[str, Any] = field(default_factory=dict)


def chain_with_side_branch() -> Case:
    # a(2) -> b(5) -> d(1); a -> c(1) -> d: b bounds the makespan, c has 4 s of slack
    return Case(
        "slow middle agent bounds the makespan",
        [
            sim("a", "ga", 2),
            sim("b", "gbc", 5, inputs=["a.out"]),
            sim("c", "gbc", 1, inputs=["a.out"]),
            sim("d", "gd", 1, inputs=["b.out", "c.out"]),
        ],
        [group("ga", ["a"]), group("gbc", ["b", "c"], ["ga"]), group("gd", ["d"], ["gbc"])],
        {"a": (0, 2, {}), "b": (2, 7, {}), "c": (2, 3, {}), "d": (7, 8, {})},
        8.0,
        critical=["a", "b", "d"],
        slack={"a": 0, "b": 0, "c": 4, "d": 0},
        # the barrier of gbc waited 4 s for b alone, but d needs b: no split; a (25%) and b
        # (62%) of the makespan on the critical path and the plan caches nothing across runs
        stragglers=[("gbc", "b", 4.0)],
        actions=[("cache_agent", "a"), ("cache_agent", "b")],
    )


def straggler_blocks_unrelated_reader() -> Case:
    # fast(1) and slow(6) in one group; reader e needs only fast, yet waits for the barrier
    return Case(
        "a straggler holds back a reader that does not need it",
        [sim("fast", "g1", 1), sim("slow", "g1", 6), sim("e", "g2", 1, inputs=["fast.out"])],
        [group("g1", ["fast", "slow"]), group("g2", ["e"], ["g1"])],
        {"fast": (0, 1, {}), "slow": (0, 6, {}), "e": (6, 7, {})},
        7.0,
        critical=["slow"],
        slack={"fast": 4, "slow": 0, "e": 4},
        stragglers=[("g1", "slow", 5.0)],
        actions=[("split_group", "g1"), ("cache_agent", "slow")],
        caching={},
    )


def queue_wait_on_the_critical_path() -> Case:
    # x(4) and y(1) in parallel; x queued 2 s for resources: x had no slack, so 2 s lost; y
    # queued 1 s with 3 s of slack: free
    return Case(
        "a critical agent waited in the resource queue",
        [sim("x", "g", 4), sim("y", "g", 1)],
        [group("g", ["x", "y"])],
        {"x": (2, 6, {"queue_wait_s": 2.0}), "y": (1, 2, {"queue_wait_s": 1.0})},
        6.0,
        critical=["x"],
        slack={"x": 0, "y": 3},
        queue_costs={"x": 2.0},
        stragglers=[("g", "x", 4.0)],
        actions=[("raise_priority", "x")],
        caching={"cache_levels": {"agent_output_cache": {"ttl": 3600}}},
    )


def balanced_group() -> Case:
    # three agents of nearly equal length: no straggler, nothing to suggest
    return Case(
        "a balanced parallel group has no straggler",
        [sim("p", "g", 3), sim("q", "g", 3), sim("r", "g", 2.8)],
        [group("g", ["p", "q", "r"])],
        {"p": (0, 3, {}), "q": (0, 3.1, {}), "r": (0, 2.8, {})},
        3.1,
        critical=["q"],
        slack={"p": 0.1, "q": 0, "r": 0.3},
        caching={"cache_levels": {"agent_output_cache": {"ttl": 3600}}},
    )


def deadline_cut_short() -> Case:
    # g has a 2 s deadline (plan time, run at time scale 0.5: 1 s); slow was cancelled at it
    return Case(
        "a barrier deadline cut an agent short",
        [sim("ok", "g", 0.2), sim("slow", "g", 10)],
        [group("g", ["ok", "slow"], timeout_s=2.0)],
        {"ok": (0, 0.1, {}), "slow": (0, 1.0, {"status": "cancelled"})},
        1.0,
        critical=["slow"],
        slack={"ok": 0.9, "slow": 0},
        stragglers=[("g", "slow", 0.9)],
        actions=[("raise_timeout", "g")],
        caching={"cache_levels": {"agent_output_cache": {"ttl": 3600}}},
    )


CASES = [
    chain_with_side_branch(),
    straggler_blocks_unrelated_reader(),
    queue_wait_on_the_critical_path(),
    balanced_group(),
    deadline_cut_short(),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_analysis_finds_the_known_bottleneck(case: Case) -> None:
    plan = compiled_plan(case.agents, case.groups)
    with_sections(plan, caching=case.caching)
    scale = 0.5 if case.name.startswith("a barrier deadline") else 1.0
    found = analyse(plan, report_of(case.times, case.groups, case.makespan, scale))
    assert case.critical == [c["agent"] for c in found["critical"]]
    assert case.slack == pytest.approx(found["slack_s"], abs=1e-3)
    assert case.queue_costs == {w["agent"]: w["cost_s"] for w in found["queue_waits"]}
    assert case.stragglers == [(s["group"], s["agent"], s["waited_s"]) for s in found["stragglers"]]
    assert case.actions == [
        (
            s["action"],
            s.get("group") if s["action"] in ("split_group", "raise_timeout") else s["agent"],
        )
        for s in found["suggestions"]
    ]
    assert all(s["message"] for s in found["suggestions"])


def test_the_suggestions_carry_their_numbers() -> None:
    """Each suggestion says how much it would save and the measurements it comes from."""
    case = straggler_blocks_unrelated_reader()
    found = analyse(
        compiled_plan(case.agents, case.groups), report_of(case.times, case.groups, case.makespan)
    )
    split, cache = found["suggestions"]
    assert {
        "action": "split_group",
        "group": "g1",
        "agent": "slow",
        "waited_s": 5.0,
        "unblocked": ["e"],
        "saving_s": 5.0,
    } == {k: v for k, v in split.items() if k != "message"}
    assert "waited 5s for 'slow' alone" in split["message"]
    assert (6.0, 0.857) == (cache["duration_s"], cache["share"])
    assert 7.0 == found["makespan_s"] and 6.0 == found["lower_bound_s"]
    assert 1.0 == found["overhead_s"]

    case = queue_wait_on_the_critical_path()
    plan = compiled_plan(case.agents, case.groups)
    plan.agent("x").priority = 7
    (raise_priority,) = analyse(plan, report_of(case.times, case.groups, case.makespan))[
        "suggestions"
    ][:1]
    assert (7, 2.0, 0.0, 2.0) == (
        raise_priority["priority"],
        raise_priority["queue_wait_s"],
        raise_priority["slack_s"],
        raise_priority["saving_s"],
    )

    case = deadline_cut_short()
    plan = compiled_plan(case.agents, case.groups)
    with_sections(plan, caching=case.caching)
    (timeout,) = analyse(plan, report_of(case.times, case.groups, case.makespan, 0.5))[
        "suggestions"
    ]
    # slow ran 1 s at time scale 0.5 = 2 s of plan time, the whole deadline: 1.5 x 2 s
    assert (2.0, 2.0, ["slow"], 3.0) == (
        timeout["timeout_s"],
        timeout["longest_s"],
        timeout["cut_short"],
        timeout["suggested_timeout_s"],
    )


def test_a_timed_out_agent_gets_a_longer_timeout() -> None:
    agents = [sim("t", "g", 5, timeout_s=4.0)]
    groups = [group("g", ["t"])]
    found = analyse(
        compiled_plan(agents, groups),
        report_of({"t": (0, 4, {"status": "timed_out"})}, groups, 4.0),
    )
    assert [("raise_timeout", "t", 6.0)] == [
        (s["action"], s["agent"], s["suggested_timeout_s"]) for s in found["suggestions"]
    ]


def test_slack_is_the_critical_path_method() -> None:
    """Diamond a -> (b 3 | c 1) -> d: c may take 2 s longer; the path is 1 + 3 + 1."""
    deps = {"a": [], "b": ["a"], "c": ["a"], "d": ["b", "c"]}
    length, slacks = slack(["a", "b", "c", "d"], deps, {"a": 1, "b": 3, "c": 1, "d": 1})
    assert 5.0 == length
    assert {"a": 0.0, "b": 0.0, "c": 2.0, "d": 0.0} == slacks


def test_time_blocked_on_a_conflict_counts_as_work() -> None:
    """An agent waiting for a person is on the path as long as it waited, like the report's
    critical path."""
    agents = [sim("u", "g", 1), sim("v", "g", 1)]
    groups = [group("g", ["u", "v"])]
    report = report_of({"u": (0, 1, {"blocked_s": 3.0}), "v": (0, 1, {})}, groups, 4.0)
    found = analyse(compiled_plan(agents, groups), report)
    assert ["u"] == [c["agent"] for c in found["critical"]]
    assert 3.0 == found["slack_s"]["v"]


@pytest.mark.parametrize(("blocked_s", "work_s"), [(42.0, 1.0), (0.0, 43.0)])
def test_a_wait_for_a_person_is_not_work_to_cache(blocked_s: float, work_s: float) -> None:
    """`dev` on the critical path for 43 s: when 42 s of it were spent blocked on a conflict
    the analysis says so apart from its 1 s of work and suggests resolving sooner, never
    caching it; when all 43 s were work it suggests caching (the control case)."""
    agents = [sim("arch", "design", 1), sim("dev", "build", 1, inputs=["arch.out"])]
    groups = [group("design", ["arch"]), group("build", ["dev"], ["design"])]
    report = report_of(
        {"arch": (0, 1, {}), "dev": (1, 2, {"duration_s": work_s, "blocked_s": blocked_s})},
        groups,
        44.0,
    )
    found = analyse(compiled_plan(agents, groups), report)
    actions = [(s["action"], s.get("agent")) for s in found["suggestions"]]
    dev = [c for c in found["critical"] if c["agent"] == "dev"][0]
    assert (43.0, work_s, blocked_s) == (
        dev["duration_s"],
        dev["work_s"],
        dev["waiting_for_person_s"],
    )
    text = "\n".join(format_bottlenecks(found))
    if blocked_s:
        assert ("cache_agent", "dev") not in actions
        assert ("resolve_conflicts_sooner", "dev") in actions
        assert [
            {
                "agent": "dev",
                "work_s": 1.0,
                "waiting_for_person_s": 42.0,
                "slack_s": 0.0,
                "critical": True,
            }
        ] == found["person_waits"]
        assert "bound by: arch 1s (2%), dev 43s (98%: 1 s work, 42 s waiting for a person)" in text
        assert "waiting for a person: dev: 1 s work, 42 s waiting for a person" in text
        assert "suggestion: 'dev' waited 42s for a person" in text
    else:
        assert ("cache_agent", "dev") in actions
        assert [] == found["person_waits"]
        assert "waiting for a person" not in text


def test_text_lines_name_the_bound_the_slack_and_the_suggestions() -> None:
    case = straggler_blocks_unrelated_reader()
    found = analyse(
        compiled_plan(case.agents, case.groups), report_of(case.times, case.groups, case.makespan)
    )
    text = "\n".join(format_bottlenecks(found))
    assert "lower bound 6s of makespan 7s (overhead 1s)" in text
    assert "bound by: slow 6s (86%)" in text
    assert "slack: fast 4s, e 4s" in text
    assert "straggler: group g1 waited 5s for slow alone" in text
    assert "suggestion: split group 'g1'" in text
    assert [] == format_bottlenecks(None)


def test_text_lists_the_least_slack_first_and_stops_at_twelve() -> None:
    found = {
        "lower_bound_s": 1,
        "makespan_s": 1,
        "overhead_s": 0,
        "critical": [{"agent": "c", "duration_s": 1, "share": 1.0}],
        "slack_s": {"c": 0, **{f"x{n}": 20 - n for n in range(20)}},
    }
    (slack_line,) = [line for line in format_bottlenecks(found) if "slack:" in line]
    assert slack_line.startswith("  slack: x19 1s, x18 2s, x17 3s")
    assert slack_line.endswith("x8 12s, and 8 more (the JSON report has all)")


STRAGGLER_PLAN = """\
name: straggler
agents:
  fast: {kind: simulate, duration: 50ms, outputs: [x]}
  slow: {kind: simulate, duration: 800ms, outputs: [y]}
  reader: {kind: simulate, duration: 50ms, inputs: [fast.x]}
groups:
  # reader's own group waits for this barrier (it reads fast.x), so for slow too
  both: {agents: [fast, slow]}
"""


def test_report_command_prints_the_analysis(cli_env: dict[str, str], tmp_path: Path) -> None:
    """A real run whose group waits on `slow` alone while `reader` needs only `fast`: the run's
    summary, `report --format text` and `report --bottlenecks` name the straggler and suggest
    the split; the JSON report carries the section."""
    plan = tmp_path / "straggler.yaml"
    plan.write_text(STRAGGLER_PLAN)
    run = starter(cli_env, "run", plan, "--workflow-id", "straggler-1", "--time-scale", "1")
    assert 0 == run.returncode, run.stdout + run.stderr
    assert "straggler: group both waited" in run.stdout
    only = starter(cli_env, "report", "straggler-1", "--bottlenecks")
    assert 0 == only.returncode, only.stderr
    assert only.stdout.startswith("bottlenecks: lower bound ")
    assert "suggestion: split group 'both'" in only.stdout and "reader does not need" in only.stdout
    text = starter(cli_env, "report", "straggler-1", "--format", "text")
    assert "straggler: group both waited" in text.stdout
    found = json.loads(starter(cli_env, "report", "straggler-1").stdout)["bottlenecks"]
    assert ["slow"] == [c["agent"] for c in found["critical"]]
    (straggler,) = found["stragglers"]
    assert ("both", "slow", ["reader"]) == (
        straggler["group"],
        straggler["agent"],
        straggler["unblocked"],
    )
    assert found == json.loads(
        starter(cli_env, "report", "straggler-1", "--bottlenecks", "--format", "json").stdout
    )


def test_a_fan_out_is_analysed_over_its_items_as_the_report_s_critical_path() -> None:
    """plans/fan-out.yaml as it ran (5 items, 3 at a time): the items, not the template `dev`
    (a row spanning the whole fan-out), are on the path, as in the report's critical path; an
    item of the second wave has only what the first wave's longer items took beyond it as
    slack, and its wait for a slot is its own queue wait, not slack."""
    from pee.engine.compile.fan_out_slice import expand_agent
    from pee.engine.compile.graph import compile_plan
    from pee.engine.compile.load import load_plan
    from pee.engine.compiled import FanOut

    compiled = compile_plan(load_plan(Path(__file__).parent.parent / "plans" / "fan-out.yaml"))
    template = compiled.agent("dev")
    expansion = expand_agent(template, compiled.group("dev"), ["a", "b", "c", "d", "e"])
    plan = replace(
        compiled,
        agents=[*compiled.agents, *expansion.instances],
        groups=[expansion.group if g.id == "dev" else g for g in compiled.groups],
    )
    second_wave = {"queue_wait_s": 2.38}
    report = report_of(
        {
            "sm": (0.0, 1.2, {}),
            "dev": (1.2, 5.68, {}),
            **{FanOut.instance_id("dev", i): (1.2, 3.58, {}) for i in range(3)},
            **{FanOut.instance_id("dev", i): (3.58, 5.68, second_wave) for i in (3, 4)},
            "qa": (5.68, 6.74, {}),
        },
        [g for g in plan.groups if g.id != "dev"],
        makespan=6.75,
    )
    found = analyse(plan, report)
    assert ["sm", "dev[0]", "dev[1]", "dev[2]", "qa"] == [c["agent"] for c in found["critical"]]
    assert pytest.approx(4.64) == found["lower_bound_s"]
    assert "dev" not in found["slack_s"]
    assert pytest.approx(0.28) == found["slack_s"]["dev[3]"]
    assert 0.0 == found["slack_s"]["dev[0]"]
