"""The full report of a ledger run, put back together from its summary and the run store.

A ledger run (src/pee/workflows/ledger.py) answers `status`, returns and fails with a summary:
the report's shape holding only the rows not yet in the run store (pee.stores.runs), and under
``store`` the run key. `assemble` returns exactly the report the run would have built inline:

- scalars, alerts, conflicts, rejected_*, cache, context_snapshots, batch: the summary;
- agents, groups: store rows, then the summary's rows on top (the run's memory wins);
- events: store rows, then the summary's, by seq (each seq once);
- snapshots, output_quality_scores: group rows (a passed group's row carries its hash);
- critical_path, parallel_efficiency, bottlenecks, each agent's queue_wait_s: computed here
  over every agent (pee.engine.dag, pee.engine.report.bottleneck), as build_report does.

A summary without ``store`` (a small run, or one recorded before the ledger) passes through. When
the store here lacks rows the run flushed (another host's SQLite file), the report keeps what it
has and ``store.missing`` says how many rows of each kind and where to point PEE_CACHE_URL.
Computing over every agent here, not in the workflow, is the point: it costs the workflow nothing.
"""

from __future__ import annotations

import asyncio
from typing import Any, Protocol

from temporalio.client import Client

from pee.engine.compiled import CompiledPlan
from pee.engine.dag import actual_critical_path, parallel_efficiency
from pee.engine.report.bottleneck import analyse as analyse_bottlenecks
from pee.engine.report.fan_out_path import expanded_graph, expanded_groups
from pee.engine.report.run_rows import RowKind, RunRow
from pee.engine.states import RunStatus

# build_report's key order (pee.workflows.state), so an assembled report reads the same
ORDER = (
    "workflow_id",
    "run_id",
    "plan",
    "status",
    "error",
    "time_scale",
    "started_at",
    "finished_at",
    "makespan_s",
    "resumed_from",
    "earlier_runs",
    "snapshots",
    "cache",
    "context_snapshots",
    "resumed_snapshot",
    "estimated_makespan_s",
    "sequential_s",
    "agents",
    "groups",
    "alerts",
    "critical_path",
    "parallel_efficiency",
    "events",
    "conflicts",
    "context_versions",
    "rejected_resolutions",
    "rejected_writes",
    "context_lock_wait_s",
    "resources",
    "output_quality_scores",
    "bottlenecks",
)


class RowSource(Protocol):
    @property
    def display(self) -> str: ...

    def rows(self, run_key: str, kind: RowKind, after_seq: int = -1) -> list[RunRow]: ...


def is_summary(report: dict[str, Any] | None) -> bool:
    return isinstance(report, dict) and isinstance(report.get("store"), dict)


def assemble(summary: dict[str, Any], store: RowSource, plan: CompiledPlan) -> dict[str, Any]:
    """The full report from a ledger run's summary, its store rows and its plan."""
    if not is_summary(summary):
        return summary
    meta = summary["store"]
    key = str(meta["run_key"])
    agents = {row.row_id: row.body for row in store.rows(key, RowKind.AGENT)}
    groups = {row.row_id: row.body for row in store.rows(key, RowKind.GROUP)}
    events = {int(row.body["seq"]): row.body for row in store.rows(key, RowKind.EVENT)}
    found = {RowKind.AGENT: len(agents), RowKind.GROUP: len(groups), RowKind.EVENT: len(events)}
    agents.update(summary.get("agents") or {})
    groups.update(summary.get("groups") or {})
    for event in summary.get("events") or []:
        events[int(event["seq"])] = event

    def in_plan_order(rows: dict[str, Any], ids: list[str]) -> dict[str, Any]:
        ordered = {i: rows[i] for i in ids if i in rows}
        # rows the plan as started does not name (none today) keep their store order
        ordered.update({i: row for i, row in rows.items() if i not in ordered})
        return ordered

    agents = in_plan_order(agents, [a.id for a in plan.agents])
    groups = in_plan_order(groups, [g.id for g in plan.groups])
    snapshots: dict[str, str] = {}
    clean_groups: dict[str, Any] = {}
    for group_id, row in groups.items():
        row = dict(row)
        snapshot = row.pop("snapshot", None)
        if snapshot is not None:
            snapshots[group_id] = snapshot
        clean_groups[group_id] = row
    end_s = float(summary["makespan_s"])
    durations = {}
    for agent in plan.agents:
        row = agents.get(agent.id) or {}
        durations[agent.id] = float(row.get("duration_s") or 0.0) + float(
            row.get("blocked_s") or 0.0
        )
    # the same graph build_report walks (over fan-out items, not their templates)
    lower_bound, path = actual_critical_path(
        expanded_graph(plan.agents), expanded_groups(plan.groups), durations
    )
    report: dict[str, Any] = {key: value for key, value in summary.items() if key != "store"}
    resources = dict(summary.get("resources") or {})
    resources["queue_wait_s"] = {
        agent_id: row.get("queue_wait_s", 0.0) for agent_id, row in agents.items()
    }
    report.update(
        snapshots=snapshots,
        agents=agents,
        groups=clean_groups,
        critical_path=path,
        parallel_efficiency=parallel_efficiency(lower_bound, end_s),
        events=[events[seq] for seq in sorted(events)],
        resources=resources,
        output_quality_scores={
            group_id: row["cross_validation"]["score"]
            for group_id, row in clean_groups.items()
            if row.get("cross_validation") is not None
        },
    )
    report["bottlenecks"] = (
        analyse_bottlenecks(plan, report) if report.get("status") != RunStatus.RUNNING else None
    )
    extra = [key for key in report if key not in ORDER]
    ordered = {key: report[key] for key in ORDER if key in report}
    ordered.update({key: report[key] for key in extra})
    missing = {
        str(kind): int(meta.get("flushed", {}).get(str(kind), 0)) - found[kind]
        for kind in found
        if int(meta.get("flushed", {}).get(str(kind), 0)) > found[kind]
    }
    if missing:
        ordered["store"] = {
            **meta,
            "missing": missing,
            "note": f"{sum(missing.values())} report rows are in the workers' run store, not in "
            f"{store.display}: run this where the workers run, or set PEE_CACHE_URL to their "
            "database",
        }
    return ordered


async def plan_of_run(client: Client, workflow_id: str, run_id: str | None) -> CompiledPlan:
    """The plan a run was started with: its history's first event (every run of a
    continue-as-new chain carries the plan in its input)."""
    from pee.workflows.types import PlanRunInput

    handle = client.get_workflow_handle(workflow_id, run_id=run_id)
    async for event in handle.fetch_history_events(page_size=1):
        payloads = event.workflow_execution_started_event_attributes.input.payloads
        (start,) = await client.data_converter.decode(payloads, [PlanRunInput])
        return start.plan
    raise LookupError(f"workflow {workflow_id} has no history")


async def assemble_report(
    client: Client,
    summary: dict[str, Any] | None,
    *,
    plan: CompiledPlan | None = None,
    store: RowSource | None = None,
) -> dict[str, Any] | None:
    """`assemble` for a report read from a run (result, failure details or status): a
    summary gets its rows from the run store, anything else passes through."""
    if summary is None or not is_summary(summary):
        return summary
    if plan is None:
        plan = await plan_of_run(client, str(summary["workflow_id"]), str(summary["run_id"]))
    source: RowSource
    if store is None:
        from pee.stores.runs import RunStore

        source = RunStore()
    else:
        source = store
    return await asyncio.to_thread(assemble, summary, source, plan)
