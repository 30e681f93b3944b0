"""Rows of a ledger run (pee.stores.runs): the per-agent detail a large run keeps outside its
workflow payloads, and the pure pieces of putting the report back together from them.

A row's body is exactly what the report holds at that place: an agent's row is its
`report["agents"][id]`, a group's its `report["groups"][id]` (plus ``snapshot``, the group's
output hash, and nothing else), an event one `report["events"]` entry. So assembling is a merge,
and a report assembled from rows equals the report the workflow would have built inline.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pee.engine.states import StrEnum


class RowKind(StrEnum):
    AGENT = "agent"
    GROUP = "group"
    EVENT = "event"


@dataclass
class RunRow:
    kind: RowKind
    # the agent or group id; an event's seq as 9 digits
    row_id: str
    # the order rows are read back in: an event's seq, else the order the run froze them
    seq: int
    body: dict[str, Any] = field(default_factory=dict)


@dataclass
class RunRowsBatch:
    """One flush: the local activity pee.activities.run_rows.flush_run_rows writes it in one
    transaction."""

    run_key: str
    workflow_id: str
    plan: str
    rows: list[RunRow] = field(default_factory=list)


@dataclass
class RowsFlushed:
    count: int = 0
    # the store's error; the rows stay with the workflow for the next flush (nothing is lost)
    error: str | None = None


def event_row_id(seq: int) -> str:
    return f"{seq:09d}"
