"""Record the continue-as-new replay histories in tests/histories/continued/ on a throwaway dev
server.

    .venv/bin/python -m tests.histories.record_continued [conflict_chain] [fan_out]

One scenario (`conflict_chain`): ux and arch write `platform` differently in g0, opening
conflict c1 nobody waits for yet; the run continues as new after CONTINUE_AFTER events; `dev`,
two groups later, blocks on c1 in a later run, where the `resolve_conflict` update settles it.
Written: `run<N>.json` for every run of the chain, oldest first (all but the last end in
continue-as-new).

Re-record after a change to workflows/ that changes the commands these runs issue
(tests/test_replay.py then fails on the old files, which is the point).
"""

from __future__ import annotations

import asyncio
import sys
import uuid
from pathlib import Path
from typing import Any

from temporalio.client import Client, WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from pee.engine.compiled import CompiledPlan
from pee.runtime.codec import data_converter
from pee.runtime.devserver import find_temporal_binary
from pee.runtime.exit import run_entry
from pee.runtime.inspect import run_histories
from pee.runtime.worker import build_worker
from pee.workflows.plan_workflow import PlanWorkflow
from pee.workflows.types import PlanRunInput, ResolveConflict
from tests.helpers import compiled_plan, group, sim

HERE = Path(__file__).resolve().parent / "continued"
CONTINUE_AFTER = 30


def conflict_chain() -> CompiledPlan:
    """ux and arch write `platform` differently in g0 (conflict c1, nobody waits yet); two
    groups later `dev` reads it, so it is blocked in a run after the first one."""
    writers = [
        sim("ux", "g0", 0.05, inputs=["platform"], values={"platform": "mobile"}),
        sim("arch", "g0", 0.1, inputs=["platform"], values={"platform": "desktop"}),
    ]
    for writer in writers:
        writer.writes = ["platform"]
    middle = [sim("m1", "g1", 0.05, inputs=["ux.out"]), sim("m2", "g2", 0.05, inputs=["m1.out"])]
    dev = sim("dev", "g3", 0.05, inputs=["platform", "m2.out"])
    return compiled_plan(
        [*writers, *middle, dev],
        [
            group("g0", ["ux", "arch"]),
            group("g1", ["m1"], ["g0"]),
            group("g2", ["m2"], ["g1"]),
            group("g3", ["dev"], ["g2"]),
        ],
        name="conflict-chain",
        inputs={"platform": "web"},
    )


async def when_blocked(handle: WorkflowHandle[Any, Any], agent: str) -> dict[str, Any]:
    """Wait until `agent` is blocked (in whichever run is current); returns the status."""
    for _ in range(300):
        status = await handle.query(PlanWorkflow.status)
        if status["agents"][agent]["status"] == "blocked":
            return status
        await asyncio.sleep(0.1)
    raise SystemExit(f"{agent} never got blocked")


async def record(client: Client) -> list[Path]:
    task_queue = f"record-{uuid.uuid4()}"
    workflow_id = f"record-continued-{uuid.uuid4()}"
    async with build_worker(client, task_queue):
        await client.start_workflow(
            PlanWorkflow.run,
            PlanRunInput(plan=conflict_chain(), continue_as_new_after=CONTINUE_AFTER),
            id=workflow_id,
            task_queue=task_queue,
        )
        latest = client.get_workflow_handle(workflow_id)
        status = await when_blocked(latest, "dev")
        if not status["earlier_runs"]:
            raise SystemExit("dev was blocked before the run continued as new")
        (c1,) = await latest.query(PlanWorkflow.conflicts)
        await latest.execute_update(
            PlanWorkflow.resolve_conflict,
            ResolveConflict(
                "c1", "incoming", expected_version=c1["current_version"], by="recorder"
            ),
        )
        report = await latest.result()
        if report["status"] != "completed":
            raise SystemExit(f"the recorded chain ended {report['status']}")
        HERE.mkdir(exist_ok=True)
        for old in HERE.glob("run*.json"):
            old.unlink()
        written = []
        chain = await run_histories(client, workflow_id)
        for number, (_run_id, history) in enumerate(chain, start=1):
            path = HERE / f"run{number}.json"
            path.write_text(history.to_json() + "\n")
            written.append(path)
    return written


FAN_OUT_HERE = Path(__file__).resolve().parent / "fan_out_continued"


async def record_fan_out(client: Client) -> list[Path]:
    """sm -> dev[i] (for each of 5 stories) -> qa, continuing as new after a few events: the
    run hands on after the fan-out (issue 16); written to fan_out_continued/run<N>.json."""
    from tests.histories.record import FAN_OUT_INPUT, fan_out_yaml

    task_queue = f"record-{uuid.uuid4()}"
    workflow_id = f"record-fan-out-continued-{uuid.uuid4()}"
    plan = fan_out_yaml(["a", "b", "c", "d", "e"])
    async with build_worker(client, task_queue):
        handle = await client.start_workflow(
            PlanWorkflow.run,
            PlanRunInput(plan=plan, continue_as_new_after=10, **FAN_OUT_INPUT),  # type: ignore[arg-type]
            id=workflow_id,
            task_queue=task_queue,
        )
        report = await client.get_workflow_handle(handle.id).result()
        events = [e["event"] for e in report["events"]]
        if report["status"] != "completed" or events.index("fan_out_ended") > events.index(
            "continued_as_new"
        ):
            raise SystemExit(f"the fan-out chain did not continue after the fan-out: {events}")
        FAN_OUT_HERE.mkdir(exist_ok=True)
        for old in FAN_OUT_HERE.glob("run*.json"):
            old.unlink()
        written = []
        for number, (_run_id, history) in enumerate(
            await run_histories(client, workflow_id), start=1
        ):
            path = FAN_OUT_HERE / f"run{number}.json"
            path.write_text(history.to_json() + "\n")
            written.append(path)
    return written


async def main() -> None:
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=str(find_temporal_binary()),
        ui=False,
        data_converter=data_converter(),
    )
    try:
        chosen = sys.argv[1:] or ["conflict_chain", "fan_out"]
        recorders = {"conflict_chain": record, "fan_out": record_fan_out}
        for name in chosen:
            for path in await recorders[name](env.client):
                print(f"recorded {path}")
    finally:
        await env.shutdown()


if __name__ == "__main__":
    # leave without the bridge's crash at interpreter exit (see src/pee/runtime/exit.py)
    run_entry(lambda: asyncio.run(main()))
