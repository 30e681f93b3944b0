"""What PlanWorkflow records about agents and groups, and how that becomes the run report.

Plain dataclasses and functions of recorded values (no temporalio import), so the report is
a deterministic function of history. The run's versioned context (pee.engine.rules.context) lives
here too: its conflicts, version counts and rejected writes and resolutions are part of the report.
Times are run-relative seconds here; the report turns them into ISO 8601 timestamps from the run's
start (`workflow.now()` when the run began).
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from itertools import compress, islice, repeat
from operator import attrgetter
from typing import Any

from pee.engine.compiled import CompiledGroup, CompiledPlan
from pee.engine.dag import (
    agent_graph,
    iso_at,
    longest_path,
    parallel_efficiency,
    utilisation_percentage,
)
from pee.engine.report.bottleneck import analyse as analyse_bottlenecks
from pee.engine.report.cache_stats import CacheCounters
from pee.engine.report.fan_out_path import expanded_graph, expanded_groups
from pee.engine.rules import barrier
from pee.engine.rules.context import OPEN, Conflict, VersionedContext
from pee.engine.rules.fan_out_barrier import summarise
from pee.engine.rules.merge import value_hash
from pee.engine.rules.monitoring import Monitor
from pee.engine.rules.scheduler import Admission, Pool
from pee.engine.states import (
    AGENT_UNFINISHED,
    AGENT_WAITING,
    GROUP_PASSED,
    AgentStatus,
    BarrierStatus,
    GroupStatus,
    RunStatus,
)
from pee.workflows.locks import ContextLimits

# open conflicts listed with their resolve commands in the current details
DETAILS_CONFLICTS = 3
_STATUS = attrgetter("status")


@dataclass
class AgentState:
    status: AgentStatus = AgentStatus.PENDING
    # first start and last end (a sequential fallback runs an agent a second time)
    started_s: float | None = None
    ended_s: float | None = None
    run_started_s: float | None = None
    # time spent running, all runs together
    busy_s: float = 0.0
    # attempts of earlier runs (the parallel run before a fallback) + of the current run
    earlier_attempts: int = 0
    attempts: int = 0
    # served from the agent output cache: succeeded without running its activity
    cached: bool = False
    # reused from the run this one resumes (run --resume-from): succeeded, never ran here
    resumed: bool = False
    outputs: list[str] = field(default_factory=list)
    defaulted_outputs: list[str] = field(default_factory=list)
    missing_inputs: list[str] = field(default_factory=list)
    error: str | None = None
    # failed with a non-retryable error: the barrier aborts the group at once
    critical: bool = False
    progress: float | None = None
    last_progress_s: float | None = None
    # open conflicts on its blocking inputs while it waits to start (status "blocked")
    blocked_on: list[str] = field(default_factory=list)
    blocked_since_s: float | None = None
    blocked_s: float = 0.0
    # ready but waiting for admission (status "queued"): since when, and all waits together
    queued_since_s: float | None = None
    queue_wait_s: float = 0.0
    # the version vector of its last snapshot (key -> version, 0 = absent)
    snapshot: dict[str, int] = field(default_factory=dict)
    # context key -> commit outcome (created, fast_forward, merged, unchanged, conflict, rejected)
    commits: dict[str, str] = field(default_factory=dict)
    # the successful attempt's backend wall time and its network wait, as the worker measured
    # them (AgentResult.elapsed_s / io_wait_s; None when not measured)
    attempt_s: float | None = None
    io_wait_s: float | None = None

    def barrier_view(self) -> barrier.AgentView:
        status: BarrierStatus
        if self.status in AGENT_WAITING:
            # not started yet, like an agent a sequential group has not reached: never judged
            # as making progress, whatever it waits for
            status = BarrierStatus.PENDING
        elif self.status in (AgentStatus.PENDING, AgentStatus.RUNNING, AgentStatus.SUCCEEDED):
            status = BarrierStatus(self.status)
        elif self.critical:
            status = barrier.CRITICAL_FAILED
        else:
            status = barrier.FAILED
        return barrier.AgentView(status, self.last_progress_s, self.attempts)

    def queued_s(self, now_s: float) -> float:
        waiting = now_s - self.queued_since_s if self.queued_since_s is not None else 0.0
        return round(self.queue_wait_s + max(0.0, waiting), 3)

    def duration_s(self, now_s: float) -> float | None:
        if self.started_s is None:
            return None
        running = now_s - self.run_started_s if self.run_started_s is not None else 0.0
        return round(self.busy_s + running, 3)


@dataclass
class Decision:
    at_s: float
    decision: str
    reason: str


@dataclass
class GroupState:
    status: GroupStatus = GroupStatus.PENDING
    started_s: float | None = None
    ended_s: float | None = None
    deadline_s: float | None = None
    decision: str | None = None
    reason: str | None = None
    quality_impact: str | None = None
    extensions: int = 0
    history: list[Decision] = field(default_factory=list)
    # the deadline stops while an agent of the group is blocked on a conflict: since when, and
    # how long all such pauses lasted (each one moved deadline_s later by its length)
    paused_since_s: float | None = None
    paused_s: float = 0.0
    # the cross-validation of its validation agents, once run (see CrossValidator.validate)
    cross_validation: dict[str, Any] | None = None
    # passed in the run this one resumes: succeeded without running
    resumed: bool = False

    def deadline_at(self, now_s: float) -> float | None:
        """The deadline as of now: during a pause it moves along with the clock."""
        if self.deadline_s is None:
            return None
        if self.paused_since_s is None:
            return self.deadline_s
        return round(self.deadline_s + max(0.0, now_s - self.paused_since_s), 3)


@dataclass
class Alert:
    at_s: float
    group: str
    level: str  # warning | critical
    message: str


@dataclass
class RunState:
    """Everything the report is made of, besides the plan and the workflow's identity."""

    plan: CompiledPlan
    started: datetime
    time_scale: float
    agents: dict[str, AgentState]
    groups: dict[str, GroupState]
    status: RunStatus = RunStatus.RUNNING
    error: str | None = None
    ended_s: float | None = None
    alerts: list[Alert] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    context: VersionedContext = field(default_factory=VersionedContext)
    # conflict id -> run-relative seconds it opened at (its conflict timeout counts from there)
    conflict_opened_s: dict[str, float] = field(default_factory=dict)
    # conflict_timeout x time_scale
    conflict_timeout_s: float = 3600.0
    # invalid resolve_conflict signals: {at, conflict_id, choice, by, reason}
    rejected_resolutions: list[dict[str, Any]] = field(default_factory=list)
    # writes refused for ownership: {at, agent, key, owner, message}
    rejected_writes: list[dict[str, Any]] = field(default_factory=list)
    cache_hits: int = 0
    cache_misses: int = 0
    # the other cache levels' counters (pee.engine.report.cache_stats) and the context snapshots
    # taken: {group, key, at_s, stored}, in the order taken (src/pee/workflows/cache_levels.py)
    cache: CacheCounters = field(default_factory=CacheCounters)
    context_snapshots: list[dict[str, Any]] = field(default_factory=list)
    # the snapshot key a resumed run's context came from (None: read by the context query)
    resumed_snapshot: str | None = None
    # the workflow id of the run this one resumes (run --resume-from), else None
    resumed_from: str | None = None
    # run ids of this workflow's earlier runs, oldest first: it continued as new from them
    # (src/pee/workflows/carry.py)
    earlier_runs: list[str] = field(default_factory=list)
    limits: ContextLimits = field(default_factory=ContextLimits)
    # per-run resource admission (pee.engine.rules.scheduler): who runs, who waits, peaks and usage
    admission: Admission = field(default_factory=lambda: Admission(Pool.unlimited()))
    # samples of the admission state and threshold alerts (pee.engine.rules.monitoring)
    monitor: Monitor = field(default_factory=Monitor)
    # for the details text, kept as they change so no walk over every group is needed: groups
    # started and not ended yet (insertion order), and the latest barrier decision
    running: dict[str, None] = field(default_factory=dict)
    last_decision: tuple[str, Decision] | None = None
    # events already handed to the run store (a ledger run, src/pee/workflows/ledger.py): the
    # next event's seq counts on from them
    events_flushed: int = 0


def build_report(run: RunState, workflow_id: str, run_id: str, now_s: float) -> dict[str, Any]:
    """The `status` query answer and the workflow result (shape: docs/reference/report.md)."""
    plan = run.plan
    end_s = run.ended_s if run.ended_s is not None else now_s
    # time an agent waited for a person to settle a conflict is on its path too: no schedule
    # could have run it sooner, so it counts like work, not like scheduling overhead
    durations = {
        a.id: (run.agents[a.id].duration_s(end_s) or 0.0) + run.agents[a.id].blocked_s
        for a in plan.agents
    }
    # over the fan-outs' items, not their templates (pee.engine.report.fan_out_path)
    # the graph once, for the critical path and the bottleneck analysis
    graph = agent_graph(expanded_graph(plan.agents), expanded_groups(plan.groups))
    lower_bound, path = longest_path(graph.ids, graph.deps, durations, graph.order)
    report = {
        **report_head(run, workflow_id, run_id, end_s),
        # per passed group: sha256 of its agents' output values, what a resume reuses
        "snapshots": group_snapshots(run),
        **report_reuse_and_estimates(run),
        "agents": {
            agent.id: _agent_report(run, agent.id, agent.group, agent.role, agent.kind, end_s)
            for agent in plan.agents
        },
        "groups": {group.id: _group_report(run, group.id, end_s) for group in plan.groups},
        "alerts": alerts_report(run),
        "critical_path": path,
        "parallel_efficiency": parallel_efficiency(lower_bound, end_s),
        "events": [dict(event) for event in run.events],
        **context_report(run),
        "resources": resources_report(run, end_s),
        # quality metric: each cross-validated group's mean validation score
        "output_quality_scores": {
            group.id: run.groups[group.id].cross_validation["score"]  # type: ignore[index]
            for group in plan.groups
            if run.groups[group.id].cross_validation is not None
        },
    }
    # where the time went, once the run is over (pee.engine.report.bottleneck; a running run has no
    # answer)
    report["bottlenecks"] = (
        analyse_bottlenecks(plan, report, graph) if run.status != RunStatus.RUNNING else None
    )
    return report


def report_head(run: RunState, workflow_id: str, run_id: str, end_s: float) -> dict[str, Any]:
    """The report's first fields, the same in the full report and a ledger run's summary."""
    return {
        "workflow_id": workflow_id,
        "run_id": run_id,
        "plan": run.plan.name,
        "status": run.status,
        "error": run.error,
        "time_scale": run.time_scale,
        "started_at": iso_at(run.started, 0.0),
        "finished_at": iso_at(run.started, run.ended_s),
        "makespan_s": round(end_s, 3),
        "resumed_from": run.resumed_from,
        # the runs this workflow continued as new from, oldest first (their part is in here)
        "earlier_runs": list(run.earlier_runs),
    }


def report_reuse_and_estimates(run: RunState) -> dict[str, Any]:
    """Caching and resume counters, and the plan's estimates at this run's time scale."""
    return {
        "cache": cache_report(run),
        "context_snapshots": [dict(entry) for entry in run.context_snapshots],
        "resumed_snapshot": run.resumed_snapshot,
        "estimated_makespan_s": round(run.plan.estimated_makespan_s * run.time_scale, 3),
        "sequential_s": round(run.plan.sequential_s * run.time_scale, 3),
    }


def alerts_report(run: RunState) -> list[dict[str, Any]]:
    return [
        {
            "at": iso_at(run.started, a.at_s),
            "group": a.group,
            "level": a.level,
            "message": a.message,
        }
        for a in run.alerts
    ]


def context_report(run: RunState) -> dict[str, Any]:
    """The versioned context's part of the report: conflicts, versions, refusals, lock waits."""
    return {
        "conflicts": [conflict_report(run, c) for c in run.context.conflicts],
        "context_versions": run.context.version_counts(),
        "rejected_resolutions": [dict(r) for r in run.rejected_resolutions],
        "rejected_writes": [dict(r) for r in run.rejected_writes],
        "context_lock_wait_s": run.limits.wait_s(),
    }


def cache_report(run: RunState) -> dict[str, Any]:
    """Per level hits, misses, hit_ratio (docs/reference/caching.md); agent output lookups are the
    workflow's own counters, the other levels come from pee.engine.report.cache_stats."""
    counters = CacheCounters({level: dict(counts) for level, counts in run.cache.levels.items()})
    counters.add({"agent_output": {"hits": run.cache_hits, "misses": run.cache_misses}})
    return counters.report()


def group_snapshots(run: RunState) -> dict[str, str]:
    """Group id -> value_hash of {"agent.output": value} over its agents' own keys, for every
    group that passed its barrier: equal hashes, equal outputs (a resumed group shows the hash
    of what it reused)."""
    values = run.context.values()
    # each agent's own keys, found once (not once per group: a 5,000-agent report must fit a
    # workflow task); value_hash is canonical, so the order of keys does not matter
    by_agent: dict[str, dict[str, Any]] = {}
    for key, value in values.items():
        if "." in key:
            by_agent.setdefault(key.split(".", 1)[0], {})[key] = value
    snapshots = {}
    for group in run.plan.groups:
        if run.groups[group.id].status not in GROUP_PASSED:
            continue
        owned: dict[str, Any] = {}
        for agent_id in group.agents:
            owned.update(by_agent.get(agent_id, {}))
        snapshots[group.id] = value_hash(owned)
    return snapshots


def resources_report(run: RunState, end_s: float, per_agent: bool = True) -> dict[str, Any]:
    """Peaks of units and agents in use, mean CPU use over the makespan as a percentage of what
    admission may hand out (oversubscription included; None for an unlimited pool), and each
    agent's time queued for resources (for a shared pool, its name). ``per_agent`` False: no
    queue waits (a ledger summary: the assembler reads them from the agent rows)."""
    admission = run.admission
    cpu_seconds = admission.cpu_seconds
    if admission.accounted_s is not None and end_s > admission.accounted_s:
        cpu_seconds += admission.cpu_in_use * (end_s - admission.accounted_s)
    pool = admission.pool
    # a shared pool (src/pee/workflows/pool_lease.py): peaks and usage are this run's share of it
    shared = getattr(admission, "pool_name", "")
    return {
        **({"shared_pool": shared} if shared else {}),
        "peak_cpu": round(admission.peak_cpu, 3),
        "peak_memory": round(admission.peak_memory, 3),
        "peak_agents": admission.peak_agents,
        "utilisation_percentage": (
            utilisation_percentage(cpu_seconds, pool.cpu, end_s) if pool.limited else None
        ),
        "queue_wait_s": {a.id: run.agents[a.id].queued_s(end_s) for a in run.plan.agents}
        if per_agent
        else {},
        # event-driven samples per sampling_interval and alerts over alert_thresholds
        **run.monitor.report(),
    }


def conflict_report(run: RunState, conflict: Conflict) -> dict[str, Any]:
    """A conflict as the `conflicts` query and the report show it.

    ``current_version`` is the key's version NOW (what a resolution's expected_version must
    be); ``opened_version`` the one the conflict opened against. ``blocked_agents``: agents
    waiting for it to be resolved; ``timeout_at``: when the plan's timeout_policy applies.
    """
    row = asdict(conflict)
    row["opened_version"] = conflict.current_version
    row["current_version"] = run.context.current_version(conflict.key)
    row["blocked_agents"] = [
        agent.id
        for agent in run.plan.agents
        if run.agents[agent.id].status == AgentStatus.BLOCKED
        and conflict.id in run.agents[agent.id].blocked_on
    ]
    opened_s = run.conflict_opened_s.get(conflict.id)
    row["timeout_at"] = (
        iso_at(run.started, opened_s + run.conflict_timeout_s)
        if conflict.status == OPEN and opened_s is not None
        else None
    )
    return row


def _agent_report(
    run: RunState, agent_id: str, group: str, role: str, kind: str, end_s: float
) -> dict[str, Any]:
    state = run.agents[agent_id]
    return {
        "status": state.status,
        "group": group,
        "role": role,
        "kind": kind,
        "started_at": iso_at(run.started, state.started_s),
        "finished_at": iso_at(run.started, state.ended_s),
        "duration_s": state.duration_s(end_s),
        "attempts": state.attempts,
        "outputs": list(state.outputs),
        "defaulted_outputs": list(state.defaulted_outputs),
        "missing_inputs": list(state.missing_inputs),
        "cached": state.cached,
        "resumed": state.resumed,
        "error": state.error,
        "progress": state.progress,
        "last_progress_at": iso_at(run.started, state.last_progress_s),
        "blocked_on": list(state.blocked_on),
        # while blocked: since when it waits for a person (None when not blocked)
        "blocked_since": iso_at(run.started, state.blocked_since_s)
        if state.status == AgentStatus.BLOCKED
        else None,
        "blocked_s": round(
            state.blocked_s
            + (end_s - state.blocked_since_s if state.blocked_since_s is not None else 0.0),
            3,
        ),
        "snapshot": dict(state.snapshot),
        "commits": dict(state.commits),
        "context_lock_wait_s": run.limits.wait_s(agent_id),
        "queue_wait_s": state.queued_s(end_s),
        "attempt_s": state.attempt_s,
        "io_wait_s": state.io_wait_s,
    }


def _group_report(run: RunState, group_id: str, now_s: float) -> dict[str, Any]:
    state = run.groups[group_id]
    group = run.plan.group(group_id)
    paused = state.paused_s
    if state.paused_since_s is not None:
        paused += max(0.0, now_s - state.paused_since_s)
    row = {
        "status": state.status,
        "agents": list(group.agents),
        "depends_on": list(group.depends_on),
        "parallel": group.parallel,
        "started_at": iso_at(run.started, state.started_s),
        "finished_at": iso_at(run.started, state.ended_s),
        "deadline_at": iso_at(run.started, state.deadline_at(now_s)),
        # how long the deadline stood still while agents waited on conflicts
        "paused_s": round(paused, 3),
        "cross_validation": state.cross_validation,
        "resumed": state.resumed,
        "barrier": {
            "decision": state.decision,
            "extensions": state.extensions,
            "reason": state.reason,
            "quality_impact": state.quality_impact,
            "history": [
                {"at": iso_at(run.started, d.at_s), "decision": d.decision, "reason": d.reason}
                for d in state.history
            ],
        },
    }
    if group.fan_out is not None:
        row["fan_out"] = fan_out_report(run, group, now_s)
    return row


def item_rows(run: RunState, group: CompiledGroup) -> list[list[str]]:
    """A fan-out group's rows item by item (agent-level: [agent[i]]; group-level: the members'
    [member[i], ...]); [] until its list is known (its agents are still the members)."""
    fan_out = group.fan_out
    if fan_out is None or list(group.agents) == list(fan_out.members):
        return []
    width = len(fan_out.members) or 1
    return [list(group.agents[i : i + width]) for i in range(0, len(group.agents), width)]


def item_status(run: RunState, rows: list[str]) -> str:
    """One item's status: its first member that did not succeed decides, else succeeded."""
    for agent_id in rows:
        status = run.agents[agent_id].status
        if status != AgentStatus.SUCCEEDED:
            return str(status)
    return str(AgentStatus.SUCCEEDED)


def fan_out_report(run: RunState, group: CompiledGroup, now_s: float) -> dict[str, Any]:
    """The fan-out row of a group's report: its source, how many items, how they ended and how
    long they took (p50/p95/max over the items that ran; an item of a group-level fan-out takes
    its members' durations together)."""
    fan_out = group.fan_out
    assert fan_out is not None
    items = item_rows(run, group)
    statuses = [item_status(run, rows) for rows in items]
    durations: list[float | None] = []
    for rows in items:
        taken = [run.agents[a].duration_s(now_s) for a in rows]
        ran = [t for t in taken if t is not None]
        durations.append(round(sum(ran), 3) if ran else None)
    summary = summarise(statuses, durations)
    return {
        "level": str(fan_out.level),
        "source": fan_out.source,
        "members": list(fan_out.members),
        "max_parallel": fan_out.max_parallel,
        # None until the list is known
        "items": summary.items if items else None,
        "running": sum(s == AgentStatus.RUNNING for s in statuses),
        **{k: v for k, v in asdict(summary).items() if k != "items"},
    }


def current_details(
    run: RunState,
    now_s: float,
    workflow_id: str = "WORKFLOW_ID",
    waiting: list[str] | None = None,
) -> str:
    """Markdown for `workflow.set_current_details`: where the run is, at a glance in the Web UI,
    and, while conflicts are open, what blocks and the exact commands that resolve them.
    `waiting`: waiting_for_person(run) when the caller has it already (None: found here)."""
    # the text stays as written until the next workflow task, maybe minutes later: it says when
    lines = [
        f"**{run.plan.name}**: {run.status}, {now_s:.1f} s in "
        f"(as of {clock_at(run.started, now_s)})"
    ]
    if waiting is None:
        waiting = waiting_for_person(run)
    if waiting:
        # the headline a person sees first: the run is not busy, it waits for them
        since = min(run.agents[a].blocked_since_s or 0.0 for a in waiting)
        conflicts = unique_ids(c for a in waiting for c in run.agents[a].blocked_on)
        lines = [
            f"**{run.plan.name}**: waiting for a person since "
            f"{iso_at(run.started, since)} ({now_s - since:.1f} s as of "
            f"{iso_at(run.started, now_s)}): conflict {', '.join(conflicts)} blocks "
            f"{', '.join(waiting)}; resolve it with a command below"
        ]
    # the running groups only (RunState.running, in start order), not every group of the plan;
    # a RunState built without that bookkeeping (or with nothing running) is walked in full
    running = list(run.running) or [
        g.id for g in run.plan.groups if run.groups[g.id].status == GroupStatus.RUNNING
    ]
    for group_id in running:
        group = run.plan.group(group_id)
        state = run.groups[group.id]
        if state.status != GroupStatus.RUNNING:
            continue
        if group.fan_out is not None:
            agents = fan_out_line(run, group, now_s)
        elif len(group.agents) > LISTED_AGENTS:
            agents = wide_group_line(run, group)
        else:
            # str's own `+`, not an f-string: an f-string formats each status through
            # StrEnum.__format__, a Python call per agent and activation (same text); and by
            # C loops (map), not a comprehension: every activation writes it
            named = map(str.__add__, group.agents, repeat(" "))
            statuses = map(_STATUS, map(run.agents.__getitem__, group.agents))
            agents = ", ".join(map(str.__add__, named, statuses))
        deadline = ""
        if state.paused_since_s is not None:
            deadline = ", deadline paused while agents wait on conflicts"
        elif state.deadline_s is not None:
            # the clock time too: it holds however old the text is
            deadline = (
                f", deadline in {max(0.0, state.deadline_s - now_s):.1f} s "
                f"(at {clock_at(run.started, state.deadline_s)})"
            )
        lines.append(f"- group `{group.id}` running: {agents}{deadline}")
    lines += _conflict_details(run, workflow_id)
    lines += _resolution_details(run)
    last_decision = run.last_decision
    if last_decision is None:
        latest = [(d.at_s, g, d) for g, state in run.groups.items() for d in state.history]
        if latest:
            _, group_id, decision = max(latest, key=lambda item: item[0])
            last_decision = (group_id, decision)
    if last_decision is not None:
        group_id, last = last_decision
        lines.append(f"\nLast barrier decision: `{group_id}` **{last.decision}**: {last.reason}")
    if run.alerts:
        lines.append(f"\nAlerts: {len(run.alerts)}; last: {run.alerts[-1].message}")
    if run.error:
        lines.append(f"\nError: {run.error}")
    return "\n".join(lines)


# a running group's agents named one by one up to this many; a wider group is counted by status
LISTED_AGENTS = 12
# the unfinished agents of a wide group named in its line, at most
NAMED_UNFINISHED = 5
_UNFINISHED = frozenset(AGENT_UNFINISHED)


def clock_at(start: datetime, offset_s: float) -> str:
    """The time of day `offset_s` seconds after `start`, with its zone: `02:18:51 UTC`."""
    return (start + timedelta(seconds=offset_s)).strftime("%H:%M:%S %Z").strip()


def wide_group_line(run: RunState, group: CompiledGroup) -> str:
    """`200 agents: 48 running, 150 succeeded, 2 failed; unfinished: a151, a152, a153, a154,
    a155 and 43 more`: a group too wide to list agent by agent (the Web UI showed a paragraph of
    hundreds of names, rewritten at every workflow task); the counts in AgentStatus order."""
    statuses = list(map(_STATUS, map(run.agents.__getitem__, group.agents)))
    counts = Counter(statuses)
    tally = ", ".join(
        f"{counts[status]} {status.value}" for status in AgentStatus if counts[status]
    )
    line = f"{len(statuses)} agents: {tally}"
    unfinished = sum(counts[status] for status in AGENT_UNFINISHED)
    if unfinished:
        # C loops, stopping at the last one named: it runs at every workflow task
        flags = map(_UNFINISHED.__contains__, statuses)
        named = ", ".join(islice(compress(group.agents, flags), NAMED_UNFINISHED))
        more = unfinished - NAMED_UNFINISHED
        line += f"; unfinished: {named}" + (f" and {more} more" if more > 0 else "")
    return line


def fan_out_line(run: RunState, group: CompiledGroup, now_s: float) -> str:
    """`37/100 items (4 running, 1 failed)`: a fan-out in one line, whatever its size."""
    row = fan_out_report(run, group, now_s)
    if row["items"] is None:
        return f"reading the list {row['source']}"
    ended = row["succeeded"] + row["failed"] + row["defaulted"]
    return f"{ended}/{row['items']} items ({row['running']} running, {row['failed']} failed)"


def resolve_commands(
    workflow_id: str, conflict_id: str, choice: str, expected_version: int
) -> list[str]:
    """The ways to resolve a conflict: the starter, the Web UI's Send a Signal, the temporal CLI.

    The workflow cannot know how the reader connects (embedded server, cluster, TLS), so the
    temporal CLI line names the embedded server's config file as the example to adapt."""
    payload = json.dumps(
        {"conflict_id": conflict_id, "choice": choice, "expected_version": expected_version}
    )
    return [
        f"pee resolve {workflow_id} {conflict_id} --choice {choice} "
        f"--expected-version {expected_version}",
        f"Web UI: More Actions → Send a Signal, name resolve_conflict, data {payload}",
        f"temporal workflow update execute --workflow-id {workflow_id} "
        f"--name resolve_conflict --input '{payload}' "
        "--config-file .temporal/temporal.toml (embedded server; else your connection flags)",
    ]


def _conflict_details(run: RunState, workflow_id: str) -> list[str]:
    open_conflicts = run.context.open_conflicts()
    if not open_conflicts:
        return []
    lines = [
        f"\n**Open conflicts: {len(open_conflicts)}** (choice: current, incoming or value "
        "with `--value JSON`)"
    ]
    for conflict in open_conflicts[:DETAILS_CONFLICTS]:
        row = conflict_report(run, conflict)
        blocked = ", ".join(row["blocked_agents"]) or "nobody yet"
        lines.append(
            f"- `{conflict.id}` on `{conflict.key}` ({conflict.kind}, version "
            f"{row['current_version']}, writers {', '.join(conflict.writers)}, opened "
            f"{conflict.opened_at}): {conflict.message}; blocking: {blocked}"
        )
        lines += [
            f"  - `{command}`"
            for command in resolve_commands(
                workflow_id, conflict.id, "incoming", row["current_version"]
            )
        ]
    if len(open_conflicts) > DETAILS_CONFLICTS:
        lines.append(
            f"- and {len(open_conflicts) - DETAILS_CONFLICTS} more: `pee conflicts {workflow_id}`"
        )
    return lines


def waiting_for_person(run: RunState) -> list[str]:
    """Agents of a running run blocked on a conflict (waiting for a person), in plan order."""
    if run.status != RunStatus.RUNNING or not run.context.conflicts:
        # an agent is blocked only on a conflict: none ever opened, nobody waits (and the
        # details writer asks once per activation, so no walk over every agent here)
        return []
    return [a.id for a in run.plan.agents if run.agents[a.id].status == AgentStatus.BLOCKED]


def unique_ids(ids: Any) -> list[str]:
    found: list[str] = []
    for item in ids:
        if item not in found:
            found.append(item)
    return found


def resolution_line(conflict: dict[str, Any]) -> str | None:
    """`c1` on `platform`: resolved incoming by bob (version 3) at ...; None while open."""
    resolution = conflict.get("resolution")
    if not resolution:
        return None
    return (
        f"{conflict.get('id')} on '{conflict.get('key')}': {conflict.get('status')} "
        f"{resolution.get('choice')} by {resolution.get('by')} (version "
        f"{resolution.get('version')}) at {conflict.get('resolved_at')}"
    )


def _resolution_details(run: RunState) -> list[str]:
    """The latest resolutions, so the details say at once that a wait is over."""
    done = [c for c in run.context.conflicts if c.resolution is not None]
    if not done:
        return []
    lines = [f"\n**Resolved conflicts: {len(done)}**"]
    for conflict in done[-DETAILS_CONFLICTS:]:
        row = {
            "id": conflict.id,
            "key": conflict.key,
            "status": conflict.status,
            "resolution": conflict.resolution,
            "resolved_at": conflict.resolved_at,
        }
        lines.append(f"- {resolution_line(row)}")
    return lines
