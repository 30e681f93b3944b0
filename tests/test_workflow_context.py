"""The versioned context inside PlanWorkflow, on a real dev server: merges, conflicts that block
only their readers, manual resolution (update and signal), conflict timeouts, ownership, snapshot
isolation, consistency rules, and plans/conflict-demo.yaml end to end.

Two agents of one group read a shared key and write it back: the quicker one commits first
(fast-forward), the slower one's write is stale and is merged or becomes conflict c1. Activity
durations are real sleeps half a second or more apart, so the commit order is stable.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from temporalio.api.sdk.v1 import WorkflowMetadata
from temporalio.client import WorkflowFailureError, WorkflowHandle, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError

from pee.engine.compile.graph import compile_plan
from pee.engine.compile.load import load_plan
from pee.engine.compiled import CompiledAgent, CompiledPlan, Resources
from pee.engine.rules.context import ContextPolicy, VersionedContext
from pee.workflows.locks import READ, WRITE, ContextLimits, ContextLockTimeout
from pee.workflows.plan_workflow import PlanWorkflow
from pee.workflows.state import AgentState, GroupState, RunState, current_details
from pee.workflows.types import ResolveConflict
from tests.helpers import (
    TemporalHarness,
    agent_report,
    compiled_plan,
    event_index,
    group,
    group_report,
    sim,
    until_status,
    with_sections,
)

ROOT = Path(__file__).resolve().parent.parent
Handle = WorkflowHandle[Any, Any]


def agent(
    agent_id: str, group_id: str, duration_s: float, *, writes: tuple[str, ...] = (), **kwargs: Any
) -> CompiledAgent:
    """A simulate agent that may also write shared keys."""
    built = sim(agent_id, group_id, duration_s, **kwargs)
    built.writes = list(writes)
    return built


def platform_plan(*, dev_group_timeout_s: float | None = None, **context: Any) -> CompiledPlan:
    """ux (1.0 s) and arch (1.5 s) both turn `platform` from "web" into something else; dev reads
    it; dev2 (dev's group) and docs do not."""
    plan = compiled_plan(
        [
            agent(
                "ux",
                "design",
                1.0,
                inputs=["platform"],
                writes=("platform",),
                values={"platform": "mobile_first"},
            ),
            agent(
                "arch",
                "design",
                1.5,
                inputs=["platform"],
                writes=("platform",),
                values={"platform": "desktop_primary"},
            ),
            agent("dev", "build", 0.5, inputs=["platform"], echo_inputs=True),
            agent("dev2", "build", 0.3, inputs=["ux.out"]),
            agent("docs", "docs", 0.3, inputs=["ux.out"]),
        ],
        [
            group("design", ["ux", "arch"], timeout_s=30.0),
            group("build", ["dev", "dev2"], ["design"], timeout_s=dev_group_timeout_s),
            group("docs", ["docs"], ["design"]),
        ],
        name="platform",
        inputs={"platform": "web"},
    )
    return with_sections(plan, context=context)


def blocked(agent_id: str) -> Callable[[dict[str, Any]], bool]:
    return lambda status: status["agents"][agent_id]["status"] == "blocked"


async def result_or_report(handle: Handle) -> dict[str, Any]:
    try:
        return await handle.result()
    except WorkflowFailureError as err:
        return err.cause.details[0]  # type: ignore[union-attr]


def resolution(conflict: dict[str, Any]) -> tuple[Any, ...]:
    res = conflict["resolution"] or {}
    return conflict["status"], res.get("choice"), res.get("by"), res.get("value")


# --- automatic: merge, snapshot isolation -------------------------------------------------------


def test_parallel_writes_to_different_parts_merge(temporal: TemporalHarness) -> None:
    """Two agents changing different fields of one mapping merge: no conflict, both edits kept,
    and the reader after them sees the merged value."""
    plan = compiled_plan(
        [
            agent(
                "ux",
                "g",
                1.0,
                inputs=["spec"],
                writes=("spec",),
                values={"spec": {"ui": "cards", "api": "tbd"}},
            ),
            agent(
                "arch",
                "g",
                1.5,
                inputs=["spec"],
                writes=("spec",),
                values={"spec": {"ui": "tbd", "api": "rest"}},
            ),
            agent("reader", "next", 0.1, inputs=["spec"], echo_inputs=True),
        ],
        [group("g", ["ux", "arch"]), group("next", ["reader"], ["g"])],
        inputs={"spec": {"ui": "tbd", "api": "tbd"}},
    )

    async def body(handle: Handle) -> tuple[Any, ...]:
        report = await handle.result()
        return (
            report,
            await handle.query(PlanWorkflow.context),
            await handle.query(PlanWorkflow.context_history, "spec"),
        )

    report, context, history = temporal.with_plan(plan, body)
    assert report["conflicts"] == []
    assert context["spec"] == {"ui": "cards", "api": "rest"}
    assert context["reader.out"]["inputs"] == {"spec": {"ui": "cards", "api": "rest"}}
    outcomes = sorted(agent_report(report, a)["commits"]["spec"] for a in ("ux", "arch"))
    assert outcomes == ["fast_forward", "merged"]
    assert [(v["version"], v["origin"], v["writer"]) for v in history] == [
        (1, "input", "plan"),
        (2, "write", "ux"),
        (3, "merge", "arch"),
    ]
    assert "value" not in history[0]
    assert report["context_versions"]["spec"] == 3
    assert event_index(report, "context_merged", "spec") >= 0


def test_a_running_agent_keeps_its_snapshot(temporal: TemporalHarness) -> None:
    """An agent that started before a write sees the old value for its whole run; its task in
    history carries the version vector it saw."""
    plan = compiled_plan(
        [
            agent("writer", "g", 0.3, writes=("topic",), values={"topic": "v2"}),
            agent("reader", "g", 1.5, inputs=["topic"], echo_inputs=True),
        ],
        [group("g", ["writer", "reader"])],
        inputs={"topic": "v1"},
    )

    async def body(handle: Handle) -> tuple[Any, ...]:
        report = await handle.result()
        history = await handle.fetch_history()
        tasks = [
            json.loads(event.activity_task_scheduled_event_attributes.input.payloads[0].data)
            for event in history.events
            if event.HasField("activity_task_scheduled_event_attributes")
        ]
        return report, await handle.query(PlanWorkflow.context), tasks

    report, context, tasks = temporal.with_plan(plan, body)
    assert event_index(report, "agent_succeeded", "writer") < event_index(
        report, "agent_succeeded", "reader"
    )
    assert context["topic"] == "v2"
    assert context["reader.out"]["inputs"] == {"topic": "v1"}
    vectors = {task["agent"]["id"]: task["snapshot_versions"] for task in tasks}
    assert vectors == {"writer": {"topic": 1}, "reader": {"topic": 1}}
    assert agent_report(report, "reader")["snapshot"] == {"topic": 1}


# --- conflicts and manual resolution ------------------------------------------------------------


def test_conflict_blocks_only_its_readers_until_resolved_by_update(
    temporal: TemporalHarness,
) -> None:
    """An unmergeable write opens c1; dev (reads platform) is blocked while dev2 and docs carry
    on; dev's group deadline stands still meanwhile; an update resolves c1 and dev runs with the
    chosen value."""
    plan = platform_plan(dev_group_timeout_s=1.0)

    async def body(handle: Handle) -> tuple[Any, ...]:
        during = await until_status(
            handle,
            lambda s: (
                blocked("dev")(s)
                and s["agents"]["docs"]["status"] == "succeeded"
                and s["agents"]["dev2"]["status"] == "succeeded"
            ),
            "dev blocked while docs and dev2 finish",
        )
        # longer than dev's group deadline: a running clock would have cut dev short by now
        await asyncio.sleep(1.5)
        conflicts = await handle.query(PlanWorkflow.conflicts)
        metadata = await handle.query("__temporal_workflow_metadata", result_type=WorkflowMetadata)
        resolved = await handle.execute_update(
            PlanWorkflow.resolve_conflict,
            ResolveConflict(
                "c1", "incoming", expected_version=conflicts[0]["current_version"], by="alice"
            ),
        )
        report = await handle.result()
        return (
            during,
            conflicts,
            metadata.current_details,
            resolved,
            report,
            await handle.query(PlanWorkflow.context),
        )

    during, conflicts, details, resolved, report, context = temporal.with_plan(plan, body)
    dev = agent_report(during, "dev")
    assert (dev["status"], dev["blocked_on"]) == ("blocked", ["c1"])
    (c1,) = conflicts
    assert (c1["id"], c1["key"], c1["kind"], c1["status"]) == (
        "c1",
        "platform",
        "write_write",
        "open",
    )
    assert (c1["current_version"], c1["writers"], c1["blocked_agents"]) == (
        2,
        ["ux", "arch"],
        ["dev"],
    )
    assert (c1["base"], c1["current"], c1["incoming"]) == ("web", "mobile_first", "desktop_primary")
    assert "**Open conflicts: 1**" in details
    assert f"pee resolve {report['workflow_id']} c1 --choice incoming" in details
    assert (
        f"temporal workflow update execute --workflow-id {report['workflow_id']} --name "
        'resolve_conflict --input \'{"conflict_id": "c1", "choice": "incoming", '
        '"expected_version": 2}\''
    ) in details
    assert resolution(resolved) == ("resolved", "incoming", "alice", "desktop_primary")
    assert report["status"] == "completed"
    assert context["platform"] == "desktop_primary"
    assert context["dev.out"]["inputs"] == {"platform": "desktop_primary"}
    dev = agent_report(report, "dev")
    assert (dev["status"], dev["blocked_on"], dev["snapshot"]) == ("succeeded", [], {"platform": 3})
    assert dev["blocked_s"] >= 1.5
    build = group_report(report, "build")
    assert [h["decision"] for h in build["barrier"]["history"]] == ["all_completed"]
    assert build["paused_s"] >= 1.5
    (c1,) = report["conflicts"]
    assert resolution(c1) == ("resolved", "incoming", "alice", "desktop_primary")
    assert c1["current_version"] == 3 and c1["resolved_at"] is not None
    assert (
        event_index(report, "agent_succeeded", "docs")
        < event_index(report, "conflict_resolved", "c1")
        < event_index(report, "agent_started", "dev")
    )


def test_invalid_updates_are_rejected_without_a_trace(temporal: TemporalHarness) -> None:
    """Unknown ids, bad choices, missing values, stale versions and second resolutions are
    refused with a clear message; only the one valid update reaches the history."""
    plan = platform_plan()

    async def attempt(handle: Handle, request: ResolveConflict) -> str:
        try:
            await handle.execute_update(PlanWorkflow.resolve_conflict, request)
        except WorkflowUpdateFailedError as err:
            assert isinstance(err.cause, ApplicationError)
            assert (err.cause.type, err.cause.non_retryable) == ("InvalidResolution", True)
            return err.cause.message
        return "accepted"

    async def body(handle: Handle) -> tuple[Any, ...]:
        await until_status(handle, blocked("dev"), "dev blocked")
        messages = [
            await attempt(handle, request)
            for request in (
                ResolveConflict("c9", "current"),
                ResolveConflict("c1", "theirs"),
                ResolveConflict("c1", "value"),
                ResolveConflict("c1", "current", expected_version=1),
                ResolveConflict("c1", "value", value="responsive", expected_version=2),
                ResolveConflict("c1", "incoming", expected_version=3),
            )
        ]
        report = await handle.result()
        history = await handle.fetch_history()
        accepted = [
            e
            for e in history.events
            if e.HasField("workflow_execution_update_accepted_event_attributes")
        ]
        return messages, report, len(accepted)

    messages, report, accepted = temporal.with_plan(plan, body)
    assert "unknown conflict 'c9'; open conflicts: ['c1']" in messages[0]
    assert "choice must be one of ['current', 'incoming', 'value'], got 'theirs'" in messages[1]
    assert "choice 'value' needs a value" in messages[2]
    assert "stale resolution: 'platform' is at version 2, you expected 1" in messages[3]
    assert messages[4] == "accepted"
    assert "conflict 'c1' is already resolved (value)" in messages[5]
    assert accepted == 1
    assert resolution(report["conflicts"][0]) == ("resolved", "value", "user", "responsive")
    assert report["rejected_resolutions"] == []


def test_resolution_by_signal_and_an_invalid_signal_is_reported(temporal: TemporalHarness) -> None:
    """A signal resolves c1 (fire and forget); an invalid one before it is logged and listed in
    the report's rejected_resolutions, and the run goes on."""
    plan = platform_plan()

    async def body(handle: Handle) -> dict[str, Any]:
        await until_status(handle, blocked("dev"), "dev blocked")
        await handle.signal(
            PlanWorkflow.resolve_conflict_signal, ResolveConflict("c7", "current", by="bob")
        )
        await handle.signal(
            PlanWorkflow.resolve_conflict_signal,
            ResolveConflict("c1", "current", expected_version=2, by="bob"),
        )
        return await handle.result()

    report = temporal.with_plan(plan, body)
    assert report["status"] == "completed"
    (rejected,) = report["rejected_resolutions"]
    assert (rejected["conflict_id"], rejected["by"]) == ("c7", "bob")
    assert "unknown conflict 'c7'" in rejected["reason"]
    assert resolution(report["conflicts"][0]) == ("resolved", "current", "bob", "mobile_first")
    assert agent_report(report, "dev")["status"] == "succeeded"


@pytest.mark.parametrize(
    ("policy", "status", "value"),
    [
        ("keep_current", "completed", "mobile_first"),
        ("keep_incoming", "completed", "desktop_primary"),
        ("fail", "failed", None),
    ],
)
def test_conflict_timeout_policy(
    time_skipping: TemporalHarness, policy: str, status: str, value: str | None
) -> None:
    """Nobody resolves c1: after conflict_timeout the plan's policy keeps the current or the
    incoming value (dev then runs with it), or fails the run naming the conflict. On the
    time-skipping server: once dev2 and docs are done, nothing but the conflict timer is left."""
    plan = platform_plan(conflict_timeout=1.5, timeout_policy=policy)

    async def body(handle: Handle) -> tuple[Any, ...]:
        try:
            return await handle.result(), None
        except WorkflowFailureError as err:
            return err.cause.details[0], err.cause  # type: ignore[union-attr]

    report, error = time_skipping.with_plan(plan, body)
    assert report["status"] == status
    (c1,) = report["conflicts"]
    assert (c1["status"], c1["resolution"]["choice"], c1["resolution"]["by"]) == (
        "timed_out",
        policy,
        "conflict_timeout",
    )
    dev = agent_report(report, "dev")
    if error is None:
        assert c1["resolution"]["value"] == value
        assert dev["status"] == "succeeded" and dev["snapshot"]["platform"] in (2, 3)
        assert any("not resolved within 1.5 s" in a["message"] for a in report["alerts"])
    else:
        assert isinstance(error, ApplicationError) and error.type == "ConflictTimeout"
        assert "conflict c1 on 'platform' was not resolved within 1.5 s" in error.message
        assert dev["status"] == "failed" and "ConflictTimeout" in dev["error"]


# --- ownership and consistency ----------------------------------------------------------------


def ownership_plan(violation: str) -> CompiledPlan:
    plan = compiled_plan(
        [
            agent("pm", "g", 0.3, writes=("requirements",), values={"requirements": ["login"]}),
            agent(
                "ux",
                "g",
                0.8,
                writes=("requirements", "pm.out"),
                values={"requirements": ["dark mode"], "pm.out": "mine now"},
            ),
            agent("dev", "next", 0.1, inputs=["requirements"], echo_inputs=True),
        ],
        [group("g", ["pm", "ux"]), group("next", ["dev"], ["g"])],
    )
    return with_sections(
        plan,
        context={
            "ownership_violation": violation,
            "resolution_mechanisms": {
                "conflict_prevention": {"ownership_rules": {"pm": ["requirements"]}}
            },
        },
    )


def test_ownership_violation_is_rejected_with_an_alert(temporal: TemporalHarness) -> None:
    """ux writing pm's shared key and pm's own output is refused: values unchanged, a critical
    alert each and an entry in rejected_writes."""

    async def body(handle: Handle) -> tuple[Any, ...]:
        return await handle.result(), await handle.query(PlanWorkflow.context)

    report, context = temporal.with_plan(ownership_plan("reject"), body)
    assert report["status"] == "completed"
    assert agent_report(report, "ux")["commits"] == {
        "ux.out": "created",
        "requirements": "rejected",
        "pm.out": "rejected",
    }
    assert (context["requirements"], context["pm.out"]["agent"]) == (["login"], "pm")
    assert [(w["agent"], w["key"], w["owner"]) for w in report["rejected_writes"]] == [
        ("ux", "requirements", "pm"),
        ("ux", "pm.out", "pm"),
    ]
    critical = [a["message"] for a in report["alerts"] if a["level"] == "critical"]
    assert critical == [
        "write rejected: 'ux' may not write 'requirements': 'pm' owns it",
        "write rejected: 'ux' may not write 'pm.out': 'pm' owns it",
    ]
    assert report["conflicts"] == []


def test_ownership_violation_as_a_conflict(temporal: TemporalHarness) -> None:
    """With ownership_violation: conflict the foreign write opens ownership conflicts that
    block the key's reader until a person lets it through."""

    async def body(handle: Handle) -> tuple[Any, ...]:
        await until_status(handle, blocked("dev"), "dev blocked")
        conflicts = await handle.query(PlanWorkflow.conflicts)
        await handle.execute_update(
            PlanWorkflow.resolve_conflict, ResolveConflict("c1", "incoming", expected_version=1)
        )
        return conflicts, await handle.result(), await handle.query(PlanWorkflow.context)

    conflicts, report, context = temporal.with_plan(ownership_plan("conflict"), body)
    assert [(c["id"], c["key"], c["kind"], c["blocked_agents"]) for c in conflicts] == [
        ("c1", "requirements", "ownership", ["dev"]),
        ("c2", "pm.out", "ownership", []),
    ]
    assert context["dev.out"]["inputs"] == {"requirements": ["dark mode"]}
    # c2 blocked nobody: the run ends without waiting for it, and says so
    assert [c["status"] for c in report["conflicts"]] == ["resolved", "open"]
    assert any("c2 on 'pm.out' unresolved" in a["message"] for a in report["alerts"])


def test_consistency_rule_violation_opens_a_conflict(temporal: TemporalHarness) -> None:
    """After the group's barrier, platforms that must be equal but differ open a consistency
    conflict that blocks their reader; resolving it with a value makes both keys equal."""
    plan = compiled_plan(
        [
            agent("ux", "g", 0.3, outputs=("platform",), values={"platform": "mobile"}),
            agent("arch", "g", 0.6, outputs=("platform",), values={"platform": "desktop"}),
            agent("dev", "next", 0.1, inputs=["arch.platform"], echo_inputs=True),
        ],
        [group("g", ["ux", "arch"]), group("next", ["dev"], ["g"])],
    )
    with_sections(
        plan,
        context={
            "consistency_rules": [
                {
                    "keys": ["ux.platform", "arch.platform"],
                    "must": "equal",
                    "message": "platforms differ",
                }
            ]
        },
    )

    async def body(handle: Handle) -> tuple[Any, ...]:
        await until_status(handle, blocked("dev"), "dev blocked")
        (c1,) = await handle.query(PlanWorkflow.conflicts)
        await handle.execute_update(
            PlanWorkflow.resolve_conflict,
            ResolveConflict(
                "c1", "value", value="responsive", expected_version=c1["current_version"]
            ),
        )
        return c1, await handle.result(), await handle.query(PlanWorkflow.context)

    c1, report, context = temporal.with_plan(plan, body)
    assert (c1["kind"], c1["key"], c1["paths"], c1["message"]) == (
        "consistency",
        "ux.platform",
        ["ux.platform", "arch.platform"],
        "platforms differ",
    )
    assert (c1["current"], c1["incoming"], c1["blocked_agents"]) == (
        "mobile",
        {"arch.platform": "desktop"},
        ["dev"],
    )
    assert (context["ux.platform"], context["arch.platform"]) == ("responsive", "responsive")
    assert context["dev.out"]["inputs"] == {"arch.platform": "responsive"}
    assert report["status"] == "completed"


# --- the shipped demo -------------------------------------------------------------------------


def test_conflict_demo_plan_end_to_end(temporal: TemporalHarness) -> None:
    """plans/conflict-demo.yaml: the run pauses on c1 (developer blocked, docs done), an update
    picks a value, and the run completes with it in the report and the context."""
    plan = compile_plan(load_plan(ROOT / "plans" / "conflict-demo.yaml"))
    chosen = {"target": "responsive", "offline": False}

    async def body(handle: Handle) -> tuple[Any, ...]:
        during = await until_status(
            handle,
            lambda s: blocked("developer")(s) and s["agents"]["docs"]["status"] == "succeeded",
            "developer blocked, docs done",
        )
        (c1,) = await handle.query(PlanWorkflow.conflicts)
        await handle.execute_update(
            PlanWorkflow.resolve_conflict,
            ResolveConflict(
                c1["id"], "value", value=chosen, expected_version=c1["current_version"], by="demo"
            ),
        )
        return during, c1, await handle.result(), await handle.query(PlanWorkflow.context)

    during, c1, report, context = temporal.with_plan(plan, body, time_scale=0.5)
    assert during["status"] == "running"
    assert (c1["key"], c1["writers"], c1["paths"]) == (
        "platform",
        ["ux_expert", "architect"],
        ["$.target"],
    )
    assert report["status"] == "completed"
    assert resolution(report["conflicts"][0]) == ("resolved", "value", "demo", chosen)
    assert context["platform"] == chosen
    assert agent_report(report, "developer")["snapshot"] == {"platform": 3}
    assert report["context_versions"]["platform"] == 3
    # the wait for a person is on developer's path: it ends the actual critical path
    assert report["critical_path"][-1] == "developer"


# --- pure parts: details text, context limits ---------------------------------------------------


def test_current_details_name_open_conflicts_and_the_commands() -> None:
    """While a conflict is open the details say the run waits for a person (since when, on
    what), list the conflict, who it blocks, and both resolve commands."""
    plan = compiled_plan(
        [sim("dev", "g", 1.0, inputs=["platform"])], [group("g", ["dev"])], name="demo"
    )
    store = VersionedContext(ContextPolicy())
    store.commit("ux", "platform", "mobile", 0, "t1")
    store.commit("arch", "platform", "desktop", 0, "t2")
    run = RunState(
        plan=plan,
        started=datetime(2025, 1, 1, tzinfo=UTC),
        time_scale=1.0,
        agents={"dev": AgentState("blocked", blocked_on=["c1"], blocked_since_s=1.0)},
        groups={"g": GroupState("running", 0.0, paused_since_s=1.0)},
        context=store,
    )
    text = current_details(run, 2.0, "wf-1")
    assert text.startswith(
        "**demo**: waiting for a person since 2025-01-01T00:00:01.000+00:00 "
        "(1.0 s as of 2025-01-01T00:00:02.000+00:00): conflict c1 blocks dev"
    )
    assert "group `g` running: dev blocked, deadline paused" in text
    assert "`c1` on `platform` (write_write, version 1, writers ux, arch, opened t2)" in text
    assert "blocking: dev" in text
    assert "`pee resolve wf-1 c1 --choice incoming --expected-version 1`" in text
    assert (
        "`temporal workflow update execute --workflow-id wf-1 --name resolve_conflict "
        '--input \'{"conflict_id": "c1", "choice": "incoming", '
        '"expected_version": 1}\' --config-file .temporal/temporal.toml'
    ) in text
    assert (
        "`Web UI: More Actions → Send a Signal, name resolve_conflict, data "
        '{"conflict_id": "c1", "choice": "incoming", "expected_version": 1}`'
    ) in text


def test_context_limits_count_slots_and_waits() -> None:
    """Slots are counted per kind up to the plan's limits; waits add up per agent."""
    limits = ContextLimits.from_resources(
        Resources.from_section(
            {
                "resource_pool": {
                    "context_store": {
                        "concurrent_readers": 2,
                        "concurrent_writers": 1,
                        "lock_timeout": 10.0,
                    }
                }
            }
        ),
        0.5,
    )
    assert (limits.readers, limits.writers, limits.lock_timeout_s) == (2, 1, 5.0)
    limits.take(WRITE)
    assert not limits.free(WRITE) and limits.free(READ)
    with pytest.raises(ContextLockTimeout):
        limits.take(WRITE)
    limits.release(WRITE)
    limits.take(READ)
    limits.take(READ)
    assert not limits.free(READ) and limits.peak == {READ: 2, WRITE: 1}
    limits.waited("a", 0.25)
    limits.waited("a", 0.5)
    limits.waited("b", 1.0)
    assert (limits.wait_s("a"), limits.wait_s()) == (0.75, 1.75)
    assert ContextLimits.from_resources(Resources(), 1.0).readers == 5
