"""The command backend: argument list, JSON on stdin and stdout, explicit environment, clear
failures with the tail of stderr; a command ends when its leader exits, and every process it
started (setsid ones too) is killed then, on cancel and on timeout, and before a retry when a
dead worker left them running."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from pee.activities import process_tree
from pee.activities.agents import run_agent
from pee.activities.command import child_env
from pee.activities.types import AgentTask
from pee.engine.compiled import CompiledAgent
from tests.helpers import PROJECT_ROOT, eventually
from tests.test_activities import environment, failure, run

FIXTURE = str(Path(__file__).parent / "agents_fixtures" / "cmd_agent.py")


def command_agent(
    mode: str, *extra: str, timeout_s: float | None = None, **settings: Any
) -> CompiledAgent:
    return CompiledAgent(
        id="tool",
        role="tool",
        kind="command",
        group="g",
        inputs=["pm.stories"],
        outputs=["summary", "seen"],
        writes=["shared"],
        estimated_s=0.0,
        timeout_s=timeout_s,
        settings={"command": [sys.executable, FIXTURE, mode, *extra], **settings},
    )


def alive(pid: int) -> bool:
    """A process that exists and is not a zombie (a zombie is dead, just not yet reaped)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def wait_for_pids(path: Path) -> list[int]:
    eventually(path.exists, what="the command to start", timeout_s=10, interval_s=0.02)
    return [int(pid) for pid in path.read_text().split()]


def gone(pids: list[int], within_s: float = 3.0) -> bool:
    try:
        eventually(
            lambda: not any(alive(pid) for pid in pids),
            what=f"{pids} to end",
            timeout_s=within_s,
            interval_s=0.02,
        )
    except AssertionError:
        return False
    return True


def test_the_task_goes_in_on_stdin_and_outputs_and_writes_come_out_of_stdout() -> None:
    """stdin carries inputs, agent id, declared names, attempt; stdout fills outputs and writes."""
    task = AgentTask(
        agent=command_agent("echo"),
        inputs={"pm.stories": ["s1", "s2"]},
        missing_inputs=["qa.notes"],
    )
    result = run(task)
    assert {"pm.stories": ["s1", "s2"]} == result.outputs["summary"]
    assert {
        "agent": "tool",
        "role": "tool",
        "missing_inputs": ["qa.notes"],
        "outputs": ["summary", "seen"],
        "writes": ["shared"],
        "attempt": 1,
    } == result.outputs["seen"]
    assert {"shared": "s"} == result.writes
    # undeclared keys ("extra") are ignored
    assert ["summary", "seen"] == list(result.outputs)


def test_the_child_gets_only_declared_variables_plus_path_home_lang(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """env: literals as given, $VAR copied from the worker, $$ a literal $; nothing else leaks;
    cwd is where the child runs."""
    monkeypatch.setenv("PEE_TEST_SECRET", "s3cret")
    monkeypatch.setenv("PEE_TEST_UNLISTED", "leak")
    agent = command_agent(
        "env", cwd=str(tmp_path), env={"TOKEN": "$PEE_TEST_SECRET", "MODE": "fast", "PRICE": "$$5"}
    )
    result = run(AgentTask(agent=agent))
    child = result.outputs["summary"]
    assert ("s3cret", "fast", "$5") == (child["TOKEN"], child["MODE"], child["PRICE"])
    assert "PEE_TEST_UNLISTED" not in child
    # the interpreter may add a few of its own (LC_CTYPE); nothing from the worker but these
    assert not {"PEE_TEST_SECRET", "PEE_TEST_UNLISTED"} & set(child)
    assert str(tmp_path) == result.outputs["seen"]


def test_a_variable_the_worker_lacks_fails_non_retryably_naming_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """env TOKEN: $MISSING on a worker without MISSING -> a clear configuration error."""
    monkeypatch.delenv("PEE_TEST_MISSING", raising=False)
    error = failure(AgentTask(agent=command_agent("echo", env={"TOKEN": "$PEE_TEST_MISSING"})))
    assert ("MissingEnvironmentVariable", True) == (error.type, error.non_retryable)
    assert "'PEE_TEST_MISSING'" in error.message


def test_relative_cwd_is_taken_from_the_plan_folder(tmp_path: Path) -> None:
    """cwd "work" with plan_dir /x/plan -> the child runs in /x/plan/work."""
    (tmp_path / "work").mkdir()
    env = child_env(AgentTask(agent=command_agent("env")), {"PATH": "/bin", "OTHER": "x"})
    assert {"PATH": "/bin"} == env
    agent = command_agent("env", cwd="work", plan_dir=str(tmp_path))
    assert str(tmp_path / "work") == run(AgentTask(agent=agent)).outputs["seen"]


def test_a_crash_is_retryable_and_carries_the_tail_of_stderr() -> None:
    """Exit status 3 -> CommandFailed, retryable, with the status and what it printed."""
    error = failure(AgentTask(agent=command_agent("crash")))
    assert ("CommandFailed", False) == (error.type, error.non_retryable)
    assert "exited with status 3" in error.message
    assert "boom: the model file is missing" in error.message
    assert ({"attempt": 1},) == error.details


def test_invalid_json_is_a_non_retryable_contract_violation() -> None:
    error = failure(AgentTask(agent=command_agent("badjson")))
    assert ("InvalidCommandOutput", True) == (error.type, error.non_retryable)
    assert "invalid JSON" in error.message and "Here are your outputs" in error.message


def test_missing_declared_outputs_are_named() -> None:
    error = failure(AgentTask(agent=command_agent("missing")))
    assert ("MissingOutputs", True) == (error.type, error.non_retryable)
    assert "['seen', 'shared']" in error.message


def test_a_program_that_does_not_exist_fails_non_retryably() -> None:
    agent = command_agent("echo")
    agent.settings["command"] = ["/nonexistent/agent-program"]
    error = failure(AgentTask(agent=agent))
    assert ("CommandNotFound", True) == (error.type, error.non_retryable)


@pytest.mark.parametrize("command", [[], "", [1, 2], None])
def test_a_malformed_command_is_a_plan_mistake(command: Any) -> None:
    agent = command_agent("echo")
    agent.settings["command"] = command
    error = failure(AgentTask(agent=agent))
    assert ("InvalidAgentSettings", True) == (error.type, error.non_retryable)


def test_a_timeout_kills_the_whole_process_group(tmp_path: Path) -> None:
    """timeout 0.5 s on a 60 s command: CommandTimeout, and the child and grandchild are gone."""
    pids_file = tmp_path / "pids"
    task = AgentTask(agent=command_agent("sleep", str(pids_file), timeout_s=0.5), time_scale=1.0)
    started = time.monotonic()
    error = failure(task)
    assert ("CommandTimeout", False) == (error.type, error.non_retryable)
    assert time.monotonic() - started < 10
    pids = wait_for_pids(pids_file)
    assert 2 == len(pids)
    assert gone(pids)


def test_cancellation_kills_the_whole_process_group_and_heartbeats_flow(tmp_path: Path) -> None:
    """Cancelling the activity while the command sleeps ends it promptly; no process survives;
    the agent heartbeated while the command ran."""
    pids_file = tmp_path / "pids"
    env = environment(heartbeat_timeout_s=0.15)
    beats: list[Any] = []
    env.on_heartbeat = lambda *details: beats.append(details)
    task = AgentTask(agent=command_agent("sleep", str(pids_file)))
    pids: list[int] = []

    async def go() -> None:
        work = asyncio.ensure_future(env.run(run_agent, task))
        pids.extend(await asyncio.to_thread(wait_for_pids, pids_file))
        assert all(alive(pid) for pid in pids)
        await asyncio.sleep(0.3)
        env.cancel()
        await asyncio.wait_for(work, timeout=5)

    with pytest.raises(asyncio.CancelledError):
        asyncio.run(go())
    assert 2 == len(pids)
    assert gone(pids)
    assert len(beats) >= 2


def test_a_grandchild_holding_stdout_does_not_turn_a_finished_command_into_a_timeout(
    tmp_path: Path,
) -> None:
    """The leader prints its outputs and exits while a grandchild keeps stdout open for 60 s:
    the agent succeeds (it would time out after 20 s if it waited for the pipe to close), and
    the grandchild is gone."""
    pids_file = tmp_path / "pids"
    task = AgentTask(agent=command_agent("holdout", str(pids_file), timeout_s=20.0), time_scale=1.0)
    result = run(task)
    assert {"summary": "done", "seen": "held"} == result.outputs
    pids = wait_for_pids(pids_file)
    assert gone(pids)


def test_a_setsid_daemon_dies_with_a_timed_out_command(tmp_path: Path) -> None:
    """A grandchild in its own session, whose parent already exited and which ignores SIGTERM,
    is out of the leader's group and tree; a timeout still kills it."""
    pids_file = tmp_path / "pids"
    task = AgentTask(agent=command_agent("daemon", str(pids_file), timeout_s=1.0), time_scale=1.0)
    error = failure(task)
    assert ("CommandTimeout", False) == (error.type, error.non_retryable)
    pids = wait_for_pids(pids_file)
    assert gone(pids)


def test_a_setsid_daemon_dies_with_a_cancelled_command(tmp_path: Path) -> None:
    pids_file = tmp_path / "pids"
    env = environment(heartbeat_timeout_s=0.3)
    task = AgentTask(agent=command_agent("daemon", str(pids_file)))
    pids: list[int] = []

    async def go() -> None:
        work = asyncio.ensure_future(env.run(run_agent, task))
        pids.extend(await asyncio.to_thread(wait_for_pids, pids_file))
        assert all(alive(pid) for pid in pids)
        env.cancel()
        await asyncio.wait_for(work, timeout=10)

    with pytest.raises(asyncio.CancelledError):
        asyncio.run(go())
    assert gone(pids)


# attempt 1 of agent "tool" in run sys.argv[2], on a worker of its own (killed by the test)
WORKER = """
import asyncio, sys
from pee.activities import process_tree
from pee.activities.agents import run_agent
from pee.activities.types import AgentTask
from tests.test_activities import environment
from tests.test_backend_command import command_agent
task = AgentTask(agent=command_agent("daemon", sys.argv[1]))
asyncio.run(environment(workflow_run_id=sys.argv[2], activity_id="tool").run(run_agent, task))
"""


def test_a_dead_workers_command_is_killed_before_the_retry_starts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker is SIGKILLed while its command (and the command's setsid daemon) runs: both
    outlive it. Attempt 2 of the same agent in the same run, on another worker of the host,
    kills them before it starts its own command."""
    monkeypatch.setenv("PEE_PROCESS_STATE_DIR", str(tmp_path / "trees"))
    pids_file, run_id = tmp_path / "pids", f"run-{tmp_path.name}"
    worker = subprocess.Popen(
        [sys.executable, "-c", WORKER, str(pids_file), run_id], cwd=PROJECT_ROOT
    )
    try:
        pids = wait_for_pids(pids_file)
    finally:
        worker.kill()
        worker.wait()
    assert all(alive(pid) for pid in pids), "the dead worker's command should outlive it"
    env = environment(attempt=2, workflow_run_id=run_id, activity_id="tool")
    result = run(AgentTask(agent=command_agent("echo")), env)
    assert 2 == result.outputs["seen"]["attempt"]
    assert gone(pids)


def test_stale_state_files_whose_processes_are_gone_are_swept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An attempt never retried leaves its state file: a day later, with its processes gone,
    the next command's start removes it; a fresh one, or an old one whose process runs, stays."""
    monkeypatch.setenv("PEE_PROCESS_STATE_DIR", str(tmp_path / "trees"))
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    living = process_tree.Tree("living")
    living.add(os.getpid())
    for name, pid in (("stale", dead.pid), ("fresh", dead.pid)):
        tree = process_tree.Tree(name)
        tree.known[pid] = 1.0
        tree._save()
    old = time.time() - process_tree.STALE_AFTER_S - 60
    for name in ("stale", "living"):
        os.utime(tmp_path / "trees" / f"{name}.json", (old, old))
    run(AgentTask(agent=command_agent("echo")))
    assert ["fresh.json", "living.json"] == sorted(p.name for p in (tmp_path / "trees").iterdir())


def test_another_runs_processes_are_left_alone(tmp_path: Path) -> None:
    """The marker is per run and activity: a command of another run survives this one's kill."""
    pids_file = tmp_path / "pids"
    other = environment(workflow_run_id="other-run", activity_id="tool")
    task = AgentTask(agent=command_agent("daemon", str(pids_file)))
    pids: list[int] = []

    async def go() -> None:
        work = asyncio.ensure_future(other.run(run_agent, task))
        try:
            pids.extend(await asyncio.to_thread(wait_for_pids, pids_file))
            mine = environment(attempt=2, workflow_run_id="this-run", activity_id="tool")
            await mine.run(run_agent, AgentTask(agent=command_agent("echo")))
            assert all(alive(pid) for pid in pids)
        finally:
            other.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait_for(work, timeout=10)

    asyncio.run(go())
    assert gone(pids)


def test_a_credential_variable_never_comes_back_in_outputs_or_errors(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """env API_TOKEN: $VAR (a credential by its name) reaches the child, but the child echoing
    it in its outputs gets it scrubbed; a non-credential variable passes unchanged."""
    secret = "tok-0123456789abcdef"
    monkeypatch.setenv("PEE_TEST_VAR_A", secret)
    monkeypatch.setenv("PEE_TEST_VAR_B", "plain-value-123")
    agent = command_agent("env", env={"API_TOKEN": "$PEE_TEST_VAR_A", "MODE": "$PEE_TEST_VAR_B"})
    child = run(AgentTask(agent=agent)).outputs["summary"]
    assert ("***", "plain-value-123") == (child["API_TOKEN"], child["MODE"])
    assert secret not in str(child)
