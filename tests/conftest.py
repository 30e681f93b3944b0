"""Shared test helpers: a real Temporal dev server for the session, workers on uuid task queues,
and small builders for hand-written CompiledPlans (so workflow tests need no YAML loader)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Coroutine, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

import pytest
from temporalio.client import Client, WorkflowHandle
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer

from pee.engine.compiled import CompiledAgent, CompiledGroup, CompiledPlan, RetrySpec
from pee.runtime.codec import data_converter
from pee.runtime.devserver import find_temporal_binary, free_port
from pee.runtime.inspect import run_histories
from pee.runtime.worker import build_worker
from pee.workflows import search
from pee.workflows.plan_workflow import PlanWorkflow
from pee.workflows.types import PlanRunInput

T = TypeVar("T")

# `starter.py run` writes each run's documents to runs/<workflow-id>/ by default; tests (and the
# commands they start, which inherit the environment) write to a throwaway folder instead
os.environ.setdefault("PEE_RUNS_DIR", tempfile.mkdtemp(prefix="pee-runs-"))
# and the agent output cache is a throwaway file, never the user's .temporal/cache.db
os.environ.setdefault(
    "PEE_CACHE_PATH", os.path.join(tempfile.mkdtemp(prefix="pee-cache-"), "cache.db")
)
# and durations measured by runs go to a throwaway store, never the user's .temporal/durations.db
os.environ.setdefault(
    "PEE_DURATIONS_PATH", os.path.join(tempfile.mkdtemp(prefix="pee-durations-"), "durations.db")
)
PROJECT_ROOT = Path(__file__).resolve().parent.parent


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


# --- starter.py against a private embedded dev server ------------------------------------------


@pytest.fixture(scope="module")
def cli_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """Environment for `starter.py` subprocesses with their own state dir and ports, so the
    embedded server they start is private to the module; stopped at the end."""
    # every TEMPORAL_* (address, TLS, API key, profile) would steer the commands elsewhere
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("TEMPORAL_")
        and k not in ("PEE_TIME_SCALE", "PEE_TASK_QUEUE", "PEE_UI_URL")
    }
    state = tmp_path_factory.mktemp("state")
    # learned durations per module too, so runs of one module never steer another's compiles
    env.update(
        PEE_STATE_DIR=str(state),
        PEE_DURATIONS_PATH=str(state / "durations.db"),
        PEE_DEV_PORT=str(free_port()),
        PEE_UI_PORT=str(free_port()),
        # the embedded codec server's default (dev port + 1001) is not checked free, and
        # in the ephemeral range it can be a live connection's port: bind fails at random
        PEE_CODEC_PORT=str(free_port()),
        # nor may the user's Temporal client config file
        TEMPORAL_CONFIG_FILE=str(state / "no-temporal.toml"),
    )
    try:
        yield env
    finally:
        stopped = starter(env, "server", "stop")
        assert 0 == stopped.returncode, stopped.stdout + stopped.stderr


def starter(env: dict[str, str], *args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "starter.py", *map(str, args)],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=90,
    )


# --- a real server ---------------------------------------------------------------------------


class TemporalHarness:
    """One dev server and event loop for the session; each plan runs on its own task queue."""

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
    env = loop.run_until_complete(
        WorkflowEnvironment.start_local(
            dev_server_existing_path=str(find_temporal_binary()),
            data_converter=data_converter(),
            ui=False,
            # PeePlan/PeeStatus/PeeGroup, so runs with PlanRunInput.search_attributes can set them
            search_attributes=list(search.KEYS),
            dev_server_extra_args=list(extra_args),
        )
    )
    try:
        yield TemporalHarness(loop, env)
    finally:
        loop.run_until_complete(env.shutdown())
        loop.close()


@pytest.fixture(scope="session")
def temporal() -> Iterator[TemporalHarness]:
    yield from harness()


# Temporal suggests continue-as-new at 4,096 history events by default: a server that does at
# this many lets modest plans show the continue-as-new path (src/pee/workflows/continuation.py)
SUGGEST_CONTINUE_AS_NEW_AT = 400


@pytest.fixture(scope="session")
def suggesting() -> Iterator[TemporalHarness]:
    """A dev server that suggests continue-as-new at SUGGEST_CONTINUE_AS_NEW_AT events."""
    yield from harness(
        "--dynamic-config-value",
        f"limit.historyCount.suggestContinueAsNew={SUGGEST_CONTINUE_AS_NEW_AT}",
    )
