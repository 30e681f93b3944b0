"""What pee.workflows.plan_workflow uses, gathered in one module it imports passed through.

The sandbox imports plan_workflow afresh for every run (its state stays the run's), and inside
the sandbox every import statement goes through the sandbox's importer: checking the module
against the restrictions, lifting and restoring them around the host's import. About a quarter
of a millisecond each; some forty statements were ~10 ms of every run's first workflow task
(bench/overhead.py at 20 agents). One statement importing this module costs one of those.

The modules named here hold no module-level state a run could change, and call the SDK only
through `workflow` at run time: passed through, they are shared by all runs, as they were when
plan_workflow imported them one by one (importing the collaborators that start activities
afresh for every run, as only plan_workflow must be, was once most of a small run's overhead).
In plan_workflow, `from pee.workflows import item_batch` would not do: the sandbox imports the
package afresh, and a from-import of its submodule bypasses the passthrough.
"""

from __future__ import annotations

import pee.engine.rules.plan_facts as plan_facts
import pee.workflows.item_batch as item_batch
import pee.workflows.pool_lease as pool_lease
import pee.workflows.revision as revision
from pee.activities import simulate
from pee.activities.pool_types import GRANT_SIGNAL, PoolGrant
from pee.activities.types import AgentProgress
from pee.engine.compiled import CompiledGroup, CompiledPlan
from pee.engine.gc_pause import gc_paused, paused_gc
from pee.engine.rules import context as ctx
from pee.engine.rules.context import ContextPolicy, VersionedContext
from pee.engine.rules.monitoring import Monitor, Settings
from pee.engine.rules.scheduler import Admission, Pool, Request
from pee.engine.rules.time_limits import time_scale_problems
from pee.engine.states import (
    AgentStatus,
    BarrierAction,
    GroupStatus,
    RunStatus,
)
from pee.workflows.adaptation import Adaptation
from pee.workflows.agent_batch import OUTCOMES_SIGNAL
from pee.workflows.agent_cache import AgentCache, plan_cache_ttl_s
from pee.workflows.agent_outcome import (
    AgentOutcome,
)
from pee.workflows.agent_runner import AgentRunner
from pee.workflows.agent_timing import AgentTiming
from pee.workflows.batcher import Batcher
from pee.workflows.cache_levels import CacheLevels
from pee.workflows.carry import (
    CarriedRun,
    capture,
    decode,
    groups_to_run,
    restore,
    restore_admission,
)
from pee.workflows.conflict_desk import ConflictDesk
from pee.workflows.context_gate import ContextGate
from pee.workflows.continuation import Continuation, children_ended, continue_as_new
from pee.workflows.cross_validator import CrossValidator
from pee.workflows.deadline_timer import DeadlineClock
from pee.workflows.eviction import release_at_eviction
from pee.workflows.final_report import FinalReport
from pee.workflows.group_driver import GroupDriver, cancel_all
from pee.workflows.ledger import Ledger
from pee.workflows.locks import ContextLimits
from pee.workflows.ready_groups import ReadyGroups
from pee.workflows.run_scope import RunScope
from pee.workflows.search import RunSearchAttributes
from pee.workflows.state import (
    AgentState,
    GroupState,
    RunState,
)
from pee.workflows.types import PlanRunInput

__all__ = [
    "Adaptation",
    "Admission",
    "AgentCache",
    "AgentOutcome",
    "AgentProgress",
    "AgentRunner",
    "AgentState",
    "AgentStatus",
    "AgentTiming",
    "BarrierAction",
    "Batcher",
    "CacheLevels",
    "cancel_all",
    "capture",
    "CarriedRun",
    "children_ended",
    "CompiledGroup",
    "CompiledPlan",
    "ConflictDesk",
    "ContextGate",
    "ContextLimits",
    "ContextPolicy",
    "Continuation",
    "continue_as_new",
    "CrossValidator",
    "ctx",
    "DeadlineClock",
    "decode",
    "FinalReport",
    "gc_paused",
    "GRANT_SIGNAL",
    "GroupDriver",
    "groups_to_run",
    "GroupState",
    "GroupStatus",
    "item_batch",
    "Ledger",
    "Monitor",
    "OUTCOMES_SIGNAL",
    "paused_gc",
    "plan_cache_ttl_s",
    "plan_facts",
    "PlanRunInput",
    "Pool",
    "pool_lease",
    "PoolGrant",
    "ReadyGroups",
    "release_at_eviction",
    "Request",
    "restore",
    "restore_admission",
    "revision",
    "RunScope",
    "RunSearchAttributes",
    "RunState",
    "RunStatus",
    "Settings",
    "simulate",
    "time_scale_problems",
    "VersionedContext",
]
