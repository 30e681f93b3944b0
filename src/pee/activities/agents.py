"""The one activity every agent runs as: `run_agent` dispatches on the agent's kind.

Around every backend it keeps the agent visible (pee.activities.progress: heartbeats, progress
signals), applies `--simulate` (task.simulate_s: the agent takes at least that long, whatever its
kind) and turns every failure into an ApplicationError carrying details=[{"attempt": n}], which
the workflow reads for its report. Large outputs are returned as they are: the data converter's
External Storage keeps them out of the history (pee.stores.payloads). References written by the
former claim check (src/pee/activities/artifacts.py) are still resolved in an agent's inputs.
No secret leaves an agent: backends register the secrets they read with the agent's scrubber
(pee.activities.scrub), and results, errors, heartbeats, progress and logs pass it on the way out.
Cancellation is an asyncio.CancelledError raised wherever the
agent is waiting; nothing here swallows it.

Kinds: "simulate" (pee.activities.simulate), "role" (built-in role agents, pee.activities.roles),
"command" (pee.activities.command), "python" (pee.activities.python_backend) and "http"
(pee.activities.http_backend) and "template" (pee.activities.template_backend).
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import time
from collections.abc import Awaitable, Callable
from typing import Any

from temporalio import activity
from temporalio.exceptions import ApplicationError

from pee.activities import (
    command,
    http_backend,
    prefetch,
    python_backend,
    roles,
    scrub,
    simulate,
    template_backend,
)
from pee.activities.artifacts import contains_reference
from pee.activities.cross_validation import cross_validate
from pee.activities.output_cache import MISS, OutputCache
from pee.activities.prefetch import prefetch_group
from pee.activities.progress import Progress
from pee.activities.snapshot_cache import store_context_snapshot
from pee.activities.types import AgentResult, AgentTask, CacheLookup
from pee.stores.sql import DatabaseError

# log records an agent emits are scrubbed like everything else it sends
scrub.install_log_filter(activity.logger.logger)

Backend = Callable[[AgentTask, Progress, float], Awaitable[AgentResult]]


def time_scale(task: AgentTask) -> float:
    if task.time_scale is not None:
        return float(task.time_scale)
    return float(os.environ.get("PEE_TIME_SCALE", "1") or 1)


async def run_role(task: AgentTask, progress: Progress, scale: float) -> AgentResult:
    role = roles.role_name(task.agent.role or task.agent.id)
    if role not in roles.ROLES:
        raise ApplicationError(
            f"agent '{task.agent.id}': no built-in role '{task.agent.role}'; built-in roles: "
            f"{sorted(roles.ROLES)}; give the agent another kind (e.g. simulate)",
            type="UnknownRole",
            non_retryable=True,
        )
    progress.report(message=f"{role} writing {', '.join(task.agent.outputs) or 'nothing'}")
    produced = roles.generate(task.agent, task.inputs, task.missing_inputs)
    return AgentResult(
        agent_id=task.agent.id,
        outputs=produced.outputs,
        writes=produced.writes,
        attempt=activity.info().attempt,
    )


BACKENDS: dict[str, Backend] = {
    "simulate": simulate.run,
    "role": run_role,
    "command": command.run,
    "python": python_backend.run,
    "http": http_backend.run,
    "template": template_backend.run,
}


def _no_backend(task: AgentTask) -> ApplicationError:
    kind = task.agent.kind
    known = sorted(BACKENDS)
    message = f"agent '{task.agent.id}': unknown kind '{kind}'; expected one of {known}"
    # retrying cannot help: the plan itself is wrong
    return ApplicationError(message, type="UnknownAgentKind", non_retryable=True)


def _silent(task: AgentTask) -> bool:
    # not simulate.parse_settings: the backend parses (and checks) the settings anyway, and
    # parsing them twice was a measurable part of a no-op agent's time (bench/overhead.py)
    return task.agent.kind == "simulate" and task.agent.settings.get("heartbeat", True) is False


# ---- legacy artifact references -------------------------------------------------------------
# Backends never see references and never think about sizes: references in the input snapshot
# (from histories and caches of the former claim check) are resolved before the backend runs.
# Blob I/O runs in a thread so heartbeats keep flowing.


async def _resolve_artifacts(task: AgentTask, counts: dict[str, dict[str, int]]) -> AgentTask:
    """`task` with the references in its inputs resolved (the caller checked there are some)."""
    # values prefetched while an earlier group ran are taken from memory (pee.activities.prefetch)
    inputs = await asyncio.to_thread(prefetch.resolve, task.inputs, counts)
    return dataclasses.replace(task, inputs=inputs)


async def _work(task: AgentTask, scrubber: scrub.Scrubber) -> AgentResult:
    backend = BACKENDS.get(task.agent.kind)
    if backend is None:
        raise _no_backend(task)
    counts: dict[str, dict[str, int]] = {}
    if contains_reference(task.inputs):
        task = await _resolve_artifacts(task, counts)
    simulate_s = max(0.0, float(task.simulate_s or 0.0))
    started = time.monotonic()
    async with Progress(task, silent=_silent(task)) as progress:
        progress.expect(simulate_s)
        result = await backend(task, progress, time_scale(task))
        # before anything stores or sends it: cache, history, blob store. Completed in place:
        # every backend returns a result of its own making (a copy per agent was a visible
        # part of a no-op agent's worker CPU: bench/overhead.py)
        result.outputs = scrubber.value(result.outputs)
        result.writes = scrubber.value(result.writes)
        result.elapsed_s = round(time.monotonic() - started, 3)
        if simulate_s > 0:
            # --simulate: the agent takes at least simulate_s, counted from its start
            await progress.sleep_until(simulate_s)
    if task.cache_key is not None:
        saved = await _store_in_cache(task, task.cache_key, result, time.monotonic() - started)
        counts["agent_output"] = {"bytes_saved": saved}
    if counts or result.cache:
        result.cache = merge_counts(counts, result.cache)
    return result


def merge_counts(*parts: dict[str, dict[str, int]]) -> dict[str, dict[str, int]]:
    merged: dict[str, dict[str, int]] = {}
    for part in parts:
        for level, counters in part.items():
            into = merged.setdefault(level, {})
            for name, number in counters.items():
                into[name] = into.get(name, 0) + int(number)
    return merged


# ---- agent output cache ---------------------------------------------------------------------


async def _store_in_cache(task: AgentTask, key: str, result: AgentResult, cost_s: float) -> int:
    """Store the result; returns the bytes lz4 compression saved."""
    value = {"outputs": result.outputs, "writes": result.writes}

    def put() -> int:
        # opened in the thread too: opening may wait on the file's lock
        store = OutputCache(size_limit=task.cache_size_limit)
        store.put(
            key,
            value,
            plan=task.plan_name,
            agent=task.agent.id,
            cost_s=cost_s,
            run_id=task.run_id,
            ttl_s=task.cache_ttl_s,
        )
        return store.last_saved

    try:
        return await asyncio.to_thread(put)
    except (OSError, DatabaseError) as err:
        # a cache that cannot be written costs a future run time, never this run its result
        activity.logger.warning("agent output cache not written: %s", err)
        return 0


@activity.defn
async def lookup_cached_output(request: CacheLookup) -> dict[str, Any] | None:
    """The cached {"outputs", "writes"} of an agent, or None (a local activity: cheap and short)."""
    try:
        # opened in the thread too: opening may wait on the file's lock
        value = await asyncio.to_thread(lambda: OutputCache().get(request.key, request.run_id))
    except (OSError, DatabaseError) as err:
        activity.logger.warning("agent output cache not readable: %s", err)
        return None
    return None if value is MISS else value


@activity.defn
async def run_agent(task: AgentTask) -> AgentResult:
    attempt = activity.info().attempt
    # every string that leaves the agent passes this agent's scrubber first (pee.activities.scrub):
    # backends register the secrets they read; results, errors, heartbeats, progress and logs
    # are scrubbed here and in pee.activities.progress
    scrubber, token = scrub.start()
    try:
        return await _work(task, scrubber)
    except asyncio.CancelledError:
        raise
    except ApplicationError as err:
        # `from None`: the original (unscrubbed) error must not travel as the failure's cause
        raise ApplicationError(
            scrubber.text(err.message),
            *(scrubber.value(list(err.details)) if err.details else [{"attempt": attempt}]),
            type=err.type,
            non_retryable=err.non_retryable,
            next_retry_delay=err.next_retry_delay,
            category=err.category,
        ) from None
    except Exception as err:
        # keep the class name as the error type so RetrySpec.non_retryable can match it
        raise ApplicationError(
            scrubber.text(f"agent '{task.agent.id}': {type(err).__name__}: {err}"),
            {"attempt": attempt},
            type=type(err).__name__,
        ) from None
    finally:
        scrub.finish(token)


# cross_validate: the check a group's validation agents make of each other's outputs
# prefetch_group and store_context_snapshot: the prefetching and context snapshot cache levels
ACTIVITIES: list[Callable[..., Any]] = [
    run_agent,
    cross_validate,
    lookup_cached_output,
    prefetch_group,
    store_context_snapshot,
]
# what the workflows run as local activities (a workflows-only worker must know them to replay;
# run_agent too: a batch child's short agents are local activities, BatchSpec.local_s, and run
# on whichever worker holds the child's workflow task)
LOCAL_ACTIVITIES: list[Callable[..., Any]] = [
    lookup_cached_output,
    store_context_snapshot,
    run_agent,
]
