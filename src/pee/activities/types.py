"""What the workflow sends to an agent activity and what comes back: small, JSON-friendly data."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pee.engine.compiled import CompiledAgent


@dataclass
class AgentTask:
    agent: CompiledAgent
    # snapshot of the agent's inputs and optional inputs that were available when it started,
    # keyed exactly as declared ("pm.user_stories", a plan input name, a shared key)
    inputs: dict[str, Any] = field(default_factory=dict)
    # blocking inputs that had no value at start (a partial barrier without a default)
    missing_inputs: list[str] = field(default_factory=list)
    # the version vector of the agent's snapshot: key -> version it saw (0 = absent) for its
    # inputs, optional inputs and shared writes; recorded in history with the task, and the base
    # version of each shared write it returns
    snapshot_versions: dict[str, int] = field(default_factory=dict)
    group: str = ""
    run_id: str = ""
    workflow_id: str = ""
    # factor applied to simulated durations; None = PEE_TIME_SCALE env or 1.0
    time_scale: float | None = None
    # --simulate: the agent also takes this long (real seconds, already time-scaled), whatever
    # its kind; it runs alongside the backend, so the agent takes max(backend, simulate_s)
    simulate_s: float | None = None
    # how often (real seconds) to report progress to the workflow by the `agent_progress`
    # signal; 0 turns progress signals off
    progress_interval_s: float = 1.0
    # how often (real seconds) to heartbeat; None = the activity's heartbeat timeout / 3
    heartbeat_interval_s: float | None = None
    # outputs and writes whose canonical JSON is above this many bytes go to the artifact store
    # and come back as references (src/pee/activities/artifacts.py); None = 256 KiB. The workflow
    # passes the plan's context_conflicts.large_value_threshold (CompiledPlan.context).
    large_value_threshold: int | None = None
    # the agent output cache (pee.engine.rules.cache_key); None = not cached. The result is stored
    # under this key after success, for ``cache_ttl_s`` seconds (None: this run only)
    cache_key: str | None = None
    cache_ttl_s: float | None = None
    # the plan's agent_output_cache.size_limit in bytes (None: the store's default, 100 MB)
    cache_size_limit: int | None = None
    plan_name: str = ""


@dataclass
class AgentResult:
    agent_id: str
    # output name -> value (context key is "<agent_id>.<name>")
    outputs: dict[str, Any] = field(default_factory=dict)
    # shared context key -> value
    writes: dict[str, Any] = field(default_factory=dict)
    # the activity attempt that produced this result (1 = first try)
    attempt: int = 1
    # what the worker-side caches did for this agent, level -> counter -> number, e.g.
    # {"template_render": {"hits": 1}, "prefetch": {"hits": 2}, "agent_output": {"bytes_saved":
    # 900}}: render and prefetch caches live on workers, so the workflow counts them from here
    cache: dict[str, dict[str, int]] = field(default_factory=dict)
    # that attempt's backend wall time, and the part of it spent waiting on the network (http
    # agents: requests in flight and back-off between them; None where a backend cannot tell):
    # the network_latency_impact metric (src/pee/engine/report/metrics.py)
    elapsed_s: float | None = None
    io_wait_s: float | None = None


@dataclass
class AgentProgress:
    """A working agent's progress: the `agent_progress` signal's argument and heartbeat details."""

    agent_id: str
    attempt: int
    # 0..1 when the agent knows how far along it is, else None
    fraction: float | None = None
    message: str = ""
    # seconds the worker was behind while this attempt ran: how much later than asked its
    # keepalive loop woke, all wake-ups together (a busy worker, not the agent's own time)
    behind_s: float = 0.0


# the signal a working agent sends its workflow; PlanWorkflow handles it
PROGRESS_SIGNAL = "agent_progress"


@dataclass
class CacheLookup:
    key: str
    run_id: str


@dataclass
class SnapshotTask:
    """The context at a group's barrier, for the context snapshot cache (a local activity, so
    the values never enter the history)."""

    key: str
    values: dict[str, Any]
    group_id: str
    workflow_id: str
    run_id: str
    plan_name: str
    # None: session_lifetime (kept until evicted or cleared)
    ttl_s: float | None = None
    size_limit: int | None = None
    compression_threshold: int | None = None


@dataclass
class SnapshotStored:
    key: str
    stored: bool
    size: int = 0
    bytes_saved: int = 0


@dataclass
class PrefetchTask:
    """Warm a worker for a group likely to start next: parse its agents' template files and
    resolve the artifact references among the context values they will read."""

    group_id: str
    # template agents of the group (their settings name the template and the plan's folder)
    templates: list[CompiledAgent] = field(default_factory=list)
    # artifact references found in the values the group's agents read that exist already
    references: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Prefetched:
    group_id: str
    templates: int = 0
    values: int = 0
    failed: list[str] = field(default_factory=list)
