"""Record the replay histories in this folder: run each scenario on a throwaway dev server and
write its history as `<scenario>.json` (the format `WorkflowHistory.from_json` reads).

    .venv/bin/python -m tests.histories.record            # all scenarios
    .venv/bin/python -m tests.histories.record partial    # some of them

Re-record after any change to workflows/ that changes the commands a run issues (new activity
options, timers, ids, order): tests/test_replay.py then fails on the old files, which is the
point. Commit the JSON files it writes.

The conflict scenarios talk to the run while it waits: they resolve conflict c1 by the
`resolve_conflict` update or signal once `dev` is blocked on it (or let its timeout apply).
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from temporalio.client import (
    Client,
    WorkflowExecutionStatus,
    WorkflowFailureError,
    WorkflowHandle,
    WorkflowUpdateFailedError,
)
from temporalio.testing import WorkflowEnvironment

from pee.engine.compile.graph import compile_plan
from pee.engine.compile.load import loads_plan
from pee.engine.compiled import (
    BarrierSettings,
    CompiledGroup,
    CompiledPlan,
    RetrySpec,
)
from pee.runtime.codec import data_converter
from pee.runtime.devserver import find_temporal_binary
from pee.runtime.exit import run_entry
from pee.runtime.worker import build_worker
from pee.workflows import search
from pee.workflows.plan_workflow import PlanWorkflow
from pee.workflows.types import (
    BatchSpec,
    FanOutBatching,
    LedgerSpec,
    PlanRunInput,
    ResolveConflict,
)
from tests.helpers import compiled_plan, group, sim, with_sections

HERE = Path(__file__).resolve().parent
NO_RETRY = RetrySpec(max_attempts=1, initial_interval_s=0.1)


def _tuned(base: CompiledGroup, **attrs: Any) -> CompiledGroup:
    for name, value in attrs.items():
        setattr(base, name, value)
    return base


def plain() -> CompiledPlan:
    return compiled_plan(
        [
            sim("a", "first", 0.1),
            sim("b", "second", 0.1, inputs=["a.out"]),
            sim("c", "second", 0.2, inputs=["a.out"]),
        ],
        [group("first", ["a"]), group("second", ["b", "c"], ["first"], parallel=False)],
        name="plain",
    )


def plan_facts() -> CompiledPlan:
    """One agent at a time: `long` (the longer path: `tail` waits for it) starts before
    `short`, declared first, by the admission ranks the run input carries as the plan's facts
    (pee.engine.rules.plan_facts)."""
    return with_sections(
        compiled_plan(
            [
                sim("short", "first", 0.1),
                sim("long", "first", 0.1),
                sim("tail", "second", 0.2, inputs=["long.out"]),
            ],
            [group("first", ["short", "long"]), group("second", ["tail"], ["first"])],
            name="plan-facts",
        ),
        resources={"resource_pool": {"computational": {"concurrent_agent_limit": 1}}},
    )


def all_completed() -> CompiledPlan:
    return compiled_plan(
        [sim("a", "g", 0.1), sim("b", "g", 0.2)],
        [group("g", ["a", "b"], timeout_s=10.0)],
        name="all-completed",
    )


def extend_timeout() -> CompiledPlan:
    plan = compiled_plan(
        [sim("quick", "g", 0.1), sim("steady", "g", 3.0)],
        [_tuned(group("g", ["quick", "steady"], timeout_s=1.5), extension_s=3.0)],
        name="extend-timeout",
    )
    plan.barrier = BarrierSettings(progress_window_s=1.5)
    return plan


def continue_with_partial() -> CompiledPlan:
    return compiled_plan(
        [
            sim("quick", "g", 0.1),
            sim("slow", "g", 30.0, defaults={"out": "fallback"}),
            sim("after", "next", 0.1, inputs=["quick.out", "slow.out"]),
        ],
        [group("g", ["quick", "slow"], timeout_s=1.0), group("next", ["after"], ["g"])],
        name="continue-with-partial",
    )


def batch_liveness() -> CompiledPlan:
    """continue_with_partial with a 1 s extension: in batch mode `slow` counts as alive while
    it runs (no progress signals there), so g extends once, then goes on without it."""
    plan = continue_with_partial()
    plan.groups[0].extension_s = 1.0
    return plan


def batch_local() -> CompiledPlan:
    """Batch mode's local chunks (BatchSpec.local_s): `a` and `b` run as local activities of
    one child, `b` fails its first attempt and is retried there; `c` in a second chunk."""
    return compiled_plan(
        [
            sim("a", "g", 0.1),
            sim("b", "g", 0.2, fail_times=1),
            sim("c", "next", 0.1, inputs=["a.out", "b.out"]),
        ],
        [group("g", ["a", "b"]), group("next", ["c"], ["g"])],
        name="batch-local",
    )


def batch_split() -> CompiledPlan:
    """Local chunks cut by expected duration (BatchSpec.split_gain_s): after `root`, three
    short groups (s1-s3, 0.05 s) and three long ones (l1-l3, 0.6 s) become ready together and
    run in two children, the short one sending its outcomes in its result only; `tail` reads
    them all."""
    shorts = [sim(f"s{i}", f"gs{i}", 0.05, inputs=["root.out"]) for i in (1, 2, 3)]
    longs = [sim(f"l{i}", f"gl{i}", 0.6, inputs=["root.out"]) for i in (1, 2, 3)]
    middle = [*shorts, *longs]
    return compiled_plan(
        [
            sim("root", "g0", 0.05),
            *middle,
            sim("tail", "gt", 0.05, inputs=[f"{a.id}.out" for a in middle]),
        ],
        [
            group("g0", ["root"]),
            *(group(a.group, [a.id], ["g0"]) for a in middle),
            group("gt", ["tail"], [a.group for a in middle]),
        ],
        name="batch-split",
    )


def batch_local_failed() -> CompiledPlan:
    """Batch mode, chunks of two local agents: g2's `quick` and `slow` share a chunk, g1's `bad`
    has its own and fails every attempt, its fallback too, so the run fails while the worker
    still holds g2's chunk (quick ended, not recorded; slow running 30 s). The parent's
    REQUEST_CANCEL reaches the chunk at its next workflow task heartbeat, while the chunk's
    outcomes signal to the closed parent is in flight, and cancels slow there (patch
    outcomes-signal-in-own-task: it used to be lost, and slow ran to its end)."""
    return compiled_plan(
        [
            sim("quick", "g2", 0.1),
            sim("slow", "g2", 30.0, retry=NO_RETRY),
            sim("bad", "g1", 1.0, retry=NO_RETRY, fail_times="always"),
        ],
        [group("g2", ["quick", "slow"]), group("g1", ["bad"], timeout_s=600.0)],
        name="batch-local-failed",
    )


# ready_groups.START_BATCH + 20: the groups that become ready at once after `root`
WIDE_GROUPS = 120


def bounded_starts() -> CompiledPlan:
    """`root`, then WIDE_GROUPS one-agent groups that all wait for it: when it passes, one
    activation starts ready_groups.START_BATCH of them, a 1 ms timer ends it, the next starts
    the rest (patch bounded-group-starts)."""
    agents = [sim("root", "root", 0.01)]
    groups = [group("root", ["root"])]
    for index in range(WIDE_GROUPS):
        agents.append(sim(f"w{index}", f"w{index}", 0.01))
        groups.append(group(f"w{index}", [f"w{index}"], ["root"]))
    return compiled_plan(agents, groups, name="bounded-starts")


def liveness_extend() -> CompiledPlan:
    """extend_timeout without progress signals: at g's deadline one local activity describes
    the run, `steady`'s activity is started and heartbeat recently, so g extends once."""
    plan = extend_timeout()
    plan.name = "liveness-extend"
    return plan


def liveness_partial() -> CompiledPlan:
    """A silent agent (no heartbeats) at the deadline: the describe finds it started but never
    heard from, so g goes on without it."""
    return compiled_plan(
        [
            sim("quick", "g", 0.1),
            sim("mute", "g", 30.0, heartbeat=False, defaults={"out": "fallback"}),
        ],
        [group("g", ["quick", "mute"], timeout_s=2.0)],
        name="liveness-partial",
    )


def worker_lag() -> CompiledPlan:
    """A worker with one activity slot: `b` waits for `hog` before a worker starts it, so at g's
    deadline it has run only part of its time; the deadline gives the lag back (no extension:
    g has none) and b completes."""
    return compiled_plan(
        [sim("hog", "g", 1.5), sim("b", "g", 1.0)],
        [_tuned(group("g", ["hog", "b"], timeout_s=2.0), max_extensions=0)],
        name="worker-lag",
    )


def abort_and_fallback() -> CompiledPlan:
    return compiled_plan(
        [
            sim("a", "g", 0.1, retry=NO_RETRY, fail_unless_fallback=True),
            sim("b", "g", 0.1, retry=NO_RETRY, fail_unless_fallback=True),
        ],
        [group("g", ["a", "b"], timeout_s=10.0)],
        name="abort-and-fallback",
    )


def fallback_failed() -> CompiledPlan:
    return compiled_plan(
        [
            sim("a", "g", 0.1, retry=NO_RETRY, fail_times="always"),
            sim("b", "g", 0.1, retry=NO_RETRY, fail_times="always"),
        ],
        [group("g", ["a", "b"], timeout_s=10.0)],
        name="fallback-failed",
    )


def continue_with_defaults() -> CompiledPlan:
    return compiled_plan(
        [
            sim("a", "g", 0.1, retry=NO_RETRY, fail_times="always", defaults={"out": 0}),
            sim("b", "g", 0.1, retry=NO_RETRY, fail_times="always"),
        ],
        [
            _tuned(
                group("g", ["a", "b"], timeout_s=10.0),
                partial_failure_handling="continue_with_defaults",
            )
        ],
        name="continue-with-defaults",
    )


def critical_error() -> CompiledPlan:
    return compiled_plan(
        [sim("ok", "g", 1.0), sim("crit", "g", 0.1, critical=True, fail_unless_fallback=True)],
        [group("g", ["ok", "crit"], timeout_s=10.0)],
        name="critical-error",
    )


def cache_levels() -> CompiledPlan:
    """A context snapshot after each barrier, and a prefetch for `second` (its template file)
    while `first` runs."""
    templates = HERE.parent / "templates"
    writer = sim(
        "w",
        "second",
        0.0,
        kind="template",
        inputs=["a.out"],
        outputs=["doc"],
        template="brief.md",
        plan_dir=str(templates),
    )
    return compiled_plan(
        [sim("a", "first", 0.5), writer],
        [group("first", ["a"]), group("second", ["w"], ["first"])],
        name="cache-levels",
    )


def adaptive_throttle() -> CompiledPlan:
    """adaptive: true with adjust_parallel_group_sizes (pee.engine.rules.adaptive): one group of
    four on a pool of two; `slow` (2 s) is over the 1.6 s response_time threshold while `long` runs,
    so the group drops to one agent at a time and q1, q2 wait for long."""
    agents = [
        sim("slow", "g", 2.0),
        sim("long", "g", 3.0),
        sim("q1", "g", 0.5),
        sim("q2", "g", 0.5),
    ]
    for agent in agents:
        agent.cpu = agent.memory = 10
    plan = compiled_plan(agents, [group("g", [a.id for a in agents])], name="adaptive-throttle")
    with_sections(
        plan,
        resources={
            "resource_pool": {
                "computational": {
                    "total_cpu_units": 100,
                    "total_memory_units": 100,
                    "concurrent_agent_limit": 2,
                }
            },
            "allocation_strategy": {
                "resource_sharing": {"cpu_oversubscription": 1.0, "memory_strict": True}
            },
            "load_balancing": {"resource_monitoring": {"alert_thresholds": {"response_time": 1.6}}},
        },
        monitoring={
            "performance_optimization": {
                "adaptive_resource_allocation": {
                    "trigger": "performance_below_threshold",
                    "actions": ["increase_cpu_allocation", "adjust_parallel_group_sizes"],
                }
            }
        },
    )
    plan.adaptive_margin = 1.5
    return plan


def adaptive_actions(
    actions: list[str],
    agents: list[Any],
    groups: list[CompiledGroup],
    name: str,
    threshold: float = 1.0,
) -> CompiledPlan:
    """An `adaptive: true` plan listing `actions`, with a response_time threshold."""
    plan = compiled_plan(agents, groups, name=name)
    with_sections(
        plan,
        resources={
            "load_balancing": {
                "resource_monitoring": {"alert_thresholds": {"response_time": threshold}}
            }
        },
        monitoring={
            "performance_optimization": {
                "adaptive_resource_allocation": {
                    "trigger": "performance_below_threshold",
                    "actions": list(actions),
                }
            }
        },
    )
    plan.adaptive_margin = 1.5
    return plan


def adaptive_timeout() -> CompiledPlan:
    """modify_timeout_values (pee.engine.rules.adaptive): `slow` (2 s, role `model`) is 1 s over the
    1 s threshold, so g's 2.5 s deadline moves to 3.5 s and `steady` (3 s) makes it; `later` (role
    `model` too, 1.5 s) gets 1.2 + 1 s in `next`. Without the action both would time out."""
    agents = [
        sim("slow", "g", 2.0),
        sim("steady", "g", 3.0, defaults={"out": "default"}),
        sim("later", "next", 1.5, defaults={"out": "default"}),
    ]
    agents[0].role = agents[2].role = "model"
    groups = [
        _tuned(group("g", ["slow", "steady"], timeout_s=2.5), max_extensions=0),
        _tuned(group("next", ["later"], ["g"], timeout_s=1.2), max_extensions=0),
    ]
    return adaptive_actions(["modify_timeout_values"], agents, groups, "adaptive-timeout")


def conflict_plan(**context: Any) -> CompiledPlan:
    """ux and arch turn `platform` into different things (c1); dev reads it, docs does not."""
    agents = [
        sim("ux", "design", 1.0, inputs=["platform"], values={"platform": "mobile_first"}),
        sim("arch", "design", 1.5, inputs=["platform"], values={"platform": "desktop_primary"}),
        sim("dev", "build", 0.2, inputs=["platform"]),
        sim("docs", "docs", 0.2, inputs=["ux.out"]),
    ]
    for writer in agents[:2]:
        writer.writes = ["platform"]
    plan = compiled_plan(
        agents,
        [
            group("design", ["ux", "arch"], timeout_s=30.0),
            group("build", ["dev"], ["design"], timeout_s=1.0),
            group("docs", ["docs"], ["design"]),
        ],
        name="conflict",
        inputs={"platform": "web"},
    )
    return with_sections(plan, context=context)


def conflict_timeout() -> CompiledPlan:
    return conflict_plan(conflict_timeout=1.5, timeout_policy="keep_incoming")


Handle = WorkflowHandle[Any, Any]


async def when_dev_blocked(handle: Handle) -> int:
    """Wait until dev is blocked on c1; the key's current version (the expected_version)."""
    for _ in range(200):
        status = await handle.query(PlanWorkflow.status)
        if status["agents"]["dev"]["status"] == "blocked":
            (c1,) = await handle.query(PlanWorkflow.conflicts)
            return int(c1["current_version"])
        await asyncio.sleep(0.1)
    raise SystemExit("dev never got blocked on c1")


async def resolve_by_update(handle: Handle) -> None:
    version = await when_dev_blocked(handle)
    # a stale one first: refused by the validator, so it leaves no trace in the history
    with contextlib.suppress(WorkflowUpdateFailedError):
        await handle.execute_update(
            PlanWorkflow.resolve_conflict, ResolveConflict("c1", "current", expected_version=0)
        )
    await handle.execute_update(
        PlanWorkflow.resolve_conflict,
        ResolveConflict("c1", "incoming", expected_version=version, by="recorder"),
    )


async def resolve_by_signal(handle: Handle) -> None:
    version = await when_dev_blocked(handle)
    await handle.signal(
        PlanWorkflow.resolve_conflict_signal, ResolveConflict("c9", "current", by="recorder")
    )
    await handle.signal(
        PlanWorkflow.resolve_conflict_signal,
        ResolveConflict("c1", "current", expected_version=version, by="recorder"),
    )


async def wait_for_a_person(handle: Handle) -> None:
    """PeeStatus waiting_for_person while dev is blocked; a malformed signal and a malformed
    update (both recorded in rejected_resolutions), an expected_version newer than the current
    one (refused by the validator, no trace), then the update that resolves c1."""
    version = await when_dev_blocked(handle)
    await handle.signal("resolve_conflict", {"choice": "current", "by": "recorder"})
    with contextlib.suppress(WorkflowUpdateFailedError):
        await handle.execute_update("resolve_conflict", ["c1", "current"])
    with contextlib.suppress(WorkflowUpdateFailedError):
        await handle.execute_update(
            PlanWorkflow.resolve_conflict,
            ResolveConflict("c1", "current", expected_version=version + 5),
        )
    await handle.execute_update(
        PlanWorkflow.resolve_conflict,
        ResolveConflict("c1", "incoming", expected_version=version, by="recorder"),
    )


def fan_out_yaml(stories: list[Any], dev: str = "", groups: str = "") -> CompiledPlan:
    """sm -> dev[i] (for each sm.stories) -> qa, each 1 s of plan time (issue 16)."""
    text = f"""\
name: fan-out
agents:
  sm: {{kind: simulate, duration: 1s, outputs: [stories], values: {{stories: {stories!r}}}}}
  dev:
    {{kind: simulate, duration: 1s, for_each: sm.stories, inputs: [item, index],
     outputs: [code], retry: {{max_attempts: 1}}{dev}}}
  qa: {{kind: simulate, duration: 1s, inputs: [dev.code], outputs: [out]}}
{groups}"""
    return compile_plan(loads_plan(text, file="fan-out.yaml"))


def fan_out_agent() -> CompiledPlan:
    """Four items, two at a time."""
    return fan_out_yaml(["a", "b", "c", "d"], ", max_parallel: 2")


def fan_out_empty() -> CompiledPlan:
    return fan_out_yaml([])


def fan_out_partial() -> CompiledPlan:
    """Item 1 always fails; at least 2 of 3 items must succeed: its default fills its slot."""
    return fan_out_yaml(
        ["a", "b", "c"],
        ", defaults: {code: none}, settings: {fail_items: [1]}",
        "groups:\n  devs: {agents: [dev], success_criteria: {at_least: 2}}\n",
    )


def fan_out_group() -> CompiledPlan:
    """po -> per_epic[i] = story -> review (one child run per epic, two at a time) -> summary."""
    text = """\
name: fan-out-group
agents:
  po: {kind: simulate, duration: 1s, outputs: [epics], values: {epics: [a, b, c]}}
  story: {kind: simulate, duration: 1s, inputs: [item, index], outputs: [text]}
  review: {kind: simulate, duration: 1s, inputs: [story.text], outputs: [verdict]}
  summary: {kind: simulate, duration: 1s, inputs: [review.verdict], outputs: [out]}
groups:
  per_epic: {agents: [story, review], for_each: po.epics, max_parallel: 2}
"""
    return compile_plan(loads_plan(text, file="fan-out-group.yaml"))


def fan_out_batches() -> CompiledPlan:
    """fan_out_group's plan with item 1's story failing and at least 2 of 3 items required,
    run in batch children of two items (FAN_OUT_BATCHES): item 0 passes in the child it shares
    with the failing item 1."""
    plan = fan_out_group()
    story = plan.agent("story")
    story.settings = {**story.settings, "fail_items": [1]}
    story.retry = NO_RETRY
    group = plan.group("per_epic")
    group.success_criteria = type(group.success_criteria)("at_least", 2)
    return plan


FAN_OUT_INPUT = {"time_scale": 0.1, "simulate": True}
# every fan-out in batch children of two items (max_parallel 2: one child at a time)
FAN_OUT_BATCHES = {
    **FAN_OUT_INPUT,
    "fan_out_batching": FanOutBatching(above=0, group_above=0, child_agents=4),
}
# where the child runs of the scenarios with `children` are written, one folder per scenario
CHILDREN = HERE / "children"
# AgentBatchWorkflow children (replayed against AgentBatchWorkflow, not PlanWorkflow)
BATCH_CHILDREN = HERE / "batch_children"


@dataclass(frozen=True)
class Scenario:
    name: str
    plan: Callable[[], CompiledPlan]
    # what the recorded run must show: run status and each group's barrier decision history
    status: str
    decisions: dict[str, list[str]]
    input_fields: dict[str, Any] = field(default_factory=dict)
    # what to do while the run waits (resolve a conflict)
    interact: Callable[[Handle], Awaitable[None]] | None = None
    # each conflict as "id:status:choice"
    conflicts: list[str] = field(default_factory=list)
    # groups whose concurrency adaptive allocation lowered (group_throttled events)
    throttled: list[str] = field(default_factory=list)
    # recorded by an older PlanWorkflow and kept to prove such runs still replay: today's
    # code would record something else, so `main` never re-records it
    legacy: bool = False
    # also record the child workflows the run started (CHILDREN/<name>/<child>.json)
    children: bool = False
    # the worker's activity slots (None: build_worker's default)
    activity_slots: int | None = None
    # also record the AgentBatchWorkflow children (BATCH_CHILDREN/<name>/<child>.json)
    batch_children: bool = False


SCENARIOS = [
    Scenario(
        "plain", plain, "completed", {"first": ["all_completed"], "second": ["all_completed"]}
    ),
    Scenario("all_completed", all_completed, "completed", {"g": ["all_completed"]}),
    Scenario(
        "extend_timeout", extend_timeout, "completed", {"g": ["extend_timeout", "all_completed"]}
    ),
    Scenario(
        "continue_with_partial",
        continue_with_partial,
        "completed",
        {"g": ["continue_with_partial"], "next": ["all_completed"]},
        {"heartbeat_timeout_s": 1.0},
        # recorded with progress signals: today `slow` heartbeats, so g would extend first
        legacy=True,
    ),
    Scenario(
        "abort_and_fallback",
        abort_and_fallback,
        "completed",
        {"g": ["abort_and_fallback", "fallback_succeeded"]},
    ),
    Scenario("fallback_failed", fallback_failed, "failed", {"g": ["abort_and_fallback", "fail"]}),
    Scenario(
        "continue_with_defaults",
        continue_with_defaults,
        "completed",
        {"g": ["abort_and_fallback", "continue_with_defaults"]},
    ),
    Scenario(
        "critical_error",
        critical_error,
        "completed",
        {"g": ["abort_and_fallback", "fallback_succeeded"]},
        {"heartbeat_timeout_s": 1.0},
    ),
    Scenario(
        "cache_levels",
        cache_levels,
        "completed",
        {"first": ["all_completed"], "second": ["all_completed"]},
    ),
    Scenario(
        "conflict_update",
        conflict_plan,
        "completed",
        {"design": ["all_completed"], "build": ["all_completed"], "docs": ["all_completed"]},
        interact=resolve_by_update,
        conflicts=["c1:resolved:incoming"],
    ),
    Scenario(
        "conflict_signal",
        conflict_plan,
        "completed",
        {"design": ["all_completed"], "build": ["all_completed"], "docs": ["all_completed"]},
        interact=resolve_by_signal,
        conflicts=["c1:resolved:current"],
    ),
    Scenario(
        "conflict_timeout",
        conflict_timeout,
        "completed",
        {"design": ["all_completed"], "build": ["all_completed"], "docs": ["all_completed"]},
        conflicts=["c1:timed_out:keep_incoming"],
    ),
    Scenario(
        "adaptive_throttle",
        adaptive_throttle,
        "completed",
        {"g": ["all_completed"]},
        throttled=["g"],
    ),
    Scenario(
        "adaptive_timeout",
        adaptive_timeout,
        "completed",
        {"g": ["timeout_adapted", "all_completed"], "next": ["timeout_adapted", "all_completed"]},
        {"heartbeat_timeout_s": 1.0},
    ),
    # PlanRunInput.search_attributes: the upserts of PeePlan/PeeStatus/PeeGroup as groups move
    Scenario(
        "search_attributes",
        plain,
        "completed",
        {"first": ["all_completed"], "second": ["all_completed"]},
        {"search_attributes": True},
    ),
    # search attributes on a conflict: PeeStatus waiting_for_person while dev is blocked, back
    # to running once resolved (patched: WAITING_PATCH); malformed resolutions recorded
    Scenario(
        "conflict_waiting",
        conflict_plan,
        "completed",
        {"design": ["all_completed"], "build": ["all_completed"], "docs": ["all_completed"]},
        {"search_attributes": True},
        interact=wait_for_a_person,
        conflicts=["c1:resolved:incoming"],
    ),
    # PlanRunInput.batch: agents in AgentBatchWorkflow children, outcomes by signal, the
    # barrier's cancel of `slow` sent to its child, one timer for the group deadline; recorded
    # before batch mode counted running agents as alive (PlanWorkflow._agent_views)
    Scenario(
        "batch_partial",
        continue_with_partial,
        "completed",
        {"g": ["continue_with_partial"], "next": ["all_completed"]},
        {"heartbeat_timeout_s": 1.0, "batch": BatchSpec(chunk_size=10, window=2)},
        legacy=True,
    ),
    # the same in batch mode before liveness-from-describe: `slow` counted as alive while it
    # ran, so g extended once first
    Scenario(
        "batch_liveness",
        batch_liveness,
        "completed",
        {"g": ["extend_timeout", "continue_with_partial"], "next": ["all_completed"]},
        {"heartbeat_timeout_s": 1.0, "batch": BatchSpec(chunk_size=10, window=2)},
        legacy=True,
    ),
    # liveness from the server (patch liveness-from-describe): no agent_progress signals; at
    # the deadline a describe_liveness marker says a heartbeating agent is alive (extend) ...
    Scenario(
        "liveness_extend",
        liveness_extend,
        "completed",
        {"g": ["extend_timeout", "all_completed"]},
    ),
    # ... and a silent one is not (partial at once)
    Scenario(
        "liveness_partial",
        liveness_partial,
        "completed",
        {"g": ["continue_with_partial"]},
        {"heartbeat_timeout_s": 1.0},
    ),
    # issue 17: a worker started `b` late (one slot, taken by `hog`): at the deadline the lag
    # is given back (patch deadline-gives-back-worker-lag), not counted against b
    Scenario(
        "worker_lag",
        worker_lag,
        "completed",
        {"g": ["postpone_deadline", "all_completed"]},
        activity_slots=1,
    ),
    # issue 17: the run ledger (src/pee/workflows/ledger.py): rows go to the run store by the
    # flush_run_rows local activity; the result is a summary without group rows
    Scenario(
        "ledger",
        plain,
        "completed",
        {},
        {"ledger": LedgerSpec(flush_rows=2), "batch": BatchSpec(chunk_size=10, window=2)},
    ),
    # issue 17: batch mode's short agents as local activities of their child (one marker
    # each; BatchSpec.local_s in the input, so runs before it replay unchanged)
    Scenario(
        "batch_local",
        batch_local,
        "completed",
        {"g": ["all_completed"], "next": ["all_completed"]},
        {"batch": BatchSpec(chunk_size=10, window=2, local_s=1000.0)},
        batch_children=True,
    ),
    # issue 17: local chunks cut by expected duration (patch local-chunks-by-duration in the
    # parent) and short local chunks reporting in their result only (local-chunk-result-only)
    Scenario(
        "batch_split",
        batch_split,
        "completed",
        {g: ["all_completed"] for g in ("g0", "gs1", "gs2", "gs3", "gl1", "gl2", "gl3", "gt")},
        {"batch": BatchSpec(chunk_size=10, window=4, local_s=1000.0, split_gain_s=1.0)},
        batch_children=True,
    ),
    # a batch run failing while a local chunk holds an ended agent and a running one: the
    # chunk's histories show the cancel taken in (patch outcomes-signal-in-own-task)
    Scenario(
        "batch_local_failed",
        batch_local_failed,
        "failed",
        {"g1": ["abort_and_fallback", "fail"], "g2": []},
        {"batch": BatchSpec(chunk_size=2, window=4, local_s=1000.0), "heartbeat_timeout_s": 1.0},
        batch_children=True,
    ),
    # issue 17: the run input carries the plan's facts (admission ranks and the checks' bounds)
    Scenario(
        "plan_facts",
        plan_facts,
        "completed",
        {"first": ["all_completed"], "second": ["all_completed"]},
    ),
    # issue 17: an uncached agent's task without the run's ids and plan name (patch
    # lean-agent-task, src/pee/workflows/lean_task.py)
    Scenario("lean_task", all_completed, "completed", {"g": ["all_completed"]}),
    # issue 17: at most START_BATCH groups start per activation (src/pee/workflows/ready_groups.py)
    Scenario(
        "bounded_starts",
        bounded_starts,
        "completed",
        {g: ["all_completed"] for g in ["root", *(f"w{i}" for i in range(WIDE_GROUPS))]},
        {"time_scale": 0.1, "batch": BatchSpec(chunk_size=500, window=2, local_s=1000.0)},
    ),
    # issue 16: agent-level fan-outs (src/pee/workflows/fan_out_driver.py, patch fan-out-v1)
    Scenario(
        "fan_out_agent",
        fan_out_agent,
        "completed",
        {"sm": ["all_completed"], "dev": ["all_completed"], "qa": ["all_completed"]},
        FAN_OUT_INPUT,
    ),
    Scenario(
        "fan_out_empty",
        fan_out_empty,
        "completed",
        {"sm": ["all_completed"], "dev": ["all_completed"], "qa": ["all_completed"]},
        FAN_OUT_INPUT,
    ),
    Scenario(
        "fan_out_partial",
        fan_out_partial,
        "completed",
        {"sm": ["all_completed"], "devs": ["continue_with_partial"], "qa": ["all_completed"]},
        FAN_OUT_INPUT,
    ),
    Scenario(
        "fan_out_group",
        fan_out_group,
        "completed",
        {"po": ["all_completed"], "per_epic": ["all_completed"], "summary": ["all_completed"]},
        FAN_OUT_INPUT,
        children=True,
    ),
    # items in batch children (src/pee/workflows/fan_out_items.py, patch fan-out-batches-v1)
    Scenario(
        "fan_out_batches",
        fan_out_batches,
        "completed",
        {
            "po": ["all_completed"],
            "per_epic": ["continue_with_partial"],
            "summary": ["all_completed"],
        },
        FAN_OUT_BATCHES,
        children=True,
    ),
]

# the engine's revision (src/pee/workflows/revision.py): one patch marker for every patch before
# it, and no store of the context the run completes with. The histories above were recorded
# before it and replay the older patches one by one: re-recording one turns it into a revision
# history, so the revision's runs of the same scenarios are recorded under names of their own.
_BY_NAME = {scenario.name: scenario for scenario in SCENARIOS}
SCENARIOS += [
    replace(_BY_NAME["cache_levels"], name="revision"),
    replace(_BY_NAME["conflict_update"], name="revision_conflict"),
]
# engine-revision-3 (pee.workflows.search.SEARCH_SYNC_PATCH): the search attributes upserted
# once per workflow task, not at each event; the revision-2 histories above keep the older path
SCENARIOS += [
    replace(_BY_NAME["search_attributes"], name="revision_search"),
    replace(_BY_NAME["conflict_waiting"], name="revision_waiting"),
]


def conflicts(report: dict[str, Any]) -> list[str]:
    return [
        f"{c['id']}:{c['status']}:{(c.get('resolution') or {}).get('choice')}"
        for c in report.get("conflicts", [])
    ]


def outcome(report: dict[str, Any]) -> tuple[Any, ...]:
    """What a scenario is about: run status, barrier decisions, conflict outcomes, throttled
    groups."""
    throttled = [e["id"] for e in report.get("events", []) if e["event"] == "group_throttled"]
    return report["status"], decisions(report), conflicts(report), throttled


def expected(scenario: Scenario) -> tuple[Any, ...]:
    return scenario.status, scenario.decisions, scenario.conflicts, scenario.throttled


def decisions(report: dict[str, Any]) -> dict[str, list[str]]:
    return {
        group_id: [entry["decision"] for entry in group["barrier"]["history"]]
        for group_id, group in report["groups"].items()
    }


async def record(client: Client, scenario: Scenario) -> Path:
    task_queue = f"record-{uuid.uuid4()}"
    slots = (
        {}
        if scenario.activity_slots is None
        else {"max_concurrent_activities": scenario.activity_slots}
    )
    async with build_worker(client, task_queue, **slots):
        handle = await client.start_workflow(
            PlanWorkflow.run,
            PlanRunInput(plan=scenario.plan(), **scenario.input_fields),
            id=f"record-{scenario.name}-{uuid.uuid4()}",
            task_queue=task_queue,
        )
        if scenario.interact is not None:
            await scenario.interact(handle)
        try:
            report = await handle.result()
        except WorkflowFailureError as err:
            report = err.cause.details[0]  # type: ignore[union-attr]
        history = await handle.fetch_history()
        if scenario.batch_children:
            # a failed run's local chunk ends at its next workflow task heartbeat, on this
            # worker: record its whole history
            for event in history.events:
                if event.HasField("start_child_workflow_execution_initiated_event_attributes"):
                    attributes = event.start_child_workflow_execution_initiated_event_attributes
                    await closed(client.get_workflow_handle(attributes.workflow_id))
    found = outcome(report)
    if found != expected(scenario):
        raise SystemExit(f"{scenario.name}: expected {expected(scenario)}, recorded {found}")
    path = HERE / f"{scenario.name}.json"
    path.write_text(history.to_json() + "\n")
    if scenario.children or scenario.batch_children:
        folder = (CHILDREN if scenario.children else BATCH_CHILDREN) / scenario.name
        for old in folder.glob("*.json"):
            old.unlink()
        folder.mkdir(parents=True, exist_ok=True)
        for event in history.events:
            if event.HasField("start_child_workflow_execution_initiated_event_attributes"):
                child = event.start_child_workflow_execution_initiated_event_attributes.workflow_id
                found_child = await client.get_workflow_handle(child).fetch_history()
                name = child.rsplit("/", 1)[1]
                (folder / f"{name}.json").write_text(found_child.to_json() + "\n")
    return path


async def closed(handle: Handle, timeout_s: float = 90.0) -> None:
    for _ in range(int(timeout_s / 0.2)):
        if (await handle.describe()).status != WorkflowExecutionStatus.RUNNING:
            return
        await asyncio.sleep(0.2)
    raise SystemExit(f"{handle.id} still running after {timeout_s:g} s")


async def main(names: list[str]) -> None:
    chosen = [s for s in SCENARIOS if (s.name in names if names else not s.legacy)]
    legacy = [s.name for s in chosen if s.legacy]
    if legacy:
        raise SystemExit(f"{legacy}: recorded by an older PlanWorkflow, kept as they are")
    unknown = [n for n in names if n not in [s.name for s in SCENARIOS]]
    if unknown:
        raise SystemExit(f"unknown scenarios {unknown}; known: {[s.name for s in SCENARIOS]}")
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=str(find_temporal_binary()),
        ui=False,
        data_converter=data_converter(),
        # the search_attributes scenario upserts PeePlan/PeeStatus/PeeGroup
        search_attributes=list(search.KEYS),
    )
    try:
        for scenario in chosen:
            print(f"recorded {await record(env.client, scenario)}")
    finally:
        await env.shutdown()


if __name__ == "__main__":
    # leave without the bridge's crash at interpreter exit (see src/pee/runtime/exit.py)
    run_entry(lambda: asyncio.run(main(sys.argv[1:])))
