"""The learned-durations store: measured agent durations per plan, agent and kind of run, in a
small SQLite file on the machine that compiles plans (the starter's).

`PEE_DURATIONS_PATH` moves it; default `durations.db` in the state directory (PEE_STATE_DIR or
.temporal/). A run's samples are keyed by its run id, so recording the same run twice (after
`run`, then `learn`) counts it once. The newest KEEP_SAMPLES per plan, agent and mode are kept.
pee.engine.compile.learning says what the samples mean; this module only stores them.
"""

from __future__ import annotations

import os
import sqlite3
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TextIO

from pee.engine.compile.learning import KEEP_SAMPLES, Learned, samples_from_report, summarise
from pee.paths import state_dir

SCHEMA = """
create table if not exists samples (
    plan text not null,
    agent text not null,
    mode text not null,
    run_id text not null,
    workflow_id text not null,
    seconds real not null,
    recorded_at text not null,
    primary key (plan, agent, mode, run_id)
);
"""


def default_path() -> Path:
    if os.environ.get("PEE_DURATIONS_PATH"):
        return Path(os.environ["PEE_DURATIONS_PATH"])
    return state_dir() / "durations.db"


class DurationStore:
    def __init__(self, path: Path | None = None) -> None:
        self.path = Path(path) if path is not None else default_path()

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        connection = sqlite3.connect(self.path, timeout=10)
        try:
            connection.executescript(SCHEMA)
            yield connection
            connection.commit()
        finally:
            connection.close()

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
        added = 0
        with self._connect() as db:
            for agent, seconds in samples:
                cursor = db.execute(
                    "insert or ignore into samples values (?, ?, ?, ?, ?, ?, ?)",
                    (plan, agent, mode, run_id, workflow_id, float(seconds), now),
                )
                added += cursor.rowcount
                db.execute(
                    "delete from samples where plan = ? and agent = ? and mode = ? and rowid "
                    "not in (select rowid from samples where plan = ? and agent = ? and mode = ?"
                    " order by recorded_at desc, rowid desc limit ?)",
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
        if not self.path.exists():
            return {}
        by_agent: dict[str, list[float]] = {}
        with self._connect() as db:
            rows = db.execute(
                "select agent, seconds from samples where plan = ? and mode = ? "
                "order by agent, rowid",
                (plan, mode),
            ).fetchall()
        for agent, seconds in rows:
            by_agent.setdefault(agent, []).append(float(seconds))
        return {agent: summarise(values) for agent, values in by_agent.items()}

    def clear(self, plan: str | None = None) -> int:
        with self._connect() as db:
            if plan is None:
                return db.execute("delete from samples").rowcount
            return db.execute("delete from samples where plan = ?", (plan,)).rowcount


def record_durations(
    report: Mapping[str, Any], mode: str, out: TextIO, store: DurationStore | None = None
) -> int | None:
    """Record a finished run for the next compile and say so: the samples added, or None when
    the store cannot be written (a warning, never a failed run)."""
    store = store or DurationStore()
    try:
        added = store.record_report(report, mode)
    except (sqlite3.Error, OSError) as err:
        print(f"warning: cannot record durations in {store.path}: {err}", file=sys.stderr)
        return None
    if added:
        print(
            f"Learned the durations of {added} agent(s) for the next run ({store.path}; "
            "--no-learn skips this)",
            file=out,
        )
    return added
