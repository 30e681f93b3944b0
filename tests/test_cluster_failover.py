"""Many workers, failover: three `worker.py` processes on one task queue serve several plans at
once while workers are SIGKILLed at seeded random moments and restarted, and, in the second
test, while the dev server itself is SIGKILLed mid-run and started again on its SQLite file.
Every run completes with every agent's output in the context exactly once: one version per
output key written by its agent, one agent_succeeded event per agent, nothing missing.

PEE_CHAOS_SEED=N reproduces another schedule (the seed is in every assertion message)."""

from __future__ import annotations

import asyncio
import os
import random
import subprocess
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from temporalio.api.enums.v1 import PendingActivityState
from temporalio.client import Client, WorkflowHandle

from pee.engine.compiled import CompiledPlan, RetrySpec
from pee.runtime.connection import connect
from pee.runtime.devserver import DevServer
from pee.workflows.plan_workflow import PlanWorkflow
from pee.workflows.types import PlanRunInput
from tests.helpers import compiled_plan, group, sim
from tests.test_worker_failover import start_worker

SEED = int(os.environ.get("PEE_CHAOS_SEED") or 20261201)
RUNS = 4
FAN = 6
WORKERS = 3
# a dead worker's agents are retried elsewhere after this long without a heartbeat
HEARTBEAT_TIMEOUT_S = 1.0
RUN_TIMEOUT_S = 60.0

# both tests together stay under 3 minutes
pytestmark = pytest.mark.timeout(85)


# every kill of the worker running an agent costs that agent an attempt: the budget is what a
# cluster expecting crashes configures, so the test is about losing nothing, not about luck
RETRY = RetrySpec(max_attempts=30, initial_interval_s=0.1, maximum_interval_s=1.0)


def chaos_plan(index: int) -> CompiledPlan:
    """fan (6 agents ‖) → join (reads all six) → tail (3 agents ‖, each reads join)."""
    fan = [sim(f"f{i}", "fan", 1.5 + 0.1 * i, retry=RETRY) for i in range(FAN)]
    join = sim("j", "join", 0.3, inputs=[f"f{i}.out" for i in range(FAN)], retry=RETRY)
    tail = [sim(f"t{i}", "tail", 1.0, inputs=["j.out"], retry=RETRY) for i in range(3)]
    return compiled_plan(
        [*fan, join, *tail],
        [
            group("fan", [a.id for a in fan]),
            group("join", ["j"], ["fan"]),
            group("tail", [a.id for a in tail], ["join"]),
        ],
        name=f"chaos-{index}",
    )


class Workers:
    """WORKERS `worker.py` processes on one queue; kill and restart them by slot."""

    def __init__(self, address: str, task_queue: str) -> None:
        self.address, self.task_queue = address, task_queue
        self.processes: list[subprocess.Popen[str] | None] = [None] * WORKERS
        self.identities: list[str] = [""] * WORKERS
        self.kills = 0

    def start(self, slot: int) -> None:
        self.processes[slot], self.identities[slot] = start_worker(self.address, self.task_queue)

    def kill(self, slot: int) -> None:
        process = self.processes[slot]
        if process is not None and process.poll() is None:
            process.kill()
            process.wait(timeout=10)
            self.kills += 1
        self.processes[slot] = None

    def alive(self) -> list[int]:
        return [
            slot
            for slot, process in enumerate(self.processes)
            if process is not None and process.poll() is None
        ]

    def slot_of(self, identity: str) -> int | None:
        return self.identities.index(identity) if identity in self.identities else None

    def stop_all(self) -> None:
        for process in self.processes:
            if process is not None and process.poll() is None:
                process.kill()
                process.wait(timeout=10)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[DevServer]:
    with DevServer(tmp_path / "dev.db", ui=False) as dev:
        yield dev


@pytest.fixture
def workers(server: DevServer) -> Iterator[Workers]:
    pool = Workers(server.address, f"chaos-{uuid.uuid4()}")
    try:
        for slot in range(WORKERS):
            pool.start(slot)
        yield pool
    finally:
        pool.stop_all()


async def start_runs(client: Client, task_queue: str) -> list[WorkflowHandle[Any, Any]]:
    return [
        await client.start_workflow(
            PlanWorkflow.run,
            PlanRunInput(plan=chaos_plan(i), heartbeat_timeout_s=HEARTBEAT_TIMEOUT_S),
            id=f"chaos-{i}-{uuid.uuid4()}",
            task_queue=task_queue,
        )
        for i in range(RUNS)
    ]


async def busiest_worker(handles: list[WorkflowHandle[Any, Any]], minimum: int) -> str:
    """Once at least `minimum` agents run, the identity of the worker running most of them."""
    for _ in range(300):
        running: dict[str, int] = {}
        for handle in handles:
            description = await handle.describe()
            for activity in description.raw_description.pending_activities:
                if activity.state == PendingActivityState.PENDING_ACTIVITY_STATE_STARTED:
                    identity = activity.last_worker_identity
                    running[identity] = running.get(identity, 0) + 1
        if sum(running.values()) >= minimum:
            return max(sorted(running), key=lambda identity: running[identity])
        await asyncio.sleep(0.1)
    raise AssertionError("the agents never started")


async def chaos(workers: Workers, rng: random.Random, done: asyncio.Event) -> None:
    """Kill a random worker at a random moment, restart it a moment later, until done."""
    while not done.is_set():
        await asyncio.sleep(rng.uniform(0.5, 2.0))
        if done.is_set():
            return
        # a slot still restarting has no process yet: killing it would count nothing and
        # starting it twice would leave an orphan worker
        alive = workers.alive()
        if not alive:
            continue
        slot = rng.choice(alive)
        workers.kill(slot)
        await asyncio.sleep(rng.uniform(0.1, 1.0))
        await asyncio.to_thread(workers.start, slot)


async def outcome(
    handle: WorkflowHandle[Any, Any],
) -> tuple[dict[str, Any], dict[str, Any], dict[str, list[dict[str, Any]]]]:
    """(report, context, context_history per output key) of a finished run; queried once the
    chaos is over (a query sent to a worker killed a moment ago waits for the server to give up
    on that worker's sticky queue)."""
    report = await handle.result()
    timeout = timedelta(seconds=30)
    context = await handle.query(PlanWorkflow.context, rpc_timeout=timeout)
    histories = {}
    for agent_id in report["agents"]:
        key = f"{agent_id}.out"
        histories[key] = await handle.query(PlanWorkflow.context_history, key, rpc_timeout=timeout)
    return report, context, histories


async def results_under_chaos(
    handles: list[WorkflowHandle[Any, Any]], workers: Workers, rng: random.Random
) -> list[Any]:
    done = asyncio.Event()
    monkey = asyncio.create_task(chaos(workers, rng, done))
    try:
        await asyncio.wait_for(
            asyncio.gather(*(handle.result() for handle in handles)), timeout=RUN_TIMEOUT_S
        )
    finally:
        done.set()
        await monkey
    return await asyncio.gather(*(outcome(handle) for handle in handles))


def check_exactly_once(
    seed: int,
    report: dict[str, Any],
    context: dict[str, Any],
    histories: dict[str, list[dict[str, Any]]],
) -> None:
    agents = sorted(report["agents"])
    why = f"seed {seed}, run {report['workflow_id']}"
    assert "completed" == report["status"], why
    assert {agent_id: "succeeded" for agent_id in agents} == {
        agent_id: agent["status"] for agent_id, agent in report["agents"].items()
    }, (
        why,
        {
            agent_id: (agent["attempts"], agent["error"])
            for agent_id, agent in report["agents"].items()
            if agent["status"] != "succeeded"
        },
    )
    # nothing lost: every output in the context; the join saw all six
    assert sorted(f"{agent_id}.out" for agent_id in agents) == sorted(
        key for key in context if key.endswith(".out")
    ), why
    assert [] == report["agents"]["j"]["missing_inputs"], why
    # no duplicates: one version per output key, written by its agent, one success event each
    for key, versions in histories.items():
        assert [key.split(".")[0]] == [version["writer"] for version in versions], (why, key)
    succeeded = [event["id"] for event in report["events"] if event["event"] == "agent_succeeded"]
    assert agents == sorted(succeeded), why


def test_three_workers_sigkilled_at_random_lose_and_duplicate_nothing(
    server: DevServer, workers: Workers
) -> None:
    """4 concurrent runs over 3 workers; the busiest worker is killed first, then random ones
    at random moments, each restarted; every run completes with every output exactly once."""
    rng = random.Random(SEED)

    async def go() -> list[Any]:
        client = await connect(server.address)
        handles = await start_runs(client, workers.task_queue)
        slot = workers.slot_of(await busiest_worker(handles, minimum=RUNS * FAN // 2))
        assert slot is not None
        workers.kill(slot)
        # restarted in the background: under load a restart takes seconds, and waiting for it
        # before the random kills start let the runs finish with only this one kill
        restart = asyncio.create_task(asyncio.to_thread(workers.start, slot))
        try:
            return await results_under_chaos(handles, workers, rng)
        finally:
            await restart

    results = asyncio.run(go())
    assert workers.kills >= 2, f"seed {SEED}: only {workers.kills} kill(s)"
    retried = 0
    for report, context, histories in results:
        check_exactly_once(SEED, report, context, histories)
        retried += sum(agent["attempts"] - 1 for agent in report["agents"].values())
    # the first kill hit the busiest worker mid-group: its agents ran again elsewhere
    assert retried >= 1, f"seed {SEED}: no agent was retried"


def test_dev_server_sigkilled_mid_run_and_restarted_on_its_sqlite_file(
    server: DevServer, workers: Workers
) -> None:
    """While agents run, the dev server is SIGKILLed (and one worker with it), then started
    again on the same port and history file: the workers reconnect and every run completes
    with every output exactly once."""
    rng = random.Random(SEED + 1)

    async def go() -> list[Any]:
        client = await connect(server.address)
        handles = await start_runs(client, workers.task_queue)
        await busiest_worker(handles, minimum=RUNS * FAN // 2)
        await asyncio.sleep(rng.uniform(0.2, 0.8))
        server.kill()
        slot = rng.randrange(WORKERS)
        workers.kill(slot)
        await asyncio.sleep(rng.uniform(1.0, 2.0))
        await asyncio.to_thread(server.start)
        await asyncio.to_thread(workers.start, slot)
        await asyncio.wait_for(
            asyncio.gather(*(handle.result() for handle in handles)), timeout=RUN_TIMEOUT_S
        )
        return await asyncio.gather(*(outcome(handle) for handle in handles))

    results = asyncio.run(go())
    for report, context, histories in results:
        check_exactly_once(SEED + 1, report, context, histories)
