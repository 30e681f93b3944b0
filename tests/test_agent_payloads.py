"""Every agent's task and result are written and read directly with orjson
(pee.runtime.agent_payloads): the same values as the json module's way, and that way for
whatever orjson would write differently or cannot write."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import pytest
from temporalio.api.common.v1 import Payload
from temporalio.converter import DataConverter

from pee.activities.types import AgentResult, AgentTask
from pee.runtime import agent_payloads
from pee.runtime.codec import ShallowDataclassEncoder, _sparse, data_converter
from tests.helpers import compiled_plan, group, sim

NESTED = ShallowDataclassEncoder().default


@dataclass
class Nested:
    n: int


def the_json_way(value: Any) -> bytes:
    """What the payload converter wrote before: the json module with the project's encoder."""
    text = json.dumps(value, cls=ShallowDataclassEncoder, separators=(",", ":"), sort_keys=True)
    return text.encode()


def task(inputs: dict[str, Any], **settings: Any) -> AgentTask:
    plan = compiled_plan([sim("a", "g", 0.5, **settings)], [group("g", ["a"])])
    return AgentTask(
        agent=plan.agents[0],
        inputs=inputs,
        snapshot_versions={"x": 2},
        group="g",
        run_id="r",
        workflow_id="w",
        time_scale=1.0,
        plan_name="p",
    )


PLAIN: list[Any] = [
    task({}),
    task({"b.out": {"text": 'line\n"quoted" \\ done', "n": [1, 2.5, -0.0, 10**18]}}),
    task({"b.out": [True, False, {"deep": {"er": []}}]}, values={"out": 3}),
    AgentResult("a"),
    AgentResult("a", {"out": Nested(3)}),
    AgentResult("a", {"out": {"n": 1.25}}, {"k": "v"}, 2, {"p": {"hits": 1}}, 0.5, 0.25),
]


@pytest.mark.parametrize("value", PLAIN, ids=lambda v: type(v).__name__)
def test_plain_tasks_and_results_are_written_directly_as_the_json_way_writes_them(
    value: Any,
) -> None:
    payload = agent_payloads.encode(value, _sparse, NESTED)
    assert payload is not None, "plain data must take the direct way"
    assert payload.metadata["encoding"] == b"json/plain"
    assert payload.data == the_json_way(value)
    converter = data_converter().payload_converter
    assert [payload] == converter.to_payloads([value])
    kind = type(value)
    # read back directly, and by the SDK's own converter (a worker without the shortcut); a
    # dataclass inside an output reads back as its row, either way
    (back,) = converter.from_payloads([payload], [kind])
    assert [back] == DataConverter.default.payload_converter.from_payloads([payload], [kind])
    assert json.loads(the_json_way(back)) == json.loads(payload.data)
    if not any(isinstance(v, Nested) for v in getattr(value, "outputs", {}).values()):
        assert value == back


def test_text_beyond_ascii_and_exponents_read_back_the_same() -> None:
    """orjson writes non-ASCII text as UTF-8 and some floats without an exponent, where the
    json module escapes and writes one: other bytes, the same values for every reader."""
    value = task({"b.out": {"text": "é ü 日本 🙂", "small": 1e-05, "big": 1e16}})
    payload = agent_payloads.encode(value, _sparse, NESTED)
    assert payload is not None
    assert json.loads(payload.data) == json.loads(the_json_way(value))
    assert [value] == data_converter().payload_converter.from_payloads([payload], [AgentTask])


UNUSUAL: list[tuple[str, Any]] = [
    ("NaN", task({"b.out": {"v": float("nan")}})),
    ("infinity", AgentResult("a", {"out": float("inf")})),
    ("null inside a string", task({"b.out": "null"})),
    ("null in a value", task({"b.out": [1, None]})),
    ("null in an output", AgentResult("a", {"out": {"none": None}})),
    ("integer past 64 bits", AgentResult("a", {"out": 2**70})),
    ("key that is not a string", AgentResult("a", {"out": {1: "one"}})),
    ("a datetime", AgentResult("a", {"out": datetime(2026, 12, 7, tzinfo=timezone.utc)})),
]


@pytest.mark.parametrize(("case", "value"), UNUSUAL, ids=[case for case, _ in UNUSUAL])
def test_what_orjson_would_write_otherwise_takes_the_json_way(case: str, value: Any) -> None:
    assert agent_payloads.encode(value, _sparse, NESTED) is None, case
    converter = data_converter().payload_converter
    (payload,) = converter.to_payloads([value])
    assert payload.data == the_json_way(value), case


def test_nan_written_the_json_way_reads_back() -> None:
    """orjson refuses NaN when reading: such a task or result is read the usual way."""
    converter = data_converter().payload_converter
    for value, field in (
        (task({"b.out": float("nan")}), "inputs"),
        (AgentResult("a", {"o": math.inf}), "outputs"),
    ):
        (back,) = converter.from_payloads(converter.to_payloads([value]), [type(value)])
        (read,) = getattr(back, field).values()
        assert math.isnan(read) or math.isinf(read)


def test_payloads_written_before_read_the_same() -> None:
    """A task and a result in history from before (the json module's bytes, spaced or not,
    with every field or sparse) read as they did."""
    converter = data_converter().payload_converter
    sdk = DataConverter.default.payload_converter
    for value in PLAIN:
        for data in (
            the_json_way(value),
            json.dumps(value, cls=ShallowDataclassEncoder, sort_keys=True).encode(),
            sdk.to_payloads([value])[0].data,
        ):
            payload = Payload(metadata={"encoding": b"json/plain"}, data=data)
            kind = type(value)
            assert sdk.from_payloads([payload], [kind]) == converter.from_payloads(
                [payload], [kind]
            )
    unknown = Payload(metadata={"encoding": b"json/plain"}, data=b'{"agent_id":"a","later":1}')
    assert [AgentResult("a")] == converter.from_payloads([unknown], [AgentResult])
