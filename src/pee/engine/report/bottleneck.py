"""Bottleneck detection: critical-path analysis of a finished run on its actual durations.

Pure and deterministic (lists in plan order, sets only for membership), because the workflow
puts the answer in its report. Input: the compiled plan and the run report (its agents' ISO
start/end times, durations, queue waits, barrier decisions). Output: the report's `bottlenecks`:

- ``critical``: the agents with zero slack on the agent-level DAG weighted by actual durations
  (time blocked on a conflict counts as work, as in the report's critical path): they bound the
  makespan; ``lower_bound_s`` is that path's length and ``overhead_s`` what the run took beyond;
- ``slack_s``: per agent, how much longer it could have taken without lengthening that bound;
- ``queue_waits``: time agents waited for resources beyond their slack, which cost makespan;
- ``person_waits``: agents that waited for a person to resolve a conflict on their inputs, their
  own work apart from that wait (``work_s``, ``waiting_for_person_s``) and whether the wait was
  on the critical path: no suggestion ever asks to cache or speed up an agent for time it spent
  blocked; a wait on the path suggests resolving sooner (resolve_conflicts_sooner);
- ``stragglers``: parallel groups whose barrier waited on one agent alone after the others were
  done (at least STRAGGLER_SHARE of the group's span and MIN_COST_SHARE of the makespan);
- ``suggestions``: concrete changes (raise_priority, split_group, cache_agent, raise_timeout,
  resolve_conflicts_sooner), each with the numbers behind it.

Each critical agent's path time splits into its work, its wait for a person and (beside the path
time) its queue wait, so the text can say "developer: 1 s work, 420 s waiting for a person".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from pee.engine.compiled import CompiledPlan
from pee.engine.dag import AgentGraph, agent_graph, topological_order
from pee.engine.report.fan_out_path import expanded_graph, expanded_groups
from pee.engine.states import AGENT_CUT_SHORT

# the barrier waited on one agent alone for at least this share of the group's span
STRAGGLER_SHARE = 0.3
# ignore anything that cost less than this share of the makespan
MIN_COST_SHARE = 0.02
# a critical agent taking at least this share of the makespan is worth caching
CACHE_SHARE = 0.2
# a suggested timeout covers the longest duration seen this many times over
TIMEOUT_MARGIN = 1.5
# the text summary lists this many agents' slack (the report has every agent's)
TEXT_SLACK_AGENTS = 12
# agents cut short at a barrier (their real length is unknown: at least what they ran)


def _time(text: Any) -> datetime | None:
    if not isinstance(text, str) or not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def _since(start: datetime | None, when: Any) -> float | None:
    at = _time(when)
    if start is None or at is None:
        return None
    return (at - start).total_seconds()


def _r(value: float) -> float:
    return round(value, 3)


def slack(
    ids: Sequence[str],
    deps: Mapping[str, Sequence[str]],
    durations: Mapping[str, float],
    order: Sequence[str] | None = None,
) -> tuple[float, dict[str, float]]:
    """(longest path length, agent -> slack) by the critical path method: earliest start on a
    forward pass, latest start on a backward pass; slack = latest - earliest. ``order``:
    topological_order(ids, deps), when the caller has it."""
    if order is None:
        order = topological_order(ids, deps)
    earliest: dict[str, float] = {}
    for node in order:
        earliest[node] = max(
            (earliest[d] + durations.get(d, 0.0) for d in deps.get(node, ()) if d in earliest),
            default=0.0,
        )
    length = max((earliest[n] + durations.get(n, 0.0) for n in order), default=0.0)
    children: dict[str, list[str]] = {node: [] for node in order}
    for node in order:
        for dep in deps.get(node, ()):
            if dep in children:
                children[dep].append(node)
    latest: dict[str, float] = {}
    for node in reversed(order):
        finish = min((latest[c] for c in children[node]), default=length)
        latest[node] = finish - durations.get(node, 0.0)
    return length, {node: max(0.0, latest[node] - earliest[node]) for node in order}


def analyse(
    plan: CompiledPlan, report: Mapping[str, Any], graph: AgentGraph | None = None
) -> dict[str, Any]:
    """The `bottlenecks` section of a run report (see the module docstring). ``graph``: the
    agent graph of the plan's expanded agents and groups, when the caller built it already."""
    agents_report: Mapping[str, Any] = report.get("agents") or {}
    groups_report: Mapping[str, Any] = report.get("groups") or {}
    scale = float(report.get("time_scale") or 1.0)
    makespan = float(report.get("makespan_s") or 0.0)
    # over the fan-outs' items, not their templates, as the report's critical path (a template's
    # row spans its whole fan-out: on the path it would hide which item bound the makespan)
    if graph is None:
        graph = agent_graph(expanded_graph(plan.agents), expanded_groups(plan.groups))
    ids, deps, order = graph.ids, graph.deps, graph.order

    def agent_row(agent_id: str) -> Mapping[str, Any]:
        return agents_report.get(agent_id) or {}

    # an agent's time on the path is its work plus its wait for a person (a conflict): no
    # schedule could have run it sooner, but only the work is the agent's own
    work = {a: float(agent_row(a).get("duration_s") or 0.0) for a in ids}
    person = {a: float(agent_row(a).get("blocked_s") or 0.0) for a in ids}
    queued = {a: float(agent_row(a).get("queue_wait_s") or 0.0) for a in ids}
    durations = {a: work[a] + person[a] for a in ids}
    length, slacks = slack(ids, deps, durations, order)
    epsilon = max(0.001, 0.001 * length)
    min_cost = max(epsilon, MIN_COST_SHARE * makespan)
    critical = [a for a in order if slacks.get(a, 0.0) <= epsilon and durations[a] > 0]

    def share(seconds: float) -> float:
        return _r(seconds / makespan) if makespan > 0 else 0.0

    queue_waits: list[dict[str, Any]] = []
    for agent_id in ids:
        waited = float(agent_row(agent_id).get("queue_wait_s") or 0.0)
        cost = waited - slacks.get(agent_id, 0.0)
        if waited > 0 and cost >= min_cost:
            queue_waits.append(
                {
                    "agent": agent_id,
                    "queue_wait_s": _r(waited),
                    "slack_s": _r(slacks.get(agent_id, 0.0)),
                    "cost_s": _r(cost),
                }
            )
    queue_waits.sort(key=lambda row: -row["cost_s"])

    stragglers = _stragglers(plan, report, deps, min_cost)
    suggestions: list[dict[str, Any]] = []
    for wait in queue_waits:
        agent = plan.agent(wait["agent"])
        suggestions.append(
            {
                "action": "raise_priority",
                "agent": agent.id,
                "priority": agent.priority,
                "queue_wait_s": wait["queue_wait_s"],
                "slack_s": wait["slack_s"],
                "saving_s": wait["cost_s"],
                "message": f"raise the priority of '{agent.id}' (now {agent.priority}): it waited "
                f"{wait['queue_wait_s']:g}s for resources with {wait['slack_s']:g}s of "
                f"slack, which cost {wait['cost_s']:g}s of makespan",
            }
        )
    for straggler in stragglers:
        if straggler["unblocked"]:
            suggestions.append(
                {
                    "action": "split_group",
                    "group": straggler["group"],
                    "agent": straggler["agent"],
                    "waited_s": straggler["waited_s"],
                    "unblocked": straggler["unblocked"],
                    "saving_s": straggler["waited_s"],
                    "message": f"split group '{straggler['group']}': its barrier waited "
                    f"{straggler['waited_s']:g}s for '{straggler['agent']}' alone; "
                    f"{', '.join(straggler['unblocked'])} "
                    f"{'does' if len(straggler['unblocked']) == 1 else 'do'} not need "
                    "its outputs and "
                    f"could start up to {straggler['waited_s']:g}s earlier if it had a "
                    "group of its own",
                }
            )
    person_waits: list[dict[str, Any]] = [
        {
            "agent": a,
            "work_s": _r(work[a]),
            "waiting_for_person_s": _r(person[a]),
            "slack_s": _r(slacks.get(a, 0.0)),
            "critical": a in critical,
        }
        for a in ids
        if person[a] > 0
    ]
    person_waits.sort(key=lambda row: -row["waiting_for_person_s"])
    workflow_id = str(report.get("workflow_id") or "WORKFLOW_ID")
    for wait in person_waits:
        if not wait["critical"] or wait["waiting_for_person_s"] < min_cost:
            continue
        suggestions.append(
            {
                "action": "resolve_conflicts_sooner",
                "agent": wait["agent"],
                "work_s": wait["work_s"],
                "waiting_for_person_s": wait["waiting_for_person_s"],
                "saving_s": wait["waiting_for_person_s"],
                "message": f"'{wait['agent']}' waited {wait['waiting_for_person_s']:g}s "
                "for a person "
                f"to resolve a conflict on its inputs (its own work took "
                f"{wait['work_s']:g}s), on the critical path: resolve conflicts as they "
                f"open (`pee conflicts {workflow_id}`), or set context.conflict_timeout "
                "and timeout_policy so the run settles them itself",
            }
        )
    # caching saves an agent's work, never its wait for a person
    suggestions += _cache_suggestions(plan, agents_report, critical, work, makespan)
    suggestions += _timeout_suggestions(plan, agents_report, groups_report, scale, min_cost)
    return {
        "makespan_s": _r(makespan),
        "lower_bound_s": _r(length),
        "overhead_s": _r(max(0.0, makespan - length)),
        # duration_s: its time on the path = work_s + waiting_for_person_s; queue_wait_s apart
        "critical": [
            {
                "agent": a,
                "group": plan.agent(a).group,
                "duration_s": _r(durations[a]),
                "share": share(durations[a]),
                "work_s": _r(work[a]),
                "waiting_for_person_s": _r(person[a]),
                "queue_wait_s": _r(queued[a]),
            }
            for a in critical
        ],
        "slack_s": {a: _r(slacks.get(a, 0.0)) for a in ids},
        "queue_waits": queue_waits,
        "person_waits": person_waits,
        "stragglers": stragglers,
        "suggestions": suggestions,
    }


def _stragglers(
    plan: CompiledPlan,
    report: Mapping[str, Any],
    deps: Mapping[str, Sequence[str]],
    min_cost: float,
) -> list[dict[str, Any]]:
    """Parallel groups whose barrier waited on one agent alone: the last to finish (or to be cut
    short) against the one before it."""
    agents_report: Mapping[str, Any] = report.get("agents") or {}
    groups_report: Mapping[str, Any] = report.get("groups") or {}
    found = []
    # the run's start read once, not twice per agent (half the report's time at 200 agents)
    run_start = _time(report.get("started_at"))
    # each distinct time parsed once: agents that start or end together share theirs
    times: dict[Any, datetime | None] = {}

    def parsed(text: Any) -> datetime | None:
        if type(text) is not str:
            return _time(text)
        if text not in times:
            times[text] = _time(text)
        return times[text]

    for group in plan.groups:
        if not group.parallel or len(group.agents) < 2:
            continue
        ends = []
        for agent_id in group.agents:
            row = agents_report.get(agent_id) or {}
            at = parsed(row.get("finished_at"))
            end = None if run_start is None or at is None else (at - run_start).total_seconds()
            if end is not None and parsed(row.get("started_at")) is not None:
                ends.append((end, agent_id))
        if len(ends) < 2:
            continue
        ends.sort(key=lambda item: item[0])
        (second, _), (last, straggler) = ends[-2], ends[-1]
        row = groups_report.get(group.id) or {}
        start = _since(run_start, row.get("started_at"))
        span = last - (start if start is not None else min(e for e, _ in ends))
        waited = last - second
        if span <= 0 or waited < STRAGGLER_SHARE * span or waited < min_cost:
            continue
        others = sorted(
            float((agents_report.get(a) or {}).get("duration_s") or 0.0) for _, a in ends[:-1]
        )
        median = (
            others[len(others) // 2]
            if len(others) % 2
            else (others[len(others) // 2 - 1] + others[len(others) // 2]) / 2
        )
        dependents = [g for g in plan.groups if group.id in g.depends_on]
        unblocked = [a for g in dependents for a in g.agents if straggler not in deps.get(a, ())]
        found.append(
            {
                "group": group.id,
                "agent": straggler,
                "status": (agents_report.get(straggler) or {}).get("status"),
                "duration_s": _r(
                    float((agents_report.get(straggler) or {}).get("duration_s") or 0.0)
                ),
                "others_median_s": _r(median),
                "waited_s": _r(waited),
                "share_of_group": _r(waited / span),
                "unblocked": unblocked,
            }
        )
    return found


def _cache_suggestions(
    plan: CompiledPlan,
    agents_report: Mapping[str, Any],
    critical: Sequence[str],
    work: Mapping[str, float],
    makespan: float,
) -> list[dict[str, Any]]:
    """Critical agents whose own work (not their wait for a person) is a large share of the
    makespan, when nothing reuses their outputs across runs yet."""
    # the TTL the workflow stores with (pee.workflows.agent_cache): a number, on
    reused_across_runs = plan.caching.output_ttl_s is not None
    found = []
    for agent_id in critical:
        row = agents_report.get(agent_id) or {}
        took = work[agent_id]
        if (
            reused_across_runs
            or row.get("status") != "succeeded"
            or row.get("cached")
            or row.get("resumed")
            or makespan <= 0
            or took < CACHE_SHARE * makespan
        ):
            continue
        share = _r(took / makespan)
        found.append(
            {
                "action": "cache_agent",
                "agent": agent_id,
                "duration_s": _r(took),
                "share": share,
                "saving_s": _r(took),
                "message": f"cache '{agent_id}': it took {took:g}s ({100 * share:.0f}% of "
                "the makespan) on the critical path; with caching_system.cache_levels."
                "agent_output_cache.ttl set (e.g. 1h) a rerun with the same inputs "
                "reuses its outputs",
            }
        )
    return found


def _timeout_suggestions(
    plan: CompiledPlan,
    agents_report: Mapping[str, Any],
    groups_report: Mapping[str, Any],
    scale: float,
    min_cost: float,
) -> list[dict[str, Any]]:
    """Groups whose deadline cut agents short or needed extensions, and agents that timed out:
    a timeout covering TIMEOUT_MARGIN x the longest duration seen (plan seconds, unscaled)."""
    found = []
    for group in plan.groups:
        row = groups_report.get(group.id) or {}
        barrier = row.get("barrier") or {}
        cut = [
            a for a in group.agents if (agents_report.get(a) or {}).get("status") in AGENT_CUT_SHORT
        ]
        extensions = int(barrier.get("extensions") or 0)
        if group.timeout_s is None or not (cut or extensions):
            continue
        longest = (
            max(float((agents_report.get(a) or {}).get("duration_s") or 0.0) for a in group.agents)
            / scale
        )
        suggested = round(max(longest, group.timeout_s) * TIMEOUT_MARGIN, 1)
        why = (
            f"{', '.join(cut)} cut short after running up to {longest:g}s"
            if cut
            else f"it needed {extensions} extension(s); its longest agent took {longest:g}s"
        )
        found.append(
            {
                "action": "raise_timeout",
                "group": group.id,
                "timeout_s": group.timeout_s,
                "longest_s": _r(longest),
                "cut_short": cut,
                "extensions": extensions,
                "suggested_timeout_s": suggested,
                "message": f"raise group '{group.id}' timeout from {group.timeout_s:g}s "
                "to at least "
                f"{suggested:g}s (plan time): {why}",
            }
        )
    for agent in plan.agents:
        row = agents_report.get(agent.id) or {}
        if row.get("status") != "timed_out" or agent.timeout_s is None:
            continue
        took = float(row.get("duration_s") or 0.0) / scale
        suggested = round(max(took, agent.timeout_s) * TIMEOUT_MARGIN, 1)
        found.append(
            {
                "action": "raise_timeout",
                "agent": agent.id,
                "timeout_s": agent.timeout_s,
                "longest_s": _r(took),
                "suggested_timeout_s": suggested,
                "message": f"raise agent '{agent.id}' timeout from {agent.timeout_s:g}s "
                "to at least "
                f"{suggested:g}s (plan time): it timed out after {took:g}s",
            }
        )
    return found


def format_bottlenecks(bottlenecks: Mapping[str, Any] | None) -> list[str]:
    """Text lines for `report --format text` (nothing for a report without the section)."""
    if not bottlenecks:
        return []
    lines = [
        f"bottlenecks: lower bound {bottlenecks.get('lower_bound_s', 0):g}s of makespan "
        f"{bottlenecks.get('makespan_s', 0):g}s "
        f"(overhead {bottlenecks.get('overhead_s', 0):g}s)"
    ]
    critical = bottlenecks.get("critical") or []
    if critical:
        lines.append(
            "  bound by: "
            + ", ".join(
                f"{c['agent']} {c['duration_s']:g}s ({100 * c['share']:.0f}%"
                + (
                    f": {_split(c)}"
                    if c.get("waiting_for_person_s") or c.get("queue_wait_s")
                    else ""
                )
                + ")"
                for c in critical
            )
        )
    slack_of = bottlenecks.get("slack_s") or {}
    names = {c["agent"] for c in critical}
    rest = sorted(((s, a) for a, s in slack_of.items() if a not in names), key=lambda item: item[0])
    if rest:
        # least slack first: the next agents to become bottlenecks
        shown = ", ".join(f"{a} {s:g}s" for s, a in rest[:TEXT_SLACK_AGENTS])
        more = len(rest) - TEXT_SLACK_AGENTS
        lines.append(
            "  slack: "
            + shown
            + (f", and {more} more (the JSON report has all)" if more > 0 else "")
        )
    for wait in bottlenecks.get("queue_waits") or []:
        lines.append(
            f"  queue wait: {wait['agent']} waited {wait['queue_wait_s']:g}s "
            f"(slack {wait['slack_s']:g}s), cost {wait['cost_s']:g}s"
        )
    for wait in bottlenecks.get("person_waits") or []:
        lines.append(
            f"  waiting for a person: {wait['agent']}: {wait['work_s']:g} s work, "
            f"{wait['waiting_for_person_s']:g} s waiting for a person"
            + (
                " (on the critical path)"
                if wait.get("critical")
                else f" (slack {wait['slack_s']:g}s)"
            )
        )
    for straggler in bottlenecks.get("stragglers") or []:
        lines.append(
            f"  straggler: group {straggler['group']} waited {straggler['waited_s']:g}s "
            f"for {straggler['agent']} alone ({straggler['duration_s']:g}s vs median "
            f"{straggler['others_median_s']:g}s of the others)"
        )
    for suggestion in bottlenecks.get("suggestions") or []:
        lines.append(f"  suggestion: {suggestion['message']}")
    return lines


def _split(critical: Mapping[str, Any]) -> str:
    """A critical agent's time apart: "1 s work, 420 s waiting for a person, 3 s queued"."""
    parts = [f"{critical.get('work_s', critical.get('duration_s', 0)):g} s work"]
    if critical.get("waiting_for_person_s"):
        parts.append(f"{critical['waiting_for_person_s']:g} s waiting for a person")
    if critical.get("queue_wait_s"):
        parts.append(f"{critical['queue_wait_s']:g} s queued")
    return ", ".join(parts)
