"""A continuation's input reuses the plan's JSON the run input was read from
(pee.runtime.plan_json): the drain's last workflow task encodes only the carried state. Counted,
not timed: the spliced payload decodes to the same input as the fully encoded one, and a plan
changed in place (a fan-out expands one) is encoded again instead."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import UTC, datetime
from typing import Any

import pytest

from pee.engine.states import AgentStatus, GroupStatus
from pee.runtime import plan_json, report_json
from pee.runtime.codec import data_converter
from pee.workflows.carry import AdaptiveRules, capture
from pee.workflows.continuation import next_input
from pee.workflows.state import AgentState, GroupState, RunState
from pee.workflows.types import PlanRunInput
from tests.test_first_task import chain_plan


def read_ahead(value: PlanRunInput) -> PlanRunInput:
    """``value`` as a worker gets it: encoded, inflated by the codec (which builds it ahead,
    pee.runtime.predecode) and taken by the converter."""
    converter = data_converter(storage=None)
    (encoded,) = asyncio.run(converter.encode([value]))
    (inflated,) = asyncio.run(converter.payload_codec.decode([encoded]))  # type: ignore[union-attr]
    (taken,) = converter.payload_converter.from_payloads([inflated], [PlanRunInput])
    assert isinstance(taken, PlanRunInput)
    return taken


def fresh_run(taken: PlanRunInput) -> RunState:
    """A run state of `taken`'s plan with every agent and group not started yet."""
    plan = taken.plan
    return RunState(
        plan=plan,
        started=datetime(2026, 1, 1, tzinfo=UTC),
        time_scale=taken.time_scale,
        agents={a.id: AgentState() for a in plan.agents},
        groups={g.id: GroupState() for g in plan.groups},
    )


def continuation_of(taken: PlanRunInput) -> PlanRunInput:
    run = fresh_run(taken)
    run.agents["a0"].status = run.agents["b0"].status = "succeeded"
    run.groups["g0"].status = "succeeded"
    return next_input(taken, capture(run, "run-1", {}, AdaptiveRules()))


def round_trip(value: PlanRunInput) -> tuple[PlanRunInput, int]:
    """``value`` encoded and decoded by the JSON converter, and how many encodings spliced."""
    converter = data_converter(storage=None).payload_converter
    before = plan_json.spliced_count()
    payloads = converter.to_payloads([value])
    spliced = plan_json.spliced_count() - before
    (back,) = converter.from_payloads(payloads, [PlanRunInput])
    return back, spliced


def test_a_continuation_input_reuses_the_plans_json_and_decodes_the_same() -> None:
    taken = read_ahead(PlanRunInput(plan=chain_plan(4_000), time_scale=0.005))
    follow = continuation_of(taken)
    back, spliced = round_trip(follow)
    assert 1 == spliced
    assert dataclasses.asdict(follow) == dataclasses.asdict(back)
    # the same as the whole input encoded as before (a copy of the plan holds no kept bytes)
    full, spliced = round_trip(dataclasses.replace(follow, plan=dataclasses.replace(follow.plan)))
    assert 0 == spliced
    assert back == full and back.carried is not None and back.carried == full.carried


def test_values_orjson_refuses_are_kept_as_the_standard_module_writes_them() -> None:
    # Infinity: the run input is read by the standard module, so the plan is written by it too
    taken = read_ahead(
        PlanRunInput(plan=chain_plan(4_000), time_scale=0.005, inputs={"limit": float("inf")})
    )
    follow = dataclasses.replace(continuation_of(taken), inputs={"limit": float("-inf")})
    back, spliced = round_trip(follow)
    assert 1 == spliced
    assert dataclasses.asdict(follow) == dataclasses.asdict(back)


def test_a_plan_changed_in_place_is_encoded_again() -> None:
    taken = read_ahead(PlanRunInput(plan=chain_plan(4_000), time_scale=0.005))
    plan = taken.plan
    # as a fan-out expands a group: a new group object at its position, new agents appended
    plan.groups[0] = dataclasses.replace(plan.groups[0], timeout_s=7.0)
    follow = continuation_of(taken)
    back, spliced = round_trip(follow)
    assert 0 == spliced
    assert 7.0 == back.plan.groups[0].timeout_s
    assert dataclasses.asdict(follow) == dataclasses.asdict(back)
    plan.groups[0] = dataclasses.replace(plan.groups[0], timeout_s=None)
    plan.agents.append(dataclasses.replace(plan.agents[0], id="extra"))
    back, spliced = round_trip(continuation_of(taken))
    assert 0 == spliced and "extra" == back.plan.agents[-1].id


def test_a_small_input_is_encoded_as_before() -> None:
    small = PlanRunInput(plan=chain_plan(4), time_scale=0.005)
    back, spliced = round_trip(read_ahead(small))
    assert 0 == spliced
    assert dataclasses.asdict(small) == dataclasses.asdict(back)


def test_the_carried_state_is_written_with_orjson_and_decodes_the_same(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The continuation input's other fields (the carried run: agent and group states, context
    versions with their values) go through orjson field by field (pee.runtime.report_json), the
    unlimited pool's Infinity through the standard module, and decode to what the standard
    module's encoding of the whole input decodes to."""
    taken = read_ahead(PlanRunInput(plan=chain_plan(4_000), time_scale=0.005))
    run = fresh_run(taken)
    for index in range(50):
        agent = run.agents[f"a{index}"]
        agent.status = AgentStatus.SUCCEEDED
        agent.started_s, agent.ended_s, agent.attempts = 0.5 * index, 0.5 * index + 0.1, 1
        run.context.put(f"a{index}.out", {"n": index, "text": "caf\u00e9"}, f"a{index}", "t")
    run.groups["g0"].status = GroupStatus.SUCCEEDED
    follow = next_input(taken, capture(run, "run-1", {"a0": "k0"}, AdaptiveRules()))
    written: list[bytes | None] = []
    dumps = report_json.dumps

    def recorded(*args: Any) -> bytes | None:
        written.append(dumps(*args))
        return written[-1]

    monkeypatch.setattr(report_json, "dumps", recorded)
    back, spliced = round_trip(follow)
    assert 1 == spliced
    # the rows with orjson; the admission totals (an unlimited pool: Infinity) without
    assert any(data is not None and b'"status":"succeeded"' in data for data in written)
    assert None in written
    monkeypatch.setattr(report_json, "dumps", lambda *args: None)
    before, _ = round_trip(follow)
    assert dataclasses.asdict(before) == dataclasses.asdict(back)
    assert dataclasses.asdict(follow) == dataclasses.asdict(back)
