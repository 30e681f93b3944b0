"""The `simulate` backend: works for a while (heartbeating), then returns made-up outputs.

For demos, tests and benchmarks. Settings (all optional, in CompiledAgent.settings):

- ``duration``: seconds of work in plan time (x the run's time scale); default the agent's
  estimate. ``duration_s`` is accepted as an alias.
- ``fail_times``: fail the first N attempts of this activity id, then succeed; ``"always"``
  fails every attempt. Failures are retryable ``ApplicationError(type="SimulatedFailure")``
  raised after the duration, with ``details=[{"attempt": n}]``.
- ``fail_unless_fallback``: true = fail every attempt whose activity id does not end with
  ``#fallback``, i.e. fail inside the parallel group and succeed when the barrier re-runs the
  agent in its sequential fallback (activity id ``"<agent>#fallback"``). ``fail_times`` still
  applies to the fallback's own attempts.
- ``critical``: true = failures are non-retryable ``ApplicationError(type="CriticalAgentError")``
  (the barrier's "critical error" branch). On its own (no fail_times / fail_unless_fallback)
  it fails every attempt.
- ``heartbeat``: false = a silent agent that neither heartbeats nor reports progress; it just
  sleeps, so only its timeouts (heartbeat, start-to-close, schedule-to-close) bound it, and a
  cancellation never reaches it.
- ``values``: {output name or shared key: value} written as given. Every other declared output
  and shared key (``agent.writes``) gets a deterministic value: {"agent", "output",
  "inputs" (the input keys it read), "digest" (sha256 of the canonical-JSON input snapshot)}.
- ``fail_items``: [index, ...]: a fan-out instance (`agent[i]`) whose ``index`` input is listed
  fails every attempt, as ``fail_times: always`` (the others succeed); an item's sequential
  fallback (``#fallback``) fails too.
- ``item_durations``: {"index": seconds} (keys quoted: settings keys are text): a fan-out
  instance whose ``index`` input is listed works that long instead of ``duration`` (one slow
  item among fast ones).
- ``echo_inputs``: true = put the whole input snapshot (values too) into "inputs" of those
  default values, so tests can see exactly what the agent was given.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from temporalio import activity
from temporalio.exceptions import ApplicationError, ApplicationErrorCategory

from pee.activities.progress import Progress
from pee.activities.types import AgentResult, AgentTask
from pee.engine.canonical import digest
from pee.engine.compiled import CompiledAgent

ALWAYS = "always"
FALLBACK_SUFFIX = "#fallback"


@dataclass(frozen=True)
class SimulateSettings:
    duration_s: float
    # None = fail every attempt ("always")
    fail_times: int | None = 0
    fail_unless_fallback: bool = False
    critical: bool = False
    heartbeat: bool = True
    values: dict[str, Any] = field(default_factory=dict)
    echo_inputs: bool = False
    fail_items: tuple[int, ...] = ()
    # item index (as text: JSON keys) -> seconds
    item_durations: dict[str, float] = field(default_factory=dict)

    def fails(self, attempt: int, activity_id: str) -> bool:
        if self.fail_unless_fallback and not activity_id.endswith(FALLBACK_SUFFIX):
            return True
        if self.fail_times is None:
            return True
        return attempt <= self.fail_times


def _invalid(agent: CompiledAgent, message: str) -> ApplicationError:
    # a plan mistake: retrying cannot help
    return ApplicationError(
        f"agent '{agent.id}': invalid simulate setting: {message}",
        type="InvalidAgentSettings",
        non_retryable=True,
    )


def _flag(agent: CompiledAgent, name: str, default: bool) -> bool:
    value = agent.settings.get(name, default)
    if not isinstance(value, bool):
        raise _invalid(agent, f"'{name}' must be true or false, found {value!r}")
    return value


def _items(agent: CompiledAgent) -> tuple[int, ...]:
    raw = agent.settings.get("fail_items", [])
    if not isinstance(raw, list) or not all(
        isinstance(i, int) and not isinstance(i, bool) for i in raw
    ):
        raise _invalid(agent, f"'fail_items' must be a list of item indices, found {raw!r}")
    return tuple(raw)


def _item_durations(agent: CompiledAgent) -> dict[str, float]:
    raw = agent.settings.get("item_durations", {})
    if not isinstance(raw, dict) or not all(
        isinstance(v, int | float) and not isinstance(v, bool) and v >= 0 for v in raw.values()
    ):
        raise _invalid(
            agent, f"'item_durations' must map item indices to seconds >= 0, found {raw!r}"
        )
    return {str(k): float(v) for k, v in raw.items()}


# settings that say nothing but how long the agent works (most simulate agents)
_DURATION_ONLY = frozenset({"duration", "duration_s"})


def _duration(agent: CompiledAgent) -> float:
    settings = agent.settings
    raw = settings.get("duration", settings.get("duration_s"))
    if raw is None:
        raw = agent.estimated_s
    if isinstance(raw, bool) or not isinstance(raw, (int, float)) or raw < 0:
        raise _invalid(agent, f"'duration' must be a number of seconds >= 0, found {raw!r}")
    return float(raw)


def parse_settings(agent: CompiledAgent) -> SimulateSettings:
    """The agent's simulate settings, checked; raises a non-retryable ApplicationError."""
    settings = agent.settings
    if settings.keys() <= _DURATION_ONLY:
        # every other setting at its default: nothing else to read or check (a no-op agent's
        # whole settings walk was a tenth of its run_agent: bench/overhead.py)
        return SimulateSettings(duration_s=_duration(agent))
    duration_s = _duration(agent)

    raw_fail = settings.get("fail_times", 0)
    fail_times: int | None
    if raw_fail is None:
        fail_times = 0
    elif isinstance(raw_fail, str) and raw_fail.strip().lower() == ALWAYS:
        fail_times = None
    elif isinstance(raw_fail, int) and not isinstance(raw_fail, bool) and raw_fail >= 0:
        fail_times = raw_fail
    else:
        raise _invalid(
            agent, f"'fail_times' must be an integer >= 0 or 'always', found {raw_fail!r}"
        )
    fallback = _flag(agent, "fail_unless_fallback", False)
    critical = _flag(agent, "critical", False)
    if critical and not fallback and settings.get("fail_times") is None:
        # a critical failure was asked for and nothing says when: every attempt
        fail_times = None

    values = settings.get("values") or {}
    if not isinstance(values, dict):
        raise _invalid(
            agent, f"'values' must be a mapping of output or key to value, found {values!r}"
        )
    known = [*agent.outputs, *agent.writes]
    unknown = [name for name in values if name not in known]
    if unknown:
        raise _invalid(
            agent,
            f"'values' names {unknown}, which the agent neither outputs nor "
            f"writes; outputs {agent.outputs}, writes {agent.writes}",
        )
    return SimulateSettings(
        duration_s=duration_s,
        fail_times=fail_times,
        fail_unless_fallback=fallback,
        critical=critical,
        heartbeat=_flag(agent, "heartbeat", True),
        fail_items=_items(agent),
        item_durations=_item_durations(agent),
        values=dict(values),
        echo_inputs=_flag(agent, "echo_inputs", False),
    )


def default_value(
    task: AgentTask, name: str, echo_inputs: bool = False, hashed: str | None = None
) -> dict[str, Any]:
    """Small, deterministic and readable in the Web UI: who made it, from what. ``hashed``:
    inputs_digest(task.inputs), when the caller has it (one hash for all of an agent's names)."""
    inputs: Any = dict(task.inputs) if echo_inputs else sorted(task.inputs)
    fingerprint = inputs_digest(task.inputs) if hashed is None else hashed
    return {"agent": task.agent.id, "output": name, "inputs": inputs, "digest": fingerprint}


# the digest of no inputs (the first agents of every plan): a constant
_NO_INPUTS_DIGEST = digest({})


def inputs_digest(inputs: dict[str, Any]) -> str:
    return digest(inputs) if inputs else _NO_INPUTS_DIGEST


async def run(task: AgentTask, progress: Progress, scale: float) -> AgentResult:
    settings = parse_settings(task.agent)
    info = activity.info()
    index = task.inputs.get("index")
    duration = settings.item_durations.get(str(index), settings.duration_s) * scale
    progress.expect(duration)
    progress.report(message="simulated work")
    await progress.sleep(duration)
    failing_item = index in settings.fail_items
    if failing_item or settings.fails(info.attempt, info.activity_id):
        kind = "CriticalAgentError" if settings.critical else "SimulatedFailure"
        if failing_item:
            rule = f"fail_items={list(settings.fail_items)}, index {task.inputs.get('index')}"
        elif settings.fail_unless_fallback and not info.activity_id.endswith(FALLBACK_SUFFIX):
            rule = f"fail_unless_fallback, activity id {info.activity_id!r}"
        else:
            rule = f"fail_times={ALWAYS if settings.fail_times is None else settings.fail_times}"
        raise ApplicationError(
            f"simulated {'critical ' if settings.critical else ''}failure of agent "
            f"'{task.agent.id}' (attempt {info.attempt}, {rule})",
            {"attempt": info.attempt},
            type=kind,
            non_retryable=settings.critical,
            # asked for by the plan: the SDK logs benign failures quietly, without a traceback
            category=ApplicationErrorCategory.BENIGN,
        )

    # the input snapshot hashed once for all names, and only if some name takes a default value
    names = [*task.agent.outputs, *task.agent.writes]
    defaulted = any(name not in settings.values for name in names)
    hashed = inputs_digest(task.inputs) if defaulted else None

    def value(name: str) -> Any:
        if name in settings.values:
            return settings.values[name]
        return default_value(task, name, settings.echo_inputs, hashed)

    return AgentResult(
        agent_id=task.agent.id,
        outputs={name: value(name) for name in task.agent.outputs},
        writes={key: value(key) for key in task.agent.writes},
        attempt=info.attempt,
    )
