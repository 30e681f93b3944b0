"""The run ledger end to end (src/pee/workflows/ledger.py, pee.stores.runs,
pee.runtime.report_assembly): a ledger run's result is a summary whose rows are in the run store,
and the report assembled from both is the report the same run builds inline; a store that
cannot be written loses nothing; a continued ledger run assembles into one report."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from temporalio.client import WorkflowHandle

from pee.engine.compiled import CompiledPlan
from pee.runtime.inspect import read_run
from pee.runtime.report_assembly import assemble
from pee.stores.runs import RunStore
from pee.workflows.types import BatchSpec, LedgerSpec
from tests.helpers import TemporalHarness
from tests.test_continue_as_new import AFTER_EVENTS, chain_plan

Handle = WorkflowHandle[Any, Any]
# a flush every few rows, so a small run flushes several times
LEDGER = LedgerSpec(flush_rows=3)


@pytest.fixture
def runs_db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The run store the in-process worker writes and the test reads."""
    path = tmp_path / "runs.db"
    monkeypatch.delenv("PEE_CACHE_URL", raising=False)
    monkeypatch.setenv("PEE_RUNS_DB_PATH", str(path))
    return path


def shape(report: dict[str, Any]) -> dict[str, Any]:
    """What must match between a ledger run and a plain one: keys, every agent's and group's
    status and fields, the barrier decisions, the events, snapshots."""
    return {
        "keys": sorted(report),
        "agents": {a: (row["status"], sorted(row)) for a, row in report["agents"].items()},
        "groups": {
            g: (row["status"], sorted(row), [d["decision"] for d in row["barrier"]["history"]])
            for g, row in report["groups"].items()
        },
        # parallel agents end in either order from run to run
        "events": sorted((e["event"], e["id"]) for e in report["events"]),
        "seqs": [e["seq"] for e in report["events"]],
        "snapshots": report["snapshots"],
        # which agents are on it depends on each run's actual durations: its length does not
        "critical_path": len(report["critical_path"]),
        "queue_waits": sorted(report["resources"]["queue_wait_s"]),
        "bottlenecks": sorted(report["bottlenecks"] or {}),
    }


def run(temporal: TemporalHarness, plan: CompiledPlan, **fields: Any) -> tuple[dict[str, Any], str]:
    async def body(handle: Handle) -> tuple[dict[str, Any], str]:
        return await handle.result(), handle.id

    result: tuple[dict[str, Any], str] = temporal.with_plan(plan, body, **fields)
    return result


def test_a_ledger_run_assembles_into_the_report_of_a_plain_run(
    temporal: TemporalHarness, runs_db: Path
) -> None:
    plan = chain_plan(4, name="ledger-shape")
    plain, _ = run(temporal, plan)
    summary, workflow_id = run(temporal, chain_plan(4, name="ledger-shape"), ledger=LEDGER)
    # the result holds no agent, group or event: all of them are in the store
    assert {} == summary["agents"] and {} == summary["groups"] and [] == summary["events"]
    assert summary["store"]["flushed"]["agent"] == len(plan.agents)
    assert summary["store"]["error"] is None
    report = assemble(summary, RunStore(), plan)
    assert shape(plain) == shape(report)
    # `pee report` reads the same (plan from the run's history, rows from the store)
    view = temporal.run(read_run(temporal.client, workflow_id))
    assert view.report is not None and shape(report) == shape(view.report)


def test_batch_mode_with_the_ledger(temporal: TemporalHarness, runs_db: Path) -> None:
    plan = chain_plan(3, name="ledger-batch")
    summary, _ = run(
        temporal, plan, ledger=LEDGER, batch=BatchSpec(chunk_size=2, window=2, flush_s=0.2)
    )
    report = assemble(summary, RunStore(), plan)
    assert ["succeeded"] * len(plan.agents) == [a["status"] for a in report["agents"].values()]
    assert len(plan.groups) == len(report["snapshots"])


def test_a_store_that_cannot_be_written_loses_nothing(
    temporal: TemporalHarness, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every flush fails (the database's folder is a file): the rows stay with the run and
    travel in its summary, and the summary says why."""
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    monkeypatch.delenv("PEE_CACHE_URL", raising=False)
    monkeypatch.setenv("PEE_RUNS_DB_PATH", str(blocker / "runs.db"))
    plan = chain_plan(3, name="ledger-broken")
    summary, _ = run(temporal, plan, ledger=LEDGER)
    assert "not-a-folder" in (summary["store"]["error"] or "")
    assert {} == summary["store"]["flushed"]
    assert sorted(a.id for a in plan.agents) == sorted(summary["agents"])
    report = assemble(summary, RunStore(), plan)
    assert "store" not in report
    assert ["succeeded"] * len(plan.agents) == [a["status"] for a in report["agents"].values()]
    assert [e["seq"] for e in report["events"]] == list(range(1, len(report["events"]) + 1))


def test_a_continued_ledger_run_assembles_into_one_report(
    temporal: TemporalHarness, runs_db: Path
) -> None:
    """The runs of a continue-as-new chain share one run key; the continuation carries only
    the status of groups already in the store, and the events count on."""
    plan = chain_plan(6, name="ledger-continued")
    summary, workflow_id = run(temporal, plan, ledger=LEDGER, continue_as_new_after=AFTER_EVENTS)
    assert summary["earlier_runs"], "the run was meant to continue as new"
    assert summary["store"]["run_key"].startswith(f"{workflow_id}/")
    report = assemble(summary, RunStore(), plan)
    assert ["succeeded"] * len(plan.agents) == [a["status"] for a in report["agents"].values()]
    assert [g.id for g in plan.groups] == list(report["snapshots"])
    seqs = [e["seq"] for e in report["events"]]
    assert seqs == list(range(1, len(seqs) + 1))
    assert "continued_as_new" in [e["event"] for e in report["events"]]
