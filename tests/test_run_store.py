"""pee.stores.runs (the run ledger's table) on SQLite and PostgreSQL, and the report assembler
(pee.runtime.report_assembly) over its rows."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pee.engine.compiled import CompiledPlan
from pee.engine.report.run_rows import RowKind, RunRow
from pee.runtime.report_assembly import assemble
from pee.stores.runs import RunStore
from pee.stores.sql import connect
from pee.stores.urls import target
from tests.helpers import compiled_plan, group, sim


def store_at(database: Path | str) -> RunStore:
    return RunStore(connect(target(database, "runs")))


def agent_row(agent_id: str, seq: int, **body: Any) -> RunRow:
    return RunRow(RowKind.AGENT, agent_id, seq, {"status": "succeeded", **body})


def test_put_rows_and_clear(database: Path | str) -> None:
    """Rows come back by kind in seq order; writing a row again replaces it (a retried flush
    never duplicates); clear removes one run's rows and leaves the others'."""
    store = store_at(database)
    big = {"status": "succeeded", "error": "x" * 5000}  # compressed on the way in
    store.put(
        "wf/1",
        [
            agent_row("b", 2),
            RunRow(RowKind.AGENT, "a", 1, big),
            RunRow(RowKind.EVENT, "000000001", 1, {"seq": 1}),
        ],
        workflow_id="wf",
        plan="p",
    )
    store.put("wf/1", [agent_row("b", 2, error="again")], workflow_id="wf", plan="p")
    store.put("other/1", [agent_row("z", 1)], workflow_id="other", plan="p")
    rows = store.rows("wf/1", RowKind.AGENT)
    assert ["a", "b"] == [r.row_id for r in rows]
    assert big == rows[0].body
    assert "again" == rows[1].body["error"]
    assert [1] == [r.seq for r in store.rows("wf/1", RowKind.EVENT)]
    assert [] == store.rows("wf/1", RowKind.EVENT, after_seq=1)
    assert ["wf/1"] == store.run_keys("wf")
    assert (2, 4) == (store.stats().runs, store.stats().rows)
    assert 1 == store.clear(run_key="wf/1")
    assert [] == store.rows("wf/1", RowKind.AGENT)
    assert ["z"] == [r.row_id for r in store.rows("other/1", RowKind.AGENT)]
    assert 0 == store.clear(older_than_s=3600.0)
    assert 1 == store.clear(plan="p")


def test_a_store_nobody_wrote_reads_empty(tmp_path: Path) -> None:
    store = store_at(tmp_path / "never.db")
    assert [] == store.rows("wf/1", RowKind.AGENT)
    assert not (tmp_path / "never.db").exists()


def parallel_plan(n: int) -> CompiledPlan:
    ids = [f"a{i}" for i in range(n)]
    return compiled_plan([sim(a, "g", 1.0) for a in ids], [group("g", ids)], name="p")


class Rows:
    """Rows in memory, as a RowSource."""

    display = "memory"

    def __init__(self, rows: list[RunRow]) -> None:
        self._rows = rows

    def rows(self, run_key: str, kind: RowKind, after_seq: int = -1) -> list[RunRow]:
        return [r for r in self._rows if r.kind == kind and r.seq > after_seq]


def summary(**fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "workflow_id": "wf",
        "run_id": "r",
        "status": "completed",
        "makespan_s": 3.0,
        "agents": {},
        "groups": {},
        "events": [],
        "resources": {"peak_agents": 2, "queue_wait_s": {}},
        "store": {"run_key": "wf/r", "flushed": {"agent": 2, "group": 1, "event": 1}},
    }
    return {**base, **fields}


def test_assemble_puts_rows_back_in_plan_order_with_the_computed_fields() -> None:
    plan = parallel_plan(2)
    ids = [a.id for a in plan.agents]
    group = plan.groups[0].id
    rows = [
        agent_row(ids[1], 1, duration_s=2.0, blocked_s=0.0, queue_wait_s=0.5),
        RunRow(
            RowKind.GROUP,
            group,
            3,
            {
                "status": "succeeded",
                "cross_validation": None,
                "snapshot": "h1",
                "barrier": {"history": []},
            },
        ),
        RunRow(RowKind.EVENT, "000000001", 1, {"seq": 1, "event": "group_started", "id": group}),
    ]
    live = agent_row(ids[0], 2, duration_s=1.0, blocked_s=0.0, queue_wait_s=0.0)
    report = assemble(
        summary(
            store={"run_key": "wf/r", "flushed": {"agent": 1, "group": 1, "event": 1}},
            agents={ids[0]: live.body},
            events=[
                {"seq": 1, "event": "group_started", "id": group},
                {"seq": 2, "event": "x", "id": group},
            ],
        ),
        Rows(rows),
        plan,
    )
    assert ids == list(report["agents"])
    assert {group: "h1"} == report["snapshots"]
    assert "snapshot" not in report["groups"][group]
    assert [1, 2] == [e["seq"] for e in report["events"]]
    assert [ids[1]] == report["critical_path"]
    assert {ids[0]: 0.0, ids[1]: 0.5} == report["resources"]["queue_wait_s"]
    assert "store" not in report
    assert report["bottlenecks"] is not None


def test_assemble_says_when_the_store_here_lacks_the_runs_rows() -> None:
    plan = parallel_plan(2)
    report = assemble(summary(), Rows([]), plan)
    assert {"agent": 2, "group": 1, "event": 1} == report["store"]["missing"]
    assert "PEE_CACHE_URL" in report["store"]["note"]


def test_a_report_without_store_passes_through() -> None:
    plain = {"status": "completed", "agents": {"a": {}}}
    assert plain is assemble(plain, Rows([]), parallel_plan(1))


def test_cache_commands_count_and_clear_the_run_store(tmp_path: Path) -> None:
    """`cache stats` counts the run store's runs and rows; `cache clear --runs` clears them
    (only those of `--plan`, or not written for `--older-than-days`), not the caches."""
    import json
    import os

    from tests.test_output_cache import starter_cache

    path = tmp_path / "runs.db"
    env = {k: v for k, v in os.environ.items() if k != "PEE_CACHE_URL"}
    env.update(PEE_RUNS_DB_PATH=str(path), PEE_CACHE_PATH=str(tmp_path / "cache.db"))
    store = store_at(path)
    store.put("wf/1", [agent_row("a", 1), agent_row("b", 2)], workflow_id="wf", plan="p")
    store.put("other/1", [agent_row("z", 1)], workflow_id="other", plan="q")
    assert {"runs": 2, "rows": 3, "store": str(path)} == json.loads(
        starter_cache(env, "stats", "--json")
    )["run_store"]
    assert "removed 0 runs" in starter_cache(env, "clear", "--runs", "--older-than-days", "1")
    assert "removed 1 run from the run store" in starter_cache(
        env, "clear", "--runs", "--plan", "p"
    )
    assert ["z"] == [r.row_id for r in store.rows("other/1", RowKind.AGENT)]
    assert "runs 1  rows 1" in starter_cache(env, "stats")
