"""Adaptive planning: the learned-durations store (pee.runtime.duration_store), what samples say
(pee.engine.compile.learning), how they change the next compile's critical path, priorities and
(only for
`adaptive: true` plans) barrier deadlines, and one real run whose successor learns from it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pee.engine.compile.graph import compile_plan
from pee.engine.compile.learning import (
    REAL,
    SIMULATED,
    Learned,
    adaptive_timeout,
    percentile,
    samples_from_report,
    summarise,
)
from pee.engine.compile.load import loads_plan as parse_plan
from pee.engine.language.errors import PlanValidationError
from pee.runtime.duration_store import DurationStore
from tests.helpers import starter

# a ‖ b, then c reads both. The plan thinks b is the long one (3 s vs 1 s); group g waits 5 s
PLAN = """\
name: learn-me
{adaptive}
agents:
  a: {{kind: simulate, estimated_duration: 1s, outputs: [x]}}
  b: {{kind: simulate, estimated_duration: 3s, outputs: [y]}}
  c: {{kind: simulate, estimated_duration: 1s, inputs: [a.x, b.y]}}
groups:
  g: {{agents: [a, b], timeout: 5s}}
"""


def plan_text(adaptive: str = "") -> str:
    return PLAN.format(adaptive=adaptive)


def test_percentile_and_summary() -> None:
    assert 5.0 == percentile([5, 1, 3, 2, 4], 0.95)
    assert 95.0 == percentile(list(range(1, 101)), 0.95)
    assert Learned(4, 2.5, 4.0) == summarise([1, 2, 3, 4])
    with pytest.raises(ValueError):
        summarise([])


def test_only_whole_work_is_learned_in_plan_seconds() -> None:
    """Succeeded agents that really ran, divided by the time scale; cached, resumed, defaulted
    or cut-short agents, and a running run, teach nothing."""
    report = {
        "status": "completed",
        "time_scale": 0.5,
        "agents": {
            "ran": {"status": "succeeded", "duration_s": 2.0},
            "cached": {"status": "succeeded", "duration_s": 0.0, "cached": True},
            "resumed": {"status": "succeeded", "duration_s": 0.0, "resumed": True},
            "defaulted": {"status": "succeeded", "duration_s": 1.0, "defaulted_outputs": ["o"]},
            "cut": {"status": "cancelled", "duration_s": 5.0},
            "failed": {"status": "failed", "duration_s": 1.0},
        },
    }
    assert [("ran", 4.0)] == samples_from_report(report)
    assert [] == samples_from_report({**report, "status": "running"})


def test_adaptive_timeout_never_goes_below_the_plan() -> None:
    assert 10.0 == adaptive_timeout(10.0, 2.0, 1.5)
    assert 15.0 == adaptive_timeout(10.0, 10.0, 1.5)


def test_learned_durations_move_the_critical_path_and_the_priorities() -> None:
    """The plan's estimates put b on the critical path; measured durations say a is the slow
    one, so a gets the critical-path priority and b the parallel-group one."""
    plan = parse_plan(plan_text())
    planned = compile_plan(plan)
    assert ["b", "c"] == planned.critical_path
    assert (7, 10) == (planned.agent("a").priority, planned.agent("b").priority)
    learned = compile_plan(plan, {"a": Learned(3, 6.0, 7.0), "b": Learned(3, 0.5, 0.6)})
    assert ["a", "c"] == learned.critical_path
    assert (10, 7) == (learned.agent("a").priority, learned.agent("b").priority)
    assert 7.0 == learned.estimated_makespan_s
    assert Learned(3, 6.0, 7.0) == learned.agent("a").learned
    # what a --simulate run takes stays the plan's estimate
    assert (1.0, 1.0) == (learned.agent("a").estimated_s, learned.agent("a").settings["duration"])
    assert 6.0 == learned.agent("a").expected_s
    # not adaptive: the deadline is the plan's
    assert (5.0, None) == (learned.group("g").timeout_s, learned.group("g").planned_timeout_s)


def test_an_adaptive_plan_stretches_deadlines_to_learned_p95() -> None:
    learned = {"a": Learned(3, 6.0, 7.0), "b": Learned(3, 0.5, 0.6), "c": Learned(3, 1, 1)}
    compiled = compile_plan(parse_plan(plan_text("adaptive: true")), learned)
    # the slowest member's p95 x 1.5 = 10.5 > the plan's 5 s
    assert (10.5, 5.0) == (compiled.group("g").timeout_s, compiled.group("g").planned_timeout_s)
    # a lone agent's group has no barrier deadline and gets none
    assert compiled.group(compiled.agent("c").group).timeout_s is None
    margin = compile_plan(parse_plan(plan_text("adaptive: {margin: 2}")), learned)
    assert 14.0 == margin.group("g").timeout_s
    # a member without samples: the plan's deadline stands
    partial = compile_plan(parse_plan(plan_text("adaptive: true")), {"a": Learned(1, 9, 9)})
    assert 5.0 == partial.group("g").timeout_s


@pytest.mark.parametrize(
    "value", ["adaptive: sometimes", "adaptive: {margin: 0.5}", "adaptive: {margn: 2}"]
)
def test_a_bad_adaptive_setting_is_a_clear_plan_error(value: str) -> None:
    with pytest.raises(PlanValidationError) as error:
        parse_plan(plan_text(value))
    assert "adaptive" in str(error.value) and "Fix" in str(error.value)


def test_the_store_keeps_runs_once_modes_apart_and_the_newest_twenty(
    database: Path | str, tmp_path: Path
) -> None:
    """On SQLite and on PostgreSQL alike."""
    store = DurationStore(database)
    assert 2 == store.record("p", REAL, "w1", "r1", [("a", 1.0), ("b", 2.0)])
    assert 0 == store.record("p", REAL, "w1", "r1", [("a", 1.0), ("b", 2.0)])
    store.record("p", SIMULATED, "w2", "r2", [("a", 50.0)])
    store.record("other", REAL, "w3", "r3", [("a", 99.0)])
    assert {"a": Learned(1, 1.0, 1.0), "b": Learned(1, 2.0, 2.0)} == store.learned("p", REAL)
    assert {"a": Learned(1, 50.0, 50.0)} == store.learned("p", SIMULATED)
    for n in range(25):
        store.record("p", REAL, "w", f"run{n}", [("a", 100.0 + n)])
    # the newest 20: 105..124 (nearest-rank p95: the 19th)
    assert Learned(20, 114.5, 123.0) == store.learned("p", REAL)["a"]
    assert {} == DurationStore(tmp_path / "missing.db").learned("p", REAL)


SMALL = """\
name: learn-run
adaptive: {margin: 5}
agents:
  slow: {kind: simulate, duration: 600ms, estimated_duration: 100ms, outputs: [x]}
  quick: {kind: simulate, duration: 50ms, estimated_duration: 300ms, outputs: [y]}
  last: {kind: simulate, duration: 50ms, estimated_duration: 50ms, inputs: [slow.x, quick.y]}
groups:
  both: {agents: [slow, quick], timeout: 2s}
"""


def compiled_json(env: dict[str, str], plan: Path, *extra: str) -> dict:
    done = starter(env, "compile", plan, *extra)
    assert 0 == done.returncode, done.stderr
    return json.loads(done.stdout)["plan"]


def test_a_real_run_teaches_the_next_one(cli_env: dict[str, str], tmp_path: Path) -> None:
    """`run` records what it measured; the next compile puts the really slow agent on the
    critical path with the top priority, and the next run's barrier deadline is its p95 x 5
    (above the plan's 2 s, which leaves slow room even on a loaded machine)."""
    plan = tmp_path / "learn-run.yaml"
    plan.write_text(SMALL)
    before = compiled_json(cli_env, plan)
    assert ["quick", "last"] == before["critical_path"]
    first = starter(cli_env, "run", plan, "--workflow-id", "learn-1", "--time-scale", "1")
    assert 0 == first.returncode, first.stdout + first.stderr
    assert "Learned the durations of 3 agent(s)" in first.stdout

    after = compiled_json(cli_env, plan)
    assert ["slow", "last"] == after["critical_path"]
    priorities = {a["id"]: a["priority"] for a in after["agents"]}
    assert (10, 7) == (priorities["slow"], priorities["quick"])
    slow = next(a for a in after["agents"] if a["id"] == "slow")
    # at least the 0.6 s it works; no upper bound: a loaded machine stretches the measurement
    assert 1 == slow["learned"]["n"] and 0.6 <= slow["learned"]["mean_s"]
    (both,) = [g for g in after["groups"] if g["id"] == "both"]
    assert 2.0 == both["planned_timeout_s"]
    assert both["timeout_s"] == pytest.approx(5 * slow["learned"]["p95_s"], abs=1e-3)
    # --no-learn: the plan as written
    assert before["critical_path"] == compiled_json(cli_env, plan, "--no-learn")["critical_path"]

    history = starter(cli_env, "plan", plan, "--history")
    assert 0 == history.returncode, history.stderr
    assert "learned:       slow -> last" in history.stdout
    assert "both: 2s -> " in history.stdout
    row = next(line for line in history.stdout.splitlines() if line.startswith("slow "))
    assert row.split()[2:4] == ["0.100", "1"] and "7 -> 10" in row

    # the second run waits at its barrier for the learned deadline, not the plan's 2 s
    second = starter(
        cli_env,
        "run",
        plan,
        "--workflow-id",
        "learn-2",
        "--time-scale",
        "1",
        "--report",
        tmp_path / "second.json",
    )
    assert 0 == second.returncode, second.stdout + second.stderr
    report = json.loads((tmp_path / "second.json").read_text())
    group = report["groups"]["both"]
    from pee.runtime.progress import offset_s

    deadline = offset_s(report, group["deadline_at"]) - offset_s(report, group["started_at"])
    assert deadline == pytest.approx(both["timeout_s"], abs=0.05)
    # learning a run twice counts it once; learn works on any finished run
    again = starter(cli_env, "learn", "learn-2")
    assert 0 == again.returncode, again.stderr
    assert "nothing new to learn from learn-2" in again.stdout
    assert (
        2
        == json.loads(starter(cli_env, "plan", plan, "--history", "--format", "json").stdout)[
            "agents"
        ][0]["n"]
    )


def test_history_of_the_other_kind_of_run_is_pointed_at(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    """`make run` records --simulate runs only: `plan --history` (real runs) must not say that
    nothing was recorded, but where the samples are."""
    plan = tmp_path / "learn-me.yaml"
    plan.write_text(plan_text())
    env = {**cli_env, "PEE_DURATIONS_PATH": str(tmp_path / "d.db")}
    DurationStore(tmp_path / "d.db").record("learn-me", SIMULATED, "w", "r", [("a", 1.0)])
    real = starter(env, "plan", plan, "--history")
    assert 0 == real.returncode, real.stderr
    assert (
        "no real runs recorded yet; 1 agent(s) have samples of simulate runs: see them "
        "with --simulate"
    ) in real.stdout
    simulated = starter(env, "plan", plan, "--history", "--simulate")
    assert "no " not in simulated.stdout.splitlines()[-1], simulated.stdout
    DurationStore(tmp_path / "d.db").clear()
    none = starter(env, "plan", plan, "--history")
    assert "no runs recorded yet: `pee run PLAN` records" in none.stdout


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("--history", "--format", "dot"), "--history prints a table (text) or json, not dot"),
        (
            ("--history", "--format", "mermaid"),
            "--history prints a table (text) or json, not mermaid",
        ),
        (("--simulate",), "--simulate goes with --history"),
    ],
)
def test_history_options_that_would_be_ignored_are_bad_input(
    cli_env: dict[str, str], tmp_path: Path, args: tuple[str, ...], says: str
) -> None:
    plan = tmp_path / "learn-me.yaml"
    plan.write_text(plan_text())
    done = starter(cli_env, "plan", plan, *args)
    assert 2 == done.returncode, done.stdout + done.stderr
    assert says in done.stderr and "" == done.stdout
