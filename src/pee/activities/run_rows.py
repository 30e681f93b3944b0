"""The local activity that writes a ledger run's rows to the run store (pee.stores.runs).

A local activity because its input never reaches history (the marker holds only the result):
the rows, the very detail the ledger keeps out of history, cost the run one small marker per
flush. It never raises for the store's sake: the error comes back in RowsFlushed.error and the
workflow keeps the rows for its next flush, or puts them into its summary if the last flush
fails, so a broken store loses nothing.
"""

from __future__ import annotations

import asyncio

from temporalio import activity

from pee.engine.report.run_rows import RowsFlushed, RunRowsBatch
from pee.stores.runs import RunStore


def _put(batch: RunRowsBatch) -> int:
    return RunStore().put(batch.run_key, batch.rows, workflow_id=batch.workflow_id, plan=batch.plan)


@activity.defn(name="flush_run_rows")
async def flush_run_rows(batch: RunRowsBatch) -> RowsFlushed:
    try:
        count = await asyncio.to_thread(_put, batch)
    except Exception as err:  # the workflow keeps the rows and says so; nothing raises
        return RowsFlushed(0, f"{type(err).__name__}: {err}")
    return RowsFlushed(count)


RUN_ROW_ACTIVITIES = [flush_run_rows]
