"""The lz4 payload codec: round trips, the threshold, and compressed payloads in real history."""

from __future__ import annotations

import asyncio

from temporalio.api.common.v1 import Payload
from temporalio.api.workflowservice.v1 import GetWorkflowExecutionHistoryRequest

from pee.runtime.codec import ENCODING, Lz4Codec
from tests.helpers import TemporalHarness, compiled_plan, group, sim


def payload(size: int) -> Payload:
    return Payload(metadata={"encoding": b"json/plain"}, data=b'"' + b"x" * size + b'"')


def test_round_trip_above_and_below_the_threshold() -> None:
    """Large payloads come back byte for byte; small ones are not touched."""
    codec = Lz4Codec(threshold=1024)
    small, large = payload(10), payload(50_000)
    encoded = asyncio.run(codec.encode([small, large]))
    assert small == encoded[0]
    assert ENCODING == encoded[1].metadata["encoding"]
    assert len(encoded[1].data) < len(large.data) // 10
    assert [small, large] == asyncio.run(codec.decode(encoded))


def test_payloads_without_lz4_pass_through_decoding() -> None:
    """Histories written before the codec still decode."""
    plain = payload(50_000)
    assert [plain] == asyncio.run(Lz4Codec(threshold=10).decode([plain]))


def test_a_large_workflow_input_is_stored_compressed(temporal: TemporalHarness) -> None:
    """A compiled plan over 10 KB is stored as binary/lz4 in the server's history."""
    agents = [sim(f"agent{i}", "g", 0.0, description_padding="p" * 200) for i in range(60)]
    plan = compiled_plan(agents, [group("g", [a.id for a in agents])])

    async def body(handle):
        await handle.result()
        # the raw service call: fetch_history() would hand back decoded payloads
        raw = await temporal.client.workflow_service.get_workflow_execution_history(
            GetWorkflowExecutionHistoryRequest(
                namespace=temporal.client.namespace, execution={"workflow_id": handle.id}
            )
        )
        first = raw.history.events[0].workflow_execution_started_event_attributes
        return first.input.payloads[0].metadata["encoding"]

    assert ENCODING == temporal.with_plan(plan, body)


def test_dataclasses_encode_to_the_same_json_as_the_sdk_default() -> None:
    """ShallowDataclassEncoder (no deep copy first) writes the bytes the SDK's own encoder
    writes, for a plan input with nested dataclasses, tuples and None, except that a plan's
    agents and groups leave out their fields at defaults and the plan carries its facts
    (pee.engine.rules.plan_facts); both read back the same."""
    import json

    from temporalio.converter import DataConverter

    from pee.runtime.codec import data_converter
    from pee.workflows.types import BatchSpec, PlanRunInput

    plan = compiled_plan(
        [sim("a", "g", 0.1, defaults={"out": (1, "x")}), sim("b", "g", 0.2)],
        [group("g", ["a", "b"])],
    )
    value = PlanRunInput(plan=plan, inputs={"k": [1, {"n": None}]}, batch=BatchSpec())
    ours = data_converter().payload_converter.to_payloads([value])
    sdk = DataConverter.default.payload_converter.to_payloads([value])
    mine, theirs = json.loads(ours[0].data), json.loads(sdk[0].data)
    assert mine["plan"].pop("facts")["agents"] == 2
    for row in (mine, theirs):
        row["plan"]["agents"] = row["plan"]["groups"] = None
    assert theirs == mine
    (back,) = data_converter().payload_converter.from_payloads(ours, [PlanRunInput])
    (walked,) = DataConverter.default.payload_converter.from_payloads(sdk, [PlanRunInput])
    # (agent a's tuple default reads back as a list, either way)
    assert back.plan.agents == walked.plan.agents
    assert value.plan.agents[1] == back.plan.agents[1]
    assert value.plan.groups == back.plan.groups == walked.plan.groups
    assert BatchSpec() == back.batch


def test_agent_results_decode_to_what_the_sdk_decodes() -> None:
    """CompiledPlanConverter's AgentResult shortcut gives the same value as the SDK's generic
    dataclass walk, also for JSON it cannot take itself (an unknown field: the SDK drops it)."""
    from temporalio.converter import DataConverter

    from pee.activities.types import AgentResult
    from pee.runtime.codec import data_converter

    result = AgentResult(
        agent_id="a",
        outputs={"out": {"n": [1, 2.5, None]}},
        writes={"k": "v"},
        attempt=3,
        cache={"prefetch": {"hits": 2}},
        elapsed_s=0.25,
    )
    ours = data_converter().payload_converter
    sdk = DataConverter.default.payload_converter
    payloads = ours.to_payloads([result])
    assert [result] == ours.from_payloads(payloads, [AgentResult])
    assert [result] == sdk.from_payloads(payloads, [AgentResult])
    unknown = [Payload(metadata={"encoding": b"json/plain"}, data=b'{"agent_id": "a", "x": 1}')]
    assert [AgentResult(agent_id="a")] == ours.from_payloads(unknown, [AgentResult])
    assert sdk.from_payloads(unknown, [AgentResult]) == ours.from_payloads(unknown, [AgentResult])


def test_snapshot_results_decode_to_what_the_sdk_decodes() -> None:
    """The SnapshotStored and SnapshotTask shortcuts (the snapshot local activity's result and
    input, both on the run's critical path) give the SDK's values (a float field written as an
    int read back as a float), also for JSON they cannot take (an unknown field: the SDK drops
    it)."""
    from temporalio.converter import DataConverter

    from pee.activities.types import SnapshotStored, SnapshotTask
    from pee.runtime.codec import data_converter

    ours = data_converter().payload_converter
    sdk = DataConverter.default.payload_converter
    for stored in (SnapshotStored("g#h", True, 120, 30), SnapshotStored("g#h", stored=False)):
        payloads = ours.to_payloads([stored])
        assert [stored] == ours.from_payloads(payloads, [SnapshotStored])
        assert [stored] == sdk.from_payloads(payloads, [SnapshotStored])
    for ttl in (None, 3600, 2.5):
        task = SnapshotTask("g#h", {"k": {"n": [1, 2.5]}}, "g", "w", "r", "p", ttl, 10, None)
        payloads = ours.to_payloads([task])
        decoded = ours.from_payloads(payloads, [SnapshotTask])
        assert decoded == sdk.from_payloads(payloads, [SnapshotTask])
        assert type(decoded[0].ttl_s) is type(sdk.from_payloads(payloads, [SnapshotTask])[0].ttl_s)
    unknown = [
        Payload(metadata={"encoding": b"json/plain"}, data=b'{"key": "k", "stored": true, "x": 1}')
    ]
    assert [SnapshotStored("k", True)] == ours.from_payloads(unknown, [SnapshotStored])
    assert sdk.from_payloads(unknown, [SnapshotStored]) == ours.from_payloads(
        unknown, [SnapshotStored]
    )


def test_agent_tasks_leave_out_defaults_and_decode_to_the_same_task() -> None:
    """An agent's task (every activity input) is written without the fields at their defaults,
    in the task and in its agent, and decodes to the same task with this project's converter and
    with the SDK's own (as a worker without the shortcut would); a value equal to its default
    but of another type (cpu 25 for 25.0) is kept as written."""
    import json

    from temporalio.converter import DataConverter

    from pee.activities.types import AgentTask
    from pee.runtime.codec import data_converter

    plan = compiled_plan([sim("a", "g", 0.1), sim("b", "g", 0.2)], [group("g", ["a", "b"])])
    agent = plan.agents[0]
    agent.cpu = 25  # type: ignore[assignment]  # an int where the default is 25.0
    task = AgentTask(agent=agent, group="g", run_id="r", plan_name="p", cache_key=None)
    (encoded,) = data_converter().payload_converter.to_payloads([task])
    written = json.loads(encoded.data)
    assert "cache_key" not in written and "missing_inputs" not in written
    assert "fan_out" not in written["agent"] and "learned" not in written["agent"]
    assert {"id", "role", "kind", "group"} <= set(written["agent"])
    assert 25 == written["agent"]["cpu"] and isinstance(written["agent"]["cpu"], int)
    full = DataConverter.default.payload_converter.to_payloads([task])[0].data
    assert len(encoded.data) < len(full) / 2
    ours = data_converter().payload_converter.from_payloads([encoded], [AgentTask])
    sdk = DataConverter.default.payload_converter.from_payloads([encoded], [AgentTask])
    assert [task] == ours
    assert [task] == sdk


def test_the_payload_converter_writes_and_reads_the_same_values_as_the_sdks() -> None:
    """The fast paths (a dataclass's own __dict__ when it is exactly its fields, a plan's agents
    and groups without their default fields, orjson for reading, AgentOutcome decoded directly)
    read back the same values as the SDK's converter; what orjson refuses (NaN) is still
    read."""
    import dataclasses
    import json
    import math

    from temporalio.converter import DataConverter

    from pee.activities.types import AgentResult
    from pee.engine.compiled import CompiledPlan
    from pee.runtime.codec import data_converter
    from pee.workflows.agent_outcome import AgentOutcome

    plan = compiled_plan([sim("a", "g", 1.0), sim("b", "g", 1.0)], [group("g", ["a", "b"])])
    plan.agent("b")  # caches an index in the plan's __dict__: never encoded
    plan.group("g")
    converter = data_converter().payload_converter
    plan.agents[0].cpu = 40.0  # not its default: written
    (mine,) = converter.to_payloads([plan])
    (sdks,) = DataConverter.default.payload_converter.to_payloads([dataclasses.asdict(plan)])
    written = json.loads(mine.data)
    # agents and groups leave out what is at its default (the SDK writes every field) ...
    assert {"validates", "writes", "task_queue"}.isdisjoint(written["agents"][0])
    assert 40.0 == written["agents"][0]["cpu"] and "cpu" not in written["agents"][1]
    # ... and the plan carries its facts (pee.engine.rules.plan_facts), which the SDK does not
    assert [1.0, 1.0] == written.pop("facts")["remaining"]
    assert {k: v for k, v in json.loads(sdks.data).items() if k not in ("agents", "groups")} == {
        k: v for k, v in written.items() if k not in ("agents", "groups")
    }
    assert b"_positions" not in mine.data
    # ... and both read back as the same plan, by our reader and by the SDK's generic walk
    (back,) = converter.from_payloads([mine], [CompiledPlan])
    (walked,) = DataConverter.default.payload_converter.from_payloads([mine], [CompiledPlan])
    assert dataclasses.asdict(plan) == dataclasses.asdict(back) == dataclasses.asdict(walked)
    outcomes = [AgentOutcome("a", "a", AgentResult("a", {"out": 1})), AgentOutcome("b", error="x")]
    (read,) = converter.from_payloads(converter.to_payloads([outcomes]), [list[AgentOutcome]])
    assert outcomes == read
    (nan,) = converter.from_payloads(converter.to_payloads([{"v": float("nan")}]), [dict])
    assert math.isnan(nan["v"])


def test_inputs_decoded_directly_equal_the_sdks_generic_decoding() -> None:
    """PlanRunInput, a ledger flush's RunRowsBatch and a batch child's AgentBatchInput are
    built directly (no per-field type walk): the same values as the SDK's own converter."""
    import dataclasses
    import typing
    from datetime import timedelta

    from temporalio.common import RetryPolicy
    from temporalio.converter import DataConverter

    from pee.activities.types import AgentTask
    from pee.engine.report.run_rows import RowKind, RunRow, RunRowsBatch
    from pee.runtime.codec import data_converter
    from pee.workflows.agent_batch import AgentBatchInput, AgentCall
    from pee.workflows.types import (
        BatchSpec,
        FanOutBatching,
        LedgerSpec,
        PlanRunInput,
        ResumeFrom,
    )

    plan = compiled_plan([sim("a", "g", 1.0)], [group("g", ["a"])])
    task = AgentTask(agent=plan.agents[0], inputs={"x": [1, 2]})
    call = AgentCall.of(
        task, "a", timedelta(seconds=5), timedelta(seconds=2), RetryPolicy(), "a", None
    )
    values = [
        (
            PlanRunInput(
                plan=plan,
                inputs={"k": {"v": 1}},
                resume=ResumeFrom("w", passed_groups=["g"]),
                batch=BatchSpec(10, 2),
                ledger=LedgerSpec(7),
                carried={"started": "x"},
                fan_out_batching=FanOutBatching(above=5, children_at_once=None),
            ),
            PlanRunInput,
        ),
        (RunRowsBatch("k", "w", "p", [RunRow(RowKind.AGENT, "a", 1, {"s": 1})]), RunRowsBatch),
        (AgentBatchInput([call], "w", 0.5), AgentBatchInput),
    ]
    mine = data_converter().payload_converter
    sdks = DataConverter.default.payload_converter
    for value, kind in values:
        payloads = mine.to_payloads([value])
        (fast,) = mine.from_payloads(payloads, [kind])
        (slow,) = sdks.from_payloads(payloads, [kind])
        assert type(fast) is kind
        assert dataclasses.asdict(slow) == dataclasses.asdict(fast) == dataclasses.asdict(value)
        # asdict cannot tell a nested dataclass from a dict: each dataclass-typed field comes
        # back as its dataclass, and the sample sets every such field (one added later and
        # left a dict by the direct decoder fails here)
        for name, hint in typing.get_type_hints(kind).items():
            if any(dataclasses.is_dataclass(k) for k in (hint, *typing.get_args(hint))):
                assert getattr(value, name) is not None, f"set {kind.__name__}.{name} here"
                assert type(getattr(value, name)) is type(getattr(fast, name)), name


def test_strings_become_the_payloads_the_sdks_converter_makes() -> None:
    """A plain str (an activity's Web UI summary) skips the converter chain: the same payload,
    byte for byte, as the SDK's default converter writes, alone or among other values."""
    from temporalio.converter import DataConverter

    from pee.runtime.codec import data_converter

    converter = data_converter().payload_converter
    sdk = DataConverter.default.payload_converter
    texts = [
        "",
        "agent noop01 (simulate), group all",
        'quote " and \\ back',
        "é ü 日本 🙂",
        "\x00\n\t",
    ]
    for text in texts:
        assert converter.to_payloads([text]) == sdk.to_payloads([text])
    mixed = ["a", None, b"raw", {"k": "v"}, "b"]
    assert converter.to_payloads(mixed) == sdk.to_payloads(mixed)
    assert converter.from_payloads(converter.to_payloads(texts), [str] * len(texts)) == texts


def test_copies_of_the_data_converter_share_one_set_of_payload_converters() -> None:
    """The SDK copies the data converter for every activity task and every stored payload;
    each copy's payload converter reuses the same stateless converters and converts alike,
    and one given its converters (the SDK's with_context path) uses those."""
    from temporalio.converter import (
        ActivitySerializationContext,
        JSONPlainPayloadConverter,
        StorageDriverStoreContext,
        StorageDriverWorkflowInfo,
    )

    from pee.activities.types import AgentResult
    from pee.runtime.codec import PlanPayloadConverter, data_converter

    converter = data_converter(storage=None)
    context = ActivitySerializationContext(
        namespace="default",
        workflow_id="w",
        workflow_type="PlanWorkflow",
        activity_type="run_agent",
        activity_id="a",
        activity_task_queue="q",
        is_local=False,
    )
    store = StorageDriverStoreContext(target=StorageDriverWorkflowInfo(id="w", namespace="default"))
    copy = data_converter()._with_contexts(context, store)
    result = AgentResult(agent_id="a", outputs={"out": {"x": 1}}, elapsed_s=0.5)
    assert converter.payload_converter.to_payloads([result]) == copy.payload_converter.to_payloads(
        [result]
    )
    first, second = PlanPayloadConverter(), PlanPayloadConverter()
    assert first.converters is second.converters
    assert not first._any_converter_takes_context
    (payload,) = first.to_payloads([result])
    assert [result] == copy.payload_converter.from_payloads([payload], [AgentResult])
    plain = JSONPlainPayloadConverter()
    given = PlanPayloadConverter(plain)
    assert list(given.converters.values()) == [plain]
    assert given.converters is not first.converters
