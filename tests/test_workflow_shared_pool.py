"""A shared resource pool (resource_manager.resource_pool.shared) on a real dev server: runs
lease from one ResourcePoolWorkflow, so concurrent runs never exceed it together (checked from
the recorded start and finish times of both reports); a terminated run's leases are reclaimed;
the pool continues-as-new with its state; every history involved replays."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import replace
from datetime import datetime
from typing import Any

from temporalio.client import Client, WorkflowFailureError, WorkflowHandle
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError
from temporalio.worker import Replayer

from pee.activities.pool_types import PoolCapacity, PoolInput, pool_workflow_id
from pee.engine.compiled import CompiledPlan
from pee.runtime.codec import data_converter
from pee.runtime.worker import build_worker
from pee.workflows.plan_workflow import PlanWorkflow
from pee.workflows.resource_pool import ResourcePoolWorkflow
from pee.workflows.types import PlanRunInput
from tests.helpers import NO_RETRY, TemporalHarness, async_eventually, compiled_plan, group, sim
from tests.test_workflow_resources import needing, pool, with_pool


def shared_plan(
    name: str,
    pool_name: str,
    agents: int,
    duration_s: float,
    *,
    cpu: float = 40,
    agent_limit: int = 10,
    check_s: float = 1.0,
) -> CompiledPlan:
    ids = [f"{name}{index}" for index in range(agents)]
    resources = pool(agents=agent_limit)
    resources["resource_pool"]["shared"] = {"name": pool_name, "holder_check_interval": check_s}
    return with_pool(
        compiled_plan(
            [needing(sim(a, "g", duration_s), cpu=cpu) for a in ids], [group("g", ids)], name=name
        ),
        resources,
    )


def spans(*reports: dict[str, Any]) -> list[tuple[datetime, datetime]]:
    return [
        (datetime.fromisoformat(a["started_at"]), datetime.fromisoformat(a["finished_at"]))
        for report in reports
        for a in report["agents"].values()
    ]


def most_at_once(intervals: list[tuple[datetime, datetime]]) -> int:
    """Most intervals open at one instant ([start, end): ending as another starts is no
    overlap)."""
    changes = sorted([(end, -1) for _, end in intervals] + [(start, 1) for start, _ in intervals])
    running = most = 0
    for _, delta in changes:
        running += delta
        most = max(most, running)
    return most


async def start(
    client: Client, plan: CompiledPlan, task_queue: str, **input_fields: Any
) -> WorkflowHandle[Any, Any]:
    return await client.start_workflow(
        PlanWorkflow.run,
        PlanRunInput(plan=plan, **input_fields),
        id=f"{plan.name}-{uuid.uuid4()}",
        task_queue=task_queue,
    )


async def replay(
    client: Client, workflow: type, workflow_id: str, run_id: str | None = None
) -> None:
    history = await client.get_workflow_handle(workflow_id, run_id=run_id).fetch_history()
    result = await Replayer(workflows=[workflow], data_converter=data_converter()).replay_workflow(
        history, raise_on_replay_failure=False
    )
    assert result.replay_failure is None, result.replay_failure


async def until(check: Any, timeout_s: float = 20.0) -> None:
    # RPCError: the pool workflow may not have been started yet
    await async_eventually(
        check, what="the pool's next step", timeout_s=timeout_s, ignore=(RPCError,)
    )


async def pool_state(client: Client, pool_name: str) -> dict[str, Any]:
    return await client.get_workflow_handle(pool_workflow_id(pool_name)).query("state")


def test_two_runs_never_exceed_the_shared_pool_together(temporal: TemporalHarness) -> None:
    """Two runs of four 40-unit agents on one 100-unit shared pool: each alone would run two at
    once, together they still never run more than two; both see queue waits."""
    pool_name = f"pair-{uuid.uuid4().hex[:8]}"

    async def go() -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
        client, task_queue = temporal.client, f"test-{uuid.uuid4()}"
        async with build_worker(client, task_queue):
            first = await start(client, shared_plan("a", pool_name, 4, 0.6), task_queue)
            second = await start(client, shared_plan("b", pool_name, 4, 0.6), task_queue)
            reports = await asyncio.gather(first.result(), second.result())
            state = await pool_state(client, pool_name)
            for handle in (first, second):
                await replay(client, PlanWorkflow, handle.id)
            await replay(client, ResourcePoolWorkflow, pool_workflow_id(pool_name))
            await client.get_workflow_handle(pool_workflow_id(pool_name)).terminate()
        return reports[0], reports[1], state

    first, second, state = temporal.run(go())
    assert (first["status"], second["status"]) == ("completed", "completed")
    assert 2 == most_at_once(spans(first, second))
    for report in (first, second):
        assert report["resources"]["shared_pool"] == pool_name
        assert report["resources"]["peak_cpu"] <= 80
    waits = {**first["resources"]["queue_wait_s"], **second["resources"]["queue_wait_s"]}
    # eight agents, two at a time: at least six waited for a lease, in either run
    assert sum(1 for wait in waits.values() if wait > 0) >= 6
    assert waits["a3"] == first["agents"]["a3"]["queue_wait_s"]
    assert state["granted_total"] == 8
    assert (state["running"], state["waiting"], state["holders"]) == ([], [], [])
    assert state["capacity"] == {"cpu": 100.0, "memory": 100.0, "max_agents": 10}


def test_a_terminated_runs_leases_come_back(temporal: TemporalHarness) -> None:
    """One agent slot: run A's long agent holds it, run B's agent queues; terminating A gets
    its lease reclaimed by the pool's holder check, and B runs to completion."""
    pool_name = f"reclaim-{uuid.uuid4().hex[:8]}"

    async def go() -> tuple[dict[str, Any], dict[str, Any]]:
        client, task_queue = temporal.client, f"test-{uuid.uuid4()}"
        async with build_worker(client, task_queue):
            holder = await start(
                client, shared_plan("hold", pool_name, 1, 60.0, agent_limit=1), task_queue
            )

            async def holding() -> bool:
                status = await holder.query(PlanWorkflow.status)
                return status["agents"]["hold0"]["status"] == "running"

            await until(holding)
            waiter = await start(
                client, shared_plan("wait", pool_name, 1, 0.2, agent_limit=1), task_queue
            )

            async def queued() -> bool:
                state = await pool_state(client, pool_name)
                return len(state["waiting"]) == 1

            await until(queued)
            await asyncio.sleep(1.5)
            # still waiting: the slot is held, nothing else would free it
            assert (await waiter.query(PlanWorkflow.status))["agents"]["wait0"][
                "status"
            ] == "queued"
            await holder.terminate("test: a run that never says goodbye")
            report = await asyncio.wait_for(waiter.result(), timeout=30)
            state = await pool_state(client, pool_name)
            await replay(client, PlanWorkflow, waiter.id)
            await replay(client, ResourcePoolWorkflow, pool_workflow_id(pool_name))
            await client.get_workflow_handle(pool_workflow_id(pool_name)).terminate()
        return report, state

    report, state = temporal.run(go())
    assert report["status"] == "completed"
    assert report["agents"]["wait0"]["status"] == "succeeded"
    assert report["resources"]["queue_wait_s"]["wait0"] >= 1.5
    assert state["reclaimed_total"] == 1
    assert (state["running"], state["waiting"], state["holders"]) == ([], [], [])


def test_the_pool_continues_as_new_with_its_state(temporal: TemporalHarness) -> None:
    """A pool started with a short history limit continues-as-new while two runs lease from
    it: the chain has several runs, the counters and capacity carry over, the bound holds and
    the first run's history (ending in continue-as-new) replays."""
    pool_name = f"chain-{uuid.uuid4().hex[:8]}"

    async def go() -> tuple[dict[str, Any], dict[str, Any], dict[str, Any], str, str]:
        client, task_queue = temporal.client, f"test-{uuid.uuid4()}"
        async with build_worker(client, task_queue):
            pool_handle = await client.start_workflow(
                ResourcePoolWorkflow.run,
                PoolInput(
                    pool_name,
                    PoolCapacity(100.0, 100.0, 10),
                    holder_check_interval_s=1.0,
                    continue_after_events=25,
                ),
                id=pool_workflow_id(pool_name),
                task_queue=task_queue,
                memo={"capacity": {"cpu": 100.0, "memory": 100.0, "max_agents": 10}},
            )
            first_run = pool_handle.result_run_id or ""
            first = await start(client, shared_plan("c", pool_name, 5, 0.4), task_queue)
            second = await start(client, shared_plan("d", pool_name, 5, 0.4), task_queue)
            reports = await asyncio.gather(first.result(), second.result())
            state = await pool_state(client, pool_name)
            latest = (
                await client.get_workflow_handle(pool_workflow_id(pool_name)).describe()
            ).run_id
            await replay(client, ResourcePoolWorkflow, pool_workflow_id(pool_name), first_run)
            await client.get_workflow_handle(pool_workflow_id(pool_name)).terminate()
        return reports[0], reports[1], state, first_run, latest

    first, second, state, first_run, latest = temporal.run(go())
    assert (first["status"], second["status"]) == ("completed", "completed")
    assert latest != first_run and state["generation"] >= 1
    assert state["granted_total"] == 10
    assert 2 == most_at_once(spans(first, second))
    assert (state["running"], state["waiting"], state["holders"]) == ([], [], [])


def test_leases_return_when_agents_fail_and_when_a_run_is_cancelled(
    temporal: TemporalHarness,
) -> None:
    """One agent slot and a holder check far away (60 s): a failing agent's lease comes back
    at once (the next agent of its run starts), and cancelling a run that holds the slot hands
    it to a waiting run straight away (the run says `done`), long before any holder check."""
    pool_name = f"cancel-{uuid.uuid4().hex[:8]}"

    async def go() -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
        client, task_queue = temporal.client, f"test-{uuid.uuid4()}"
        failing = shared_plan("f", pool_name, 2, 0.2, agent_limit=1, check_s=60.0)
        failing.agents[0].settings["fail_times"] = "always"
        failing.agents[0].retry = NO_RETRY
        long = shared_plan("long", pool_name, 1, 60.0, agent_limit=1, check_s=60.0)
        waiter_plan = shared_plan("next", pool_name, 1, 0.2, agent_limit=1, check_s=60.0)
        async with build_worker(client, task_queue):
            failed = await (await start(client, failing, task_queue)).result()
            holder = await start(client, long, task_queue)

            async def holding() -> bool:
                status = await holder.query(PlanWorkflow.status)
                return status["agents"]["long0"]["status"] == "running"

            await until(holding)
            waiter = await start(client, waiter_plan, task_queue)
            await until(lambda: _waiting(client, pool_name, 1))
            await holder.cancel()
            report = await asyncio.wait_for(waiter.result(), timeout=10)
            state = await pool_state(client, pool_name)
            await client.get_workflow_handle(pool_workflow_id(pool_name)).terminate()
        return failed, report, state

    failed, report, state = temporal.run(go())
    assert failed["agents"]["f0"]["status"] == "failed"
    assert failed["agents"]["f1"]["status"] == "succeeded"
    assert report["status"] == "completed"
    # handed over on cancellation, not by the holder check 60 s later
    assert report["resources"]["queue_wait_s"]["next0"] < 10
    assert state["reclaimed_total"] == 0
    assert (state["running"], state["waiting"], state["holders"]) == ([], [], [])


async def _waiting(client: Client, pool_name: str, count: int) -> bool:
    return len((await pool_state(client, pool_name))["waiting"]) == count


def test_the_pool_survives_a_worker_restart(temporal: TemporalHarness) -> None:
    """The worker hosting the pool and two runs stops while leases are held; a new worker on
    the same task queue picks everything up: both runs complete, never over the pool."""
    pool_name = f"restart-{uuid.uuid4().hex[:8]}"

    async def go() -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
        client, task_queue = temporal.client, f"test-{uuid.uuid4()}"
        async with build_worker(client, task_queue, graceful_shutdown_s=0.1):
            handles = [
                await start(
                    client,
                    shared_plan(name, pool_name, 3, 1.0),
                    task_queue,
                    heartbeat_timeout_s=1.0,
                )
                for name in ("r", "s")
            ]

            async def leased() -> bool:
                return len((await pool_state(client, pool_name))["running"]) == 2

            await until(leased)
        async with build_worker(client, task_queue):
            reports = await asyncio.gather(*(h.result() for h in handles))
            state = await pool_state(client, pool_name)
            await replay(client, ResourcePoolWorkflow, pool_workflow_id(pool_name))
            await client.get_workflow_handle(pool_workflow_id(pool_name)).terminate()
        return reports[0], reports[1], state

    first, second, state = temporal.run(go())
    assert (first["status"], second["status"]) == ("completed", "completed")
    assert most_at_once(spans(first, second)) <= 2
    assert state["granted_total"] == 6
    assert (state["running"], state["waiting"], state["holders"]) == ([], [], [])


def test_an_agent_larger_than_the_shared_pool_fails_the_run(temporal: TemporalHarness) -> None:
    """The pool's capacity is the one it was started with: a plan that allows itself 200 CPU
    units fails up front, naming its 150-unit agent, on a 100-unit shared pool."""
    pool_name = f"small-{uuid.uuid4().hex[:8]}"
    plan = shared_plan("big", pool_name, 1, 0.1, cpu=150)
    assert plan.resources.pool is not None
    plan.resources = replace(
        plan.resources, pool=replace(plan.resources.pool, total_cpu_units=200.0)
    )

    async def go() -> BaseException:
        client, task_queue = temporal.client, f"test-{uuid.uuid4()}"
        async with build_worker(client, task_queue):
            await client.start_workflow(
                ResourcePoolWorkflow.run,
                PoolInput(pool_name, PoolCapacity(100.0, 100.0, 10)),
                id=pool_workflow_id(pool_name),
                task_queue=task_queue,
                memo={"capacity": {"cpu": 100.0, "memory": 100.0, "max_agents": 10}},
            )
            handle = await start(client, plan, task_queue)
            try:
                await handle.result()
            except WorkflowFailureError as err:
                return err.cause or err
            finally:
                state = await pool_state(client, pool_name)
                await client.get_workflow_handle(pool_workflow_id(pool_name)).terminate()
                assert (state["running"], state["waiting"]) == ([], [])
        raise AssertionError("the run did not fail")

    cause = temporal.run(go())
    assert isinstance(cause, ApplicationError) and cause.type == "InvalidCompiledPlan"
    assert (
        "agent 'big0' needs cpu 150/memory 5 but the pool admits at most 100/100" in cause.message
    )
