"""Every agent's task and result as JSON payloads, made and read directly with orjson.

An agent's activity costs four conversions: its AgentTask written by the workflow and read by
the worker, its AgentResult written by the worker and read by the workflow. Through the SDK's
composite converter each one first asks four other converters, then the standard json module
walks the value calling back into Python for each dataclass: about 55 us to write a no-op
agent's task, against 11 us for the plain string a hand-written workflow sends
(bench/overhead.py). Here the sparse rows (pee.runtime.codec._sparse) are built directly and
orjson writes them; reading is orjson and the same builders CompiledPlanConverter uses.

The JSON holds the same values as the json module's (keys sorted, no spaces, non-ASCII text
and a float's exponent may be written differently; every reader gets the same values back).
Where orjson would write something else or cannot write it, the value takes the usual way:
anything not plain JSON data (a nested dataclass, a datetime, a str or dict subclass, an
integer past 64 bits, a key that is not a string) raises in orjson, and NaN and infinities,
which orjson writes as null where json writes NaN, are caught by counting: the rows' own None
fields are the only nulls allowed, so a `null` anywhere else (even inside a string) sends the
value the usual way too.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import orjson
from temporalio.api.common.v1 import Payload

from pee.activities.types import AgentResult, AgentTask
from pee.engine.compiled import CompiledAgent

JSON_PLAIN = b"json/plain"
# anything but plain JSON data raises, so it goes the usual way (module docstring)
_OPTIONS = (
    orjson.OPT_SORT_KEYS
    | orjson.OPT_PASSTHROUGH_DATACLASS
    | orjson.OPT_PASSTHROUGH_DATETIME
    | orjson.OPT_PASSTHROUGH_SUBCLASS
)
_NULL = b"null"
# the classes read and written here
KINDS = frozenset({AgentTask, AgentResult})
_RESULT_FIELDS = frozenset(spec.name for spec in dataclasses.fields(AgentResult))

# (value, its class) -> the value's fields without those at their defaults
Sparse = Callable[[Any, type], dict[str, Any]]
# a dataclass inside -> its row (the JSON encoder's `default`)
Nested = Callable[[Any], Any]
# (type hint, JSON value) -> the value built, or `unhandled`
Build = Callable[[type, Any], Any]


def encode(value: Any, sparse: Sparse, nested: Nested) -> Payload | None:
    """`value`'s json/plain payload, or None: the caller takes the usual way. `nested` gives
    a dataclass inside it (an agent's RetrySpec) as the encoder's `default` does."""
    kind = type(value)
    if kind is AgentTask:
        row = sparse(value, AgentTask)
        agent = row.get("agent")
        if type(agent) is not CompiledAgent:
            return None
        row["agent"] = agent_row = sparse(agent, CompiledAgent)
        nulls = _nones(row) + _nones(agent_row)
    elif kind is AgentResult:
        if value.__dict__.keys() != _RESULT_FIELDS:
            return None
        # without the fields at their defaults, as a task (issue 17 item 4: a no-op agent's
        # result 257 -> ~200 bytes in history); every reader fills them back
        row = sparse(value, AgentResult)
        nulls = _nones(row)
    else:
        return None
    # the nested rows' None fields are nulls too
    counted = [nulls]

    def inner(o: Any) -> dict[str, Any]:
        made = nested(o)
        if type(made) is not dict:
            raise TypeError(f"not a dataclass row: {type(o).__name__}")
        counted[0] += _nones(made)
        return made

    try:
        data = orjson.dumps(row, default=inner, option=_OPTIONS)
    except TypeError:
        return None
    nulls = counted[0]
    if data.count(_NULL) != nulls:
        # a NaN or infinity (written as null), or null inside a string: let json write it
        return None
    return json_plain(data)


# copied, not built: a Payload built with its metadata map costs three times as much
_JSON_PLAIN_PAYLOAD = Payload(metadata={"encoding": JSON_PLAIN})


def json_plain(data: bytes) -> Payload:
    """A json/plain payload of ``data`` (every agent's task, result and summary)."""
    payload = Payload()
    payload.CopyFrom(_JSON_PLAIN_PAYLOAD)
    payload.data = data
    return payload


def _nones(row: dict[str, Any]) -> int:
    return sum(1 for field in row.values() if field is None)


def decode(payload: Payload, hint: type, build: Build, unhandled: Any) -> Any:
    """The `hint` (AgentTask or AgentResult) in `payload`, or `unhandled`: the caller takes
    the usual way (another encoding, JSON orjson refuses such as NaN, a row that does not
    build)."""
    if payload.metadata.get("encoding") != JSON_PLAIN:
        return unhandled
    try:
        obj = orjson.loads(payload.data)
    except orjson.JSONDecodeError:
        return unhandled
    return build(hint, obj)
