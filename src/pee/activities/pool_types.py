"""What runs and a shared resource pool workflow say to each other (plain dataclasses, no
temporalio import, so activities, the pool and the runs share them).

A run sends its pool `PoolMessage` signals (requests, releases, and finally `done`); the pool
answers with `PoolGrant` signals naming the leases it granted. A lease id is unique within its
run (``agent#n``, n counting that run's requests), so a grant that crosses a release in flight
can never be mistaken for a later request of the same agent.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pee.engine.rules.scheduler import Request

# the pool workflow's type name and id prefix: one workflow per pool name
POOL_WORKFLOW = "ResourcePoolWorkflow"
POOL_ID_PREFIX = "resource-pool-"
# signal names: run -> pool, pool -> run
POOL_SIGNAL = "lease"
GRANT_SIGNAL = "pool_grant"


def pool_workflow_id(name: str) -> str:
    return f"{POOL_ID_PREFIX}{name}"


@dataclass
class PoolCapacity:
    """What the pool may hand out at once (oversubscription already applied)."""

    cpu: float
    memory: float
    max_agents: int


@dataclass
class LeaseRequest:
    lease: str
    agent_id: str
    cpu: float
    memory: float
    priority: int
    remaining_s: float = 0.0


@dataclass
class PoolMessage:
    """A batch from one run, applied in order: requests, then releases, then `done` (the run
    is ending: everything it still holds or waits for goes back)."""

    workflow_id: str
    run_id: str
    requests: list[LeaseRequest] = field(default_factory=list)
    releases: list[str] = field(default_factory=list)
    done: bool = False


@dataclass
class PoolGrant:
    pool: str
    leases: list[str] = field(default_factory=list)


@dataclass
class Holder:
    """A run that holds or waits for leases."""

    workflow_id: str
    run_id: str


@dataclass
class EnsurePool:
    """The ensure_resource_pool activity's argument: start the pool if it is not running."""

    name: str
    capacity: PoolCapacity
    task_queue: str
    holder_check_interval_s: float = 30.0
    aging_s: float = 60.0
    reserve_after_s: float = 120.0


@dataclass
class PoolInput:
    name: str
    capacity: PoolCapacity
    holder_check_interval_s: float = 30.0
    aging_s: float = 60.0
    reserve_after_s: float = 120.0
    # continue-as-new once the history is this long (or the server suggests it)
    continue_after_events: int = 2000
    # carried over continue-as-new: the admission queue and leases (Request.agent_id is the
    # pool key "run_id/lease"), who owns each key, and the running counters
    waiting: list[Request] = field(default_factory=list)
    running: list[Request] = field(default_factory=list)
    owners: dict[str, Holder] = field(default_factory=dict)
    sequence: int = 0
    granted_total: int = 0
    reclaimed_total: int = 0
    generation: int = 0
