"""What a PlanWorkflow run hands to its continuation when it continues as new.

Temporal suggests continue-as-new when a history grows large; a plan of thousands of agents
reaches that point mid-run. PlanWorkflow then stops starting groups, lets the running ones end
(a quiescent point: no agent, barrier or validation in flight, so nothing has to be moved across
but recorded values), captures the run's state here and continues as new with it. The new run
restores it before it does anything else, so its `status` query, `context` and final report
cover the whole run, every context version and conflict included, not just its own part.

Pure dataclasses and functions (no temporalio import): the capture is a deterministic function
of workflow state. It travels in PlanRunInput.carried as JSON (`encode`), and `decode`
builds the dataclasses back by hand: the converter's typed decoding walks every field of every
nested dataclass, which for 5,000 agents took the continuation's first workflow task past the
2 s deadlock detector; building them directly takes a few milliseconds.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any

from pee.engine.rules.adaptive import AggressiveCaching, CpuBoost, GroupThrottle, TimeoutStretch
from pee.engine.rules.context import Conflict, Version
from pee.engine.rules.monitoring import MetricAlert
from pee.engine.rules.scheduler import Admission, Pool, Request
from pee.engine.states import AgentStatus, GroupStatus
from pee.workflows.state import AgentState, Alert, Decision, GroupState, RunState

# a group in this state has not started yet: the continuation runs it


@dataclass
class AdmissionTotals:
    """Resource admission's record of the run so far (nothing is running or waiting at a
    quiescent point, so peaks, usage integrals and waits are all there is)."""

    pool: Pool
    peak_cpu: float = 0.0
    peak_memory: float = 0.0
    peak_agents: int = 0
    cpu_seconds: float = 0.0
    memory_seconds: float = 0.0
    accounted_s: float | None = None
    waited: dict[str, float] = field(default_factory=dict)


@dataclass
class AdaptiveRules:
    """The adaptive_resource_allocation rules' learned state (pee.engine.rules.adaptive); None where
    the plan does not use a rule."""

    throttle: GroupThrottle | None = None
    timeouts: TimeoutStretch | None = None
    cpu: CpuBoost | None = None
    caching: AggressiveCaching | None = None


@dataclass
class CarriedRun:
    # ISO 8601 start of the first run: every run-relative time keeps counting from it
    started: str
    # run ids of the earlier runs of this workflow, oldest first
    earlier_runs: list[str]
    agents: dict[str, AgentState]
    groups: dict[str, GroupState]
    alerts: list[Alert]
    events: list[dict[str, Any]]
    versions: dict[str, list[Version]]
    conflicts: list[Conflict]
    conflict_opened_s: dict[str, float]
    rejected_resolutions: list[dict[str, Any]]
    rejected_writes: list[dict[str, Any]]
    cache_hits: int
    cache_misses: int
    cache_levels: dict[str, dict[str, int]]
    context_snapshots: list[dict[str, Any]]
    resumed_snapshot: str | None
    resumed_from: str | None
    lock_peak: dict[str, int]
    lock_waits: dict[str, float]
    admission: AdmissionTotals
    monitor_rows: list[dict[str, Any]]
    monitor_alerts: list[MetricAlert]
    monitor_over: list[str]
    # agent id -> its output cache key (downstream keys carry their lineage)
    cache_keys: dict[str, str]
    adaptive: AdaptiveRules
    # batch mode: children started so far (child ids go on counting) and the largest chunk
    batch_children: int = 0
    batch_largest: int = 0
    # a ledger run (src/pee/workflows/ledger.py, Ledger.carry): the groups and agents whose rows
    # are in the run store travel as their status only ("frozen", "agents"), with the rows
    # flushed so far and the event seq reached; None otherwise
    ledger: dict[str, Any] | None = None


# an agent's and a group's state as PlanWorkflow builds them, and as they travel (JSON values: a
# status enum equals its string)
_FRESH_AGENT = AgentState()
_FRESH_GROUP = GroupState()
_FRESH_AGENT_ROW = {f.name: getattr(_FRESH_AGENT, f.name) for f in fields(AgentState)}
_FRESH_GROUP_ROW = {f.name: getattr(_FRESH_GROUP, f.name) for f in fields(GroupState)}
_FRESH_AGENT_ATTRS = dict(vars(_FRESH_AGENT))
_FRESH_GROUP_ATTRS = dict(vars(_FRESH_GROUP))


def capture(
    run: RunState,
    run_id: str,
    cache_keys: dict[str, str],
    adaptive: AdaptiveRules,
    batch_children: int = 0,
    batch_largest: int = 0,
    ledger: dict[str, Any] | None = None,
) -> CarriedRun:
    """The state of ``run`` (whose current run id is ``run_id``) for its continuation."""
    admission = run.admission
    frozen_groups = ledger["frozen"] if ledger is not None else {}
    frozen_agents = ledger["agents"] if ledger is not None else {}
    return CarriedRun(
        started=run.started.isoformat(),
        earlier_runs=[*run.earlier_runs, run_id],
        # an agent or group still as it was built (not started) is left out: the continuation
        # builds it the same way (half of a 20,000-agent plan's agents, at the drain)
        # (their attribute dicts compared in C: the dataclass's own __eq__ builds two tuples of
        # every field per agent, a visible part of a 20,000-agent continuation's last task)
        agents={
            k: v
            for k, v in run.agents.items()
            if k not in frozen_agents and v.__dict__ != _FRESH_AGENT_ATTRS
        },
        groups={
            k: v
            for k, v in run.groups.items()
            if k not in frozen_groups and v.__dict__ != _FRESH_GROUP_ATTRS
        },
        alerts=list(run.alerts),
        events=list(run.events),
        versions=dict(run.context.versions),
        conflicts=list(run.context.conflicts),
        conflict_opened_s=dict(run.conflict_opened_s),
        rejected_resolutions=list(run.rejected_resolutions),
        rejected_writes=list(run.rejected_writes),
        cache_hits=run.cache_hits,
        cache_misses=run.cache_misses,
        cache_levels={level: dict(counts) for level, counts in run.cache.levels.items()},
        context_snapshots=list(run.context_snapshots),
        resumed_snapshot=run.resumed_snapshot,
        resumed_from=run.resumed_from,
        lock_peak=dict(run.limits.peak),
        lock_waits=dict(run.limits.waits),
        admission=AdmissionTotals(
            pool=admission.pool,
            peak_cpu=admission.peak_cpu,
            peak_memory=admission.peak_memory,
            peak_agents=admission.peak_agents,
            cpu_seconds=admission.cpu_seconds,
            memory_seconds=admission.memory_seconds,
            accounted_s=admission.accounted_s,
            waited=dict(admission.waited),
        ),
        monitor_rows=list(run.monitor.rows),
        monitor_alerts=list(run.monitor.alerts),
        monitor_over=list(run.monitor.over),
        cache_keys=dict(cache_keys),
        adaptive=adaptive,
        batch_children=batch_children,
        batch_largest=batch_largest,
        ledger=ledger,
    )


def restore(run: RunState, carried: CarriedRun) -> None:
    """Put the carried state into a freshly built ``run`` (same plan); admission totals are
    restored separately (`restore_admission`), once the run knows its admission."""
    unknown = sorted(set(carried.agents) - set(run.agents)) + sorted(
        set(carried.groups) - set(run.groups)
    )
    if unknown:
        # the plan travels with the carried state, so this means a hand-made input
        raise ValueError(f"carried state names agents or groups the plan lacks: {unknown}")
    run.started = datetime.fromisoformat(carried.started)
    run.earlier_runs = list(carried.earlier_runs)
    run.agents.update(carried.agents)
    run.groups.update(carried.groups)
    if carried.ledger is not None:
        # in the run store: only their status is needed here
        for agent_id, status in carried.ledger["agents"].items():
            run.agents[agent_id].status = AgentStatus(status)
        for group_id, status in carried.ledger["frozen"].items():
            run.groups[group_id].status = GroupStatus(status)
        run.events_flushed = int(carried.ledger["events_flushed"])
    run.alerts = list(carried.alerts)
    run.events = list(carried.events)
    run.context.versions = {key: list(history) for key, history in carried.versions.items()}
    run.context.conflicts = list(carried.conflicts)
    run.conflict_opened_s = dict(carried.conflict_opened_s)
    run.rejected_resolutions = list(carried.rejected_resolutions)
    run.rejected_writes = list(carried.rejected_writes)
    run.cache_hits = carried.cache_hits
    run.cache_misses = carried.cache_misses
    run.cache.levels = {level: dict(counts) for level, counts in carried.cache_levels.items()}
    run.context_snapshots = list(carried.context_snapshots)
    run.resumed_snapshot = carried.resumed_snapshot
    run.resumed_from = carried.resumed_from
    run.limits.peak = dict(carried.lock_peak)
    run.limits.waits = dict(carried.lock_waits)
    run.monitor.rows = list(carried.monitor_rows)
    run.monitor.alerts = list(carried.monitor_alerts)
    run.monitor.over = list(carried.monitor_over)


def restore_admission(admission: Admission, totals: AdmissionTotals, shared: bool) -> None:
    """The carried peaks, usage and waits onto this run's admission. A private pool also takes
    the carried capacity (increase_cpu_allocation may have raised it); a shared pool's capacity
    is the pool workflow's, whatever the earlier run saw."""
    if not shared:
        admission.pool = totals.pool
    admission.peak_cpu = totals.peak_cpu
    admission.peak_memory = totals.peak_memory
    admission.peak_agents = totals.peak_agents
    admission.cpu_seconds = totals.cpu_seconds
    admission.memory_seconds = totals.memory_seconds
    admission.accounted_s = totals.accounted_s
    admission.waited = dict(totals.waited)


def groups_to_run(run: RunState) -> list[str]:
    """The groups a continuation still has to run: those that had not started."""
    return [
        group.id for group in run.plan.groups if run.groups[group.id].status == GroupStatus.PENDING
    ]


def encode(carried: CarriedRun) -> dict[str, Any]:
    """PlanRunInput.carried: the fields by name. The nested dataclasses stay objects (the
    project's JSON encoder, src/pee/runtime/codec.py, writes them field by field); a deep
    ``dataclasses.asdict`` here would copy every value of the run for nothing."""
    return {f.name: getattr(carried, f.name) for f in fields(carried)}


def decode(data: dict[str, Any]) -> CarriedRun:
    """The CarriedRun `encode` made (raises ValueError on anything else: a hand-made input)."""
    try:
        return _decode(data)
    except (KeyError, TypeError, ValueError) as err:
        raise ValueError(
            f"PlanRunInput.carried is not a carried run ({err!r}): only a run continuing as new "
            "sets it; leave `carried` out of a hand-written input"
        ) from None


def _decode(data: dict[str, Any]) -> CarriedRun:
    rules = data["adaptive"]
    admission = dict(data["admission"])
    return CarriedRun(
        started=str(data["started"]),
        earlier_runs=[str(run) for run in data["earlier_runs"]],
        # statuses travel as their string values: back to the enums; a row as a fresh state
        # encodes (carried by runs before capture left them out) is left to the fresh state
        # the continuation builds: the same, without building it twice in its first task
        agents={
            key: AgentState(**{**row, "status": AgentStatus(row["status"])})
            for key, row in data["agents"].items()
            if row != _FRESH_AGENT_ROW
        },
        groups={
            key: GroupState(
                **{
                    **row,
                    "status": GroupStatus(row["status"]),
                    "history": [Decision(**d) for d in row["history"]],
                }
            )
            for key, row in data["groups"].items()
            if row != _FRESH_GROUP_ROW
        },
        alerts=[Alert(**row) for row in data["alerts"]],
        events=list(data["events"]),
        versions={
            key: [Version(**row) for row in history] for key, history in data["versions"].items()
        },
        conflicts=[Conflict(**row) for row in data["conflicts"]],
        conflict_opened_s=dict(data["conflict_opened_s"]),
        rejected_resolutions=list(data["rejected_resolutions"]),
        rejected_writes=list(data["rejected_writes"]),
        cache_hits=int(data["cache_hits"]),
        cache_misses=int(data["cache_misses"]),
        cache_levels={level: dict(counts) for level, counts in data["cache_levels"].items()},
        context_snapshots=list(data["context_snapshots"]),
        resumed_snapshot=data["resumed_snapshot"],
        resumed_from=data["resumed_from"],
        lock_peak=dict(data["lock_peak"]),
        lock_waits=dict(data["lock_waits"]),
        admission=AdmissionTotals(**{**admission, "pool": Pool(**admission["pool"])}),
        monitor_rows=list(data["monitor_rows"]),
        monitor_alerts=[MetricAlert(**row) for row in data["monitor_alerts"]],
        monitor_over=list(data["monitor_over"]),
        cache_keys=dict(data["cache_keys"]),
        adaptive=AdaptiveRules(
            throttle=None
            if rules["throttle"] is None
            else GroupThrottle(
                **{
                    **rules["throttle"],
                    "held": [Request(**row) for row in rules["throttle"]["held"]],
                }
            ),
            timeouts=None
            if rules["timeouts"] is None
            else TimeoutStretch(
                **{
                    **rules["timeouts"],
                    "pending": {
                        group: [(float(shift), str(why)) for shift, why in moves]
                        for group, moves in rules["timeouts"]["pending"].items()
                    },
                }
            ),
            cpu=None if rules["cpu"] is None else CpuBoost(**rules["cpu"]),
            caching=None if rules["caching"] is None else AggressiveCaching(**rules["caching"]),
        ),
        batch_children=int(data["batch_children"]),
        batch_largest=int(data["batch_largest"]),
        ledger=data.get("ledger"),
    )
