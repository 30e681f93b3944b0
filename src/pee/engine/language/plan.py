"""A validated plan (``Plan``), the keys a plan file may have, and ``suggest`` for "did you mean"
fixes. Reading and validating a plan file is pee.engine.compile.load: it ends with the
whole-plan checks (pee.engine.compile.checks), which read a ``Plan``, so the loader lives in
compile/ and this module stays below it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from pee.engine.language import bmad
from pee.engine.language.models import (
    AgentSpec,
    BarrierSynchronization,
    CachingSystem,
    ContextConflicts,
    DependencyAnalyzer,
    GroupSpec,
    PerformanceMonitoring,
    ResourceManager,
)
from pee.engine.language.seed import RawAgent, RawGroup
from pee.engine.language.yamlsrc import SourceMap

SECTION_MODELS: dict[str, type[BaseModel]] = {
    "dependency_analyzer": DependencyAnalyzer,
    "resource_manager": ResourceManager,
    "barrier_synchronization": BarrierSynchronization,
    "context_conflicts": ContextConflicts,
    "caching_system": CachingSystem,
    "performance_monitoring": PerformanceMonitoring,
}
PLAN_KEYS = (
    "name",
    "description",
    "version",
    "inputs",
    "agents",
    "groups",
    "execution_groups",
    "enhanced_workflow_step",
    "enhanced_workflow_steps",
    "default_agent_timeout",
    "notes",
    "task_queues",
    "adaptive",
    "llm",
    *SECTION_MODELS,
)


@dataclass
class Plan:
    """A validated plan: agents and explicit groups in declaration order, plus seed settings."""

    name: str
    agents: dict[str, AgentSpec]
    groups: dict[str, GroupSpec]
    source: SourceMap = field(default_factory=SourceMap)
    description: str = ""
    inputs: dict[str, Any] = field(default_factory=dict)
    aliases: dict[str, str] = field(default_factory=dict)
    # agents declared in seed form without outputs: references define their outputs
    open_agents: list[str] = field(default_factory=list)
    agent_paths: dict[str, RawAgent] = field(default_factory=dict)
    group_paths: dict[str, RawGroup] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    default_agent_timeout_s: float = 600.0
    # agent kind -> task queue, for agents that name no task_queue of their own
    task_queues: dict[str, str] = field(default_factory=dict)
    # `adaptive: true` (or {margin: M}): barrier deadlines follow learned durations (p95 x M)
    adaptive_margin: float | None = None
    # resource admission applies only to plans that give a pool: without one a plan runs as
    # fast as its dependencies allow
    resource_pool_given: bool = False
    dependency_analyzer: DependencyAnalyzer = field(default_factory=DependencyAnalyzer)
    resource_manager: ResourceManager = field(default_factory=ResourceManager)
    barrier_synchronization: BarrierSynchronization = field(default_factory=BarrierSynchronization)
    context_conflicts: ContextConflicts = field(default_factory=ContextConflicts)
    caching_system: CachingSystem = field(default_factory=CachingSystem)
    performance_monitoring: PerformanceMonitoring = field(default_factory=PerformanceMonitoring)
    # the --bmad-dir folder of a BMAD workflow: its template steps' sandbox root
    # (pee.engine.language.sandbox)
    bmad_dir: str | None = None
    # filled by the whole-plan checks and reused by the analyser
    # (pee.engine.compile.references.Resolution, pee.engine.compile.grouping.Grouping)
    resolution: Any = None
    grouping: Any = None
    # a BMAD workflow's bmad.Interpretation: why each derived edge exists, what was skipped
    interpretation: bmad.Interpretation | None = None

    def notices(self) -> list[str]:
        """Settings the plan gives that are accepted but change nothing, each with where it is
        and what to do: a plan written for an earlier version still validates, and its author
        learns the setting is dead rather than believing it works."""
        found = []
        if "large_value_threshold" in self.context_conflicts.model_fields_set:
            where = self.source.locate(("context_conflicts", "large_value_threshold"))
            found.append(
                f"{where}: large_value_threshold has no effect: payloads still over "
                "PEE_PAYLOAD_THRESHOLD (256 KiB after lz4) leave the history through External "
                "Storage; remove the line, or set PEE_PAYLOAD_THRESHOLD on workers and clients"
            )
        return found

    def agent_location(
        self, agent_id: str, field_name: str | None = None, index: int | None = None
    ):
        raw = self.agent_paths.get(agent_id)
        if raw is None:
            return self.source.locate(())
        path = raw.path if field_name is None else raw.path_of(field_name)
        return self.source.locate(path if index is None else (*path, index))

    def group_location(
        self, group_id: str, field_name: str | None = None, index: int | None = None
    ):
        raw = self.group_paths.get(group_id)
        if raw is None:
            return self.source.locate(())
        path = raw.path if field_name is None else raw.path_of(field_name)
        return self.source.locate(path if index is None else (*path, index))
