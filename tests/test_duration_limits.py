"""Durations and timeouts stay within what Temporal and the workflow can represent.

Issue 19: `timeout: 100000000000h` passed validate and raised OverflowError in the workflow on
every workflow task (the run stayed RUNNING forever); `timeout: 0` silently meant the default on
an agent and an instant deadline (then a sequential fallback) on a group. The rules:

- every duration a plan writes is at most pee.engine.language.units.MAX_DURATION_S (100 years), and
every
  duration a run waits (x its time scale) too: `run`/`compile` refuse a time scale past it, and
  the workflow fails such a hand-made input with DurationOutOfRange instead of raising;
- zero is refused where it would mean something else than zero (pee.engine.language.models:
timeouts,
  deadlines, extensions, intervals);
- whatever validate accepts, at whatever time scale `run` accepts, runs to an end: completed, or
  failed with a reason, never a workflow-task failure loop (the property test below, on
  Temporal's time-skipping test server).
"""

from __future__ import annotations

import asyncio
import math
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowFailureError, WorkflowHistory
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer, Worker

from pee.engine.compile.graph import compile_plan
from pee.engine.compile.load import loads_plan
from pee.engine.compiled import CompiledPlan
from pee.engine.language import errors
from pee.engine.language.units import MAX_DURATION_S
from pee.engine.rules.time_limits import scaled_durations, time_scale_problems
from pee.runtime.codec import data_converter
from pee.runtime.worker import build_worker
from pee.workflows.plan_workflow import TIME_LIMITS_PATCH, PlanWorkflow
from pee.workflows.types import PlanRunInput
from tests.helpers import PROJECT_ROOT
from tests.histories.record_limits import out_of_range

MAX = int(MAX_DURATION_S)
# a hang guard per run, not a speed assertion: a run that loops on workflow tasks never ends
RUN_GUARD_S = 90


def problems_of(text: str) -> list[errors.PlanError]:
    with pytest.raises(errors.PlanValidationError) as caught:
        loads_plan(text, file="plan.yaml")
    return caught.value.problems


# every duration field of the plan language, as a plan with {d} where the duration goes
DURATION_FIELDS = {
    "agent timeout": "agents: {a: {timeout: {d}}}",
    "agent estimated_duration": "agents: {a: {estimated_duration: {d}}}",
    "agent duration": "agents: {a: {duration: {d}}}",
    "retry initial_interval": "agents: {a: {retry: {initial_interval: {d}}}}",
    "retry maximum_interval": "agents: {a: {retry: {initial_interval: 0, maximum_interval: {d}}}}",
    "default_agent_timeout": "default_agent_timeout: {d}\nagents: {a: {}}",
    "group timeout": "agents: {a: {}}\ngroups: {g: {agents: [a], timeout: {d}}}",
    "group extension": "agents: {a: {}}\ngroups: {g: {agents: [a], extension: {d}}}",
    "group estimated_duration": "agents: {a: {}}\ngroups: {g: {agents: [a], "
    "estimated_duration: {d}}}",
    "validation_timeout": "agents: {a: {outputs: [x]}, v: {validates: [a]}}\n"
    "groups: {g: {agents: [a], cross_validation: {validation_agents: [v], "
    "validation_timeout: {d}}}}",
    "enhanced step timeout": "enhanced_workflow_step: {id: s, agents: [{id: a}], timeout: {d}}",
    "synchronization timeout": "enhanced_workflow_step: {id: s, agents: [{id: a}], "
    "synchronization: {timeout: {d}}}",
    "barrier default_timeout": "agents: {a: {}}\nbarrier_synchronization: "
    "{timeout_handling: {default_timeout: {d}}}",
    "barrier progress_window": "agents: {a: {}}\nbarrier_synchronization: "
    "{timeout_handling: {progress_window: {d}}}",
    "conflict_timeout": "agents: {a: {}}\ncontext_conflicts: {conflict_timeout: {d}}",
    "lock_timeout": "agents: {a: {}}\nresource_manager: {resource_pool: {context_store: "
    "{lock_timeout: {d}}}}",
    "render_timeout": "agents: {a: {}}\nresource_manager: {resource_pool: {template_engine: "
    "{render_timeout: {d}}}}",
    "sampling_interval": "agents: {a: {}}\nresource_manager: {load_balancing: "
    "{resource_monitoring: {sampling_interval: {d}}}}",
    "response_time": "agents: {a: {}}\nresource_manager: {load_balancing: "
    "{resource_monitoring: {alert_thresholds: {response_time: {d}}}}}",
    "cache ttl": "agents: {a: {}}\ncaching_system: {cache_levels: {agent_output_cache: "
    "{ttl: {d}}}}",
}
# where zero would not mean zero: refused
ZERO_REFUSED = [
    "agent timeout",
    "default_agent_timeout",
    "group timeout",
    "group extension",
    "validation_timeout",
    "enhanced step timeout",
    "synchronization timeout",
    "barrier default_timeout",
    "barrier progress_window",
    "lock_timeout",
    "render_timeout",
    "sampling_interval",
]


def with_duration(field: str, duration: object) -> str:
    return DURATION_FIELDS[field].replace("{d}", str(duration))


@pytest.mark.parametrize("field", list(DURATION_FIELDS))
def test_every_duration_is_at_most_a_century(field: str) -> None:
    """Past 100 years any duration is refused, saying the maximum; the maximum itself loads."""
    # (a ttl may also be session_lifetime: the union adds that alternative's complaint)
    [problem] = [
        p
        for p in problems_of(with_duration(field, "100000000000h"))
        if isinstance(p, errors.DurationError)
    ]
    assert "at most 100 years (3,153,600,000 s)" in problem.render()
    # at the line that holds the duration
    written = DURATION_FIELDS[field]
    assert written[: written.index("{d}")].count("\n") + 1 == problem.location.line
    loads_plan(with_duration(field, MAX))
    assert any(
        isinstance(p, errors.DurationError) for p in problems_of(with_duration(field, MAX + 1))
    )


@pytest.mark.parametrize("field", list(DURATION_FIELDS))
def test_zero_is_refused_where_it_would_mean_something_else(field: str) -> None:
    """A zero timeout used to mean the default (agents) or an instant deadline (groups): it is
    refused with what it would have done; zero estimates, intervals, conflict timeouts and
    TTLs keep their plain meaning."""
    if field in ZERO_REFUSED:
        [problem] = problems_of(with_duration(field, 0))
        assert "must be above 0" in problem.message
    else:
        loads_plan(with_duration(field, 0))


def test_a_retry_maximum_below_its_initial_interval_is_refused() -> None:
    [problem] = problems_of("agents: {a: {retry: {initial_interval: 10s, maximum_interval: 1s}}}")
    assert "maximum_interval 1s is below initial_interval 10s" in problem.message


def test_the_adaptive_margin_is_bounded() -> None:
    [problem] = problems_of("adaptive: {margin: 1e300}\nagents: {a: {}}")
    assert "from 1 to 100" in problem.message


def test_a_default_timeout_from_a_long_estimate_is_capped() -> None:
    """The default agent timeout is twice the estimate's upper end; from a 100-year estimate
    that is capped at 100 years, so what validate accepts compiles to what a run can wait."""
    compiled = compile_plan(loads_plan(f"agents: {{a: {{estimated_duration: {MAX}}}}}"))
    assert MAX_DURATION_S == compiled.agent("a").timeout_s
    assert [] == time_scale_problems(compiled, 1.0)


def test_time_scale_products_are_bounded() -> None:
    """A time scale is refused when it pushes any duration the run waits past 100 years; the
    message names the longest and the largest usable scale."""
    compiled = compile_plan(loads_plan("agents: {a: {timeout: 36500d}}"))
    assert [] == time_scale_problems(compiled, 1.0)
    [problem] = time_scale_problems(compiled, 2.0)
    assert "agent 'a' timeout" in problem and "at most 1" in problem
    assert time_scale_problems(compiled, math.inf) and time_scale_problems(compiled, -1.0)
    assert time_scale_problems(compiled, 1.0, heartbeat_timeout_s=1e12)
    # every duration the workflow scales is named, the pool's lock timeout when a pool is given
    pooled = compile_plan(
        loads_plan(
            "agents: {a: {timeout: 1h}}\n"
            "resource_manager: {resource_pool: {context_store: {lock_timeout: 36500d}}}"
        )
    )
    names = [name for name, _seconds in scaled_durations(pooled)]
    assert {
        "default_agent_timeout",
        "agent 'a' timeout",
        "agent 'a' estimate",
        "agent 'a' retry initial_interval",
        "group 'a' extension",
        "barrier_synchronization.timeout_handling.progress_window",
        "context_conflicts.conflict_timeout",
        "resource_pool.context_store.lock_timeout",
        "load_balancing.resource_monitoring.sampling_interval",
    } <= set(names)
    [problem] = time_scale_problems(pooled, 1.5)
    assert "resource_pool.context_store.lock_timeout" in problem


def test_run_and_compile_refuse_an_impossible_time_scale(tmp_path: Path) -> None:
    path = tmp_path / "long.yaml"
    path.write_text("name: long\nagents:\n  a: {kind: simulate, duration: 1s, timeout: 36500d}\n")
    for args in (
        ["compile", str(path), "--time-scale", "2"],
        ["run", str(path), "--time-scale", "2", "--address", "127.0.0.1:1"],
        ["compile", str(path), "--time-scale", "inf"],
    ):
        done = subprocess.run(
            [sys.executable, "starter.py", *args],
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert 2 == done.returncode, done.stderr
        assert "error: " in done.stderr and "time scale" in done.stderr


# --- on Temporal's time-skipping test server ----------------------------------------------------


class Skipping:
    """A time-skipping test server, one worker and an event loop for this module."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        binary = Path(sys.executable).parent / "temporal-test-server"
        self.env = self.loop.run_until_complete(
            WorkflowEnvironment.start_time_skipping(
                test_server_existing_path=str(binary), data_converter=data_converter()
            )
        )
        self.task_queue = f"limits-{uuid.uuid4()}"

        async def start() -> tuple[Worker, asyncio.Task[None]]:
            # a worker is built inside its event loop
            worker = build_worker(self.env.client, self.task_queue, graceful_shutdown_s=0.5)
            return worker, asyncio.create_task(worker.run())

        self.worker, self.running = self.loop.run_until_complete(start())

    @property
    def client(self) -> Client:
        return self.env.client

    def close(self) -> None:
        self.loop.run_until_complete(self.worker.shutdown())
        self.loop.run_until_complete(self.env.shutdown())
        self.loop.close()

    def outcome(self, plan: CompiledPlan, time_scale: float) -> tuple[str, str, WorkflowHistory]:
        """('completed', status) or ('failed', failure type: message) and the history."""

        async def go() -> tuple[str, str, WorkflowHistory]:
            handle = await self.client.start_workflow(
                PlanWorkflow.run,
                PlanRunInput(plan=plan, time_scale=time_scale),
                id=f"{plan.name}-{uuid.uuid4()}",
                task_queue=self.task_queue,
            )
            try:
                report = await asyncio.wait_for(handle.result(), RUN_GUARD_S)
                ended = ("completed", str(report["status"]))
            except WorkflowFailureError as err:
                cause = err.cause
                kind = cause.type if isinstance(cause, ApplicationError) else type(cause).__name__
                ended = ("failed", f"{kind}: {cause}")
            except TimeoutError:
                await handle.terminate("hang guard")
                ended = ("hung", "")
            return (*ended, await handle.fetch_history())

        return self.loop.run_until_complete(go())


@pytest.fixture(scope="module")
def skipping() -> Iterator[Skipping]:
    server = Skipping()
    try:
        yield server
    finally:
        server.close()


def task_failures(history: WorkflowHistory) -> list[str]:
    return [
        event.workflow_task_failed_event_attributes.failure.message
        for event in history.events
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED
    ]


def replays(history: WorkflowHistory) -> bool:
    replayer = Replayer(workflows=[PlanWorkflow], data_converter=data_converter())
    result = asyncio.run(replayer.replay_workflow(history, raise_on_replay_failure=False))
    return result.replay_failure is None


def test_a_hand_made_out_of_range_input_fails_with_the_reason(skipping: Skipping) -> None:
    """A compiled plan no `run` would send (a 100000000000h agent timeout): the run fails at
    once with DurationOutOfRange and why; no workflow task fails (each raised OverflowError
    before, and the run stayed RUNNING)."""
    ended, why, history = skipping.outcome(out_of_range(), 1.0)
    assert "failed" == ended
    assert why.startswith("DurationOutOfRange: ") and "agent 'a' timeout" in why
    assert [] == task_failures(history)


def test_the_out_of_range_history_replays() -> None:
    """The committed history (tests/histories/record_limits.py) replays: the failure is behind
    the durations-within-limits patch."""
    path = PROJECT_ROOT / "tests" / "histories" / "limits" / "duration_out_of_range.json"
    history = WorkflowHistory.from_json("replay-limits", path.read_text())
    assert replays(history)
    markers = [
        e.marker_recorded_event_attributes
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_MARKER_RECORDED
    ]
    assert markers and TIME_LIMITS_PATCH in str(markers[0].details)
    assert EventType.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED == history.events[-1].event_type


# durations anywhere from a millisecond to the maximum, the edges more often
durations = st.one_of(
    st.sampled_from([0.001, 1, 60, 3600, 86400, 30 * 86400, MAX // 2, MAX - 1, MAX]),
    st.floats(min_value=0.001, max_value=MAX_DURATION_S),
)
maybe = st.none() | durations
# Group deadlines stay DEADLINE_FLOOR_S of real time above the agents' real work (0.3 s at
# most). The time-skipping test server answers a cancel that races an activity's completion
# with ACTIVITY_UNKNOWN on every retry of the workflow task, so such a run never ends there;
# the real server answers UnhandledCommand and the SDK redoes the task with the completion
# (tried on the dev server: 30 runs of a 1 ms deadline racing agents, all ended).
DEADLINE_FLOOR_S = 10.0


def deadline(draw: Any, scale: float) -> float:
    return max(draw(durations), DEADLINE_FLOOR_S / scale)


def agent(draw: Any, index: int, scale: float) -> dict[str, Any]:
    # the work itself is real time on the worker: at most 0.3 s whatever the scale
    work = draw(st.sampled_from([0.0, 0.05, 0.3]))
    spec: dict[str, Any] = {
        "kind": "simulate",
        "duration": work / scale,
        "outputs": ["x"],
        "defaults": {"x": index},
    }
    for key, value in (("timeout", draw(maybe)), ("estimated_duration", draw(maybe))):
        if value is not None:
            spec[key] = value
    initial = draw(st.none() | durations)
    if initial is not None:
        retry: dict[str, Any] = {
            "max_attempts": draw(st.integers(1, 3)),
            "initial_interval": initial,
            "backoff_coefficient": draw(st.sampled_from([1, 2, 100])),
        }
        maximum = draw(st.none() | durations)
        if maximum is not None:
            retry["maximum_interval"] = maximum
        spec["retry"] = retry
        spec["fail_times"] = draw(st.sampled_from([0, 1]))
    if index and draw(st.booleans()):
        spec["inputs"] = [f"a{index - 1}.x"]
    return spec


@st.composite
def plans(draw: Any) -> tuple[str, float]:
    scale = draw(st.sampled_from([1e-6, 1e-3, 0.1, 1.0, 1.0, 10.0]))
    count = draw(st.integers(1, 3))
    data: dict[str, Any] = {
        "name": "limits",
        "agents": {f"a{i}": agent(draw, i, scale) for i in range(count)},
    }
    if count > 1 and draw(st.booleans()):
        members = [a for a, spec in data["agents"].items() if "inputs" not in spec]
        group: dict[str, Any] = {"agents": members, "max_extensions": draw(st.integers(0, 10))}
        if draw(st.booleans()):
            group["timeout"] = deadline(draw, scale)
        for key in ("extension", "estimated_duration"):
            value = draw(maybe)
            if value is not None:
                group[key] = value
        data["groups"] = {"g": group}
    for key, value in (("default_agent_timeout", draw(maybe)),):
        if value is not None:
            data[key] = value
    handling: dict[str, Any] = {"default_timeout": deadline(draw, scale)}
    window = draw(maybe)
    if window is not None:
        handling["progress_window"] = window
    data["barrier_synchronization"] = {"timeout_handling": handling}
    conflict = draw(maybe)
    if conflict is not None:
        data["context_conflicts"] = {"conflict_timeout": conflict}
    lock = draw(maybe)
    if lock is not None:
        data["resource_manager"] = {"resource_pool": {"context_store": {"lock_timeout": lock}}}
    return yaml.safe_dump(data, sort_keys=False), scale


@settings(
    max_examples=30,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
@given(case=plans())
def test_what_validate_accepts_always_runs_to_an_end(
    skipping: Skipping, case: tuple[str, float]
) -> None:
    """Random durations, timeouts, retries, group deadlines and time scales: a plan validate
    accepts runs to its end at any time scale `run` accepts (completed, or failed with a
    reason), with no workflow task failing; at a scale `run` refuses, a hand-made input fails
    with DurationOutOfRange. Every history replays."""
    text, scale = case
    try:
        compiled = compile_plan(loads_plan(text, file="limits.yaml"))
    except errors.PlanError:
        assume(False)
        raise
    refused = time_scale_problems(compiled, scale)
    ended, why, history = skipping.outcome(compiled, scale)
    event(f"{ended}{' (scale refused)' if refused else ''}")
    assert [] == task_failures(history), text
    assert ended in ("completed", "failed"), text
    if refused:
        assert ("failed", "DurationOutOfRange") == (ended, why.split(":")[0]), text
    elif ended == "failed":
        assert why.split(":")[0] not in ("", "DurationOutOfRange"), text
    assert replays(history), text
