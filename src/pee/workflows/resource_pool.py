"""ResourcePoolWorkflow: one long-lived workflow per shared pool name (id ``resource-pool-NAME``)
that leases CPU, memory and agent slots to the agents of every run naming it.

Admission is pee.engine.rules.scheduler.Admission, the same as a private pool: priority (aged),
longest remaining path, arrival order; smaller requests pass a large one that does not fit until it
has waited ``reserve_after_s``, then it holds a reservation. Keys are ``run_id/lease`` so agents of
different runs never collide; arrival order across runs is the pool's own sequence number.

- Messages (`lease` signals) are queued by the handler and applied by the main loop, in arrival
  order, so every decision happens in workflow code at a point fixed by history.
- Grants go back as `pool_grant` signals, one per run per round; a signal that fails (the run
  is gone) reclaims everything that run held or waited for.
- Reclamation of silent holders: every ``holder_check_interval_s`` while anyone holds or waits,
  the check_pool_holders activity asks the server for each holder run's status; leases of runs
  that are no longer running (terminated, timed out, finished without saying so) come back.
  Runs that end normally say `done` and release at once.
- Continue-as-new once the history reaches ``continue_after_events`` (or the server suggests
  it), carrying the queue, the leases, their owners and the counters in PoolInput.

Determinism: lists and insertion-ordered dicts only; workflow.now() for time; activity results
decide reclamation.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from pee.activities.pool import check_pool_holders
    from pee.activities.pool_types import (
        GRANT_SIGNAL,
        POOL_SIGNAL,
        POOL_WORKFLOW,
        Holder,
        PoolGrant,
        PoolInput,
        PoolMessage,
    )
    from pee.engine.rules.scheduler import Admission, Pool, Request

CHECK_TIMEOUT = timedelta(seconds=30)


@workflow.defn(name=POOL_WORKFLOW)
class ResourcePoolWorkflow:
    @workflow.init
    def __init__(self, input: PoolInput) -> None:
        self._input = input
        capacity = input.capacity
        self._admission = Admission(
            Pool(capacity.cpu, capacity.memory, capacity.max_agents),
            aging_s=max(1e-3, input.aging_s),
            reserve_after_s=input.reserve_after_s,
            waiting=list(input.waiting),
            running={r.agent_id: r for r in input.running},
        )
        self._owners: dict[str, Holder] = dict(input.owners)
        self._sequence = input.sequence
        self._granted_total = input.granted_total
        self._reclaimed_total = input.reclaimed_total
        self._inbox: list[PoolMessage] = []
        self._next_check_s = self._now() + input.holder_check_interval_s

    @workflow.run
    async def run(self, input: PoolInput) -> None:
        self._details()
        while True:
            timeout = None
            if self._owners:
                timeout = max(0.001, round(self._next_check_s - self._now(), 3))
            with contextlib.suppress(asyncio.TimeoutError):
                await workflow.wait_condition(
                    lambda: bool(self._inbox),
                    timeout=timeout,
                    timeout_summary="check lease holders",
                )
            self._apply_inbox()
            if self._owners and self._now() >= self._next_check_s:
                await self._check_holders()
            while await self._grant():
                pass  # a failed grant reclaimed a run's leases: hand them out again
            self._details()
            if self._should_continue() and not self._inbox:
                await workflow.wait_condition(workflow.all_handlers_finished)
                if not self._inbox:
                    workflow.continue_as_new(self._carry())

    # --- messages ---------------------------------------------------------------------------

    @workflow.signal(name=POOL_SIGNAL)
    def lease(self, message: PoolMessage) -> None:
        self._inbox.append(message)

    @workflow.query
    def state(self) -> dict[str, Any]:
        """The pool now: capacity, units in use, leases held and waiting (with their run and
        agent), holder runs, and counters."""
        admission, now = self._admission, self._now()

        def lease(request: Request) -> dict[str, Any]:
            holder = self._owners.get(request.agent_id)
            return {
                "key": request.agent_id,
                "workflow_id": holder.workflow_id if holder else None,
                "agent": request.agent_id.split("/", 1)[-1].split("#", 1)[0],
                "cpu": request.cpu,
                "memory": request.memory,
                "priority": request.priority,
                "waited_s": round(max(0.0, now - request.ready_at), 3),
            }

        pool = admission.pool
        return {
            "name": self._input.name,
            "capacity": {"cpu": pool.cpu, "memory": pool.memory, "max_agents": pool.max_agents},
            "in_use": {
                "cpu": admission.cpu_in_use,
                "memory": admission.memory_in_use,
                "agents": len(admission.running),
            },
            "running": [lease(r) for r in admission.running.values()],
            "waiting": [lease(r) for r in admission.waiting],
            "holders": [holder.workflow_id for holder in self._holders()],
            "granted_total": self._granted_total,
            "reclaimed_total": self._reclaimed_total,
            "generation": self._input.generation,
            "history_length": workflow.info().get_current_history_length(),
        }

    def _apply_inbox(self) -> None:
        now = self._now()
        if not self._owners:
            # idle until now: the first holder check is one interval after someone arrives
            self._next_check_s = now + self._input.holder_check_interval_s
        messages, self._inbox = self._inbox, []
        for message in messages:
            holder = Holder(message.workflow_id, message.run_id)
            for request in message.requests:
                key = f"{message.run_id}/{request.lease}"
                if key in self._owners:
                    continue  # a resent batch
                candidate = Request(
                    key,
                    request.cpu,
                    request.memory,
                    request.priority,
                    request.remaining_s,
                    self._sequence,
                    now,
                )
                if not self._admission.fits_ever(candidate):
                    workflow.logger.warning(
                        "pool %s: lease %s of %s can never fit (cpu %g/memory %g); ignored",
                        self._input.name,
                        request.lease,
                        message.workflow_id,
                        request.cpu,
                        request.memory,
                    )
                    continue
                self._sequence += 1
                self._admission.submit(candidate)
                self._owners[key] = holder
            for lease in message.releases:
                self._release(f"{message.run_id}/{lease}", now)
            if message.done:
                self._release_run(message.run_id, now)

    def _release(self, key: str, now: float) -> None:
        if self._owners.pop(key, None) is not None:
            self._admission.release(key, now)

    def _release_run(self, run_id: str, now: float) -> int:
        keys = [key for key, holder in self._owners.items() if holder.run_id == run_id]
        for key in keys:
            self._release(key, now)
        return len(keys)

    def _holders(self) -> list[Holder]:
        found: list[Holder] = []
        for holder in self._owners.values():
            if holder not in found:
                found.append(holder)
        return found

    async def _check_holders(self) -> None:
        gone: list[Holder] = await workflow.execute_activity(
            check_pool_holders,
            self._holders(),
            start_to_close_timeout=CHECK_TIMEOUT,
            retry_policy=RetryPolicy(maximum_interval=timedelta(seconds=10)),
            summary=f"pool {self._input.name}: are the holder runs still running?",
        )
        for holder in gone:
            self._reclaim(holder, "no longer running")
        self._next_check_s = self._now() + self._input.holder_check_interval_s

    def _reclaim(self, holder: Holder, why: str) -> None:
        count = self._release_run(holder.run_id, self._now())
        if count:
            self._reclaimed_total += count
            workflow.logger.warning(
                "pool %s: reclaimed %d lease(s) of %s (%s)",
                self._input.name,
                count,
                holder.workflow_id,
                why,
            )

    async def _grant(self) -> bool:
        """Admit what fits and tell each run; True when a run could not be told (it is gone,
        its leases were reclaimed, so there may be more to grant)."""
        admitted = self._admission.admit(self._now())
        if not admitted:
            return False
        self._granted_total += len(admitted)
        by_run: dict[str, list[str]] = {}
        for key in admitted:
            by_run.setdefault(self._owners[key].run_id, []).append(key.split("/", 1)[1])
        holders = {h.run_id: h for h in self._holders()}
        targets = [holders[run_id] for run_id in by_run]
        results = await asyncio.gather(
            *(
                self._signal(holder, PoolGrant(self._input.name, by_run[holder.run_id]))
                for holder in targets
            ),
            return_exceptions=True,
        )
        failed = False
        for holder, result in zip(targets, results, strict=True):
            if isinstance(result, BaseException):
                if isinstance(result, asyncio.CancelledError):
                    raise result
                self._reclaim(holder, f"its grant could not be delivered: {result}")
                failed = True
        return failed

    async def _signal(self, holder: Holder, grant: PoolGrant) -> None:
        handle = workflow.get_external_workflow_handle(holder.workflow_id, run_id=holder.run_id)
        await handle.signal(GRANT_SIGNAL, grant)

    # --- continue-as-new and bookkeeping ----------------------------------------------------

    def _should_continue(self) -> bool:
        info = workflow.info()
        return (
            info.is_continue_as_new_suggested()
            or info.get_current_history_length() >= self._input.continue_after_events
        )

    def _carry(self) -> PoolInput:
        source = self._input
        return PoolInput(
            name=source.name,
            capacity=source.capacity,
            holder_check_interval_s=source.holder_check_interval_s,
            aging_s=source.aging_s,
            reserve_after_s=source.reserve_after_s,
            continue_after_events=source.continue_after_events,
            waiting=list(self._admission.waiting),
            running=list(self._admission.running.values()),
            owners=dict(self._owners),
            sequence=self._sequence,
            granted_total=self._granted_total,
            reclaimed_total=self._reclaimed_total,
            generation=source.generation + 1,
        )

    def _now(self) -> float:
        return round(workflow.now().timestamp(), 3)

    def _details(self) -> None:
        admission, pool = self._admission, self._admission.pool
        workflow.set_current_details(
            f"**pool {self._input.name}**: cpu {admission.cpu_in_use:g}/{pool.cpu:g}, "
            f"memory {admission.memory_in_use:g}/{pool.memory:g}, agents "
            f"{len(admission.running)}/{pool.max_agents}; {len(admission.waiting)} waiting; "
            f"{len(self._holders())} run(s) holding or waiting; "
            f"`temporal workflow query --workflow-id {workflow.info().workflow_id} "
            "--type state`"
        )
