"""Record the External Storage replay history in tests/histories/external/ on a throwaway dev
server, with the payload blobs it refers to in tests/histories/external/blobs/.

    .venv/bin/python -m tests.histories.record_external

One scenario (`large_output`): a python agent returns a document of random hex digits (lz4
cannot shrink it) over the payload threshold, and a second agent reads it. The threshold is
lowered to 4 KiB while recording so the committed blobs stay small: the history holds
ExternalStorageReference payloads (driver pee.fs) for the writer's result and the reader's task,
and replaying it needs the blobs.

Re-record after a change to workflows/ that changes the commands this run issues.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from temporalio.api.common.v1 import Payload
from temporalio.api.sdk.v1 import ExternalStorageReference
from temporalio.client import Client, WorkflowHistory
from temporalio.testing import WorkflowEnvironment

from pee.engine.compile.graph import compile_plan
from pee.engine.compile.load import loads_plan
from pee.runtime.codec import data_converter
from pee.runtime.codec_server import storage_reference
from pee.runtime.devserver import find_temporal_binary
from pee.runtime.exit import run_entry
from pee.runtime.worker import build_worker
from pee.stores.payloads import external_storage
from pee.workflows.plan_workflow import PlanWorkflow
from pee.workflows.types import PlanRunInput

HERE = Path(__file__).resolve().parent / "external"
BLOBS = HERE / "blobs"
THRESHOLD = 4 * 1024

PLAN = """\
name: external-storage
agents:
  writer:
    kind: python
    callable: "tests.agents_fixtures.py_agents:large_document"
    outputs: [doc]
  reader:
    kind: python
    callable: "tests.agents_fixtures.py_agents:measure_document"
    inputs: [writer.doc]
    outputs: [size, sha256]
"""


async def record(client: Client) -> Path:
    # large_document's default is ~400 KB; 6 KB of random hex is over the 4 KiB threshold
    os.environ["PEE_LARGE_DOCUMENT_BYTES"] = "3000"
    plan = compile_plan(loads_plan(PLAN))
    task_queue = f"record-{uuid.uuid4()}"
    async with build_worker(client, task_queue):
        handle = await client.start_workflow(
            PlanWorkflow.run,
            PlanRunInput(plan=plan),
            id=f"record-external-{uuid.uuid4()}",
            task_queue=task_queue,
        )
        report = await handle.result()
        if report["status"] != "completed":
            raise SystemExit(f"the run did not complete: {report['status']}")
        history = await handle.fetch_history()
    path = HERE / "large_output.json"
    path.write_text(history.to_json() + "\n")
    return path


async def main() -> None:
    shutil.rmtree(HERE, ignore_errors=True)
    BLOBS.mkdir(parents=True)
    storage = external_storage(threshold=THRESHOLD, root=BLOBS)
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=str(find_temporal_binary()),
        ui=False,
        data_converter=data_converter(storage=storage),
    )
    try:
        print(f"wrote {await record(env.client)}")
    finally:
        await env.shutdown()
    # local activities' inputs (the context snapshots) are stored too, but never referenced by
    # the history: keep only the blobs a replay needs
    history = WorkflowHistory.from_json("external", (HERE / "large_output.json").read_text())
    needed = {ref.claim_data["hash_value"] for ref in references(history)}
    for blob in sorted(BLOBS.rglob("*"), reverse=True):
        if blob.is_file() and blob.name not in needed:
            blob.unlink()
        elif blob.is_dir() and not any(blob.iterdir()):
            blob.rmdir()


def payloads_in(message: Any) -> Iterator[Payload]:
    """Every Payload anywhere in a protobuf message (an event, a history)."""
    for field, value in message.ListFields():
        if field.message_type is None:
            continue
        if field.message_type.GetOptions().map_entry:
            items = list(value.values())
        elif hasattr(value, "ListFields"):
            items = [value]
        else:
            items = list(value)
        for item in items:
            if isinstance(item, Payload):
                yield item
            elif hasattr(item, "ListFields"):
                yield from payloads_in(item)


def references(history: WorkflowHistory) -> list[ExternalStorageReference]:
    """The External Storage references the history holds."""
    found = []
    for event in history.events:
        for payload in payloads_in(event):
            reference = storage_reference(payload)
            if reference is not None:
                found.append(reference)
    return found


if __name__ == "__main__":
    run_entry(lambda: asyncio.run(main()))
