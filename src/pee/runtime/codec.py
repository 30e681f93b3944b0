"""lz4 payload codec: payloads above a threshold travel and are stored lz4-compressed.

Every client and worker of the project uses ``data_converter()`` so workflow inputs (a compiled
plan), agent results and reports over ``PEE_COMPRESSION_THRESHOLD`` bytes (default 10 KB, the
seed's ``compression_threshold``) are kept in Temporal's history as ``binary/lz4`` payloads.
Smaller payloads pass unchanged, and decoding leaves payloads without the lz4 encoding alone,
so histories written before the codec (or by other clients) still read and replay. Payloads
still at least PEE_PAYLOAD_THRESHOLD bytes (256 KiB) after lz4 leave the history through
External Storage (pee.stores.payloads): the history keeps a reference, the blob store the bytes.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import typing
from collections.abc import Sequence
from typing import Any

import lz4.frame
import orjson
import temporalio.converter
from temporalio.api.common.v1 import Payload
from temporalio.converter import ExternalStorage

# imported here, not where it is used: the converter runs inside the workflow sandbox, which warns
# about (and re-imports) modules first imported after the workflow was loaded
from pee.activities.types import AgentResult, AgentTask, SnapshotStored, SnapshotTask
from pee.engine.compiled import CompiledAgent, CompiledGroup, CompiledPlan
from pee.engine.gc_pause import paused_gc
from pee.engine.report.run_rows import RowKind, RunRow, RunRowsBatch
from pee.engine.rules import plan_facts
from pee.runtime import agent_payloads, plan_json, predecode, report_json
from pee.stores.payloads import external_storage
from pee.workflows import final_report
from pee.workflows.agent_outcome import AgentOutcome
from pee.workflows.types import PlanRunInput

ENCODING = b"binary/lz4"
DEFAULT_THRESHOLD = 10 * 1024


def compression_threshold() -> int:
    return int(os.environ.get("PEE_COMPRESSION_THRESHOLD") or DEFAULT_THRESHOLD)


class Lz4Codec(temporalio.converter.PayloadCodec):
    def __init__(self, threshold: int | None = None) -> None:
        self.threshold = compression_threshold() if threshold is None else threshold

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self._encode(p) for p in payloads]

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        decoded = [self._decode(p) for p in payloads]
        for payload in decoded:
            # here, on the worker's event loop, not in the workflow task that will read it
            # (under the 2 s deadlock detector): see pee.runtime.predecode
            predecode.prepare(payload, _is_run_input, _prepared_run_input)
        return decoded

    def _encode(self, payload: Payload) -> Payload:
        if payload.metadata.get("encoding") == ENCODING:
            return payload
        raw = payload.SerializeToString()
        if len(raw) <= self.threshold:
            return payload
        return Payload(metadata={"encoding": ENCODING}, data=lz4.frame.compress(raw))

    @staticmethod
    def _decode(payload: Payload) -> Payload:
        if payload.metadata.get("encoding") != ENCODING:
            return payload
        inner = Payload()
        inner.ParseFromString(lz4.frame.decompress(payload.data))
        return inner


class DecodedTooLarge(ValueError):
    """Decoding would produce more bytes than allowed (an lz4 bomb, or a budget set too low)."""

    def __init__(self, limit: int) -> None:
        super().__init__(
            f"the decoded payloads would exceed {limit} bytes; refusing to "
            "decode them (a payload this project writes never gets near that)"
        )
        self.limit = limit


def decode_within(payloads: Sequence[Payload], limit: int) -> list[Payload]:
    """Like Lz4Codec.decode, but the decompressed bytes of all payloads together stay within
    `limit`: each frame is decompressed with a cap of the budget left, so a small input that
    would expand to gigabytes (lz4 reaches ~255:1) stops at `limit` + 1 bytes. Raises
    DecodedTooLarge, or RuntimeError/ValueError for a corrupt frame or inner payload."""
    left = limit
    decoded = []
    for payload in payloads:
        if payload.metadata.get("encoding") != ENCODING:
            decoded.append(payload)
            continue
        decompressor = lz4.frame.LZ4FrameDecompressor()
        raw = decompressor.decompress(payload.data, max_length=left + 1)
        if len(raw) > left:
            raise DecodedTooLarge(limit)
        if not decompressor.eof:
            raise ValueError("a binary/lz4 payload holds a truncated lz4 frame")
        left -= len(raw)
        inner = Payload()
        try:
            inner.ParseFromString(raw)
        except Exception as err:  # protobuf's DecodeError is not a stable import path
            raise ValueError(f"a binary/lz4 payload does not hold a Payload: {err}") from None
        decoded.append(inner)
    return decoded


class CompiledPlanConverter(temporalio.converter.JSONTypeConverter):
    """Decode a CompiledPlan, a CompiledAgent, an AgentTask or an AgentResult directly instead
    of the SDK's generic dataclass walk, which resolves every nested dataclass's type hints once per
    instance: for a 5,000-agent plan that alone took longer than the workflow task's 2 s
    deadlock limit. Missing fields (a plan's sparse agents and groups) take their defaults."""

    def to_typed_value(self, hint: type, value: Any) -> Any:
        if hint is CompiledPlan and isinstance(value, dict):
            try:
                return _plan(value)
            except (TypeError, KeyError):
                # hand-written JSON with unknown or missing fields: the SDK's walk says what
                pass
        if hint is AgentTask and isinstance(value, dict) and isinstance(value.get("agent"), dict):
            # its other fields are plain JSON values (dicts, lists, numbers, strings)
            names = _field_names(AgentTask)
            try:
                return AgentTask(
                    **{k: v for k, v in value.items() if k in names and k != "agent"},
                    agent=CompiledAgent.from_dict(value["agent"]),
                )
            except (TypeError, KeyError):
                pass
        if hint is AgentResult and isinstance(value, dict):
            # every agent's result: the generic walk resolves AgentResult's type hints per result
            # (its fields are plain JSON values)
            try:
                return AgentResult(**value)
            except TypeError:
                pass
        if hint is SnapshotStored and isinstance(value, dict):
            # a group's context snapshot result, read in the activation that ends the run (on
            # its critical path): the generic walk resolved its type hints, 0.4 ms, for 4 scalars
            try:
                return SnapshotStored(**value)
            except TypeError:
                pass
        if hint is SnapshotTask and isinstance(value, dict):
            # the same local activity's input, decoded in the worker before its store: also on
            # the run's critical path (its values are plain JSON, which the walk copied)
            try:
                task = SnapshotTask(**value)
            except TypeError:
                pass
            else:
                if task.ttl_s is not None:
                    task.ttl_s = float(task.ttl_s)  # as the SDK reads a float field
                return task
        if hint is AgentOutcome and isinstance(value, dict):
            # batch mode: every child's result and outcomes signal is a list of these; the
            # generic walk was the largest part of a 5,000-agent parent's activations
            try:
                result = value.get("result")
                return AgentOutcome(
                    **{**value, "result": None if result is None else AgentResult(**result)}
                )
            except TypeError:
                pass
        if hint is PlanRunInput and isinstance(value, dict) and isinstance(value.get("plan"), dict):
            # every run's first workflow task: the plan and the carried run, inside the 2 s limit
            try:
                return _plan_run_input(value)
            except (TypeError, KeyError):
                pass
        if hint is RunRowsBatch and isinstance(value, dict):
            # a ledger flush of 500 rows walked generically was a quarter second of the GIL
            try:
                return RunRowsBatch(
                    **{
                        **value,
                        "rows": [
                            RunRow(RowKind(r["kind"]), r["row_id"], r["seq"], r["body"])
                            for r in value["rows"]
                        ],
                    }
                )
            except (TypeError, KeyError, ValueError):
                pass
        if (
            getattr(hint, "__name__", "") == "AgentBatchInput"
            and getattr(hint, "__module__", "") == "pee.workflows.agent_batch"
            and isinstance(value, dict)
        ):
            # each child's input, 100 AgentCalls: the class is the child's sandbox's own, so it
            # is found by name and its AgentCall through its type hints (once per input)
            try:
                call = typing.get_args(typing.get_type_hints(hint)["calls"])[0]
                calls = [
                    call(**{**c, "task": self.to_typed_value(AgentTask, c["task"])})
                    for c in value["calls"]
                ]
                return hint(**{**value, "calls": calls})
            except (TypeError, KeyError, IndexError):
                pass
        if hint is CompiledAgent and isinstance(value, dict):
            # every AgentTask (and each child's 100 of them in batch mode) holds one: the
            # generic walk was ~40% of a 2,000-agent run's workflow-thread time
            try:
                return CompiledAgent.from_dict(value)
            except (TypeError, KeyError):
                pass
        return temporalio.converter.JSONTypeConverter.Unhandled


def _is_run_input(value: Any) -> bool:
    return (
        isinstance(value, dict)
        and isinstance(value.get("plan"), dict)
        and isinstance(value["plan"].get("agents"), list)
    )


def _plan(value: dict[str, Any]) -> CompiledPlan:
    plan = CompiledPlan.from_dict(value)
    # what the workflow would otherwise derive from every agent in its first task
    plan_facts.attach(plan, value.get(plan_facts.KEY))
    return plan


def _prepared_run_input(value: dict[str, Any], exact: bool) -> PlanRunInput:
    # the plan's JSON, written back before building may take from it, so a continuation's
    # input can reuse it (pee.runtime.plan_json)
    data = plan_json.plan_bytes(value["plan"], exact)
    built = _plan_run_input(value)
    plan_json.keep(built.plan, data)
    return built


def _plan_run_input(value: dict[str, Any]) -> PlanRunInput:
    fields = {**value, "plan": _plan(value["plan"])}
    for name, kind in _flat_dataclass_fields(PlanRunInput).items():
        given = value.get(name)
        if isinstance(given, dict):
            fields[name] = kind(**given)
    return PlanRunInput(**fields)


@functools.lru_cache(maxsize=4)
def _flat_dataclass_fields(cls: type) -> dict[str, type]:
    """``cls``'s fields typed ``SomeDataclass | None`` whose dataclass holds plain values only
    (ResumeFrom, BatchSpec, LedgerSpec, FanOutBatching, ...), built with ``kind(**dict)``. Read
    from the type hints, so a field added later is decoded too, not left a dict
    (tests/test_codec.py checks every such field of PlanRunInput)."""
    out: dict[str, type] = {}
    for name, hint in typing.get_type_hints(cls).items():
        kinds = [k for k in typing.get_args(hint) or (hint,) if dataclasses.is_dataclass(k)]
        if name == "plan" or len(kinds) != 1 or not isinstance(kinds[0], type):
            continue
        nested = typing.get_type_hints(kinds[0]).values()
        if not any(dataclasses.is_dataclass(k) for h in nested for k in (h, *typing.get_args(h))):
            out[name] = kinds[0]
    return out


# written without their fields at defaults (see _sparse)
SPARSE_KINDS = frozenset({CompiledAgent, CompiledGroup, AgentTask, AgentResult})


class ShallowDataclassEncoder(temporalio.converter.AdvancedJSONEncoder):
    """Encode a dataclass as its fields, leaving the nesting to the JSON encoder.

    The SDK's encoder turns a dataclass into ``dataclasses.asdict(obj)``, which deep-copies
    every value first: for a continue-as-new input that carries a 5,000-agent run (the plan and
    the run so far, src/pee/workflows/carry.py) the copy alone took the workflow task past the 2 s
    deadlock limit. The JSON is the same (nested dataclasses come back here one by one), except
    that a plan's agents and groups leave out their fields at defaults (`_sparse`)."""

    def default(self, o: Any) -> Any:
        kind: type = o.__class__
        if kind in SPARSE_KINDS:
            return _sparse(o, kind)
        if kind is CompiledPlan:
            # with what the workflow derives from the whole plan (pee.engine.rules.plan_facts),
            # worked out here, on the starter's side, once per plan
            row = {name: getattr(o, name) for name in _field_names(kind)}
            row[plan_facts.KEY] = plan_facts.facts(o).to_dict()
            return row
        fields = _dataclass_fields(kind)
        if fields is not None:
            attrs = getattr(o, "__dict__", None)
            if attrs is not None and attrs.keys() == fields:
                # exactly its fields (no cached index, no slots): the dict itself, not a copy
                # built by getattr per field, which was half of encoding a 10,000-agent plan
                # (a continue-as-new input, inside the workflow task)
                return attrs
            return {name: getattr(o, name) for name in _field_names(kind)}
        return super().default(o)


def _sparse(o: Any, kind: type) -> dict[str, Any]:
    """A plan's agent or group, or an agent's task, without the fields at their defaults: a
    20,000-agent plan input was 22 MB of JSON, 10 MB so, and decoding it (in the first workflow
    task, under the 2 s deadlock detector) a third faster; every agent's activity input is about
    half as large (bench/overhead.py). Every reader fills them back in: CompiledAgent.from_dict,
    CompiledPlan.from_dict and the SDK's walk take missing fields as their defaults.

    So these classes' defaults are part of the stored format: a payload written today and read
    by a later version gets that version's default for every field left out. Change a default
    of CompiledAgent, CompiledGroup, AgentTask or AgentResult only with a new field (or a
    decoder that knows the old default), never in place."""
    row = {}
    # one pass in field order, not a row of every field and then a pass over the defaults
    # (every agent's task and its agent, in the workflow thread)
    for name, default in _field_defaults(kind):
        value = getattr(o, name)
        # the same type too: an int where the default is a float stays written
        if default is _NO_DEFAULT or value != default or type(value) is not type(default):
            row[name] = value
    return row


class _NoDefault:
    """A required field's place in _field_defaults: no field's value is this."""


_NO_DEFAULT = _NoDefault()


@functools.lru_cache(maxsize=8)
def _field_defaults(cls: type) -> tuple[tuple[str, Any], ...]:
    """Each field of ``cls`` with its default (_NO_DEFAULT when it has none), in field order."""
    found = []
    for spec in dataclasses.fields(cls):
        if spec.default is not dataclasses.MISSING:
            found.append((spec.name, spec.default))
        elif spec.default_factory is not dataclasses.MISSING:
            found.append((spec.name, spec.default_factory()))
        else:
            found.append((spec.name, _NO_DEFAULT))
    return tuple(found)


def _record_fields(cls: type) -> frozenset[str] | None:
    """Field names of a dataclass the encoder writes as all its fields (not the sparse kinds
    nor a plan, which it writes otherwise)."""
    if cls in SPARSE_KINDS or cls is CompiledPlan:
        return None
    return _dataclass_fields(cls)


@functools.lru_cache(maxsize=1024)
def _dataclass_fields(cls: type) -> frozenset[str] | None:
    # None: not a dataclass (is_dataclass per encoded object was visible too)
    if not dataclasses.is_dataclass(cls):
        return None
    return frozenset(_field_names(cls))


@functools.lru_cache(maxsize=1024)
def _field_names(cls: type) -> tuple[str, ...]:
    # dataclasses.fields() builds its tuple on every call: once per encoded object, it was a
    # visible part of every agent's task encoding (bench/overhead.py). Bounded: the workflow
    # sandbox makes new classes of the modules it re-imports, once per workflow run.
    return tuple(f.name for f in dataclasses.fields(cls))


class FastJSONPayloadConverter(temporalio.converter.JSONPlainPayloadConverter):
    """The SDK's JSON converter, reading with orjson. Workflow inputs are decoded inside the
    first workflow task, under the 2 s deadlock detector: a 10,000-agent plan is ~11 MB of
    JSON, which the standard json module took 0.5-1 s to read (orjson: about half). What
    orjson refuses (NaN and Infinity, which json.dumps writes, integers past 64 bits) is read by
    the standard module as before, so every payload decodes to the same values. Encoding is
    untouched."""

    def to_payload(self, value: Any) -> Payload | None:
        if type(value) is final_report.FinalReport:
            # a run's result, and the `status` answer of the ended run: encoded once
            return final_report.payload(value, self._report_payload)
        # a continue-as-new input is encoded inside the workflow task: no collector walks
        # while its temporary dicts and strings pile up
        with paused_gc():
            if type(value) is PlanRunInput:
                data = plan_json.kept_bytes(value.plan)
                if data is not None:
                    # the plan as it was read, outside the task: only the rest is encoded here
                    rest = {n: getattr(value, n) for n in _field_names(PlanRunInput) if n != "plan"}
                    # the carried state: orjson where it writes what the encoder would
                    encoded = report_json.dumps_fields(rest, self._standard, _record_fields)
                    return Payload(
                        metadata={"encoding": predecode.JSON_PLAIN},
                        data=plan_json.spliced(encoded, data),
                    )
            return super().to_payload(value)

    def _standard(self, value: Any) -> bytes:
        return json.dumps(value, cls=self._encoder, separators=(",", ":"), sort_keys=True).encode()

    def _report_payload(self, value: dict[str, Any]) -> Payload | None:
        data = report_json.dumps(value)
        if data is None:
            return super().to_payload(value)
        return Payload(metadata={"encoding": predecode.JSON_PLAIN}, data=data)

    def from_payload(self, payload: Payload, type_hint: type | None = None) -> Any:
        # a large payload allocates objects by the hundred thousand and frees none: the cyclic
        # collector would walk the growing heap over and over (half the time at 10,000 agents)
        if type_hint is PlanRunInput:
            # decoded already by the codec, outside the workflow task (pee.runtime.predecode)
            prepared = predecode.take(payload.data)
            if prepared is not None:
                return prepared
        with paused_gc():
            try:
                obj = orjson.loads(payload.data)
            except orjson.JSONDecodeError:
                return super().from_payload(payload, type_hint)
            if type_hint:
                obj = temporalio.converter.value_to_type(
                    type_hint, obj, self._custom_type_converters
                )
            return obj


class PlanPayloadConverter(temporalio.converter.CompositePayloadConverter):
    """The SDK's default payload converters, the JSON one with CompiledPlanConverter and
    ShallowDataclassEncoder."""

    def __init__(self, *converters: temporalio.converter.EncodingPayloadConverter) -> None:
        if converters:
            # the SDK's with_context path (a nullary instance given its converters after)
            super().__init__(*converters)
            return
        # the converters are stateless and built once: the SDK builds a new payload converter
        # with every copy of the data converter, and it copies one for every activity task and
        # for every payload a workflow task stores (External Storage's store context), so
        # building ours there was a visible part of each agent's worker CPU (bench/overhead.py)
        self.converters = _SHARED_CONVERTERS

    def to_payloads(self, values: Sequence[Any]) -> list[Payload]:
        # a plain str (every agent activity's Web UI summary) is made straight away, not after
        # the binary and protobuf converters were asked and with the JSON encoder class: the
        # summary cost a run as much as a hand-written activity's whole input
        # (bench/overhead.py). The same payload the JSON converter makes (tests/test_codec.py).
        # So are every agent's task and result, with orjson (pee.runtime.agent_payloads).
        direct = [_direct(value) for value in values]
        if all(payload is not None for payload in direct):
            return direct  # type: ignore[return-value]
        generic = super().to_payloads
        return [
            generic([value])[0] if payload is None else payload
            for value, payload in zip(values, direct, strict=True)
        ]

    def from_payloads(
        self, payloads: Sequence[Payload], type_hints: list[type] | None = None
    ) -> list[Any]:
        # an agent's task (in the worker) or result (in the workflow): read directly
        if type_hints and len(payloads) == 1 and type_hints[0] in agent_payloads.KINDS:
            value = agent_payloads.decode(payloads[0], type_hints[0], _BUILD, _UNHANDLED)
            if value is not _UNHANDLED:
                return [value]
        return super().from_payloads(payloads, type_hints)


def _shared_converters() -> dict[bytes, temporalio.converter.EncodingPayloadConverter]:
    """The SDK's default encoding converters, the JSON one ours (PlanPayloadConverter)."""
    json_plain = temporalio.converter.JSONPlainPayloadConverter
    defaults = temporalio.converter.DefaultPayloadConverter.default_encoding_payload_converters
    converters = [
        FastJSONPayloadConverter(
            encoder=ShallowDataclassEncoder,
            custom_type_converters=[CompiledPlanConverter()],
        )
        if isinstance(converter, json_plain)
        else converter
        for converter in defaults
    ]
    return {converter.encoding.encode(): converter for converter in converters}


_SHARED_CONVERTERS = _shared_converters()
_UNHANDLED = temporalio.converter.JSONTypeConverter.Unhandled
_BUILD = CompiledPlanConverter().to_typed_value
_NESTED = ShallowDataclassEncoder().default


def _direct(value: Any) -> Payload | None:
    kind = type(value)
    if kind is str:
        return _json_str(value)
    if kind in agent_payloads.KINDS:
        return agent_payloads.encode(value, _sparse, _NESTED)
    return None


def _json_str(value: str) -> Payload:
    # what json.dumps(value) returns for a str (ensure_ascii), without building a JSONEncoder
    # per call: every agent's summary (bench/overhead.py)
    return agent_payloads.json_plain(_ascii_json(value).encode())


_ascii_json = json.encoder.encode_basestring_ascii


# `storage` of data_converter: "env" builds the External Storage from the environment
STORAGE_FROM_ENV = "env"


def data_converter(
    threshold: int | None = None,
    storage: ExternalStorage | str | None = STORAGE_FROM_ENV,
) -> temporalio.converter.DataConverter:
    """The one data converter of every client, worker, replayer, codec server and test: the
    default JSON converter (plans decoded fast), the lz4 codec in front of the server, and
    External Storage (pee.stores.payloads) for payloads still large after lz4. ``storage``:
    "env" (from PEE_ARTIFACT_URL and friends), a given ExternalStorage, or None (none: a
    reference then fails to decode)."""
    external = external_storage() if storage == STORAGE_FROM_ENV else storage
    assert external is None or isinstance(external, ExternalStorage)
    return dataclasses.replace(
        temporalio.converter.default(),
        payload_converter_class=PlanPayloadConverter,
        payload_codec=Lz4Codec(threshold),
        external_storage=external,
    )
