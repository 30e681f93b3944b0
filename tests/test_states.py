"""The status enums read and print as the strings reports, events and histories carry."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from pee.engine.rules import barrier
from pee.engine.states import (
    AGENT_FINISHED,
    AGENT_UNFINISHED,
    AGENT_WAITING,
    BARRIER_UNFINISHED,
    GROUP_PASSED,
    RUN_FINAL,
    AgentStatus,
    BarrierAction,
    BarrierStatus,
    GroupStatus,
    RunStatus,
)
from pee.runtime.codec import data_converter
from pee.workflows.carry import AdaptiveRules, capture, decode, encode
from pee.workflows.state import AgentState, GroupState, RunState
from tests.test_continue_as_new import chain_plan

ENUMS = (AgentStatus, GroupStatus, RunStatus, BarrierStatus, BarrierAction)


@pytest.mark.parametrize("enum", ENUMS, ids=[e.__name__ for e in ENUMS])
def test_a_status_prints_and_encodes_as_its_value(enum: type[AgentStatus]) -> None:
    # on 3.11 a plain (str, Enum) f-string gives "AgentStatus.RUNNING": events would change
    for member in enum:
        assert f"agent_{member}" == f"agent_{member.value}"
        assert str(member) == member.value == member
        assert f"{member:<20}|" == f"{member.value:<20}|"
        assert json.dumps({member: member}) == json.dumps({member.value: member.value})


def test_finished_and_unfinished_agent_statuses_partition_them() -> None:
    assert set(AGENT_FINISHED) | set(AGENT_UNFINISHED) == set(AgentStatus)
    assert not set(AGENT_FINISHED) & set(AGENT_UNFINISHED)
    assert set(RUN_FINAL) == set(RunStatus) - {RunStatus.RUNNING}
    assert set(GROUP_PASSED) == {GroupStatus.SUCCEEDED, GroupStatus.PARTIAL}


def test_the_barrier_sees_every_unfinished_agent_as_pending_or_running() -> None:
    """The barrier's "unfinished" is narrower than the workflow's: blocked and queued agents
    reach it as pending."""
    for status in AGENT_UNFINISHED:
        view = AgentState(status=status).barrier_view()
        assert view.status in BARRIER_UNFINISHED
        assert (view.status == BarrierStatus.PENDING) == (status != AgentStatus.RUNNING)
    assert AgentState(status=AgentStatus.BLOCKED).barrier_view().status is BarrierStatus.PENDING
    assert set(AGENT_WAITING) < set(AGENT_UNFINISHED)
    failed = AgentState(status=AgentStatus.TIMED_OUT, critical=True).barrier_view()
    assert failed.status is barrier.CRITICAL_FAILED


def test_a_carried_run_decodes_statuses_back_to_enums() -> None:
    """A run continued as new carries its statuses as strings; they come back as enums."""
    plan = chain_plan(2)
    run = RunState(
        plan=plan,
        started=datetime(2026, 1, 1, tzinfo=UTC),
        time_scale=1.0,
        agents={a.id: AgentState() for a in plan.agents},
        groups={g.id: GroupState() for g in plan.groups},
    )
    run.agents["a0"].status = AgentStatus.SUCCEEDED
    run.groups["g0"].status = GroupStatus.PARTIAL
    carried = capture(run, "run-1", {}, AdaptiveRules(), batch_children=0, batch_largest=0)
    # through the project's converter, as PlanRunInput.carried travels
    converter = data_converter().payload_converter
    (plain,) = converter.from_payloads(converter.to_payloads([encode(carried)]), [dict])
    assert "partial" == plain["groups"]["g0"]["status"]
    back = decode(plain)
    assert GroupStatus.PARTIAL is back.groups["g0"].status
    assert all(type(state.status) is AgentStatus for state in back.agents.values())
    assert all(type(state.status) is GroupStatus for state in back.groups.values())
