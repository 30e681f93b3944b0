"""A run report written as JSON with orjson, when that gives what the standard module gives.

A run's report (its result, and the `status` answer of the ended run: pee.workflows.final_report)
is encoded inside a workflow activation, under the SDK's 2 s deadlock detector. Without the run
ledger it holds a row per agent: ~3 MB of JSON at 2,000 agents, which the SDK's encoder (the
standard module, keys sorted) wrote in 0.3 s of CPU; orjson writes it in a tenth of that.

orjson differs where the standard module would write something orjson cannot say the same way:
NaN and Infinity (orjson writes null; a report can hold an unlimited pool's capacity), dict keys
that are not strings, integers past 64 bits, and objects it does not know. `dumps` returns None
for a value holding any of those, after one walk over it, and the caller encodes it as before;
for everything else the bytes decode to the same value (the JSON text may differ: no \\u escapes,
orjson's shortest float forms).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import orjson

_OPTIONS = orjson.OPT_SORT_KEYS
# a class -> its field names, if its instances may be written as their fields
Records = Callable[[type], frozenset[str] | None]
# orjson writes these as the standard module does (enums and str subclasses by their value)
_SCALARS = (str, int, bool, type(None))


def dumps(value: dict[str, Any], records: Records | None = None) -> bytes | None:
    """``value`` as JSON bytes (keys sorted), or None when only the standard module may write it.
    ``records`` gives the field names of a class whose instances may be written as exactly their
    fields (None for any other): orjson writes a dataclass's fields itself, as the project's
    encoder writes such a record (pee.runtime.codec)."""
    if not _plain(value, records or _no_records):
        return None
    try:
        return orjson.dumps(value, option=_OPTIONS)
    except orjson.JSONEncodeError:
        return None


def dumps_fields(
    value: dict[str, Any], fallback: Callable[[Any], bytes], records: Records, depth: int = 2
) -> bytes:
    """``value``, an object, written field by field, keys sorted: each field with orjson where
    ``dumps`` may, else by ``fallback`` (the standard module); a field that is itself an object
    is written the same way, ``depth`` levels down. So one Infinity (a continuation's carried
    pool of unlimited capacity) sends only its own field to the standard module, not the
    carried run's thousands of rows."""
    parts = []
    for key in sorted(value):
        if not isinstance(key, str):
            return fallback(value)
        field = value[key]
        if type(field) is dict and depth > 1:
            data = dumps_fields(field, fallback, records, depth - 1)
        else:
            # wrapped: `dumps` walks and writes objects ({"":...} is 4 bytes before the field)
            wrapped = dumps({"": field}, records)
            data = fallback(field) if wrapped is None else wrapped[4:-1]
        parts.append(orjson.dumps(key) + b":" + data)
    return b"{" + b",".join(parts) + b"}"


def _plain(value: Any, records: Records) -> bool:
    """Only dicts with str keys, lists, tuples, str, ints within 64 bits, finite floats, bools
    and None (a walk with a stack: a report nests a few levels, with many rows). Exact type
    checks first: inside a workflow activation `isinstance` is the sandbox's, several times
    dearer."""
    stack = [value]
    isfinite = math.isfinite
    # records(kind) per class, not per object (a continuation's thousands of versions)
    known: dict[type, frozenset[str] | None] = {}
    # str and int subclasses met (str enums: every agent's status), checked once per class
    scalars: set[type] = set()
    while stack:
        item = stack.pop()
        kind = type(item)
        if kind is dict:
            for key, inner in item.items():
                if type(key) is not str and not isinstance(key, str):
                    return False
                inner_kind = type(inner)
                if inner_kind is str or inner is None or inner_kind is bool:
                    continue
                # a row's numbers checked here, not pushed and popped (most of a report's values)
                if inner_kind is float:
                    if not isfinite(inner):
                        return False
                    continue
                if inner_kind is int and -(1 << 63) <= inner < (1 << 64):
                    continue
                stack.append(inner)
        elif kind is str or item is None or kind is bool:
            continue
        elif kind is list or kind is tuple:
            stack.extend(item)
        elif kind is float:
            if not isfinite(item):
                return False
        elif kind is int:
            if not -(1 << 63) <= item < (1 << 64):
                return False
        elif kind in scalars:
            continue
        elif names := known[kind] if kind in known else known.setdefault(kind, records(kind)):
            attrs = getattr(item, "__dict__", None)
            if attrs is None or attrs.keys() != names:
                return False
            stack.append(attrs)
        elif isinstance(item, dict):
            stack.append(dict(item))
        elif isinstance(item, _SCALARS):
            # a str enum or another str or int subclass: orjson writes its value
            scalars.add(kind)
        else:
            return False
    return True


def _no_records(kind: type) -> frozenset[str] | None:
    return None
