"""The run store: a ledger run's per-agent detail, outside every workflow payload.

A plan of thousands of agents would carry every agent's report row, every event and every
ended group in its workflow state, its continue-as-new input and its result: payloads that
grow with the plan toward Temporal's 2 MiB limit, and a workflow task that spends seconds
encoding them. A ledger run (PlanRunInput.ledger, on with batch mode) writes those rows here
instead, a batch at a time, from a local activity (pee.activities.run_rows), and its result is
a summary that names its `run_key`. `pee report`/`status`/`run` put the full report back
together from both (pee.runtime.report_assembly).

One table in the "runs" database (PEE_CACHE_URL, else runs.db in the state directory):
``run_rows(run_key, kind, row_id, seq, compressed, body)``, keyed by (run_key, kind, row_id), so
a flush retried after a lost answer writes the same rows again, never twice. ``runs`` lists
each run key once with its workflow id and plan, for `pee cache stats` and `clear`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import lz4.frame

from pee.engine.report.run_rows import RowKind, RunRow
from pee.stores.sql import Database, open_database

# bodies above this many bytes of JSON are stored lz4-compressed
COMPRESS_ABOVE = 512

SCHEMA = (
    "create table if not exists runs (run_key text primary key, workflow_id text not null, "
    "plan text not null, created_at {float} not null, updated_at {float} not null)",
    "create table if not exists run_rows (run_key text not null, kind text not null, "
    "row_id text not null, seq {int} not null, compressed {int} not null, body {blob} not null, "
    "primary key (run_key, kind, row_id))",
    "create index if not exists run_rows_by_seq on run_rows (run_key, kind, seq)",
    "create index if not exists runs_by_workflow on runs (workflow_id)",
)


def pack(body: dict[str, Any]) -> tuple[bytes, int]:
    """(stored bytes, 1 if lz4-compressed): JSON in the row's own key order."""
    raw = json.dumps(body, separators=(",", ":"), default=str).encode()
    if len(raw) > COMPRESS_ABOVE:
        return lz4.frame.compress(raw), 1
    return raw, 0


def unpack(data: bytes, compressed: int) -> dict[str, Any]:
    found: dict[str, Any] = json.loads(lz4.frame.decompress(data) if compressed else data)
    return found


@dataclass(frozen=True)
class RunStoreStats:
    runs: int
    rows: int


class RunStore:
    def __init__(self, db: Database | None = None) -> None:
        self.db = db if db is not None else open_database("runs")

    @property
    def display(self) -> str:
        return self.db.display

    def _ready(self) -> None:
        self.db.ensure_schema("runs", SCHEMA)

    def put(self, run_key: str, rows: Sequence[RunRow], *, workflow_id: str, plan: str) -> int:
        """Write ``rows`` in one transaction; a row already there (same kind and id) is
        replaced, so a retried flush is harmless. Returns how many rows were written."""
        self._ready()
        now = time.time()
        with self.db.transaction() as cursor:
            cursor.execute(
                "insert into runs (run_key, workflow_id, plan, created_at, updated_at) "
                "values (?, ?, ?, ?, ?) on conflict (run_key) do update set "
                "updated_at = excluded.updated_at",
                (run_key, workflow_id, plan, now, now),
            )
            for row in rows:
                data, compressed = pack(row.body)
                cursor.execute(
                    "insert into run_rows (run_key, kind, row_id, seq, compressed, body) "
                    "values (?, ?, ?, ?, ?, ?) on conflict (run_key, kind, row_id) do update "
                    "set seq = excluded.seq, compressed = excluded.compressed, "
                    "body = excluded.body",
                    (run_key, str(row.kind), row.row_id, row.seq, compressed, data),
                )
        return len(rows)

    def rows(self, run_key: str, kind: RowKind, after_seq: int = -1) -> list[RunRow]:
        """The run's rows of one kind, in seq order (events: their event seq; agents and
        groups: the order they were frozen in)."""
        if not self.db.exists():
            return []
        self._ready()
        with self.db.transaction() as cursor:
            found = cursor.execute(
                "select row_id, seq, compressed, body from run_rows where run_key = ? and "
                "kind = ? and seq > ? order by seq, row_id",
                (run_key, str(kind), after_seq),
            ).fetchall()
        return [
            RunRow(kind, row_id, int(seq), unpack(bytes(body), compressed))
            for row_id, seq, compressed, body in found
        ]

    def run_keys(self, workflow_id: str) -> list[str]:
        if not self.db.exists():
            return []
        self._ready()
        with self.db.transaction() as cursor:
            found = cursor.execute(
                "select run_key from runs where workflow_id = ? order by created_at",
                (workflow_id,),
            ).fetchall()
        return [key for (key,) in found]

    def clear(
        self,
        *,
        run_key: str | None = None,
        plan: str | None = None,
        older_than_s: float | None = None,
    ) -> int:
        """Delete runs (all, one key, one plan's, or those not written for ``older_than_s``)
        with their rows; returns how many runs went."""
        if not self.db.exists():
            return 0
        self._ready()
        where: list[str] = []
        params: list[Any] = []
        if run_key is not None:
            where.append("run_key = ?")
            params.append(run_key)
        if plan is not None:
            where.append("plan = ?")
            params.append(plan)
        if older_than_s is not None:
            where.append("updated_at < ?")
            params.append(time.time() - older_than_s)
        clause = (" where " + " and ".join(where)) if where else ""
        with self.db.transaction(lock="pee-runs-clear") as cursor:
            keys = [
                k for (k,) in cursor.execute(f"select run_key from runs{clause}", params).fetchall()
            ]
            for key in keys:
                cursor.execute("delete from run_rows where run_key = ?", (key,))
                cursor.execute("delete from runs where run_key = ?", (key,))
        return len(keys)

    def stats(self) -> RunStoreStats:
        if not self.db.exists():
            return RunStoreStats(0, 0)
        self._ready()
        with self.db.transaction() as cursor:
            runs = cursor.execute("select count(*) from runs").fetchone()[0]
            rows = cursor.execute("select count(*) from run_rows").fetchone()[0]
        return RunStoreStats(int(runs), int(rows))


def row_bodies(rows: Iterable[RunRow]) -> dict[str, Any]:
    """row id -> body, later rows winning (a row written again replaces the earlier one)."""
    return {row.row_id: row.body for row in rows}
