"""Scale (issue 17, item 1): a 2,000-agent plan (bench/planner.py's layered random DAG, batch
mode with the run ledger, as `run` chooses for it) completes healthy: every agent succeeds, no
group falls back, the worker's deadlock detector never fires, every history stays under 10,240
events and every stored payload under the SDK's 512 KiB warning size (the largest history
event, an upper bound, is under it); the result is a summary that holds no agent row (they are
in the run store, and the report assembled from both has all 2,000)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from temporalio.client import WorkflowHandle

from bench.scale import (
    HISTORY_BOUND,
    PAYLOAD_WARN_BYTES,
    DeadlockWatch,
    HistoryCount,
    count_events,
    fallbacks,
    layered_plan,
)
from pee.runtime.report_assembly import assemble
from pee.stores.runs import RunStore
from pee.workflows.types import choose_batch, choose_ledger
from tests.helpers import TemporalHarness

AGENTS = 2000


def test_two_thousand_agents_complete_without_fallback_deadlock_or_large_history(
    temporal: TemporalHarness, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PEE_CACHE_URL", raising=False)
    monkeypatch.setenv("PEE_RUNS_DB_PATH", str(tmp_path / "runs.db"))
    plan = layered_plan(AGENTS)
    spec = choose_batch(len(plan.agents))
    ledger = choose_ledger(spec)
    assert spec is not None and ledger is not None

    async def body(handle: WorkflowHandle[Any, Any]) -> tuple[dict[str, Any], HistoryCount]:
        report = await handle.result()
        return report, await count_events(temporal.client, handle.id)

    with DeadlockWatch() as watch:
        summary, counted = temporal.with_plan(
            plan, body, time_scale=0.005, batch=spec, ledger=ledger
        )
    assert {} == summary["agents"] and summary["store"]["error"] is None
    report = assemble(summary, RunStore(), plan)
    assert "completed" == report["status"]
    statuses = [a["status"] for a in report["agents"].values()]
    assert AGENTS == len(statuses)
    assert statuses.count("succeeded") == AGENTS, {s: statuses.count(s) for s in set(statuses)}
    assert 0 == fallbacks(report)
    assert 0 == watch.count, f"{watch.count} workflow tasks hit the deadlock detector"
    assert counted.largest < HISTORY_BOUND
    assert counted.largest_event_bytes < PAYLOAD_WARN_BYTES
