"""The learned-durations store: measured agent durations per plan, agent and kind of run.

By default a small SQLite file on the machine that compiles plans (the starter's):
`PEE_DURATIONS_PATH` moves it; default `durations.db` in the state directory (PEE_STATE_DIR or
.temporal/). With PEE_CACHE_URL it is that shared database (table `samples`). A run's samples are
keyed by its run id, so recording the same run twice (after `run`, then `learn`) counts it once.
The newest KEEP_SAMPLES per plan, agent and mode are kept. pee.engine.compile.learning says what
the samples mean; this module only stores them.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TextIO

from pee.engine.compile.learning import KEEP_SAMPLES, Learned, samples_from_report, summarise
from pee.stores.sql import DatabaseError, connect
from pee.stores.urls import StoreConfigError, target

SCHEMA = (
    # id_column: PostgreSQL's insertion order (SQLite's is its implicit rowid)
    """
create table if not exists samples (
    {id_column}
    plan text not null,
    agent text not null,
    mode text not null,
    run_id text not null,
    workflow_id text not null,
    seconds {float} not null,
    recorded_at text not null,
    primary key (plan, agent, mode, run_id)
)""",
)
# what a caller catches when the store cannot be used: a warning, never a failed run
STORE_ERRORS = (DatabaseError, StoreConfigError, OSError)
# recording holds this while it trims a key's samples to the newest KEEP_SAMPLES
TRIM_LOCK = "pee-durations"


class DurationStore:
    def __init__(self, path: Path | str | None = None) -> None:
        self.database = connect(target(path, "durations"))

    @property
    def path(self) -> str:
        """Which store, for messages: the SQLite file or the masked PostgreSQL URL."""
        return self.database.display

    def _db(self, lock: str | None = None) -> Any:
        self.database.ensure_schema("durations", SCHEMA)
        return self.database.transaction(lock=lock)

    def record(
        self,
        plan: str,
        mode: str,
        workflow_id: str,
        run_id: str,
        samples: Sequence[tuple[str, float]],
    ) -> int:
        """Store one run's (agent, plan seconds) samples; the number newly stored."""
        now = datetime.now(timezone.utc).isoformat(timespec="seconds")
        row_id = self.database.row_id
        added = 0
        with self._db(lock=TRIM_LOCK) as db:
            for agent, seconds in samples:
                cursor = db.execute(
                    "insert into samples(plan, agent, mode, run_id, workflow_id, seconds, "
                    "recorded_at) values (?, ?, ?, ?, ?, ?, ?) on conflict do nothing",
                    (plan, agent, mode, run_id, workflow_id, float(seconds), now),
                )
                added += max(cursor.rowcount, 0)
                db.execute(
                    f"delete from samples where plan = ? and agent = ? and mode = ? and {row_id} "
                    f"not in (select {row_id} from samples where plan = ? and agent = ? and "
                    f"mode = ? order by recorded_at desc, {row_id} desc limit ?)",
                    (plan, agent, mode, plan, agent, mode, KEEP_SAMPLES),
                )
        return added

    def record_report(self, report: Mapping[str, Any], mode: str) -> int:
        """Store what a finished run's report measured
        (pee.engine.compile.learning.samples_from_report)."""
        return self.record(
            str(report.get("plan")),
            mode,
            str(report.get("workflow_id")),
            str(report.get("run_id")),
            samples_from_report(report),
        )

    def learned(self, plan: str, mode: str) -> dict[str, Learned]:
        """agent -> what its kept samples say, for the agents of `plan` run in `mode`."""
        # reading must not create an SQLite file
        if not self.database.exists():
            return {}
        by_agent: dict[str, list[float]] = {}
        with self._db() as db:
            rows = db.execute(
                "select agent, seconds from samples where plan = ? and mode = ? "
                f"order by agent, {self.database.row_id}",
                (plan, mode),
            ).fetchall()
        for agent, seconds in rows:
            by_agent.setdefault(agent, []).append(float(seconds))
        return {agent: summarise(values) for agent, values in by_agent.items()}

    def clear(self, plan: str | None = None) -> int:
        with self._db() as db:
            if plan is None:
                return db.execute("delete from samples").rowcount
            return db.execute("delete from samples where plan = ?", (plan,)).rowcount


def record_durations(
    report: Mapping[str, Any], mode: str, out: TextIO, store: DurationStore | None = None
) -> int | None:
    """Record a finished run for the next compile and say so: the samples added, or None when
    the store cannot be written (a warning, never a failed run)."""
    try:
        store = store or DurationStore()
        added = store.record_report(report, mode)
    except STORE_ERRORS as err:
        where = store.path if store is not None else "the durations store"
        print(f"warning: cannot record durations in {where}: {err}", file=sys.stderr)
        return None
    if added:
        print(
            f"Learned the durations of {added} agent(s) for the next run ({store.path}; "
            "--no-learn skips this)",
            file=out,
        )
    return added
