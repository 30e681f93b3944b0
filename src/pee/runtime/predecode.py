"""Large run inputs decoded before the workflow task that reads them.

The SDK times a workflow activation with its 2 s deadlock detector, and a run's first
activation decodes the run input: for a 20,000-agent plan, ~10 MB of JSON read and ~33,000
agents and groups built, over half of that task's CPU. The payload codec (pee.runtime.codec's
Lz4Codec) runs earlier, on the worker's event loop, outside the timed activation: when it
inflates a JSON payload of at least PREPARE_BYTES that holds a run input, it builds the value
there and keeps it here, under a digest of the payload's bytes; the JSON converter, asked for
that type inside the activation, takes it instead of decoding the bytes again.

Each prepared value is handed out once (the workflow changes what it is given), only for the
exact bytes it was built from, and at most MAX_KEPT payloads' values are kept (a payload the
converter never asks for, e.g. a history read by a client, is dropped in time). A payload with
no prepared value is decoded as before: the value is the same either way.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import orjson
from temporalio.api.common.v1 import Payload

from pee.engine import gc_pause
from pee.engine.gc_pause import paused_gc

# smaller payloads decode within a few milliseconds where they are used
PREPARE_BYTES = 1 << 20
MAX_KEPT = 2
JSON_PLAIN = b"json/plain"

_lock = threading.Lock()
# digest of the JSON bytes -> values built from them, not yet taken
_ready: OrderedDict[bytes, list[Any]] = OrderedDict()


def _digest(data: bytes) -> bytes:
    return hashlib.blake2b(data, digest_size=16).digest()


def prepare(
    payload: Payload, wanted: Callable[[Any], bool], build: Callable[[Any, bool], Any]
) -> None:
    """Build ``payload``'s value now if it is a large JSON payload whose decoded JSON is
    ``wanted``; ``build`` turns the JSON into the value (anything it raises: left undone), told
    whether orjson read it (False: the standard module, see below)."""
    if payload.metadata.get("encoding") != JSON_PLAIN or len(payload.data) < PREPARE_BYTES:
        return
    with paused_gc():
        exact = True
        try:
            value = orjson.loads(payload.data)
        except orjson.JSONDecodeError:
            exact = False
            # NaN and Infinity (a continuation's carried pool or usage can hold them), which
            # orjson refuses: the standard module, as the JSON converter falls back to
            try:
                value = json.loads(payload.data)
            except ValueError:
                return
        if not wanted(value):
            return
        try:
            built = build(value, exact)
        except (TypeError, KeyError, ValueError):
            return
    key = _digest(payload.data)
    with _lock:
        _ready.setdefault(key, []).append(built)
        _ready.move_to_end(key)
        while len(_ready) > MAX_KEPT:
            _ready.popitem(last=False)


def take(data: bytes) -> Any | None:
    """The value prepared from exactly these bytes, once; None when there is none."""
    if len(data) < PREPARE_BYTES:
        return None
    # a large plan's run input: its objects live as long as the run (gc_pause.hold)
    gc_pause.hold_after_activation()
    key = _digest(data)
    with _lock:
        found = _ready.get(key)
        if not found:
            return None
        value = found.pop(0)
        if not found:
            del _ready[key]
        return value


def kept() -> int:
    """How many prepared values wait to be taken (for tests)."""
    with _lock:
        return sum(len(values) for values in _ready.values())
