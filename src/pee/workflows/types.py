"""The PlanWorkflow input. The run report and status are plain dicts (see plan_workflow.py)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from pee.engine.compiled import CompiledPlan


@dataclass
class ResumeFrom:
    """Start from an earlier run's results (`run --resume-from`): ``context`` is that run's
    context values and ``passed_groups`` the groups that succeeded there; the starter fills both.
    ``from_group`` and every group depending on it (transitively) run again even if they passed.
    """

    workflow_id: str
    run_id: str | None = None
    from_group: str | None = None
    context: dict[str, Any] = field(default_factory=dict)
    passed_groups: list[str] = field(default_factory=list)
    # the context snapshot (context_snapshot_cache key) ``context`` was read from; None = read
    # by the `context` query on the earlier run
    snapshot_key: str | None = None
    # items of fan-outs that did not pass but that succeeded there, reused when the same index
    # holds the same item: "agent[i]" (agent level) -> {"item_hash": value_hash of its item,
    # "outputs": {output name: value}}, "group[i]" (group level) -> {"item_hash": ...,
    # "outputs": {"member.output": value}}
    finished_items: dict[str, dict[str, Any]] = field(default_factory=dict)


@dataclass
class BatchSpec:
    """Batch mode (src/pee/workflows/batcher.py): agents run in AgentBatchWorkflow children of at
    most
    ``chunk_size`` agents each, at most ``window`` children at a time, so no history grows with
    the plan. Chosen by the starter (`run`/`compile`) for plans above BATCH_THRESHOLD agents, and
    recorded in the input so a replay takes the same path."""

    chunk_size: int = 100
    window: int = 16
    # a child sends the outcomes of agents that ended to the parent at most this often (real
    # seconds; the first at once), so a group's barrier sees them before the chunk ends
    flush_s: float = 1.0
    # agents whose every attempt is bounded by at most this many seconds (their timeout after
    # the time scale) and that have no task queue of their own run as local activities of
    # their child (src/pee/workflows/agent_batch.py, docs/guides/large-plans.md); 0: none, as
    # in every run recorded before it (the field is then absent from the input)
    local_s: float = 0.0
    # a chunk of local agents is cut in two by expected duration where that saves at least
    # this many seconds of waiting, summed over its groups (pee.engine.rules.local_chunks); 0:
    # never, as in every run recorded before it
    split_gain_s: float = 0.0


@dataclass
class LedgerSpec:
    """The run ledger (src/pee/workflows/ledger.py): agents' and ended groups' report rows and
    the events go to the run store (pee.stores.runs) a batch at a time, so neither the result
    nor the carried state of a continue-as-new grows with the plan. On with batch mode."""

    # rows per flush (one local activity each)
    flush_rows: int = 500


# plans with more agents than this run in batch mode unless told otherwise (`run --no-batch`):
# at ~11 history events per agent, a plain run of ~900 agents reaches Temporal's 10,240 limit
BATCH_THRESHOLD = 300


# batch mode: agents whose timeout is at most this (seconds, after the time scale) run as
# local activities of their child (BatchSpec.local_s; `run --batch-local 0` turns it off)
LOCAL_AGENT_S = 10.0
# batch mode: a chunk of local agents is cut in two by expected duration where that saves at
# least this many seconds of waiting over its groups (BatchSpec.split_gain_s; bench/README.md,
# "scale.py", has the measurements behind it)
SPLIT_GAIN_S = 10.0


def choose_batch(
    agents: int,
    force: bool | None = None,
    chunk_size: int | None = None,
    window: int | None = None,
    local_s: float | None = None,
    split_gain_s: float | None = None,
) -> BatchSpec | None:
    """Batch mode for a plan of ``agents`` agents: on above BATCH_THRESHOLD, or as ``force``
    says (True: always, False: never)."""
    on = agents > BATCH_THRESHOLD if force is None else force
    if not on:
        return None
    spec = BatchSpec()
    local = LOCAL_AGENT_S if local_s is None else max(0.0, local_s)
    gain = SPLIT_GAIN_S if split_gain_s is None else max(0.0, split_gain_s)
    return BatchSpec(
        chunk_size or spec.chunk_size,
        window or spec.window,
        local_s=local,
        # without local agents there is no local chunk to cut
        split_gain_s=gain if local > 0 else 0.0,
    )


def choose_ledger(
    batch: BatchSpec | None, force: bool | None = None, fan_out: bool = False
) -> LedgerSpec | None:
    """The run ledger: on with batch mode, or as ``force`` says (True: always, False: never).
    Never for a plan with fan-outs: their instances join the plan at run time, and the report
    assembler computes the critical path from the plan as started (`run --ledger` refuses)."""
    on = batch is not None if force is None else force
    return LedgerSpec() if on and not fan_out else None


@dataclass
class FanOutBatching:
    """When a fan-out's items run in batch children and how many agents each child runs
    (pee.engine.rules.fan_out_batches; None on PlanRunInput: its defaults)."""

    # an agent-level fan-out of more instances than this: batch children
    above: int = 200
    # a group-level fan-out of more items than this: batch children
    group_above: int = 20
    # agents per batch child
    child_agents: int = 50
    # batch children running at once (None: no bound beyond max_parallel)
    children_at_once: int | None = 40


@dataclass
class PlanRunInput:
    plan: CompiledPlan
    # run-time values for plan inputs; override plan.inputs
    inputs: dict[str, Any] = field(default_factory=dict)
    # every plan duration (agent work, timeouts, group deadlines, retry intervals) is multiplied
    # by this, so a plan written in minutes can run in seconds
    time_scale: float = 1.0
    # None = derived from time_scale (2..10 s); heartbeats are real time, never below 1 s
    heartbeat_timeout_s: float | None = None
    # --simulate: every agent also takes its estimated duration x time_scale (AgentTask.simulate_s)
    simulate: bool = False
    # resource admission order: "priority" (priority, aging, remaining path) or "fifo" (first
    # ready first; the baseline bench/resources.py compares with)
    admission: str = "priority"
    # reuse an earlier run's passed groups and their context values (None: a plain run)
    resume: ResumeFrom | None = None
    # upsert the PeePlan/PeeStatus/PeeGroup search attributes as the run moves (workflows/
    # search.py); only for a server where they are registered, or the workflow task fails
    search_attributes: bool = False
    # None: every agent is an activity of this workflow (small plans); set: batch mode
    batch: BatchSpec | None = None
    # None: the whole report lives in the workflow (small plans, and every run recorded before
    # the ledger); set: report rows go to the run store (src/pee/workflows/ledger.py)
    ledger: LedgerSpec | None = None
    # continue as new once this run's history has this many events, even before Temporal
    # suggests it (None: only when Temporal suggests it; see src/pee/workflows/carry.py)
    continue_as_new_after: int | None = None
    # set by a run that continued as new: the whole run so far, which this run goes on with
    # (src/pee/workflows/carry.py's CarriedRun, encoded as plain JSON)
    carried: dict[str, Any] | None = None
    # one item of a parent's group-level fan-out (src/pee/workflows/fan_out_items.py): the
    # context keys whose values the report returns under "item_outputs"
    item_outputs: list[str] | None = None
    # when a fan-out's items run in batch children (None: the defaults); recorded in the input
    # so a replay takes the same path
    fan_out_batching: FanOutBatching | None = None
    # this run is a batch of a parent's fan-out items (src/pee/workflows/item_batch.py): an
    # item that fails ends its own chain, not the run
    item_batch: bool = False


@dataclass
class ResolveConflict:
    """The `resolve_conflict` update's and signal's argument.

    choice: "current" keeps the value the key has now (the first writer's), "incoming" takes the
    conflicting write, "value" takes ``value`` (any JSON but null). ``expected_version`` is the
    key's version you decided against: the `conflicts` query's ``current_version``; a resolution
    against an older version is refused as stale, one against a newer version as newer than
    the current one. None skips that check. The handlers take any payload and build this with
    pee.workflows.resolution.parse_resolution (a malformed one is refused and recorded).
    """

    conflict_id: str
    choice: str
    value: Any = None
    expected_version: int | None = None
    by: str = "user"


# a batch-mode run's workflow task timeout (Temporal's largest; its default is 10 s): after an
# eviction (a worker restart, a task the deadlock detector failed) the worker replays the
# parent's whole history inside one workflow task, and a 20,000-agent parent's 4,700 events
# took 30-35 s to replay on a loaded 2-core machine: with 10 s every attempt timed out and
# started the replay again, and the run never went on
LARGE_RUN_TASK_TIMEOUT = timedelta(seconds=120)


def task_timeout(run_input: PlanRunInput) -> timedelta | None:
    """The workflow task timeout to start ``run_input``'s run with (None: Temporal's default;
    a continuation keeps its run's)."""
    return LARGE_RUN_TASK_TIMEOUT if run_input.batch is not None else None
