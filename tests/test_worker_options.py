"""worker.py options (fixed slots, Temporal's resource-based tuner) and routing agents to named
task queues: an agent with its own task_queue is served by a worker on that queue while the
workflow's worker serves the rest."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from temporalio.client import Client, WorkflowHandle
from temporalio.worker import ResourceBasedSlotSupplier

from pee.cli import worker_command as worker
from pee.runtime.worker import ResourceTargets, build_worker
from tests.helpers import TemporalHarness, compiled_plan, group, sim


def test_defaults_are_fixed_sdk_slots() -> None:
    args = worker.parser().parse_args([])
    assert (None, False, None) == (
        args.max_concurrent_activities,
        args.resource_based,
        worker.resource_targets(args),
    )
    assert "default slots" == worker.describe_slots(args)


def test_resource_based_options_become_targets() -> None:
    args = worker.parser().parse_args(
        [
            "--resource-based",
            "--target-cpu",
            "0.6",
            "--target-memory",
            "0.7",
            "--max-concurrent-activities",
            "4",
        ]
    )
    assert ResourceTargets(cpu=0.6, memory=0.7) == worker.resource_targets(args)
    assert "resource-based: target cpu 0.6, memory 0.7, at most 4 agents" == (
        worker.describe_slots(args)
    )


@pytest.mark.parametrize(
    "argv",
    [
        ["--target-cpu", "1.5"],
        ["--target-memory", "0"],
        ["--max-concurrent-activities", "0"],
        ["--target-cpu", "lots"],
    ],
)
def test_invalid_options_are_refused(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        worker.parser().parse_args(argv)
    assert 2 == caught.value.code
    assert "pee-worker: error: argument" in capsys.readouterr().err


def test_targets_must_be_fractions() -> None:
    with pytest.raises(ValueError, match="target cpu must be a fraction in"):
        ResourceTargets(cpu=80)


def test_build_worker_with_fixed_slots_or_a_resource_based_tuner(
    temporal: TemporalHarness,
) -> None:
    """--max-concurrent-activities alone sets fixed slots; with --resource-based the tuner gets
    the targets and caps activity slots at N."""

    async def configs() -> tuple[Any, Any]:
        # a Worker is built inside the event loop it will run on
        fixed = build_worker(temporal.client, "options-fixed", max_concurrent_activities=3)
        tuned = build_worker(
            temporal.client,
            "options-tuned",
            max_concurrent_activities=4,
            resource_based=ResourceTargets(cpu=0.6, memory=0.7),
        )
        return fixed.config(), tuned.config()

    fixed, config = temporal.run(configs())
    assert (3, None) == (fixed["max_concurrent_activities"], fixed["tuner"])
    assert config["max_concurrent_activities"] is None
    supplier = config["tuner"].activity_slot_supplier
    assert isinstance(supplier, ResourceBasedSlotSupplier)
    assert (0.6, 0.7, 4) == (
        supplier.tuner_config.target_cpu_usage,
        supplier.tuner_config.target_memory_usage,
        supplier.slot_config.maximum_slots,
    )


def served_by(history: Any) -> dict[str, tuple[str, str]]:
    """activity id -> (task queue, identity of the worker that started it), from history."""
    scheduled: dict[int, tuple[str, str]] = {}
    served: dict[str, tuple[str, str]] = {}
    for event in history.events:
        if event.HasField("activity_task_scheduled_event_attributes"):
            attrs = event.activity_task_scheduled_event_attributes
            scheduled[event.event_id] = (attrs.activity_id, attrs.task_queue.name)
        elif event.HasField("activity_task_started_event_attributes"):
            attrs = event.activity_task_started_event_attributes
            activity_id, queue = scheduled[attrs.scheduled_event_id]
            served[activity_id] = (queue, attrs.identity)
    return served


def test_an_agent_with_its_own_task_queue_runs_on_that_queues_worker(
    temporal: TemporalHarness,
) -> None:
    """'special' names a task queue: a worker on it (its own identity) runs that agent; the
    workflow's worker runs the others."""
    special = f"special-{uuid.uuid4()}"
    agents = [sim("plain", "g", 0.1), sim("special", "g", 0.1), sim("after", "g2", 0.1)]
    agents[1].task_queue = special
    plan = compiled_plan(agents, [group("g", ["plain", "special"]), group("g2", ["after"], ["g"])])

    async def body(handle: WorkflowHandle[Any, Any]) -> tuple[dict[str, Any], Any]:
        client = await Client.connect(
            temporal.address, namespace=temporal.client.namespace, identity="special-pool"
        )
        async with build_worker(client, special):
            report = await handle.result()
        return report, await handle.fetch_history()

    report, history = temporal.with_plan(plan, body)
    assert "completed" == report["status"]
    served = served_by(history)
    assert (special, "special-pool") == served["special"]
    assert {"plain", "after"} == {a for a, (_, who) in served.items() if who != "special-pool"}
    assert all(queue.startswith("test-") for a, (queue, _) in served.items() if a != "special")


def test_plan_task_queues_route_agents_by_kind() -> None:
    """Top-level task_queues gives a queue per agent kind; an agent's own task_queue wins; an
    unknown kind is a validation error with a suggestion."""
    from pee.engine.compile.graph import compile_plan
    from pee.engine.compile.load import loads_plan
    from pee.engine.language.errors import PlanValidationError

    plan = compile_plan(
        loads_plan(
            "name: q\n"
            "task_queues: {simulate: sims}\n"
            "agents:\n"
            "  a: {kind: simulate, duration: 1s, outputs: [x]}\n"
            "  b: {kind: simulate, duration: 1s, inputs: [a.x], task_queue: special}\n"
        )
    )
    assert [("a", "sims"), ("b", "special")] == [(a.id, a.task_queue) for a in plan.agents]
    with pytest.raises(PlanValidationError, match="did you mean 'simulate'"):
        loads_plan(
            "name: q\ntask_queues: {simulat: s}\nagents:\n  a: {kind: simulate, duration: 1s}\n"
        )
