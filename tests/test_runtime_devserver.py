"""The embedded dev server: starts on free ports with the UI, keeps history across restarts."""

from __future__ import annotations

import asyncio
import socket
import urllib.request
import uuid
from pathlib import Path

import pytest
from temporalio.client import WorkflowExecutionStatus

from pee.runtime import embedded
from pee.runtime.connection import connect
from pee.runtime.devserver import DevServer, free_port
from pee.runtime.worker import build_worker
from pee.workflows.plan_workflow import PlanWorkflow
from pee.workflows.types import PlanRunInput
from tests.helpers import compiled_plan, group, sim


async def run_plan(address: str) -> str:
    client = await connect(address)
    task_queue = f"test-{uuid.uuid4()}"
    workflow_id = f"devserver-{uuid.uuid4()}"
    plan = compiled_plan([sim("a", "g", 0.1)], [group("g", ["a"])])
    async with build_worker(client, task_queue):
        await client.execute_workflow(
            PlanWorkflow.run, PlanRunInput(plan=plan), id=workflow_id, task_queue=task_queue
        )
    return workflow_id


async def status_of(address: str, workflow_id: str) -> WorkflowExecutionStatus | None:
    client = await connect(address)
    return (await client.get_workflow_handle(workflow_id).describe()).status


def port_open(ip: str, port: int) -> bool:
    try:
        with socket.create_connection((ip, port), timeout=0.5):
            return True
    except OSError:
        return False


def test_history_survives_a_restart_and_the_ui_answers(tmp_path: Path) -> None:
    """A run recorded before a restart is still there after it; the UI serves on 127.0.0.1."""
    db = tmp_path / "dev.db"
    with DevServer(db) as server:
        assert server.ip == "127.0.0.1"
        with urllib.request.urlopen(server.ui_url, timeout=10) as response:
            assert response.status == 200
        workflow_id = asyncio.run(run_plan(server.address))
    assert not port_open(server.ip, server.port)
    with DevServer(db, ui=False) as again:
        assert asyncio.run(status_of(again.address, workflow_id)) == (
            WorkflowExecutionStatus.COMPLETED
        )


def test_embedded_server_outlives_its_starter_and_stops_on_request(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """start records pid and ports in the state dir and is idempotent; stop ends the process,
    frees the ports and forgets the record, keeping the history file."""
    monkeypatch.setenv("PEE_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("PEE_DEV_PORT", str(free_port()))
    monkeypatch.setenv("PEE_UI_PORT", str(free_port()))
    record, started = embedded.start_server(ui=False)
    try:
        assert started
        assert (record.ip, record.ui_url) == ("127.0.0.1", None)
        assert embedded.read_record() == record
        assert (record, False) == embedded.start_server(ui=False)
        assert asyncio.run(status_of(record.address, asyncio.run(run_plan(record.address))))
    finally:
        stopped = embedded.stop_server()
    assert stopped == record
    assert not port_open(record.ip, record.port)
    assert embedded.running_record() is None and embedded.read_record() is None
    assert Path(record.db_file).exists()
    assert embedded.stop_server() is None
