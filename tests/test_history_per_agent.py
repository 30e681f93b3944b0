"""History per agent (issue 17, item 3): a plain run's agents report liveness by heartbeats only
(read by one describe at a reached deadline), so an agent costs its activity's three events and
the workflow task its result wakes, not a stream of `agent_progress` signals."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from temporalio.client import WorkflowHandle

from pee.engine.compile.graph import compile_plan
from pee.engine.compile.load import load_plan
from pee.runtime.inspect import read_run
from pee.workflows.plan_workflow import PlanWorkflow
from tests.helpers import (
    TemporalHarness,
    async_eventually,
    compiled_plan,
    group,
    pee_upserts_per_task,
    sim,
)

SEED = Path(__file__).resolve().parent.parent / "plans" / "seed.yaml"

# the targets: at most 6 events per simple agent, about 60 for the six-agent seed run
PER_AGENT = 6
SEED_BOUND = 66


def kinds(history: Any) -> list[str]:
    return [event.WhichOneof("attributes") or "" for event in history.events]


def run_and_fetch(
    temporal: TemporalHarness, plan: Any, **fields: Any
) -> tuple[dict[str, Any], Any]:
    async def body(handle: WorkflowHandle[Any, Any]) -> tuple[dict[str, Any], Any]:
        return await handle.result(), await handle.fetch_history()

    result: tuple[dict[str, Any], Any] = temporal.with_plan(plan, body, **fields)
    return result


def run_and_count(
    temporal: TemporalHarness, plan: Any, **fields: Any
) -> tuple[dict[str, Any], list[str]]:
    report, history = run_and_fetch(temporal, plan, **fields)
    return report, kinds(history)


def test_the_seed_run_writes_about_sixty_events_and_no_progress_signal(
    temporal: TemporalHarness,
) -> None:
    """plans/seed.yaml (six role agents, at 1/500 of real time so each agent works ~0.5-1.2 s
    and heartbeats meanwhile), with the PeePlan/PeeStatus/PeeGroup upserts `pee run` asks for
    on a server that has them: no agent_progress signal reaches the run; it upserts those at
    most once per workflow task (engine-revision-3: a group that ended and the one it started
    made two upserts in one task before); and the rest of the history, what a server without
    the attributes gets, stays within about ten events per agent (170 with progress signals).
    How many workflow tasks the agents' results take depends on their timing, so the total
    moves by a few events between runs (61-67 with the upserts)."""
    plan = compile_plan(load_plan(SEED))
    report, history = run_and_fetch(
        temporal, plan, time_scale=0.002, simulate=True, search_attributes=True
    )
    found = kinds(history)
    assert "completed" == report["status"]
    assert all(a["status"] == "succeeded" for a in report["agents"].values())
    assert "workflow_execution_signaled_event_attributes" not in found
    per_task = pee_upserts_per_task(history)
    assert 1 == max(per_task), per_task
    rest = len(found) - sum(per_task)
    assert rest <= SEED_BOUND, f"{rest} events (and the upserts) for 6 agents: {Counter(found)}"


def wide(n: int) -> Any:
    return compiled_plan(
        [sim(f"a{i}", "g", 0.3 + 0.05 * i) for i in range(n)],
        [group("g", [f"a{i}" for i in range(n)], timeout_s=60.0)],
        name=f"wide-{n}",
    )


def test_each_more_agent_costs_at_most_six_events(temporal: TemporalHarness) -> None:
    """One parallel group with a deadline, 4 agents and then 12 (each ending at its own time,
    heartbeating while it works): the 8 more agents add at most 6 events each (activity
    scheduled, started, completed; the workflow task its result wakes), no timer restarted per
    wake-up and no signal."""
    _small_report, small = run_and_count(temporal, wide(4))
    report, large = run_and_count(temporal, wide(12))
    assert all(a["status"] == "succeeded" for a in report["agents"].values())
    assert "workflow_execution_signaled_event_attributes" not in large
    per_agent = (len(large) - len(small)) / 8
    assert per_agent <= PER_AGENT, f"{per_agent:.2f} events per added agent"


def test_status_reads_live_progress_from_heartbeats(temporal: TemporalHarness) -> None:
    """`pee status` (read_run) fills a running agent's progress from its last heartbeat, with
    the activity's state as the server describes it: the run's query alone has no fraction,
    since no progress signal reaches the workflow any more."""
    plan = compiled_plan([sim("slow", "g", 6.0)], [group("g", ["slow"])], name="live-progress")

    async def body(handle: WorkflowHandle[Any, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        async def seen() -> tuple[dict[str, Any], dict[str, Any]] | None:
            view = await read_run(temporal.client, handle.id)
            row = (view.report or {}).get("agents", {}).get("slow", {})
            if row.get("progress") and row.get("activity_state") == "started":
                return row, await handle.query(PlanWorkflow.status)
            return None

        found = await async_eventually(seen, what="slow's progress in status", timeout_s=60.0)
        await handle.result()
        return found

    row, queried = temporal.with_plan(plan, body, heartbeat_timeout_s=1.0)
    assert 0 < row["progress"] <= 1
    assert row["last_progress_at"] is not None
    assert queried["agents"]["slow"].get("progress") is None
