"""A finished run's report is built and encoded once (pee.workflows.final_report): the `status`
query of a closed run, which a fresh worker answers by replaying the history, reuses the payload
the replay made for the result instead of building and encoding the report again; and a report
is written with orjson where that decodes to what the standard module's JSON decodes to
(pee.runtime.report_json)."""

from __future__ import annotations

import json
import math
import uuid
from typing import Any

import pytest
from temporalio.api.common.v1 import Payload

from pee.engine.states import AgentStatus
from pee.runtime import report_json
from pee.runtime.codec import data_converter
from pee.runtime.worker import build_worker
from pee.workflows import final_report
from pee.workflows.final_report import FinalReport
from pee.workflows.plan_workflow import PlanWorkflow
from pee.workflows.types import BatchSpec, PlanRunInput
from tests.helpers import TemporalHarness, compiled_plan, group, sim


def test_a_closed_runs_status_answer_reuses_the_replayed_results_payload(
    temporal: TemporalHarness,
) -> None:
    """A fresh worker replays the completed run to answer `status`: the replay encodes the
    report once (for the result) and the query's answer is that payload, not a second build
    and encoding (before: two of each, inside activations under the 2 s deadlock detector)."""
    plan = compiled_plan(
        [sim("a", "g", 0.1), sim("b", "g", 0.2), sim("c", "next", 0.1, inputs=["a.out"])],
        [group("g", ["a", "b"]), group("next", ["c"], ["g"])],
        name="final-report",
    )

    async def go() -> tuple[dict[str, Any], dict[str, Any], dict[str, int], dict[str, int]]:
        task_queue = f"final-report-{uuid.uuid4()}"
        async with build_worker(temporal.client, task_queue):
            handle = await temporal.client.start_workflow(
                PlanWorkflow.run,
                PlanRunInput(plan=plan, batch=BatchSpec(chunk_size=10)),
                id=f"final-report-{uuid.uuid4()}",
                task_queue=task_queue,
            )
            result = await handle.result()
        # that worker is gone: this one has never seen the run, so it replays it
        before = final_report.counts()
        async with build_worker(temporal.client, task_queue, activities=False):
            status = await handle.query(PlanWorkflow.status)
        return result, status, before, final_report.counts()

    result, status, before, after = temporal.run(go())
    assert "completed" == result["status"]
    assert status == result
    assert 1 == after["encoded"] - before["encoded"], "the replay's result not encoded once"
    assert 1 == after["reused"] - before["reused"], "the query built its own answer"


def test_a_final_report_is_encoded_once() -> None:
    converter = data_converter(storage=None).payload_converter
    report = FinalReport({"status": AgentStatus.SUCCEEDED, "agents": {"a": {"n": 1}}})
    before = final_report.counts()
    first = converter.to_payloads([report])[0]
    again = converter.to_payloads([report])[0]
    after = final_report.counts()
    assert first == again
    assert (1, 1) == (
        after["encoded"] - before["encoded"],
        after["reused"] - before["reused"],
    )
    assert {"status": "succeeded", "agents": {"a": {"n": 1}}} == converter.from_payloads([first])[0]


def stdlib(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), sort_keys=True).encode()


def test_report_json_decodes_to_what_the_standard_module_writes() -> None:
    report = {
        "status": AgentStatus.SUCCEEDED,
        "text": 'caf\u00e9 \u2713 "q" \\ \n',
        "numbers": [0, -1, 2**63 - 1, 2**64 - 1, 0.1, 1e16, 1.5e-7, -0.0, True, False, None],
        "nested": {"z": [{"b": 1, "a": (1, 2)}], "a": {}},
        "agents": {f"agent-{i}": {"status": AgentStatus.FAILED, "s": i / 7} for i in range(50)},
    }
    data = report_json.dumps(report)
    assert data is not None
    assert json.loads(stdlib(report)) == json.loads(data)
    # and through the converter, which reads it with orjson
    converter = data_converter(storage=None).payload_converter
    payload = Payload(metadata={"encoding": b"json/plain"}, data=data)
    assert json.loads(stdlib(report)) == converter.from_payloads([payload])[0]


@pytest.mark.parametrize(
    "odd",
    [
        math.nan,
        math.inf,
        -math.inf,
        2**64,
        -(2**63) - 1,
        {1: "int key"},
        {"deep": [{"x": math.inf}]},
        object(),
    ],
)
def test_report_json_leaves_to_the_standard_module_what_orjson_would_write_otherwise(
    odd: Any,
) -> None:
    """NaN and Infinity (orjson writes null), non-str keys, integers past 64 bits and unknown
    objects: None, so the converter writes the report as before."""
    assert report_json.dumps({"ok": 1, "odd": odd}) is None


def test_a_report_orjson_cannot_write_is_encoded_as_before() -> None:
    """A report holding Infinity (an unlimited pool) still encodes, as the standard module
    writes it, and decodes to the same value."""
    converter = data_converter(storage=None).payload_converter
    report = FinalReport({"resources": {"pool": {"cpu": math.inf}}, "n": 1})
    payload = converter.to_payloads([report])[0]
    assert stdlib(dict(report)) == payload.data
    assert {"resources": {"pool": {"cpu": math.inf}}, "n": 1} == converter.from_payloads([payload])[
        0
    ]
