"""A run's side of a shared resource pool (``resource_manager.resource_pool.shared``).

`LeasedAdmission` stands in for the run's private pee.engine.rules.scheduler.Admission: PlanWorkflow
submits, admits and releases exactly as before, but the decision who starts is the pool
workflow's (src/pee/workflows/resource_pool.py). Submitting queues a lease request and releasing a
release, both sent in order by one sender task as `lease` signals; `admit` returns the agents
whose grants (`pool_grant` signals, see `accept_grant`) have arrived. Peaks, queue waits and
usage integrals are this run's own, kept like a private pool's.

`connect` starts the pool on demand (the ensure_resource_pool activity) and returns the
admission to use; `close` tells the pool the run is ending (everything it holds or waits for
goes back) and waits until that message is out. A run that never gets to say so (terminated,
timed out) is found by the pool's holder check.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from pee.activities.pool import ensure_resource_pool
    from pee.activities.pool_types import (
        POOL_SIGNAL,
        EnsurePool,
        LeaseRequest,
        PoolCapacity,
        PoolGrant,
        PoolMessage,
        pool_workflow_id,
    )
    from pee.engine.compiled import Resources
    from pee.engine.rules.scheduler import Admission, Pool, Request

ENSURE_TIMEOUT = timedelta(seconds=30)


@dataclass
class LeasedAdmission(Admission):
    pool_name: str = ""
    # messages not sent yet, in order: ("request", LeaseRequest) or ("release", lease id)
    outbox: list[tuple[str, Any]] = field(default_factory=list)
    # agent id -> its current lease id; lease id -> agent id
    lease_of: dict[str, str] = field(default_factory=dict)
    agent_of: dict[str, str] = field(default_factory=dict)
    requests: int = 0
    # agent ids whose grants arrived and that `admit` has not handed out yet, in grant order
    granted: list[str] = field(default_factory=list)
    sending: bool = False
    # how to start the pool again, and the task sending the outbox (set by `connect`)
    ensure: EnsurePool | None = None
    sender: asyncio.Task[None] | None = field(default=None, repr=False, compare=False)

    def submit(self, request: Request) -> None:
        super().submit(request)
        self.requests += 1
        lease = f"{request.agent_id}#{self.requests}"
        self.lease_of[request.agent_id] = lease
        self.agent_of[lease] = request.agent_id
        self.outbox.append(
            (
                "request",
                LeaseRequest(
                    lease,
                    request.agent_id,
                    request.cpu,
                    request.memory,
                    request.priority,
                    request.remaining_s,
                ),
            )
        )

    def release(self, agent_id: str, now: float | None = None) -> None:
        lease = self.lease_of.pop(agent_id, None)
        if lease is not None:
            self.agent_of.pop(lease, None)
            self.outbox.append(("release", lease))
        self.granted = [a for a in self.granted if a != agent_id]
        super().release(agent_id, now)

    def accept(self, grant: PoolGrant) -> bool:
        """Take in a grant; True when an agent may start. A grant for a lease this run no
        longer wants (released while the grant was on its way) is given straight back."""
        fresh = False
        for lease in grant.leases:
            agent_id = self.agent_of.get(lease)
            if agent_id is None:
                self.outbox.append(("release", lease))
            elif agent_id not in self.running and agent_id not in self.granted:
                # kept even while the adaptive throttle (pee.engine.rules.adaptive) withholds the
                # agent from `waiting`: it starts when the throttle lets it back
                self.granted.append(agent_id)
                fresh = True
            # else a repeated grant of a lease this run already holds: nothing to do
        return fresh

    def admit(self, now: float) -> list[str]:
        """The agents the pool granted, in grant order (the pool already checked the fit)."""
        self.account(now)
        by_id = {r.agent_id: r for r in self.waiting}
        admitted = [a for a in self.granted if a in by_id]
        self.granted = [a for a in self.granted if a not in by_id]
        for agent_id in admitted:
            request = by_id[agent_id]
            self._start(request)
            self.waited[agent_id] = max(0.0, now - request.ready_at)
        if admitted:
            self.waiting = [r for r in self.waiting if r.agent_id not in self.running]
            self.peak_cpu = max(self.peak_cpu, self.cpu_in_use)
            self.peak_memory = max(self.peak_memory, self.memory_in_use)
            self.peak_agents = max(self.peak_agents, len(self.running))
        return admitted

    def take_message(self, done: bool = False) -> PoolMessage:
        info = workflow.info()
        message = PoolMessage(info.workflow_id, info.run_id, done=done)
        for kind, item in self.outbox:
            if kind == "request":
                message.requests.append(item)
            elif message.requests and item in [r.lease for r in message.requests]:
                # requested and released within one batch: the pool never needs to see it
                message.requests = [r for r in message.requests if r.lease != item]
            else:
                message.releases.append(item)
        self.outbox = []
        return message

    def resync(self, failed: PoolMessage) -> PoolMessage:
        """`failed` again, asking for every lease still waiting for a grant as well (for a pool
        started afresh; one that has them ignores the repeats)."""
        known = [r.lease for r in failed.requests]
        for request in self.waiting:
            lease = self.lease_of.get(request.agent_id)
            if lease is not None and lease not in known and request.agent_id not in self.granted:
                failed.requests.append(
                    LeaseRequest(
                        lease,
                        request.agent_id,
                        request.cpu,
                        request.memory,
                        request.priority,
                        request.remaining_s,
                    )
                )
        return failed


def holds(admission: Admission, agent_id: str) -> bool:
    """Whether a shared pool lease (held or requested) is out for the agent, even one the
    adaptive throttle has taken out of `waiting` for now."""
    return isinstance(admission, LeasedAdmission) and agent_id in admission.lease_of


async def connect(private: Admission, resources: Resources) -> Admission:
    """The admission a run uses: `private` unless the plan names a shared pool; then the pool
    is started if needed and a LeasedAdmission with the pool's actual capacity (the first run
    to name a pool sets it) is returned, its sender task running."""
    shared = resources.shared
    if shared is None:
        return private
    name = shared.name
    wanted = private.pool
    capacity = await _ensure(
        EnsurePool(
            name=name,
            capacity=PoolCapacity(wanted.cpu, wanted.memory, wanted.max_agents),
            task_queue=workflow.info().task_queue,
            holder_check_interval_s=shared.holder_check_interval_s,
            aging_s=private.aging_s,
            reserve_after_s=private.reserve_after_s,
        )
    )
    if (capacity.cpu, capacity.memory, capacity.max_agents) != (
        wanted.cpu,
        wanted.memory,
        wanted.max_agents,
    ):
        workflow.logger.warning(
            "shared pool %s runs with cpu %g/memory %g/%d agents (set by the run that started "
            "it), not this plan's cpu %g/memory %g/%d agents",
            name,
            capacity.cpu,
            capacity.memory,
            capacity.max_agents,
            wanted.cpu,
            wanted.memory,
            wanted.max_agents,
        )
    admission = LeasedAdmission(
        Pool(capacity.cpu, capacity.memory, capacity.max_agents),
        aging_s=private.aging_s,
        reserve_after_s=private.reserve_after_s,
        pool_name=name,
    )
    admission.ensure = EnsurePool(
        name=name,
        capacity=capacity,
        task_queue=workflow.info().task_queue,
        holder_check_interval_s=shared.holder_check_interval_s,
        aging_s=private.aging_s,
        reserve_after_s=private.reserve_after_s,
    )
    admission.sender = asyncio.create_task(_send(admission))
    return admission


async def _ensure(request: EnsurePool) -> PoolCapacity:
    return await workflow.execute_activity(
        ensure_resource_pool,
        request,
        start_to_close_timeout=ENSURE_TIMEOUT,
        summary=f"start shared resource pool {request.name} if it is not running",
    )


async def _send(admission: LeasedAdmission) -> None:
    """Send the outbox as `lease` signals, one batch at a time, so the pool sees this run's
    requests and releases in the order they happened. When the pool cannot be reached (someone
    terminated it) it is started again and told every request still waiting (the pool ignores
    requests it already has)."""
    handle = workflow.get_external_workflow_handle(pool_workflow_id(admission.pool_name))
    while True:
        await workflow.wait_condition(lambda: bool(admission.outbox))
        admission.sending = True
        message = admission.take_message()
        try:
            while True:
                try:
                    await handle.signal(POOL_SIGNAL, message)
                    break
                except Exception as err:  # noqa: BLE001 - any failure: the pool is not there
                    workflow.logger.warning(
                        "shared pool %s unreachable (%s): starting it again",
                        admission.pool_name,
                        err,
                    )
                    if admission.ensure is not None:
                        await _ensure(admission.ensure)
                    message = admission.resync(message)
        finally:
            admission.sending = False


async def close(admission: Admission) -> None:
    """The run is ending: tell a shared pool to take back everything this run holds or waits
    for, once everything queued before has been sent. A private pool has nothing to do."""
    if not isinstance(admission, LeasedAdmission):
        return
    if admission.sender is not None:
        await workflow.wait_condition(lambda: not admission.outbox and not admission.sending)
        admission.sender.cancel()
        admission.sender = None
    handle = workflow.get_external_workflow_handle(pool_workflow_id(admission.pool_name))
    try:
        await handle.signal(POOL_SIGNAL, admission.take_message(done=True))
    except Exception as err:  # noqa: BLE001 - a pool that is gone holds nothing of ours
        workflow.logger.warning(
            "shared pool %s unreachable at the end of the run (%s)", admission.pool_name, err
        )
