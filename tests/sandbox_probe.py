"""Workflows that probe the workflow sandbox (tests/test_sandbox_runner.py). Kept apart from the
test module so the sandbox's per-run re-import of this module is small and imports no test code."""

from __future__ import annotations

import datetime
from datetime import timedelta

from temporalio import activity, workflow

# module state: a sandbox that re-imports this module per run starts every run with it empty
RUNS_SEEN: list[str] = []


@activity.defn
async def echo(text: str) -> str:
    return text.upper()


@workflow.defn
class ReadsTheClock:
    @workflow.run
    async def run(self) -> str:
        # non-deterministic: the sandbox must refuse it
        return datetime.datetime.now().isoformat()


@workflow.defn
class CountsRuns:
    @workflow.run
    async def run(self) -> int:
        RUNS_SEEN.append(workflow.info().run_id)
        return len(RUNS_SEEN)


@workflow.defn
class CallsAnActivity:
    @workflow.run
    async def run(self, text: str) -> str:
        return await workflow.execute_activity(
            echo, text, start_to_close_timeout=timedelta(seconds=30), summary=f"echo {text}"
        )
