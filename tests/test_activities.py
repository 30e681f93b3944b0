"""The run_agent activity: dispatch by kind, the simulate backend, heartbeats, progress signals,
cancellation and --simulate, run in an ActivityEnvironment (no server)."""

from __future__ import annotations

import asyncio
import dataclasses
import time
import uuid
from datetime import timedelta
from typing import Any

import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from pee.activities import agents
from pee.activities.agents import run_agent
from pee.activities.simulate import digest
from pee.activities.types import AgentProgress, AgentResult, AgentTask
from pee.engine.compiled import CompiledAgent


def agent(
    agent_id: str = "a",
    *,
    kind: str = "simulate",
    outputs: tuple[str, ...] = ("out",),
    writes: tuple[str, ...] = (),
    role: str | None = None,
    **settings: Any,
) -> CompiledAgent:
    return CompiledAgent(
        id=agent_id,
        role=role or agent_id,
        kind=kind,
        group="g",
        outputs=list(outputs),
        writes=list(writes),
        estimated_s=0.0,
        settings=settings,
    )


class FakeHandle:
    def __init__(self, client: FakeClient, workflow_id: str, run_id: str | None) -> None:
        self.client, self.target = client, (workflow_id, run_id)

    async def signal(self, name: str, arg: Any) -> None:
        if self.client.fail:
            raise RuntimeError("workflow is gone")
        self.client.signals.append((self.target, name, arg))


class FakeClient:
    """Stands in for the worker's Client, to see exactly which signals an agent sends."""

    def __init__(self, fail: bool = False) -> None:
        self.fail = fail
        self.signals: list[tuple[tuple[str, str | None], str, Any]] = []

    def get_workflow_handle(self, workflow_id: str, *, run_id: str | None = None) -> FakeHandle:
        return FakeHandle(self, workflow_id, run_id)


def environment(
    *,
    attempt: int = 1,
    activity_id: str = "a",
    heartbeat_timeout_s: float | None = None,
    client: FakeClient | None = None,
    workflow_run_id: str | None = None,
) -> ActivityEnvironment:
    env = ActivityEnvironment(client=client)  # type: ignore[arg-type]
    env.info = dataclasses.replace(
        env.info,
        attempt=attempt,
        activity_id=activity_id,
        # a run of its own: command agents key their process trees by run and activity id
        workflow_run_id=workflow_run_id or f"test-run-{uuid.uuid4()}",
        heartbeat_timeout=None
        if heartbeat_timeout_s is None
        else timedelta(seconds=heartbeat_timeout_s),
    )
    return env


def run(task: AgentTask, env: ActivityEnvironment | None = None) -> AgentResult:
    return asyncio.run((env or environment()).run(run_agent, task))


def failure(task: AgentTask, env: ActivityEnvironment | None = None) -> ApplicationError:
    with pytest.raises(ApplicationError) as caught:
        run(task, env)
    return caught.value


# --- outputs --------------------------------------------------------------------------------


def test_values_are_written_as_given_and_the_rest_get_a_deterministic_default() -> None:
    """`values` covers outputs and shared keys; others name agent, output, input keys, digest."""
    task = AgentTask(
        agent=agent(
            "pm", outputs=("prd", "stories"), writes=("requirements",), values={"prd": "PRD"}
        ),
        inputs={"analyst.brief": {"users": ["u"]}},
    )
    result = run(task)
    assert {
        "prd": "PRD",
        "stories": {
            "agent": "pm",
            "output": "stories",
            "inputs": ["analyst.brief"],
            "digest": digest({"analyst.brief": {"users": ["u"]}}),
        },
    } == result.outputs
    assert ["requirements"] == list(result.writes)
    assert "requirements" == result.writes["requirements"]["output"]
    assert (result.agent_id, result.attempt) == ("pm", 1)


def test_default_values_depend_on_the_input_values_not_their_order() -> None:
    """Same inputs in another order -> same digest; another input value -> another digest."""
    first = run(AgentTask(agent=agent(), inputs={"x": 1, "y": [1, 2]})).outputs["out"]
    again = run(AgentTask(agent=agent(), inputs={"y": [1, 2], "x": 1})).outputs["out"]
    other = run(AgentTask(agent=agent(), inputs={"x": 2, "y": [1, 2]})).outputs["out"]
    assert first == again
    assert first["digest"] != other["digest"]


def test_an_agent_given_every_value_hashes_no_inputs(monkeypatch: pytest.MonkeyPatch) -> None:
    """The input snapshot is hashed only for a default value (large inputs cost nothing else)."""
    from pee.activities import simulate

    def no_hash(inputs: dict[str, Any]) -> str:
        raise AssertionError("hashed the inputs though every value was given")

    monkeypatch.setattr(simulate, "inputs_digest", no_hash)
    task = AgentTask(agent=agent(values={"out": 1}), inputs={"big": "x" * 10_000})
    assert {"out": 1} == run(task).outputs


def test_an_agents_default_values_hash_its_inputs_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """Two outputs and a write taking default values: one hash of the input snapshot."""
    from pee.activities import simulate

    calls: list[int] = []
    counted = simulate.inputs_digest

    def counting(inputs: dict[str, Any]) -> str:
        calls.append(1)
        return counted(inputs)

    monkeypatch.setattr(simulate, "inputs_digest", counting)
    task = AgentTask(agent=agent(outputs=("x", "y"), writes=("w",)), inputs={"topic": "t"})
    result = run(task)
    assert 1 == len(calls)
    digests = {value["digest"] for value in [*result.outputs.values(), *result.writes.values()]}
    assert 1 == len(digests)


def test_echo_inputs_puts_the_whole_snapshot_in_the_default_value() -> None:
    """echo_inputs: the default value carries the input values, for workflow tests."""
    result = run(AgentTask(agent=agent(echo_inputs=True), inputs={"topic": "t"}))
    assert {"topic": "t"} == result.outputs["out"]["inputs"]


# --- failures -------------------------------------------------------------------------------


def test_fail_times_fails_the_first_attempts_then_succeeds() -> None:
    """fail_times=2: attempts 1 and 2 fail (retryable, attempt in details), attempt 3 passes."""
    task = AgentTask(agent=agent("flaky", fail_times=2))
    for attempt in (1, 2):
        error = failure(task, environment(attempt=attempt))
        assert ("SimulatedFailure", False) == (error.type, error.non_retryable)
        assert ({"attempt": attempt},) == error.details
    assert 3 == run(task, environment(attempt=3)).attempt


def test_fail_times_always_fails_every_attempt() -> None:
    """fail_times: always -> attempt 50 still fails, retryably."""
    error = failure(AgentTask(agent=agent(fail_times="always")), environment(attempt=50))
    assert ("SimulatedFailure", False, ({"attempt": 50},)) == (
        error.type,
        error.non_retryable,
        error.details,
    )


def test_critical_failure_is_non_retryable() -> None:
    """critical: true -> CriticalAgentError, non-retryable, on every attempt and in fallback."""
    task = AgentTask(agent=agent("core", critical=True))
    for env in (environment(), environment(attempt=2), environment(activity_id="core#fallback")):
        error = failure(task, env)
        assert ("CriticalAgentError", True) == (error.type, error.non_retryable)


def test_fail_unless_fallback_fails_in_the_group_and_succeeds_in_the_fallback() -> None:
    """fail_unless_fallback: every attempt of id "x" fails; "x#fallback" succeeds."""
    task = AgentTask(agent=agent("x", fail_unless_fallback=True))
    for attempt in (1, 2, 3):
        error = failure(task, environment(attempt=attempt, activity_id="x"))
        assert ("SimulatedFailure", False) == (error.type, error.non_retryable)
    assert ["out"] == list(run(task, environment(activity_id="x#fallback")).outputs)


def test_critical_with_fail_unless_fallback_is_a_critical_error_only_in_the_group() -> None:
    """critical + fail_unless_fallback: the barrier's critical branch, then fallback success."""
    task = AgentTask(agent=agent("x", critical=True, fail_unless_fallback=True))
    assert "CriticalAgentError" == failure(task, environment(activity_id="x")).type
    assert 1 == run(task, environment(activity_id="x#fallback")).attempt


@pytest.mark.parametrize(
    ("settings", "words"),
    [
        ({"fail_times": "sometimes"}, "'fail_times' must be an integer >= 0 or 'always'"),
        ({"duration": -1}, "'duration' must be a number of seconds >= 0"),
        ({"heartbeat": "no"}, "'heartbeat' must be true or false"),
        ({"values": {"nope": 1}}, "'values' names ['nope']"),
    ],
)
def test_bad_simulate_settings_fail_non_retryably(settings: dict[str, Any], words: str) -> None:
    """A plan mistake in simulate settings is reported once, saying what is wrong."""
    error = failure(AgentTask(agent=agent(**settings)))
    assert ("InvalidAgentSettings", True) == (error.type, error.non_retryable)
    assert words in error.message
    assert ({"attempt": 1},) == error.details


def test_a_template_agent_without_a_template_fails_non_retryably() -> None:
    """kind template needs its `template` setting; the message says so."""
    error = failure(AgentTask(agent=agent(kind="template")))
    assert ("InvalidAgentSettings", True) == (error.type, error.non_retryable)
    assert "'template' must be a path or a built-in id" in error.message


def test_an_unknown_kind_fails_non_retryably() -> None:
    """A kind nobody planned is named in the message, with the known kinds."""
    error = failure(AgentTask(agent=agent(kind="zap")))
    assert error.non_retryable
    assert "unknown kind 'zap'" in error.message


def test_an_unexpected_exception_becomes_an_application_error_named_after_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A backend bug surfaces as a retryable ApplicationError typed by the exception class."""

    async def broken(task: AgentTask, progress: object, scale: float) -> AgentResult:
        raise KeyError("boom")

    monkeypatch.setitem(agents.BACKENDS, "simulate", broken)
    error = failure(AgentTask(agent=agent()), environment(attempt=2))
    assert ("KeyError", False, ({"attempt": 2},)) == (
        error.type,
        error.non_retryable,
        error.details,
    )


# --- role agents ----------------------------------------------------------------------------


def test_a_role_agent_returns_its_declared_outputs_and_writes() -> None:
    """kind role: every declared output and shared key, built from the inputs."""
    analyst = agent(
        "analyst",
        kind="role",
        outputs=("target_users", "technical_constraints"),
        writes=("project_metadata",),
    )
    result = run(AgentTask(agent=analyst, inputs={"project": "Acme"}))
    assert ["target_users", "technical_constraints"] == list(result.outputs)
    assert "Acme" == result.writes["project_metadata"]["project"]


def test_an_unknown_role_fails_non_retryably() -> None:
    """kind role with a role that is not built in: UnknownRole, naming the built-in roles."""
    error = failure(AgentTask(agent=agent("x", kind="role", role="astronaut")))
    assert ("UnknownRole", True) == (error.type, error.non_retryable)
    assert "'analyst'" in error.message


# --- time, heartbeats, progress -------------------------------------------------------------


def timed(task: AgentTask, env: ActivityEnvironment | None = None) -> float:
    started = time.monotonic()
    run(task, env)
    return time.monotonic() - started


def test_time_scale_shrinks_the_simulated_duration() -> None:
    """A 100 s agent at time scale 0.003 works about 0.3 s."""
    assert 0.3 <= timed(AgentTask(agent=agent(duration=100.0), time_scale=0.003)) < 5


def test_simulate_s_makes_any_agent_take_that_long() -> None:
    """--simulate: a role agent that would be instant takes simulate_s."""
    role_agent = agent("pm", kind="role", outputs=("prd.md",))
    assert timed(AgentTask(agent=role_agent, simulate_s=0.4)) >= 0.4


def test_simulate_s_runs_alongside_the_simulated_duration() -> None:
    """duration 0.5 s with simulate_s 1.0 s takes 1.0 s (the longer), not 1.5 s (the sum)."""
    assert 1.0 <= timed(AgentTask(agent=agent(duration=0.5), simulate_s=1.0)) < 1.4


def test_heartbeats_come_every_third_of_the_heartbeat_timeout_with_progress() -> None:
    """heartbeat_timeout 0.3 s -> a beat about every 0.1 s, details an AgentProgress with a
    growing fraction."""
    beats: list[dict[str, Any]] = []
    env = environment(heartbeat_timeout_s=0.3)
    env.on_heartbeat = lambda *details: beats.append(details[0])
    run(AgentTask(agent=agent("worker", duration=0.6)), env)
    assert len(beats) >= 4
    assert {"agent_id", "attempt", "fraction", "message", "behind_s"} == set(beats[0])
    fractions = [beat["fraction"] for beat in beats]
    assert fractions == sorted(fractions)
    assert fractions[-1] > 0.5


def test_progress_signals_are_throttled_to_the_progress_interval() -> None:
    """A 1 s agent with progress_interval_s 0.25 signals about 3 times, none at the start."""
    client = FakeClient()
    env = environment(client=client)
    run(AgentTask(agent=agent("worker", duration=1.0), progress_interval_s=0.25), env)
    assert 2 <= len(client.signals) <= 4
    (target, name, first) = client.signals[0]
    assert (("test", env.info.workflow_run_id), "agent_progress") == (target, name)
    assert isinstance(first, AgentProgress)
    assert ("worker", 1) == (first.agent_id, first.attempt)
    assert 0.1 < (first.fraction or 0) < 0.6


def test_an_instant_agent_sends_no_progress_signal() -> None:
    """Duration 0: the result is the only news, no signal (engine overhead stays low)."""
    client = FakeClient()
    run(AgentTask(agent=agent(duration=0.0), progress_interval_s=0.05), environment(client=client))
    assert [] == client.signals


@pytest.mark.parametrize("client", [FakeClient(fail=True), None])
def test_failed_progress_signals_never_fail_the_agent(client: FakeClient | None) -> None:
    """A workflow that cannot be signalled (or no client at all) is logged and ignored."""
    env = environment(client=client)
    task = AgentTask(agent=agent(duration=0.4), progress_interval_s=0.1)
    assert ["out"] == list(run(task, env).outputs)


def test_a_silent_agent_neither_heartbeats_nor_signals() -> None:
    """heartbeat: false -> it just sleeps its duration: no heartbeat, no progress signal."""
    beats: list[Any] = []
    client = FakeClient()
    env = environment(client=client, heartbeat_timeout_s=0.15)
    env.on_heartbeat = lambda *details: beats.append(details)
    task = AgentTask(
        agent=agent(duration=0.5, heartbeat=False), progress_interval_s=0.1, simulate_s=0.6
    )
    assert timed(task, env) >= 0.6
    assert ([], []) == (beats, client.signals)


def test_cancellation_ends_a_working_agent_promptly() -> None:
    """Cancelling a 60 s agent raises CancelledError out of the activity within moments."""
    env = environment()

    async def go() -> None:
        work = asyncio.ensure_future(env.run(run_agent, AgentTask(agent=agent(duration=60.0))))
        await asyncio.sleep(0.3)
        env.cancel()
        await asyncio.wait_for(work, timeout=5)

    with pytest.raises(asyncio.CancelledError):
        asyncio.run(go())


def test_cancellation_ends_the_simulated_time_of_a_role_agent() -> None:
    """--simulate time is cancellable too: a role agent in its simulate_s sleep stops."""
    env = environment()
    task = AgentTask(agent=agent("qa", kind="role", outputs=("test_plan",)), simulate_s=60.0)

    async def go() -> None:
        work = asyncio.ensure_future(env.run(run_agent, task))
        await asyncio.sleep(0.3)
        env.cancel()
        await asyncio.wait_for(work, timeout=5)

    with pytest.raises(asyncio.CancelledError):
        asyncio.run(go())
