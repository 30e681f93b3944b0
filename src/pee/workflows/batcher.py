"""Batch mode, the PlanWorkflow side: agents' activities go to AgentBatchWorkflow children.

AgentRunner.execute (src/pee/workflows/agent_runner.py) hands each agent's AgentCall to
`Batcher.run` and awaits its AgentOutcome instead of starting the activity itself. The dispatcher
(one task, started with the first call) waits until the activation has settled (every agent that
became ready in it, in every group, has submitted), then cuts what is queued into chunks of at most
``chunk_size`` agents, in submission order, and starts one child per chunk while fewer than
``window`` children run; the rest wait for a child to end. A child sends the outcomes of agents
that ended by the `agent_outcomes` signal (the first at once, then at most every ``flush_s``)
and the rest in its result; each agent's future gets its outcome, whichever comes first.

Why chunks per activation and not per group: the plans that need batching are wide DAGs of small
groups (bench/planner.py's plans have groups of 1-5 agents), so per-group children would cost
about as many parent events as the agents did. Why early outcomes: a child that reported only
at its end would hold a fast agent's result until its slowest agent ended, and a group's barrier
would see the fast one as still running at its deadline. Measured cost in the parent (bench/
scale.py, 5,000 agents): 3 events per child, 1 per outcome signal, and the workflow tasks they
wake, ~1.2 events per agent in all, against ~7.7 for a plain run.

Local chunks: an agent whose timeout is at most ``BatchSpec.local_s`` and that has no task queue
of its own runs as a local activity of its child (``AgentCall.local``); a chunk is all local or
none (``_cut``). At a deadline the parent judges such an agent by its child's workflow task
(pee.activities.liveness.local_liveness), as it has no activity on the server. A local chunk
reports when its last agent ends, so it is cut between groups by expected duration where that
saves enough waiting (``BatchSpec.split_gain_s``, pee.engine.rules.local_chunks): the shorter
part starts as a chunk of its own, the longer goes back to the head of the queue.

Cancellation: an agent whose task is cancelled (barrier partial or fallback, the run failing or
cancelled) leaves the queue if its chunk has not started, else its id goes to its child by the
`cancel_agents` signal (one signal per child per activation, for all its cancelled agents). The
awaiting task raises CancelledError at once, as an activity cancelled with TRY_CANCEL does.
Children run with parent_close_policy REQUEST_CANCEL: a parent that ends (or is terminated)
takes their activities down through the child's cancellation.
"""

from __future__ import annotations

import asyncio
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ChildWorkflowError
from temporalio.workflow import ParentClosePolicy

with workflow.unsafe.imports_passed_through():
    from pee.engine.rules.local_chunks import shortest_first
    from pee.workflows import revision
    from pee.workflows.agent_batch import AgentBatchInput, AgentBatchWorkflow, AgentCall
    from pee.workflows.agent_outcome import AgentOutcome
    from pee.workflows.types import BatchSpec

# local chunks cut by expected duration (BatchSpec.split_gain_s), asked only when a cut is made
SPLIT_PATCH = "local-chunks-by-duration"

Pending = tuple[AgentCall, "asyncio.Future[AgentOutcome]"]


class Batcher:
    def __init__(self, spec: BatchSpec, children: int = 0, largest: int = 0) -> None:
        """``children`` and ``largest``: what earlier runs of this workflow started (it
        continued as new), so child ids go on counting and the report covers them."""
        self.chunk_size = max(1, int(spec.chunk_size))
        self.window = max(1, int(spec.window))
        self.flush_s = max(0.0, float(spec.flush_s))
        self.local_s = max(0.0, float(spec.local_s))
        self.split_gain_s = max(0.0, float(spec.split_gain_s))
        self._queue: list[Pending] = []
        # child workflow id -> its handle (None while its start is in flight)
        self._children: dict[str, Any] = {}
        # activity id -> the child running it
        self._where: dict[str, str] = {}
        # activity id -> the future its agent awaits (until its outcome arrives)
        self._futures: dict[str, asyncio.Future[AgentOutcome]] = {}
        # activity ids of the waiting or running agents that are local activities
        self._local: set[str] = set()
        # child workflow id -> activity ids to cancel there
        self._cancels: dict[str, list[str]] = {}
        self._dirty = False
        self._dispatcher: asyncio.Task[None] | None = None
        self._helpers: list[asyncio.Task[None]] = []
        # for the report: children started, the largest chunk
        self.children = children
        self.largest = largest

    def is_local(self, call: AgentCall) -> bool:
        """Run as a local activity: every attempt short (its timeout at most local_s) and on
        the run's own task queue (a local activity runs on the worker running its child)."""
        return 0 < call.timeout_s <= self.local_s and call.task_queue is None

    async def run(self, call: AgentCall) -> AgentOutcome:
        call.local = self.is_local(call)
        if call.local:
            self._local.add(call.activity_id)
        if self._dispatcher is None:
            self._dispatcher = asyncio.create_task(self._dispatch())
        future: asyncio.Future[AgentOutcome] = asyncio.get_running_loop().create_future()
        self._queue.append((call, future))
        self._futures[call.activity_id] = future
        self._dirty = True
        try:
            return await future
        except asyncio.CancelledError:
            self._withdraw(call.activity_id)
            raise
        finally:
            if self._futures.get(call.activity_id) is future:
                del self._futures[call.activity_id]
            self._local.discard(call.activity_id)

    def deliver(self, outcomes: list[AgentOutcome]) -> None:
        """Outcomes a child sent before its chunk ended (the `agent_outcomes` signal)."""
        for outcome in outcomes:
            future = self._futures.get(outcome.activity_id)
            if future is not None and not future.done():
                future.set_result(outcome)

    def where(self, activity_id: str) -> str | None:
        """The id of the started child running this activity; None while it waits in the
        queue or its child is still starting (no worker can have it yet)."""
        child = self._where.get(activity_id)
        if child is None or self._children.get(child) is None:
            return None
        return child

    def is_local_agent(self, activity_id: str) -> bool:
        """Whether this activity runs (or will run) as a local activity of its child."""
        return activity_id in self._local

    def on_close(self, helper: Any) -> None:
        """Stop this helper of the parent's (a task, or anything with close()) with the
        batcher."""
        self._helpers.append(helper)

    def close(self) -> None:
        if self._dispatcher is not None and not self._dispatcher.done():
            self._dispatcher.cancel()
        for helper in self._helpers:
            if isinstance(helper, asyncio.Task):
                if not helper.done():
                    helper.cancel()
            else:
                helper.close()

    @property
    def open_children(self) -> int:
        """Children started (or starting) that have not ended yet."""
        return len(self._children)

    def send_cancels(self) -> None:
        """Send the cancels still waiting for the dispatcher (closed at a drain)."""
        self._send_cancels()

    def summary(self) -> dict[str, int]:
        return {
            "chunk_size": self.chunk_size,
            "window": self.window,
            "children": self.children,
            "largest_chunk": self.largest,
        }

    def _withdraw(self, activity_id: str) -> None:
        for index, (call, _future) in enumerate(self._queue):
            if call.activity_id == activity_id:
                del self._queue[index]
                return
        child = self._where.get(activity_id)
        if child is not None:
            self._cancels.setdefault(child, []).append(activity_id)
            self._dirty = True

    async def _dispatch(self) -> None:
        while True:
            await workflow.wait_condition(lambda: self._dirty)
            # settle: let everything the activation has woken submit first, so one child
            # carries all of it (conditions are checked only once nothing else is ready)
            while self._dirty:
                self._dirty = False
                await workflow.wait_condition(lambda: True)
            self._send_cancels()
            while self._queue and len(self._children) < self.window:
                self._start(self._cut())

    def _cut(self) -> list[Pending]:
        """The next chunk: up to chunk_size queued agents of the head's kind, in submission
        order. A chunk is all local activities or none: a chunk with a local one sends
        outcomes only when the worker completes its workflow task (see AgentBatchWorkflow),
        which would hold a remote agent's outcome back too."""
        local = self._queue[0][0].local
        chunk: list[Pending] = []
        rest: list[Pending] = []
        for pending in self._queue:
            if len(chunk) < self.chunk_size and pending[0].local == local:
                chunk.append(pending)
            else:
                rest.append(pending)
        self._queue = rest
        if local:
            short, long = self._by_duration(chunk)
            if long and revision.patched(SPLIT_PATCH):
                # the long part goes back to the head of the queue: cut again next turn
                chunk, self._queue = short, long + self._queue
        return chunk

    def _by_duration(self, chunk: list[Pending]) -> tuple[list[Pending], list[Pending]]:
        """The chunk's shorter groups and the rest, where cutting them apart saves enough
        waiting (pee.engine.rules.local_chunks); else the chunk and nothing."""
        groups: dict[str, list[Pending]] = {}
        for pending in chunk:
            groups.setdefault(pending[0].task.group, []).append(pending)
        members = list(groups.values())
        keys = [max(call.expected_s() for call, _future in group) for group in members]
        cut = shortest_first(keys, self.split_gain_s)
        if cut is None:
            return chunk, []
        short = {id(pending) for index in cut for pending in members[index]}
        return (
            [p for p in chunk if id(p) in short],
            [p for p in chunk if id(p) not in short],
        )

    def _start(self, chunk: list[Pending]) -> None:
        self.children += 1
        self.largest = max(self.largest, len(chunk))
        child_id = f"{workflow.info().workflow_id}/agents-{self.children}"
        self._children[child_id] = None
        for call, _future in chunk:
            self._where[call.activity_id] = child_id
        asyncio.create_task(self._child(child_id, chunk))

    async def _child(self, child_id: str, chunk: list[Pending]) -> None:
        calls = [call for call, _future in chunk]
        try:
            handle = await workflow.start_child_workflow(
                AgentBatchWorkflow.run,
                AgentBatchInput(
                    calls, workflow.info().workflow_id, self.flush_s, local_result_only=True
                ),
                id=child_id,
                parent_close_policy=ParentClosePolicy.REQUEST_CANCEL,
                static_summary=f"{len(calls)} agents: {calls[0].task.agent.id} .. "
                f"{calls[-1].task.agent.id}",
            )
            self._children[child_id] = handle
            if child_id in self._cancels:
                self._dirty = True
            outcomes: list[AgentOutcome] = await handle
        except Exception as err:
            # the child failed or could not start (it never should): its agents fail with it
            cause = err.cause if isinstance(err, ChildWorkflowError) and err.cause else err
            message = f"agent batch {child_id} failed: {cause}"
            outcomes = [AgentOutcome(call.task.agent.id, error=message) for call in calls]
        finally:
            self._children.pop(child_id, None)
            self._cancels.pop(child_id, None)
            for call in calls:
                if self._where.get(call.activity_id) == child_id:
                    del self._where[call.activity_id]
            # a window slot came free
            self._dirty = True
        for (_call, future), outcome in zip(chunk, outcomes, strict=True):
            if not future.done():
                future.set_result(outcome)

    def _send_cancels(self) -> None:
        for child_id in list(self._cancels):
            handle = self._children.get(child_id)
            if handle is None:
                continue  # still starting: sent once it has started
            ids = self._cancels.pop(child_id)
            asyncio.create_task(self._signal(handle, child_id, ids))

    async def _signal(self, handle: Any, child_id: str, ids: list[str]) -> None:
        try:
            await handle.signal(AgentBatchWorkflow.cancel_agents, ids)
        except Exception as err:  # the child ended meanwhile: nothing left to cancel
            workflow.logger.info("cancel_agents to %s not delivered: %s", child_id, err)
