"""Context store limits: the seed's resource_pool.context_store (concurrent_readers,
concurrent_writers, lock_timeout), kept as counters in workflow state.

PlanWorkflow takes a reader slot to snapshot an agent's context and a writer slot to commit its
result. Both happen in workflow code, between two awaits, so a slot is held for no workflow time
at all: as the workflow is single-threaded, the limits are always met and lock waits are 0 s
today. The bookkeeping is real nonetheless (a holder that ever awaits while holding its slot, such
as a commit that stores a large value first, makes the next agent wait through
``workflow.wait_condition`` bounded by ``lock_timeout``), and every wait is measured per agent for
the report's ``context_lock_wait_s``.

Pure (no temporalio import): the workflow does the waiting.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pee.engine.compiled import Resources

READ = "read"
WRITE = "write"


class ContextLockTimeout(Exception):
    """A context slot did not come free within lock_timeout."""


@dataclass
class ContextLimits:
    readers: int = 5
    writers: int = 1
    # seconds, already time-scaled
    lock_timeout_s: float = 30.0
    reading: int = 0
    writing: int = 0
    # highest number of slots ever held at once, per kind (the limits hold: <= readers/writers)
    peak: dict[str, int] = field(default_factory=lambda: {READ: 0, WRITE: 0})
    # agent id -> seconds spent waiting for a slot, all waits together
    waits: dict[str, float] = field(default_factory=dict)

    @classmethod
    def from_resources(cls, resources: Resources, time_scale: float) -> ContextLimits:
        """From CompiledPlan.resources (absent settings took the seed's defaults at compile
        time: 5 readers, 1 writer, 30 s)."""
        store = resources.context_store
        timeout = store.lock_timeout_s * time_scale
        return cls(
            readers=max(1, store.readers),
            writers=max(1, store.writers),
            # a scaled-down plan still gives a queued commit a moment
            lock_timeout_s=max(1.0, timeout),
        )

    def free(self, kind: str) -> bool:
        if kind == READ:
            return self.reading < self.readers
        return self.writing < self.writers

    def take(self, kind: str) -> None:
        if not self.free(kind):
            raise ContextLockTimeout(f"no free context {kind} slot")
        if kind == READ:
            self.reading += 1
            self.peak[READ] = max(self.peak[READ], self.reading)
        else:
            self.writing += 1
            self.peak[WRITE] = max(self.peak[WRITE], self.writing)

    def release(self, kind: str) -> None:
        if kind == READ:
            self.reading = max(0, self.reading - 1)
        else:
            self.writing = max(0, self.writing - 1)

    def waited(self, agent_id: str, seconds: float) -> None:
        self.waits[agent_id] = round(self.waits.get(agent_id, 0.0) + max(0.0, seconds), 3)

    def wait_s(self, agent_id: str | None = None) -> float:
        if agent_id is not None:
            return self.waits.get(agent_id, 0.0)
        return round(sum(self.waits.values()), 3)
