"""A finished run's report, built once and encoded once.

A `status` query of a closed run is answered by a worker that replays the whole history first:
the replay's last activation builds the report again (the workflow's result) and encodes it,
and the query's activation built and encoded it once more. For a run that keeps its whole
report (no run ledger) that is ~1.5 MB of JSON at 1,000 agents, and each activation runs under
the SDK's 2 s deadlock detector: on a loaded machine a query of a finished 1,000-agent run
tripped it (tests/test_large_plans.py).

So the run keeps the report it returns as a FinalReport: the `status` query answers with that
same object, and the payload converter (pee.runtime.codec) keeps the payload it made for it the
first time, so the query's answer costs neither a build nor an encode. The JSON is the same
either way. A FinalReport is never changed after it is returned (the run has ended).

Pure: no temporalio import (the codec imports it outside the workflow sandbox, the workflow
inside it, passed through, so both see one class).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, TypeVar

P = TypeVar("P")

_lock = threading.Lock()
_counts = {"encoded": 0, "reused": 0}


class FinalReport(dict[str, Any]):
    """The report a run returned; ``payload`` is its encoding once the converter made one."""

    __slots__ = ("payload",)

    def __init__(self, report: dict[str, Any]) -> None:
        super().__init__(report)
        self.payload: Any = None


def payload(report: FinalReport, encode: Callable[[FinalReport], P]) -> P:
    """``report``'s payload: made by ``encode`` the first time, the same one after that."""
    with _lock:
        kept = report.payload
        _counts["reused" if kept is not None else "encoded"] += 1
    if kept is not None:
        return kept
    made = encode(report)
    report.payload = made
    return made


def counts() -> dict[str, int]:
    """How many final reports were encoded, and how many answers reused a payload (tests)."""
    with _lock:
        return dict(_counts)
