"""Replay the committed histories (tests/histories/*.json, one per barrier branch, a plain run,
the conflict paths: resolved by update, by signal, by the conflict timeout, and adaptive
allocation throttling a group) against today's PlanWorkflow: any change to the commands a run
issues fails here.

After an intended change, re-record with `.venv/bin/python -m tests.histories.record`."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import WorkflowHistory
from temporalio.converter import DataConverter
from temporalio.worker import Replayer

from runtime.codec import Lz4Codec, data_converter
from tests.histories.record import SCENARIOS, Scenario, expected, outcome
from workflows.plan_workflow import PlanWorkflow

HISTORIES = Path(__file__).resolve().parent / "histories"


def load(name: str) -> WorkflowHistory:
    return WorkflowHistory.from_json(f"replay-{name}", (HISTORIES / f"{name}.json").read_text())


def final_report(history: WorkflowHistory) -> dict[str, Any]:
    """The run report the recorded run ended with (its result, or its failure's details)."""
    last = history.events[-1]
    if last.HasField("workflow_execution_completed_event_attributes"):
        payloads = last.workflow_execution_completed_event_attributes.result.payloads
    else:
        failure = last.workflow_execution_failed_event_attributes.failure
        payloads = failure.application_failure_info.details.payloads
    # histories recorded through the lz4 codec keep large payloads compressed
    plain = [Lz4Codec._decode(p) for p in payloads]
    (report,) = DataConverter.default.payload_converter.from_payloads(plain, [dict])
    return report


def test_every_scenario_has_a_history() -> None:
    """Each recorded scenario has its JSON file and no file is left without a scenario."""
    assert sorted(s.name for s in SCENARIOS) == sorted(p.stem for p in HISTORIES.glob("*.json"))


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.name for s in SCENARIOS])
def test_history_replays(scenario: Scenario) -> None:
    """The recorded run replays without nondeterminism and shows the branch it was made for
    (barrier decisions, and for the conflict paths how c1 was settled)."""
    history = load(scenario.name)
    replayer = Replayer(workflows=[PlanWorkflow], data_converter=data_converter())
    result = asyncio.run(replayer.replay_workflow(history))
    assert result.replay_failure is None
    assert expected(scenario) == outcome(final_report(history))
