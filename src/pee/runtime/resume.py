"""`run --resume-from`: read an earlier run's passed groups and context values into a ResumeFrom.

The report (pee.runtime.inspect.read_run: result, failure details or status query) says which groups
passed and which context snapshots the run stored after its barriers (`context_snapshots`). The
values come from the last stored snapshot of a passed group, read from the context snapshot cache
(src/pee/activities/snapshot_cache.py) on this host. When there is none (a run from before
snapshots, caching switched off, the snapshot evicted or cleared, or stored on another host) the
`context` query on the closed run gives them instead (answered by a worker replaying its history:
one already polling its task queue, else a workflows-only one started here), and the message says
so. Large values are artifact references either way, so they stay references in the new run.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from temporalio.client import Client

from pee.activities.snapshot_cache import MISSING, SnapshotCache
from pee.engine.compiled import CompiledPlan
from pee.engine.states import GROUP_PASSED
from pee.runtime.inspect import has_pollers, read_run
from pee.runtime.worker import build_worker
from pee.stores.sql import DatabaseError
from pee.stores.urls import StoreConfigError
from pee.workflows.plan_workflow import PlanWorkflow
from pee.workflows.types import ResumeFrom

# barrier outcomes whose outputs a resumed run may reuse


class ResumeError(ValueError):
    pass


def resume_input(
    plan: CompiledPlan,
    workflow_id: str,
    report: dict[str, Any],
    context: dict[str, Any],
    from_group: str | None = None,
    run_id: str | None = None,
) -> ResumeFrom:
    """The ResumeFrom for `plan`: groups of the plan that passed in the earlier run, its context."""
    known = [group.id for group in plan.groups]
    if from_group is not None and from_group not in known:
        raise ResumeError(
            f"--from-group '{from_group}' is not a group of plan '{plan.name}'; groups: {known}"
        )
    groups = report.get("groups") or {}
    passed = [g for g in known if (groups.get(g) or {}).get("status") in GROUP_PASSED]
    return ResumeFrom(
        workflow_id=workflow_id,
        run_id=run_id or report.get("run_id"),
        from_group=from_group,
        context=dict(context),
        passed_groups=passed,
    )


def last_snapshot(report: dict[str, Any]) -> dict[str, Any] | None:
    """The last context snapshot the run stored after a barrier of a group that passed."""
    groups = report.get("groups") or {}
    stored = [
        entry
        for entry in report.get("context_snapshots") or []
        if isinstance(entry, dict)
        and entry.get("stored")
        and (groups.get(entry.get("group")) or {}).get("status") in GROUP_PASSED
    ]
    return stored[-1] if stored else None


def snapshot_context(
    report: dict[str, Any], cache: SnapshotCache | None = None
) -> tuple[str | None, Any, str]:
    """(snapshot key, its context values, "") from the snapshot cache, or (None, MISSING, why
    not) when there is no snapshot to reuse."""
    entry = last_snapshot(report)
    if entry is None:
        return None, MISSING, "the run stored no context snapshot of a passed group"
    key = str(entry["key"])
    try:
        cache = cache or SnapshotCache()
        values = cache.get(key)
    except (DatabaseError, StoreConfigError) as err:
        # the context is in the run's history too: a cache that cannot be read costs a query
        return None, MISSING, f"the context snapshot cache cannot be read: {err}"
    if values is MISSING:
        return (
            None,
            MISSING,
            (
                f"snapshot {key} is not in the context snapshot cache {cache.display} "
                "(evicted, cleared, or stored in another database: workers on several hosts "
                "share one with PEE_CACHE_URL)"
            ),
        )
    return key, values, ""


async def load_resume(
    client: Client,
    plan: CompiledPlan,
    workflow_id: str,
    from_group: str | None = None,
    notes: list[str] | None = None,
) -> ResumeFrom:
    """Read the earlier run (raises pee.runtime.inspect.RunNotFound) and build the ResumeFrom;
    ``notes`` gets a line saying where the context came from."""
    view = await read_run(client, workflow_id)
    if view.report is None:
        raise ResumeError(f"cannot read the report of run {workflow_id}: {view.note}")
    if view.report.get("status") == "running":
        raise ResumeError(f"run {workflow_id} is still running: resume from a finished run")
    description = view.description
    key, values, why_not = snapshot_context(view.report)
    if key is not None:
        if notes is not None:
            notes.append(f"context from snapshot {key}")
        resume = resume_input(
            plan, workflow_id, view.report, dict(values), from_group, description.run_id
        )
        resume.snapshot_key = key
        return resume
    if notes is not None:
        notes.append(
            f"no context snapshot to reuse ({why_not}): context read by query "
            "from the run's history"
        )
    handle = client.get_workflow_handle(workflow_id, run_id=description.run_id)
    query = handle.query(PlanWorkflow.context, rpc_timeout=timedelta(seconds=15))
    if await has_pollers(client, description.namespace, description.task_queue):
        # e.g. this command's own worker: a second one on its queue would be refused
        context = await query
    else:
        async with build_worker(client, description.task_queue, activities=False):
            context = await query
    return resume_input(
        plan, workflow_id, view.report, dict(context or {}), from_group, description.run_id
    )
