"""A run that waits for a person says so without opening it, and `resolve_conflict` takes any
payload: on a real dev server, through a real client and the `temporal` CLI.

The plan (tests/test_workflow_context.py's platform plan): ux and arch write `platform`
incompatibly (conflict c1); dev reads it and is blocked until c1 is resolved.
"""

from __future__ import annotations

import asyncio
import subprocess
from typing import Any

import pytest
from temporalio.api.sdk.v1 import WorkflowMetadata
from temporalio.client import Client, WorkflowHandle, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError

from pee.engine.report.bottleneck import format_bottlenecks
from pee.runtime.devserver import find_temporal_binary
from pee.runtime.progress import format_summary
from pee.workflows import search
from pee.workflows.plan_workflow import PlanWorkflow
from pee.workflows.resolution import MalformedResolution, parse_resolution
from pee.workflows.types import ResolveConflict
from tests.helpers import TemporalHarness, async_eventually, until_status
from tests.test_workflow_context import blocked, platform_plan, resolution

Handle = WorkflowHandle[Any, Any]


async def pee_status(handle: Handle, wanted: str, limit_s: float = 30.0) -> str:
    """Poll describe() until PeeStatus is `wanted` (visibility trails the upsert a little)."""

    async def current() -> str | None:
        found = (await handle.describe()).typed_search_attributes.get(search.STATUS)
        return found if found == wanted else None

    return await async_eventually(
        current, what=f"PeeStatus {wanted}", timeout_s=limit_s, interval_s=0.2
    )


async def listed(client: Client, handle: Handle, query: str, limit_s: float = 30.0) -> bool:
    """Whether `temporal workflow list --query QUERY` (the client's list) finds the run."""

    async def found() -> bool:
        return any([w.id == handle.id async for w in client.list_workflows(query)])

    return await async_eventually(
        found, what=f"the run listed for {query}", timeout_s=limit_s, interval_s=0.2
    )


async def details(handle: Handle) -> str:
    metadata = await handle.query("__temporal_workflow_metadata", result_type=WorkflowMetadata)
    return metadata.current_details


def test_a_blocked_run_says_it_waits_for_a_person_everywhere(temporal: TemporalHarness) -> None:
    """While dev is blocked on c1: PeeStatus is waiting_for_person (the list query finds it),
    the current details and `status` text say what is waited on since when and how to resolve;
    after the resolution PeeStatus goes back to running (then completed), the details and the
    text report show the resolution (choice, by, version), and the bottleneck analysis counts
    dev's wait as waiting for a person, not as work to cache."""
    plan = platform_plan()

    async def body(handle: Handle) -> tuple[Any, ...]:
        during = await until_status(handle, blocked("dev"), "dev blocked")
        waiting = await pee_status(handle, "waiting_for_person")
        found = await listed(
            temporal.client, handle, f'PeeStatus="waiting_for_person" AND PeePlan="{plan.name}"'
        )
        text_while = await details(handle)
        status_text = format_summary(await handle.query(PlanWorkflow.status))
        (c1,) = await handle.query(PlanWorkflow.conflicts)
        # a person takes a while: the bottleneck analysis must not call this dev's work
        await asyncio.sleep(2.0)
        await handle.execute_update(
            PlanWorkflow.resolve_conflict,
            ResolveConflict("c1", "incoming", expected_version=c1["current_version"], by="alice"),
        )
        report = await handle.result()
        ended = await pee_status(handle, "completed")
        history = await handle.fetch_history()
        return (
            during,
            waiting,
            found,
            text_while,
            status_text,
            report,
            ended,
            await details(handle),
            history,
        )

    (during, waiting, found, text_while, status_text, report, ended, text_after, history) = (
        temporal.with_plan(plan, body, search_attributes=True)
    )
    workflow_id = report["workflow_id"]
    since = during["agents"]["dev"]["blocked_since"]
    assert since is not None
    assert ("waiting_for_person", True) == (waiting, found)
    assert f"waiting for a person since {since}" in text_while
    assert "conflict c1 blocks dev" in text_while
    assert f"`pee resolve {workflow_id} c1 --choice incoming --expected-version 2`" in text_while
    assert f"waits for a person on conflict c1 since {since}" in status_text
    assert "run waiting for a person: running for " in status_text
    assert (
        f"waiting for a person: conflict c1 on 'platform' (write_write, opened "
        f"{during['conflicts'][0]['opened_at']}) blocks dev since {since}; resolve: "
        f"pee resolve {workflow_id} c1 --choice current|incoming --expected-version 2"
    ) in status_text

    # back to running once nobody is blocked, then completed (the upserts, in order)
    from tests.test_replay import pee_statuses

    assert ["running", "waiting_for_person", "running", "completed"] == pee_statuses(history)
    assert "completed" == ended
    (c1,) = report["conflicts"]
    assert ("resolved", "incoming", "alice") == resolution(c1)[:3]
    line = f"c1 on 'platform': resolved incoming by alice (version 3) at {c1['resolved_at']}"
    assert f"- {line}" in text_after
    assert "waiting for a person" not in text_after
    assert "run completed: took " in format_summary(report)
    assert f"conflict {line}" in format_summary(report)

    # item 5: dev ran ~0.5 s but waited 2 s or more for alice
    dev = report["agents"]["dev"]
    assert dev["blocked_s"] >= 2.0 and dev["duration_s"] < dev["blocked_s"]
    found_bottlenecks = report["bottlenecks"]
    (wait,) = [w for w in found_bottlenecks["person_waits"] if w["agent"] == "dev"]
    assert (dev["duration_s"], dev["blocked_s"]) == (wait["work_s"], wait["waiting_for_person_s"])
    assert not [
        s
        for s in found_bottlenecks["suggestions"]
        if s["action"] == "cache_agent" and s["agent"] == "dev"
    ]
    text = "\n".join(format_bottlenecks(found_bottlenecks))
    assert f"dev: {dev['duration_s']:g} s work, {dev['blocked_s']:g} s waiting for a person" in text


def test_malformed_resolutions_are_refused_and_recorded(temporal: TemporalHarness) -> None:
    """Malformed resolve_conflict signals (no argument, no conflict_id, wrong types, not an
    object, unknown field) and a malformed update, sent by a client and by the `temporal` CLI,
    land in rejected_resolutions with a reason; the update fails non-retryably naming the field
    and the expected shape; an expected_version newer than the current one is called newer,
    not stale; the run then resolves c1 and completes."""
    plan = platform_plan()
    temporal_cli = str(find_temporal_binary())

    def cli(handle: Handle, kind: str, payload: str) -> subprocess.CompletedProcess[str]:
        command = (
            [temporal_cli, "workflow", "signal"]
            if kind == "signal"
            else [temporal_cli, "workflow", "update", "execute"]
        )
        return subprocess.run(
            [
                *command,
                "--address",
                temporal.address,
                "--workflow-id",
                handle.id,
                "--name",
                "resolve_conflict",
                "--input",
                payload,
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )

    async def refused(handle: Handle, *args: Any) -> ApplicationError:
        with pytest.raises(WorkflowUpdateFailedError) as caught:
            await handle.execute_update("resolve_conflict", *args)
        assert isinstance(caught.value.cause, ApplicationError)
        return caught.value.cause

    async def body(handle: Handle) -> tuple[Any, ...]:
        await until_status(handle, blocked("dev"), "dev blocked")
        await handle.signal("resolve_conflict")
        await handle.signal("resolve_conflict", {"choice": "current", "by": "bob"})
        await handle.signal("resolve_conflict", {"conflict_id": 1, "choice": "current"})
        await handle.signal("resolve_conflict", "c1")
        await handle.signal(
            "resolve_conflict", {"conflict_id": "c1", "choice": "current", "expected-version": 2}
        )
        signal_cli = await asyncio.to_thread(cli, handle, "signal", '{"choice": "incoming"}')
        update_missing = await refused(handle, {"choice": "current", "by": "carol"})
        update_types = await refused(
            handle, {"conflict_id": "c1", "choice": "current", "expected_version": "2"}
        )
        update_cli = await asyncio.to_thread(cli, handle, "update", '{"choice": "incoming"}')
        newer = await refused(handle, ResolveConflict("c1", "current", expected_version=9))
        stale = await refused(handle, ResolveConflict("c1", "current", expected_version=1))
        await handle.execute_update(
            PlanWorkflow.resolve_conflict, ResolveConflict("c1", "incoming", by="alice")
        )
        return (
            signal_cli,
            update_missing,
            update_types,
            update_cli,
            newer,
            stale,
            await handle.result(),
        )

    (signal_cli, update_missing, update_types, update_cli, newer, stale, report) = (
        temporal.with_plan(plan, body)
    )
    assert 0 == signal_cli.returncode, signal_cli.stderr
    for refusal in (update_missing, update_types, newer, stale):
        assert refusal.non_retryable
    assert "MalformedResolution" == update_missing.type
    assert update_missing.message.startswith(
        "malformed resolve_conflict update: 'conflict_id' is missing; send one JSON object "
        '{"conflict_id": "c1", "choice": "current" | "incoming" | "value"'
    )
    assert "'expected_version' must be an integer or null, got a string" in update_types.message
    assert 0 != update_cli.returncode
    assert "'conflict_id' is missing" in update_cli.stdout + update_cli.stderr
    assert "InvalidResolution" == newer.type
    assert "expected_version 9 is newer than the current version 2 of 'platform'" in newer.message
    assert "stale" not in newer.message
    assert "stale resolution: 'platform' is at version 2, you expected 1" in stale.message

    rejected = report["rejected_resolutions"]
    reasons = [r["reason"] for r in rejected]
    expected_starts = [
        "malformed resolve_conflict signal: expected one argument, got 0",
        "malformed resolve_conflict signal: 'conflict_id' is missing",
        "malformed resolve_conflict signal: 'conflict_id' must be a non-empty string, got an "
        "integer",
        "malformed resolve_conflict signal: expected one JSON object",
        "malformed resolve_conflict signal: unknown field(s) ['expected-version']",
        "malformed resolve_conflict signal: 'conflict_id' is missing",
        "malformed resolve_conflict update: 'conflict_id' is missing",
        "malformed resolve_conflict update: 'expected_version' must be an integer or null",
        "malformed resolve_conflict update: 'conflict_id' is missing",
    ]
    assert len(expected_starts) == len(reasons), reasons
    for start, reason in zip(expected_starts, reasons, strict=True):
        assert reason.startswith(start), reason
    assert ["bob", "carol"] == [r["by"] for r in rejected if r["by"]]
    assert ("resolved", "incoming", "alice") == resolution(report["conflicts"][0])[:3]
    assert "completed" == report["status"]
    text = format_summary(report)
    assert "rejected resolution of ? by bob at" in text


@pytest.mark.parametrize(
    ("payloads", "message"),
    [
        ((), "expected one argument, got 0"),
        (({"conflict_id": "c1", "choice": "current"}, {}), "expected one argument, got 2"),
        ((None,), "got null"),
        ((["c1", "current"],), "got a list"),
        (({"choice": "current"},), "'conflict_id' is missing"),
        (({"conflict_id": "c1"},), "'choice' is missing"),
        (({"conflict_id": "", "choice": "current"},), "'conflict_id' must be a non-empty string"),
        (
            ({"conflict_id": "c1", "choice": 3},),
            "'choice' must be a non-empty string, got an integer",
        ),
        (
            ({"conflict_id": "c1", "choice": "current", "expected_version": True},),
            "'expected_version' must be an integer or null, got a boolean",
        ),
        (({"conflict_id": "c1", "choice": "current", "by": ["x"]},), "'by' must be a string"),
        (
            ({"conflict_id": "c1", "choice": "current", "conflictId": "c1"},),
            "unknown field(s) ['conflictId']",
        ),
    ],
)
def test_parse_resolution_names_what_is_wrong(payloads: tuple[Any, ...], message: str) -> None:
    """Each malformed payload is refused with a message naming the field and the shape."""
    with pytest.raises(MalformedResolution) as caught:
        parse_resolution(payloads)
    assert message in str(caught.value)
    assert '"conflict_id": "c1"' in str(caught.value)


def test_parse_resolution_reads_a_full_payload() -> None:
    """A well-formed payload becomes the ResolveConflict it spells; `by` defaults to user."""
    assert ResolveConflict("c1", "value", value={"a": 1}, expected_version=3, by="alice") == (
        parse_resolution(
            (
                {
                    "conflict_id": "c1",
                    "choice": "value",
                    "value": {"a": 1},
                    "expected_version": 3,
                    "by": "alice",
                },
            )
        )
    )
    assert ResolveConflict("c2", "current") == parse_resolution(
        ({"conflict_id": "c2", "choice": "current"},)
    )
