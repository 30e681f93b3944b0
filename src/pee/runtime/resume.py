"""`run --resume-from`: read an earlier run's passed groups and context values into a ResumeFrom.

The report (pee.runtime.inspect.read_run: result, failure details or status query) says which groups
passed and which context snapshots the run stored after its barriers (`context_snapshots`). The
values come from the last stored snapshot of a passed group, read from the context snapshot cache
(src/pee/activities/snapshot_cache.py) on this host, when no group passed after it. When there is
none (a run from before snapshots, caching switched off, the snapshot evicted or cleared, or
stored on another host, or a group passed after it: a completed run leaves out its final one) the
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
from pee.workflows.plan_workflow import PlanWorkflow, rerun_groups
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


def reused_groups(plan: CompiledPlan, resume: ResumeFrom) -> list[str]:
    """The passed groups the resumed run reuses: those `--from-group` does not run again."""
    rerun = rerun_groups(plan.groups, resume.from_group)
    return [group_id for group_id in resume.passed_groups if group_id not in rerun]


def last_snapshot(report: dict[str, Any]) -> dict[str, Any] | None:
    """The last context snapshot the run stored after a barrier of a group that passed."""
    groups = report.get("groups") or {}
    stored = [
        entry
        for entry in _entries(report)
        if entry.get("stored")
        and (groups.get(entry.get("group")) or {}).get("status") in GROUP_PASSED
    ]
    return stored[-1] if stored else None


def passed_after(report: dict[str, Any], snapshot: dict[str, Any]) -> list[str]:
    """The groups that passed in the run after ``snapshot`` was taken (their writes are not in
    it): a completed run leaves its final snapshot out (pee.workflows.cache_levels), and a
    snapshot whose store failed leaves a gap. Groups resumed from an earlier run were in the
    context from the start."""
    entries = _entries(report)
    # the entry itself, not the first equal one
    upto = next(i for i, entry in enumerate(entries) if entry is snapshot)
    covered = {entry.get("group") for entry in entries[: upto + 1]}
    return [
        group_id
        for group_id, row in (report.get("groups") or {}).items()
        if row.get("status") in GROUP_PASSED and not row.get("resumed") and group_id not in covered
    ]


def _entries(report: dict[str, Any]) -> list[dict[str, Any]]:
    return [entry for entry in report.get("context_snapshots") or [] if isinstance(entry, dict)]


def snapshot_context(
    report: dict[str, Any], cache: SnapshotCache | None = None
) -> tuple[str | None, Any, str]:
    """(snapshot key, its context values, "") from the snapshot cache, or (None, MISSING, why
    not) when there is no snapshot to reuse."""
    entry = last_snapshot(report)
    if entry is None:
        return None, MISSING, "the run stored no context snapshot of a passed group"
    later = passed_after(report, entry)
    if later:
        final = {e.get("group") for e in _entries(report) if e.get("final")}
        why = (
            "a completed run does not store its final context"
            if final.issuperset(later)
            else "their snapshots were not stored"
        )
        return (
            None,
            MISSING,
            f"group(s) {', '.join(later)} passed after the last stored snapshot ({why})",
        )
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


def finished_items(
    plan: CompiledPlan, report: dict[str, Any], context: dict[str, Any]
) -> dict[str, dict[str, Any]]:
    """The items of fan-outs that did not pass but that succeeded, with their item's hash and
    their outputs (from the run's final context, where a fan-out that did not pass leaves them
    as `member[i].output`): an agent-level instance as `agent[i]` -> {output name: value}, an
    item of a group-level fan-out as `group[i]` -> {"member.output": value}."""
    from pee.engine.rules.merge import value_hash

    groups = report.get("groups") or {}
    rows = report.get("agents") or {}
    found: dict[str, dict[str, Any]] = {}
    for group in plan.groups:
        fan_out = group.fan_out
        if fan_out is None:
            continue
        if (groups.get(group.id) or {}).get("status") in GROUP_PASSED:
            continue
        items = context.get(fan_out.source)
        if not isinstance(items, list):
            continue
        members = [plan.agent(agent_id) for agent_id in fan_out.members or group.agents]
        agent_level = fan_out.level == "agent"
        for index, item in enumerate(items):
            keys = {
                (name if agent_level else f"{agent.id}.{name}"): f"{agent.id}[{index}].{name}"
                for agent in members
                for name in agent.outputs
            }
            succeeded = all(
                (rows.get(f"{agent.id}[{index}]") or {}).get("status") == "succeeded"
                for agent in members
            )
            if succeeded and all(key in context for key in keys.values()):
                owner = members[0].id if agent_level else group.id
                found[f"{owner}[{index}]"] = {
                    "item_hash": value_hash(item),
                    "outputs": {name: context[key] for name, key in keys.items()},
                }
    return found


def unfinished_fan_outs(report: dict[str, Any]) -> bool:
    """A fan-out that did not pass but has instances that succeeded: its values are in the
    run's final context only (no snapshot holds them)."""
    for group in (report.get("groups") or {}).values():
        row = group.get("fan_out") or {}
        if row.get("succeeded") and group.get("status") not in GROUP_PASSED:
            return True
    return False


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
    if key is not None and not unfinished_fan_outs(view.report):
        if notes is not None:
            notes.append(f"context from snapshot {key}")
        resume = resume_input(
            plan, workflow_id, view.report, dict(values), from_group, description.run_id
        )
        resume.snapshot_key = key
        return resume
    if key is not None:
        why_not = "a fan-out that did not pass has finished items, which no snapshot holds"
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
    resume = resume_input(
        plan, workflow_id, view.report, dict(context or {}), from_group, description.run_id
    )
    resume.finished_items = finished_items(plan, view.report, dict(context or {}))
    if resume.finished_items and notes is not None:
        notes.append(f"{len(resume.finished_items)} finished fan-out item(s) reused if unchanged")
    return resume
