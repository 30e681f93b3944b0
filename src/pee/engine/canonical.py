"""The canonical JSON of a value and its sha256: the one definition.

Context version hashes, agent output cache keys, snapshot keys (`<group>#<digest>`), template
render cache keys, simulated outputs' and role documents' digests and artifact addresses are all
these bytes. Caches and artifact stores outlive a release, so the bytes must never change:
tests/test_canonical.py pins the digests of a table of values.
"""

from __future__ import annotations

import hashlib
import json
import threading
from typing import Any


def _encoder(strict: bool) -> json.JSONEncoder:
    return json.JSONEncoder(
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        default=None if strict else str,
    )


# what json.dumps builds on every call with these options, built once: the encoder keeps no
# state between calls, and its construction was most of hashing a short value (every context
# version of every agent's output: bench/overhead.py)
_LENIENT = _encoder(strict=False)
_STRICT = _encoder(strict=True)


# The C encoder those encoders build inside every `encode` (with a fresh dict of the containers
# being written, its circular-reference check), built once per thread and kind instead: that
# construction was most of hashing an agent's output inside a workflow activation. The same
# C function writes the same text. Per thread, as the marks in its dict are its own while it
# writes; dropped after an error, which may leave marks behind.
_c_make_encoder = getattr(json.encoder, "c_make_encoder", None)
_made = threading.local()


def _one_shot(encoder: json.JSONEncoder) -> Any:
    assert _c_make_encoder is not None
    return _c_make_encoder(
        {},
        encoder.default,
        json.encoder.encode_basestring,
        None,
        encoder.key_separator,
        encoder.item_separator,
        encoder.sort_keys,
        encoder.skipkeys,
        encoder.allow_nan,
    )


def canonical_json(value: Any, *, strict: bool = False) -> str:
    """Sorted keys and no spaces (equal content, equal text, whatever the key order), non-ASCII
    written as itself (UTF-8 once encoded). ``strict``: a value JSON cannot hold (a set, a date,
    bytes) raises TypeError, as the artifact store wants (it must round-trip what it stores);
    otherwise its str() stands in, which is enough to hash it."""
    encoder = _STRICT if strict else _LENIENT
    if _c_make_encoder is None:
        return encoder.encode(value)
    name = "strict" if strict else "lenient"
    write = getattr(_made, name, None)
    if write is None:
        write = _one_shot(encoder)
        setattr(_made, name, write)
    try:
        return "".join(write(value, 0))
    except BaseException:
        setattr(_made, name, None)
        raise


def canonical_bytes(value: Any, *, strict: bool = False) -> bytes:
    """The canonical JSON as UTF-8: what is hashed, measured and stored."""
    return canonical_json(value, strict=strict).encode()


def digest(value: Any, *, strict: bool = False) -> str:
    """Hex sha256 of the canonical JSON."""
    return hashlib.sha256(canonical_bytes(value, strict=strict)).hexdigest()
