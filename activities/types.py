"""What the workflow sends to an agent activity and what comes back: small, JSON-friendly data."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from engine.compiled import CompiledAgent


@dataclass
class AgentTask:
    agent: CompiledAgent
    # snapshot of the agent's inputs and optional inputs that were available when it started,
    # keyed exactly as declared ("pm.user_stories", a plan input name, a shared key)
    inputs: dict[str, Any] = field(default_factory=dict)
    # blocking inputs that had no value at start (a partial barrier without a default)
    missing_inputs: list[str] = field(default_factory=list)
    group: str = ""
    run_id: str = ""
    workflow_id: str = ""
    # factor applied to simulated durations; None = PEE_TIME_SCALE env or 1.0
    time_scale: float | None = None


@dataclass
class AgentResult:
    agent_id: str
    # output name -> value (context key is "<agent_id>.<name>")
    outputs: dict[str, Any] = field(default_factory=dict)
    # shared context key -> value
    writes: dict[str, Any] = field(default_factory=dict)
    # the activity attempt that produced this result (1 = first try)
    attempt: int = 1
