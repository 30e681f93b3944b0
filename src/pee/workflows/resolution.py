"""The `resolve_conflict` signal's and update's payload, checked by hand.

The handlers take whatever arrived (any JSON, any number of arguments) instead of letting the
SDK build a ResolveConflict: a payload it cannot build would drop a signal with only a
worker-log traceback, and fail an update with a raw, retryable TypeError. Here a bad payload
becomes a MalformedResolution naming the field and the expected shape, which the run records in
its report's `rejected_resolutions`.
"""

from __future__ import annotations

from typing import Any

from pee.workflows.types import ResolveConflict

EXPECTED_SHAPE = (
    'one JSON object {"conflict_id": "c1", "choice": "current" | "incoming" | '
    '"value", "value": any JSON (with choice "value"), "expected_version": integer '
    'or null, "by": string}; only conflict_id and choice are required'
)
FIELDS = ("conflict_id", "choice", "value", "expected_version", "by")


class MalformedResolution(ValueError):
    """A resolve_conflict payload of the wrong shape; the message names the field."""


def _kind(value: Any) -> str:
    names = {
        dict: "an object",
        list: "a list",
        str: "a string",
        bool: "a boolean",
        int: "an integer",
        float: "a number",
        type(None): "null",
    }
    return names.get(type(value), type(value).__name__)


def parse_resolution(payloads: tuple[Any, ...]) -> ResolveConflict:
    """The ResolveConflict in `payloads` (the handler's arguments, already JSON-decoded), or
    MalformedResolution saying what is wrong and what is expected."""
    if len(payloads) != 1:
        raise MalformedResolution(
            f"expected one argument, got {len(payloads)}; send {EXPECTED_SHAPE}"
        )
    (payload,) = payloads
    if isinstance(payload, ResolveConflict):
        # a worker-side caller (or a converter that already built it)
        payload = {name: getattr(payload, name) for name in FIELDS}
    if not isinstance(payload, dict):
        raise MalformedResolution(f"expected {EXPECTED_SHAPE}, got {_kind(payload)}")
    unknown = [key for key in payload if key not in FIELDS]
    if unknown:
        # a misspelt expected_version would otherwise skip the version check unnoticed
        raise MalformedResolution(
            f"unknown field(s) {unknown}: the fields are {list(FIELDS)}; send {EXPECTED_SHAPE}"
        )
    problems = []
    for name in ("conflict_id", "choice"):
        value = payload.get(name)
        if name not in payload:
            problems.append(f"'{name}' is missing")
        elif not isinstance(value, str) or not value:
            problems.append(f"'{name}' must be a non-empty string, got {_kind(value)}")
    version = payload.get("expected_version")
    if version is not None and (isinstance(version, bool) or not isinstance(version, int)):
        problems.append(f"'expected_version' must be an integer or null, got {_kind(version)}")
    by = payload.get("by", "user")
    if not isinstance(by, str):
        problems.append(f"'by' must be a string, got {_kind(by)}")
    if problems:
        raise MalformedResolution(f"{'; '.join(problems)}; send {EXPECTED_SHAPE}")
    return ResolveConflict(
        conflict_id=payload["conflict_id"],
        choice=payload["choice"],
        value=payload.get("value"),
        expected_version=version,
        by=by or "user",
    )


def rejected_row(payloads: tuple[Any, ...], at: str, reason: str) -> dict[str, Any]:
    """A `rejected_resolutions` entry for a payload that may not even be an object: what could
    be read of it ({at, conflict_id, choice, by, reason})."""
    payload = payloads[0] if len(payloads) == 1 else None
    fields = payload if isinstance(payload, dict) else {}

    def text(name: str) -> str | None:
        value = fields.get(name)
        return value if isinstance(value, str) else None

    return {
        "at": at,
        "conflict_id": text("conflict_id"),
        "choice": text("choice"),
        "by": text("by"),
        "reason": reason,
    }
