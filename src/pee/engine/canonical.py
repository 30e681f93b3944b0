"""The canonical JSON of a value and its sha256: the one definition.

Context version hashes, agent output cache keys, snapshot keys (`<group>#<digest>`), template
render cache keys, simulated outputs' and role documents' digests and artifact addresses are all
these bytes. Caches and artifact stores outlive a release, so the bytes must never change:
tests/test_canonical.py pins the digests of a table of values.
"""

from __future__ import annotations

import hashlib
import json
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


def canonical_json(value: Any, *, strict: bool = False) -> str:
    """Sorted keys and no spaces (equal content, equal text, whatever the key order), non-ASCII
    written as itself (UTF-8 once encoded). ``strict``: a value JSON cannot hold (a set, a date,
    bytes) raises TypeError, as the artifact store wants (it must round-trip what it stores);
    otherwise its str() stands in, which is enough to hash it."""
    return (_STRICT if strict else _LENIENT).encode(value)


def canonical_bytes(value: Any, *, strict: bool = False) -> bytes:
    """The canonical JSON as UTF-8: what is hashed, measured and stored."""
    return canonical_json(value, strict=strict).encode()


def digest(value: Any, *, strict: bool = False) -> str:
    """Hex sha256 of the canonical JSON."""
    return hashlib.sha256(canonical_bytes(value, strict=strict)).hexdigest()
