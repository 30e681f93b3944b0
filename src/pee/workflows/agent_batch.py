"""AgentBatchWorkflow: a child of PlanWorkflow (batch mode) that runs a chunk of agents.

Each AgentCall is one `run_agent` activity with exactly the options PlanWorkflow would have used
itself (task queue, activity id, timeouts, heartbeat timeout, retry policy, summary); the child
runs them all at once, sends the outcomes of those that ended to the parent by the
`agent_outcomes` signal (the first at once, then at most every ``flush_s``: one signal for all
that ended meanwhile) and returns one AgentOutcome per call, in call order, when the last one
has ended. The parent decides everything else (barriers, context, conflicts, the report); the
child only keeps ~3 history events per agent out of the parent's history.

Local chunks (AgentCall.local, BatchSpec.local_s: agents whose every attempt is short): each
agent is a local activity with the same timeouts and retry policy, run by the worker that holds
the child's workflow task. That costs the server one marker per agent instead of an activity's
three events, its task dispatch and a workflow task per completion. The worker holds the
workflow task open while any of them runs and completes it when all have ended or at its
heartbeat (every 0.8 x the task timeout, 8 s by default): only then are markers recorded,
outcomes signalled and signals (cancel_agents) taken in, so a local chunk sends outcomes at
those moments instead of every ``flush_s``; one expected to end before its first heartbeat
sends them in its result only (``local_result_only``). After a worker crash, the agents whose
markers were recorded keep their outcomes; the others run again on the next worker (their
outcomes had not reached the parent: the signal or result and the markers go in the same task
completion).

Cancellation: the `cancel_agents` signal cancels the named agents' activities (the parent's
barrier cut them short, or the run is ending); a cancel request on the child itself (the parent
closed: parent_close_policy REQUEST_CANCEL) cancels them all. Cancelled agents come back as
``cancelled`` outcomes, so the child always completes normally. In a local chunk both arrive
at the next workflow task heartbeat (the parent has counted the agent cancelled already).

Determinism: lists and dicts only, no clocks, no randomness.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, RetryState, TimeoutError

with workflow.unsafe.imports_passed_through():
    from pee.activities.agents import run_agent
    from pee.activities.types import AgentTask

    # the payload converter resolves AgentTask.agent's type hints through the sandbox's
    # sys.modules, which only hold modules this workflow imports itself
    from pee.engine.compiled import CompiledAgent  # noqa: F401
    from pee.workflows.agent_outcome import AgentOutcome, outcome_from_error

CANCEL_SIGNAL = "cancel_agents"
# the outcomes signal is sent from a task of its own, which the run's task waits for: the SDK
# keeps a signal to another workflow from being cancelled once sent, and so swallowed the
# cancel request (the parent closed) that arrived while one was in flight; the chunk then ran
# its agents to their end
SIGNAL_TASK_PATCH = "outcomes-signal-in-own-task"
# PlanWorkflow's signal for outcomes of agents that ended before the chunk did
OUTCOMES_SIGNAL = "agent_outcomes"


@dataclass
class AgentCall:
    """One agent's activity, as AgentRunner.execute would start it (durations in seconds)."""

    task: AgentTask
    activity_id: str
    task_queue: str | None
    timeout_s: float
    heartbeat_timeout_s: float
    initial_interval_s: float
    backoff_coefficient: float
    maximum_interval_s: float | None
    maximum_attempts: int
    non_retryable: list[str] = field(default_factory=list)
    summary: str = ""
    # all attempts together from scheduling (None: timeout_s, as calls made before the worker-lag
    # allowance: AgentTiming.schedule_to_close)
    schedule_to_close_s: float | None = None
    # run as a local activity of the child (BatchSpec.local_s; False in calls made before it)
    local: bool = False

    def expected_s(self) -> float:
        """How long the agent is expected to take, in real seconds (its learned mean or the
        plan's estimate, times the run's time scale)."""
        return self.task.agent.expected_s * (self.task.time_scale or 1.0)

    def retry_policy(self) -> RetryPolicy:
        return RetryPolicy(
            initial_interval=timedelta(seconds=self.initial_interval_s),
            backoff_coefficient=self.backoff_coefficient,
            maximum_interval=None
            if self.maximum_interval_s is None
            else timedelta(seconds=self.maximum_interval_s),
            maximum_attempts=self.maximum_attempts,
            non_retryable_error_types=list(self.non_retryable),
        )

    @staticmethod
    def of(
        task: AgentTask,
        activity_id: str,
        timeout: timedelta,
        heartbeat: timedelta,
        retry: RetryPolicy,
        summary: str,
        schedule_to_close: timedelta | None = None,
    ) -> AgentCall:
        return AgentCall(
            task=task,
            activity_id=activity_id,
            task_queue=task.agent.task_queue,
            timeout_s=timeout.total_seconds(),
            heartbeat_timeout_s=heartbeat.total_seconds(),
            initial_interval_s=retry.initial_interval.total_seconds(),
            backoff_coefficient=retry.backoff_coefficient,
            maximum_interval_s=None
            if retry.maximum_interval is None
            else retry.maximum_interval.total_seconds(),
            maximum_attempts=retry.maximum_attempts,
            non_retryable=list(retry.non_retryable_error_types or []),
            summary=summary,
            schedule_to_close_s=None
            if schedule_to_close is None
            else schedule_to_close.total_seconds(),
        )


@dataclass
class AgentBatchInput:
    calls: list[AgentCall]
    # the PlanWorkflow this chunk belongs to: it gets the outcomes by OUTCOMES_SIGNAL
    parent_workflow_id: str = ""
    # send outcomes at most this often (real seconds); 0 = only in the result
    flush_s: float = 1.0
    # a local chunk expected to end before its first workflow task heartbeat sends its outcomes
    # in the result only (AgentBatchWorkflow._signals); False in inputs written before, whose
    # children signalled (an input field, not a patch: workflow.patched costs each child a
    # marker and a search-attribute upsert)
    local_result_only: bool = False


@workflow.defn
class AgentBatchWorkflow:
    def __init__(self) -> None:
        self._tasks: dict[str, asyncio.Task[AgentOutcome]] = {}
        # cancel_agents can arrive before the activities are scheduled
        self._cancelled: list[str] = []
        # ended, not yet sent to the parent
        self._unsent: list[AgentOutcome] = []
        self._local = False
        self._signal = True

    @workflow.run
    async def run(self, input: AgentBatchInput) -> list[AgentOutcome]:
        # a chunk of local activities: the worker holds the workflow task open while they run
        # and completes it (a heartbeat) at least every 0.8 x the task timeout, with what
        # ended meanwhile; that paces the outcomes, no flush timer
        self._local = any(call.local for call in input.calls)
        self._signal = self._signals(input)
        for call in input.calls:
            self._tasks[call.activity_id] = asyncio.create_task(self._one(call))
        for activity_id in self._cancelled:
            self._cancel(activity_id)
        try:
            await self._flush_until_done(input)
        except asyncio.CancelledError:
            # the parent closed (REQUEST_CANCEL): take every agent down, report them cancelled
            for activity_id in self._tasks:
                self._cancel(activity_id)
            await workflow.wait(list(self._tasks.values()))
        return [self._tasks[call.activity_id].result() for call in input.calls]

    async def _flush_until_done(self, input: AgentBatchInput) -> None:
        """Send what has ended to the parent (the first batch at once, then at most every
        flush_s), until every agent has ended; the last ones travel in the result."""

        def all_done() -> bool:
            return all(task.done() for task in self._tasks.values())

        while not all_done():
            await workflow.wait_condition(lambda: bool(self._unsent) or all_done())
            if all_done() or not self._signal:
                break
            sent, self._unsent = self._unsent, []
            if workflow.patched(SIGNAL_TASK_PATCH):
                signal = asyncio.create_task(send_outcomes(input.parent_workflow_id, sent))
                # a cancel request raises here, whatever becomes of the signal
                await workflow.wait([signal])
            else:
                await send_outcomes(input.parent_workflow_id, sent)
            if not self._local:
                await self._pause(input.flush_s, all_done)
        await workflow.wait(list(self._tasks.values()))

    def _signals(self, input: AgentBatchInput) -> bool:
        """Whether to send outcomes before the chunk ends. A local chunk's signal leaves with
        the workflow task, i.e. at a heartbeat or once every agent has ended; in the second
        case it only held the other outcomes back by one more workflow task (they travel in
        the result after the signal's round trip). So a local chunk whose agents are all
        expected to end well before the first heartbeat (half of it: 0.4 x the task timeout)
        sends everything in its result."""
        if input.flush_s <= 0 or not input.parent_workflow_id:
            return False
        if not self._local:
            return True
        before = 0.4 * workflow.info().task_timeout.total_seconds()
        return not input.local_result_only or any(
            call.expected_s() >= before for call in input.calls
        )

    async def _pause(self, seconds: float, all_done: Callable[[], bool]) -> None:
        # until the next flush, or the end of the chunk, whichever is first
        with contextlib.suppress(asyncio.TimeoutError):
            await workflow.wait_condition(
                all_done, timeout=seconds, timeout_summary="next outcomes to the parent"
            )

    @workflow.signal(name=CANCEL_SIGNAL)
    def cancel_agents(self, activity_ids: list[str]) -> None:
        for activity_id in activity_ids:
            if activity_id in self._tasks:
                self._cancel(activity_id)
            else:
                self._cancelled.append(activity_id)

    def _cancel(self, activity_id: str) -> None:
        task = self._tasks.get(activity_id)
        if task is not None and not task.done():
            task.cancel()

    async def _one(self, call: AgentCall) -> AgentOutcome:
        agent_id = call.task.agent.id
        timeout = timedelta(seconds=call.timeout_s)
        overall = (
            timeout
            if call.schedule_to_close_s is None
            else timedelta(seconds=call.schedule_to_close_s)
        )
        try:
            if call.local:
                result = await workflow.execute_local_activity(
                    run_agent,
                    call.task,
                    activity_id=call.activity_id,
                    schedule_to_close_timeout=overall,
                    start_to_close_timeout=timeout,
                    retry_policy=call.retry_policy(),
                    summary=call.summary,
                )
            else:
                result = await workflow.execute_activity(
                    run_agent,
                    call.task,
                    task_queue=call.task_queue,
                    activity_id=call.activity_id,
                    schedule_to_close_timeout=overall,
                    start_to_close_timeout=timeout,
                    heartbeat_timeout=timedelta(seconds=call.heartbeat_timeout_s),
                    retry_policy=call.retry_policy(),
                    summary=call.summary,
                )
        except ActivityError as err:
            outcome = outcome_from_error(agent_id, err, call.task.agent.retry)
        except (ApplicationError, TimeoutError) as err:
            # a local activity's failure comes without the ActivityError around it
            outcome = outcome_from_error(
                agent_id, as_activity_error(call, err), call.task.agent.retry
            )
        except asyncio.CancelledError:
            outcome = AgentOutcome(agent_id, cancelled=True)
        else:
            outcome = AgentOutcome(agent_id, result=result)
        outcome.activity_id = call.activity_id
        self._unsent.append(outcome)
        return outcome


async def send_outcomes(parent_workflow_id: str, outcomes: list[AgentOutcome]) -> None:
    parent = workflow.get_external_workflow_handle(parent_workflow_id)
    try:
        await parent.signal(OUTCOMES_SIGNAL, outcomes)
    except Exception as err:  # the parent has ended: nobody waits for these any more
        workflow.logger.info("outcomes not delivered to %s: %s", parent_workflow_id, err)


def as_activity_error(call: AgentCall, err: ApplicationError | TimeoutError) -> ActivityError:
    """A local activity's final failure as the ActivityError a server-run activity would raise,
    so outcome_from_error reads both alike; the retry state is the one the server would give
    (a non-retryable type or flag, a timeout, or else the attempts ran out)."""
    if isinstance(err, TimeoutError):
        state = RetryState.TIMEOUT
    elif err.non_retryable or (err.type or "") in call.non_retryable:
        state = RetryState.NON_RETRYABLE_FAILURE
    else:
        state = RetryState.MAXIMUM_ATTEMPTS_REACHED
    wrapped = ActivityError(
        "local activity error",
        scheduled_event_id=0,
        started_event_id=0,
        identity="",
        activity_type="run_agent",
        activity_id=call.activity_id,
        retry_state=state,
    )
    wrapped.__cause__ = err
    return wrapped
