"""A run input's plan kept as JSON, so a continuation's input need not encode it again.

A run continues as new with the plan it was given (src/pee/workflows/continuation.py), and that
input is encoded inside the drain's last workflow task, under the SDK's 2 s deadlock detector:
at 20,000 agents ~10 MB of JSON, mostly the plan, and the task tripped the detector. The codec
reads a large run input on the worker's event loop (pee.runtime.predecode), outside that window;
there the plan's decoded JSON is written back to bytes (orjson, a few tens of milliseconds) and
kept on the CompiledPlan built from it, with what the plan held then. Encoding a PlanRunInput
whose plan still holds exactly that (the same agents, groups and settings objects: a fan-out
expands a plan in place, which the check sees) writes those bytes as the plan and encodes only
the other fields (the carried state). Otherwise the plan is encoded as before. Either way the
payload decodes to the same value (tests/test_plan_json.py).
"""

from __future__ import annotations

import dataclasses
import json
import threading
from typing import Any

import orjson

from pee.engine.compiled import CompiledPlan
from pee.engine.rules import plan_facts

# where the bytes and the snapshot live on the plan (not a dataclass field: never encoded)
_KEY = "_plan_json"

_lock = threading.Lock()
_spliced = 0


@dataclasses.dataclass(frozen=True)
class _Kept:
    data: bytes
    # the plan's field values when the bytes were made, and its agents and groups one by one
    fields: tuple[Any, ...]
    agents: tuple[Any, ...]
    groups: tuple[Any, ...]


def plan_bytes(plan_json: dict[str, Any], exact: bool) -> bytes | None:
    """``plan_json`` (a run input's decoded "plan") as JSON bytes, or None when they would not
    decode to the same plan: it has no facts (the encoder would add them), or ``exact`` is
    False (it was read by the standard module: NaN or huge integers, which orjson changes or
    refuses, may be in it) and the standard module cannot write it."""
    if not isinstance(plan_json.get(plan_facts.KEY), dict):
        return None
    if exact:
        return orjson.dumps(plan_json)
    try:
        return json.dumps(plan_json, separators=(",", ":")).encode()
    except (TypeError, ValueError):
        return None


def keep(plan: CompiledPlan, data: bytes | None) -> None:
    """Keep ``data`` (plan_bytes of the JSON ``plan`` was just built from) on ``plan``."""
    if data is None:
        return
    plan.__dict__[_KEY] = _Kept(data, _fields(plan), tuple(plan.agents), tuple(plan.groups))


def kept_bytes(plan: CompiledPlan) -> bytes | None:
    """The kept bytes, if ``plan`` still holds what it held when they were made."""
    kept = plan.__dict__.get(_KEY)
    if not isinstance(kept, _Kept):
        return None
    if (
        len(kept.agents) != len(plan.agents)
        or len(kept.groups) != len(plan.groups)
        or not all(map(_same, kept.fields, _fields(plan)))
        or not all(map(_same, kept.agents, plan.agents))
        or not all(map(_same, kept.groups, plan.groups))
    ):
        return None
    return kept.data


def spliced(rest: bytes, data: bytes) -> bytes:
    """A JSON object of ``rest`` (the other fields, encoded) with ``data`` as its "plan"."""
    global _spliced
    with _lock:
        _spliced += 1
    inner = rest[1:-1]
    return b'{"plan":' + data + (b"," + inner if inner else b"") + b"}"


def spliced_count() -> int:
    """How many inputs were encoded with kept plan bytes (for tests)."""
    with _lock:
        return _spliced


def _fields(plan: CompiledPlan) -> tuple[Any, ...]:
    return tuple(plan.__dict__.get(f.name) for f in dataclasses.fields(plan))


def _same(a: Any, b: Any) -> bool:
    return a is b
