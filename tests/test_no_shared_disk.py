"""Proof that workers need no shared disk (issue 20): two `pee-worker` processes, each with its
own state directory, on one server. The plan's first agent runs on worker 1's task queue and
returns a document too large for the history; the second runs on worker 2's queue and reads it.
With the shared stores (PEE_CACHE_URL=postgresql://..., PEE_ARTIFACT_URL=s3://...) the run
completes and a rerun is served from the output cache; without them the reader fails, and the
error the user sees names the setting to configure.

The client (this test process) has a state directory of its own too. Servers: a Temporal dev
server, PostgreSQL (tests/pg_support.py) and an S3 API server (tests/s3_support.py), all on
127.0.0.1 and stopped at the end."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import WorkflowFailureError

from pee.engine.compile.graph import compile_plan
from pee.engine.compile.load import loads_plan
from pee.paths import PROJECT_ROOT
from pee.runtime.connection import connect
from pee.runtime.devserver import DevServer
from pee.workflows.plan_workflow import PlanWorkflow
from pee.workflows.types import PlanRunInput
from tests.agents_fixtures.py_agents import large_document

pytestmark = pytest.mark.timeout(240)

# every store setting a worker could inherit from the test process (conftest's throwaway files
# included): a worker here has its own state directory and nothing else
STORE_VARIABLES = (
    "PEE_STATE_DIR",
    "PEE_CACHE_PATH",
    "PEE_DURATIONS_PATH",
    "PEE_CACHE_URL",
    "PEE_ARTIFACT_URL",
    "PEE_ARTIFACT_DIR",
    "AWS_ENDPOINT_URL",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_REGION",
)

PLAN = """\
name: no-shared-disk-{tag}
agents:
  writer:
    kind: python
    callable: "tests.agents_fixtures.py_agents:large_document"
    outputs: [doc]
    task_queue: {q1}
  reader:
    kind: python
    callable: "tests.agents_fixtures.py_agents:measure_document"
    inputs: [writer.doc]
    outputs: [size, sha256]
    task_queue: {q2}
    retry: {{max_attempts: 2, initial_interval: 100ms}}
caching_system:
  cache_levels:
    agent_output_cache: {{ttl: 3600}}
"""


def worker_env(state: Path, stores: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in STORE_VARIABLES}
    env.update(PEE_STATE_DIR=str(state), **stores)
    return env


@contextmanager
def two_workers(address: str, tmp_path: Path, stores: dict[str, str]) -> Iterator[tuple[str, str]]:
    """Worker 1 on q1 (the workflow's and the writer's queue), worker 2 on q2 (the reader's),
    each with its own state directory; their task queues."""
    queues = (f"host1-{uuid.uuid4().hex[:8]}", f"host2-{uuid.uuid4().hex[:8]}")
    processes: list[subprocess.Popen[str]] = []
    try:
        for index, queue in enumerate(queues, start=1):
            state = tmp_path / f"worker{index}"
            process = subprocess.Popen(
                [sys.executable, "worker.py", "--address", address, "--task-queue", queue],
                cwd=PROJECT_ROOT,
                env=worker_env(state, stores),
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
            processes.append(process)
            assert process.stdout is not None
            line = process.stdout.readline()
            assert "on task queue" in line, line + process.stdout.read()
            # the ready line names the stores this worker uses
            if "PEE_ARTIFACT_URL" in stores:
                assert f"payloads {stores['PEE_ARTIFACT_URL']}" in line, line
                assert "caches postgresql://pee:***@127.0.0.1" in line, line
            else:
                assert f"payloads {state / 'artifacts'}" in line, line
        yield queues
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[DevServer]:
    with DevServer(tmp_path / "dev.db", ui=False) as dev:
        yield dev


def run_plan(
    address: str,
    tmp_path: Path,
    stores: dict[str, str],
    queues: tuple[str, str],
    tag: str,
    monkeypatch: pytest.MonkeyPatch,
) -> dict[str, Any]:
    """One run, started by a client with its own state directory and the same store settings
    as the workers; its report, or the failure's text."""
    for name in STORE_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PEE_STATE_DIR", str(tmp_path / "client"))
    for name, value in stores.items():
        monkeypatch.setenv(name, value)
    plan = compile_plan(loads_plan(PLAN.format(tag=tag, q1=queues[0], q2=queues[1])))

    async def go() -> dict[str, Any]:
        client = await connect(address)
        handle = await client.start_workflow(
            PlanWorkflow.run,
            PlanRunInput(plan=plan),
            id=f"no-shared-disk-{uuid.uuid4()}",
            task_queue=queues[0],
        )
        try:
            report = dict(await asyncio.wait_for(handle.result(), timeout=180))
        except WorkflowFailureError as err:
            return {"status": "failed", "failure": repr(err) + repr(err.cause)}
        # what the reader measured: the context, asked of worker 1 (the workflow's)
        report["context"] = dict(await handle.query(PlanWorkflow.context))
        return report

    return asyncio.run(go())


def expected_reading() -> dict[str, Any]:
    doc = large_document()["doc"]
    return {"size": len(doc), "sha256": hashlib.sha256(doc.encode()).hexdigest()}


def test_two_workers_without_a_shared_disk_share_payloads_and_the_cache(
    server: DevServer,
    tmp_path: Path,
    pg_url: str,
    s3_env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    stores = {"PEE_CACHE_URL": pg_url, **s3_env}
    tag = uuid.uuid4().hex[:8]
    with two_workers(server.address, tmp_path, stores) as queues:
        first = run_plan(server.address, tmp_path, stores, queues, tag, monkeypatch)
        assert "completed" == first["status"], json.dumps(first)[:2000]
        reader = first["agents"]["reader"]
        assert not reader["cached"] and not first["agents"]["writer"]["cached"]
        second = run_plan(server.address, tmp_path, stores, queues, tag, monkeypatch)
    assert "completed" == second["status"], json.dumps(second)[:2000]
    assert {"writer": True, "reader": True} == {
        agent: entry["cached"] for agent, entry in second["agents"].items()
    }
    assert expected_reading() == {
        "size": first["context"]["reader.size"],
        "sha256": first["context"]["reader.sha256"],
    }
    assert first["context"]["reader.sha256"] == second["context"]["reader.sha256"]
    # nothing large was written to any host's own folder: the blobs are in the bucket
    for host in ("worker1", "worker2", "client"):
        assert not list((tmp_path / host).rglob("payloads/sha256/*/*")), host


def test_without_the_shared_stores_the_reader_fails_naming_the_setting(
    server: DevServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with two_workers(server.address, tmp_path, {}) as queues:
        report = run_plan(server.address, tmp_path, {}, queues, uuid.uuid4().hex[:8], monkeypatch)
    text = json.dumps(report)
    assert "completed" != report["status"], text[:2000]
    assert "PEE_ARTIFACT_URL=s3://BUCKET" in text, text[:3000]
    # where the reader's host looked: its own folder
    assert "worker2/artifacts" in text and "pee.fs" in text
