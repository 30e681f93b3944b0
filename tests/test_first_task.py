"""The first workflow task of a large run (issue 17): a 20,000-agent plan's run input carries the
plan's facts (pee.engine.rules.plan_facts), and the run's first task, replayed from a history
that holds just its start, reads them instead of walking the plan: no admission ranks over the
agent DAG, no per-agent duration or pool check. Counted, not timed (bench/README.md, "scale",
has the times)."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import pytest
from temporalio.worker import Replayer

from bench.first_task import first_task_history
from bench.first_task import main as first_task_bench
from pee.engine.compiled import CompiledPlan
from pee.engine.rules import plan_facts, time_limits
from pee.engine.rules.scheduler import Admission
from pee.runtime.codec import data_converter
from pee.runtime.sandbox_runner import LeanSandboxedWorkflowRunner
from pee.workflows.plan_workflow import PlanWorkflow
from pee.workflows.types import BatchSpec, LedgerSpec, PlanRunInput
from tests.helpers import compiled_plan, group, sim

AGENTS = 20_000


def chain_plan(agents: int) -> CompiledPlan:
    """Groups of two agents, each group waiting for the one before (its agents read an output
    of the group before): one group can start at first."""
    built = []
    groups = []
    for index in range(agents // 2):
        group_id = f"g{index}"
        inputs = [f"a{index - 1}.out"] if index else []
        built += [sim(f"a{index}", group_id, 1.0, inputs=inputs), sim(f"b{index}", group_id, 1.0)]
        groups.append(
            group(group_id, [f"a{index}", f"b{index}"], [f"g{index - 1}"] if index else [])
        )
    return compiled_plan(built, groups, name="chain")


def test_a_large_runs_first_task_reads_the_plans_facts_instead_of_walking_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    plan = chain_plan(AGENTS)
    run_input = PlanRunInput(plan=plan, time_scale=0.005, batch=BatchSpec(), ledger=LedgerSpec())
    history = first_task_history(run_input)
    calls: Counter[str] = Counter()

    def counted(name: str, function: Any) -> Any:
        def call(*args: Any, **kwargs: Any) -> Any:
            calls[name] += 1
            return function(*args, **kwargs)

        return call

    # the walks the first task used to make: ranks over the agent DAG, every duration, every
    # agent against the pool
    monkeypatch.setattr(plan_facts, "compute", counted("facts", plan_facts.compute))
    monkeypatch.setattr(time_limits, "plan_seconds", counted("durations", time_limits.plan_seconds))
    monkeypatch.setattr(
        time_limits, "scaled_durations", counted("durations", time_limits.scaled_durations)
    )
    monkeypatch.setattr(Admission, "fits_ever", counted("fits", Admission.fits_ever))
    replayer = Replayer(
        workflows=[PlanWorkflow],
        data_converter=data_converter(storage=None),
        workflow_runner=LeanSandboxedWorkflowRunner(),
        # counted, not timed: a loaded machine must not fail this on the deadlock detector
        debug_mode=True,
    )
    result = asyncio.run(replayer.replay_workflow(history, raise_on_replay_failure=False))
    assert result.replay_failure is None
    assert 0 == calls["facts"] and 0 == calls["durations"]
    # the pool check once for the plan, and once per agent the first task queued (group g0's)
    assert 1 <= calls["fits"] <= 3, calls


def test_facts_a_plan_was_decoded_with_are_kept_only_while_they_describe_it() -> None:
    """A continuation re-encodes the facts its input carried without working them out again;
    facts that do not match the plan (another agent count: a fan-out added instances, or a
    hand-made input) are worked out again."""
    plan = chain_plan(6)
    converter = data_converter(storage=None).payload_converter
    (back,) = converter.from_payloads(converter.to_payloads([plan]), [CompiledPlan])
    assert plan_facts.given(back)
    assert {"a0": 3.0, "b0": 1.0, "a1": 2.0, "b1": 1.0, "a2": 1.0, "b2": 1.0} == (
        plan_facts.facts(back).remaining
    )
    back.agents.append(sim("extra", "g2", 1.0))
    assert not plan_facts.given(back)
    assert 0.0 < plan_facts.facts(back).remaining["extra"]
    wrong = plan_facts.facts(plan).to_dict() | {"remaining": [1.0]}
    fresh = chain_plan(6)
    plan_facts.attach(fresh, wrong)
    assert not plan_facts.given(fresh)


def test_the_first_task_bench_prints_both_tasks_and_their_scaling(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """bench/first_task.py at small sizes: a line per size and task, and the scaling lines."""
    assert 0 == first_task_bench(["--agents", "100", "200", "--rounds", "1"])
    out = capsys.readouterr().out
    for line in ("agents 100 run:", "agents 200 continuation:", "scaling run: 200/100 agents"):
        assert line in out


def test_the_codec_decodes_a_large_run_input_ahead_and_the_converter_takes_it_once() -> None:
    """pee.runtime.predecode: inflating a large run input, the codec (on the worker's event
    loop, before the workflow task) builds it; the converter, asked for a PlanRunInput inside
    the task, takes that value once, equal to what it would have decoded itself, and decodes
    the same bytes again after that. A small payload is left to the converter."""
    import dataclasses

    from pee.runtime import predecode

    converter = data_converter(storage=None)
    # Infinity: orjson refuses it (a continuation's carried pool can hold it)
    big = PlanRunInput(plan=chain_plan(4_000), time_scale=0.005, inputs={"limit": float("inf")})
    small = PlanRunInput(plan=chain_plan(4), time_scale=0.005)
    (encoded,) = asyncio.run(converter.encode([big]))
    (tiny,) = asyncio.run(converter.encode([small]))
    before = predecode.kept()
    (inflated,) = asyncio.run(converter.payload_codec.decode([encoded]))  # type: ignore[union-attr]
    assert len(inflated.data) >= predecode.PREPARE_BYTES
    assert before + 1 == predecode.kept()
    asyncio.run(converter.payload_codec.decode([tiny]))  # type: ignore[union-attr]
    assert before + 1 == predecode.kept()
    payloads = converter.payload_converter
    (taken,) = payloads.from_payloads([inflated], [PlanRunInput])
    assert before == predecode.kept()
    (again,) = payloads.from_payloads([inflated], [PlanRunInput])
    assert taken is not again
    assert dataclasses.asdict(taken) == dataclasses.asdict(again)
    assert plan_facts.given(taken.plan) and plan_facts.given(again.plan)
    assert float("inf") == taken.inputs["limit"]


def test_a_batch_run_starts_with_the_longest_workflow_task_timeout() -> None:
    """A large parent's history, replayed after an eviction, must fit in one workflow task:
    batch-mode runs are started with 120 s (Temporal's default of 10 s elsewhere)."""
    from datetime import timedelta

    from pee.workflows.types import task_timeout

    plan = chain_plan(4)
    assert timedelta(seconds=120) == task_timeout(PlanRunInput(plan=plan, batch=BatchSpec()))
    assert task_timeout(PlanRunInput(plan=plan)) is None


def test_a_continuation_carries_only_the_agents_and_groups_that_changed() -> None:
    """capture leaves out the agents and groups still as built (half a large plan at its drain:
    the continuation's first task built every one of them from the carried JSON); a carried
    row of such a state (written by a run before) is skipped on decode; either way the
    restored run holds the same states."""
    from datetime import UTC, datetime

    from pee.workflows.carry import AdaptiveRules, capture, decode, encode, restore
    from pee.workflows.state import AgentState, GroupState, RunState

    plan = chain_plan(4)

    def fresh_run() -> RunState:
        return RunState(
            plan=plan,
            started=datetime(2026, 1, 1, tzinfo=UTC),
            time_scale=1.0,
            agents={a.id: AgentState() for a in plan.agents},
            groups={g.id: GroupState() for g in plan.groups},
        )

    run = fresh_run()
    run.agents["a0"].status = run.agents["b0"].status = "succeeded"
    run.groups["g0"].status = "succeeded"
    carried = capture(run, "run-1", {}, AdaptiveRules())
    assert ["a0", "b0"] == list(carried.agents) and ["g0"] == list(carried.groups)
    converter = data_converter(storage=None).payload_converter
    (plain,) = converter.from_payloads(converter.to_payloads([encode(carried)]), [dict])
    # as a run before this change carried them: every agent and group, built ones included
    (old,) = converter.from_payloads(
        converter.to_payloads([encode(carried) | {"agents": run.agents, "groups": run.groups}]),
        [dict],
    )
    assert ["a1", "b1"] == [k for k in old["agents"] if k in ("a1", "b1")]
    for data in (plain, old):
        back = decode(data)
        assert ["a0", "b0"] == list(back.agents) and ["g0"] == list(back.groups)
        restored = fresh_run()
        restore(restored, back)
        assert run.agents == restored.agents and run.groups == restored.groups
