"""`pee run` through the fork server beside the embedded dev server (pee.cli.fork_server): the
run takes on the client's cwd, environment, stdin and umask and returns its exit code; Ctrl-C
and a killed client end it as in-process; a stale or disabled fork server is not used; it
stops with the server and reads nothing of the environment at import time that is not in its
key.

Whether a run went through the fork server is read from the agent's parent: the process that
started the agent's command is `pee run` itself in-process, a fork of `python -m
pee.cli.fork_server` otherwise."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pee.cli import fork_server
from pee.paths import state_dir
from pee.runtime import fork_protocol
from tests.conftest import private_env
from tests.helpers import PROJECT_ROOT, eventually

PEE = Path(sys.executable).parent / "pee"
FORK_SERVER = fork_protocol.SERVER_MODULE
# the agent writes what its run looks like from inside: cwd, a variable, umask, the run's stdin,
# the run's pid and command line; then it ends with the exit code of --set code=N
PROBE_SCRIPT = (
    'printf "%s\\n%s\\n%s\\n%s\\n%s\\n%s\\n" "$(pwd)" "$PROBE" "$(umask)" '
    '"$(readlink /proc/$PPID/fd/0)" "$PPID" "$(tr "\\0" " " < /proc/$PPID/cmdline)" > "$0"; '
    '[ "$1" = sleep ] && exec sleep 120; printf \'{"done": "yes"}\'; exit "$1"'
)


def probe_plan(result: Path, code: str = "0") -> str:
    agent = {
        "kind": "command",
        "command": ["sh", "-c", PROBE_SCRIPT, str(result), code],
        "env": {"PROBE": "$PROBE_VAR"},
        "outputs": ["done"],
        "retry": {"max_attempts": 1},
    }
    # JSON is YAML: no quoting to get wrong
    return json.dumps({"name": "probe", "agents": {"probe": agent}})


def read_probe(result: Path) -> dict[str, str]:
    cwd, var, umask, stdin, pid, parent = result.read_text().splitlines()
    return {"cwd": cwd, "var": var, "umask": umask, "stdin": stdin, "pid": pid, "parent": parent}


def pee(env: dict[str, str], *args: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(PEE), *args], env=env, capture_output=True, text=True, timeout=180, **kwargs
    )


def fork_server_pid(env: dict[str, str]) -> int | None:
    try:
        return int((Path(env["PEE_STATE_DIR"]) / fork_protocol.PID_NAME).read_text())
    except (OSError, ValueError):
        return None


def listening(env: dict[str, str]) -> bool:
    """The fork server has done its imports: its socket exists only from then on."""
    return (Path(env["PEE_STATE_DIR"]) / fork_protocol.SOCKET_NAME).exists()


def gone(pid: int | str) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] == "Z"


def agent_started(result: Path) -> dict[str, Any]:
    """What the probe agent wrote about itself once it started (all six lines of it)."""
    return eventually(
        lambda: (
            result.exists() and len(result.read_text().splitlines()) == 6 and read_probe(result)
        ),
        what="the agent's start",
        timeout_s=120,
    )


def parent_of(pid: int | str) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def start_server(env: dict[str, str]) -> int:
    started = pee(env, "server", "start", "--headless")
    assert 0 == started.returncode, started.stdout + started.stderr
    eventually(lambda: listening(env), what="the fork server's socket", timeout_s=120)
    pid = fork_server_pid(env)
    assert pid is not None and not gone(pid)
    return pid


@pytest.fixture(scope="module")
def server_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """A private embedded server and its fork server; the state directory's path is longer than
    a Unix socket address may be, so the socket is reached through its folder."""
    state = tmp_path_factory.mktemp("fork") / ("long-" * 20) / "state"
    state.mkdir(parents=True)
    assert len(str(state / fork_protocol.SOCKET_NAME)) > 108
    env = private_env(state)
    env.pop(fork_protocol.DISABLE_ENV, None)
    start_server(env)
    try:
        yield env
    finally:
        pid = fork_server_pid(env)
        stopped = pee(env, "server", "stop")
        assert 0 == stopped.returncode, stopped.stdout + stopped.stderr
        assert pid is None or gone(pid)


def test_a_run_takes_the_clients_cwd_environment_umask_stdin_and_exit_code(
    server_env: dict[str, str], tmp_path: Path
) -> None:
    work = tmp_path / "work"
    (work / "plans").mkdir(parents=True)
    result = tmp_path / "probe.txt"
    (work / "plans" / "probe.yaml").write_text(probe_plan(result))
    given = tmp_path / "given-stdin.txt"
    given.write_text("some input\n")
    env = {**server_env, "PROBE_VAR": f"value-{uuid.uuid4().hex[:6]}"}
    with open(given) as stdin:
        done = pee(
            env,
            "run",
            "plans/probe.yaml",
            "--no-learn",
            "--output-dir",
            "out",
            cwd=work,
            stdin=stdin,
            umask=0o027,
        )
    assert 0 == done.returncode, done.stdout + done.stderr
    seen = read_probe(result)
    assert FORK_SERVER in seen["parent"], seen
    # the relative plan path and --output-dir were taken from the client's cwd
    assert str(work / "plans") == seen["cwd"]
    assert (work / "out" / "index.md").exists()
    assert env["PROBE_VAR"] == seen["var"]
    assert "0027" == seen["umask"]
    assert str(given) == seen["stdin"]
    # and what the run printed is on the client's stdout
    assert "Started probe-" in done.stdout

    (work / "plans" / "failing.yaml").write_text(probe_plan(result, code="3"))
    failed = pee(env, "run", "plans/failing.yaml", "--no-learn", cwd=work)
    assert FORK_SERVER in read_probe(result)["parent"]
    assert 1 == failed.returncode, failed.stdout + failed.stderr
    assert "run failed" in failed.stdout


@pytest.mark.parametrize(
    ("signum", "through_fork_server"),
    [(signal.SIGINT, True), (signal.SIGINT, False), (signal.SIGTERM, True)],
    ids=["ctrl-c-forked", "ctrl-c-in-process", "sigterm-forked"],
)
def test_ctrl_c_to_the_client_ends_the_run_as_interrupted_with_exit_130(
    server_env: dict[str, str], tmp_path: Path, signum: int, through_fork_server: bool
) -> None:
    """The same either way: "interrupted", exit 130, the run's process and its agent gone
    (SIGTERM too: `pee run` ends on it as on Ctrl-C)."""
    result = tmp_path / "probe.txt"
    plan = tmp_path / "sleepy.yaml"
    plan.write_text(probe_plan(result, code="sleep"))
    env = {**server_env, "PROBE_VAR": "x"}
    if not through_fork_server:
        env[fork_protocol.DISABLE_ENV] = "1"
    client = subprocess.Popen(
        [str(PEE), "run", str(plan), "--no-learn"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        seen = agent_started(result)
        assert (FORK_SERVER in seen["parent"]) == through_fork_server, seen
        agent = agent_pid(seen["pid"])
        client.send_signal(signum)
        out, err = client.communicate(timeout=120)
    finally:
        if client.poll() is None:
            client.kill()
            client.communicate()
    assert 130 == client.returncode, out + err
    assert "interrupted" in err
    eventually(lambda: gone(seen["pid"]), what="the run's process to end", timeout_s=60)
    eventually(lambda: gone(agent), what="the agent's process to end", timeout_s=60)


def agent_pid(run_pid: str) -> int:
    """The agent's command (`sleep`, exec'd by its shell): the run's child running it."""

    def find() -> int | None:
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    if (
                        parent_of(entry.name) == int(run_pid)
                        and b"sleep" in (entry / "cmdline").read_bytes()
                    ):
                        return int(entry.name)
                except (OSError, ValueError, IndexError):
                    continue
        return None

    return eventually(find, what="the agent's sleep", timeout_s=60)


def test_a_killed_client_interrupts_its_run(server_env: dict[str, str], tmp_path: Path) -> None:
    """SIGKILL leaves the client no chance to pass anything on: the relay sees its connection
    close and interrupts the run, which ends with its agent; the relay ends too."""
    result = tmp_path / "probe.txt"
    plan = tmp_path / "sleepy.yaml"
    plan.write_text(probe_plan(result, code="sleep"))
    client = subprocess.Popen(
        [str(PEE), "run", str(plan), "--no-learn"],
        env={**server_env, "PROBE_VAR": "x"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        seen = agent_started(result)
        assert FORK_SERVER in seen["parent"], seen
        agent = agent_pid(seen["pid"])
        relay = parent_of(seen["pid"])
        assert FORK_SERVER.encode() in Path(f"/proc/{relay}/cmdline").read_bytes()
    finally:
        client.kill()
        client.wait()
    for pid, what in ((seen["pid"], "run"), (agent, "agent"), (relay, "relay")):
        eventually(lambda pid=pid: gone(pid), what=f"the {what}'s process to end", timeout_s=90)


def test_with_the_switch_set_a_run_is_in_process(
    server_env: dict[str, str], tmp_path: Path
) -> None:
    result = tmp_path / "probe.txt"
    plan = tmp_path / "probe.yaml"
    plan.write_text(probe_plan(result))
    env = {**server_env, "PROBE_VAR": "x", fork_protocol.DISABLE_ENV: "1"}
    done = pee(env, "run", str(plan), "--no-learn")
    assert 0 == done.returncode, done.stdout + done.stderr
    parent = read_probe(result)["parent"]
    assert FORK_SERVER not in parent and f"{PEE} run" in parent, parent


def test_a_stale_fork_server_is_not_used_and_server_start_renews_it(
    server_env: dict[str, str], tmp_path: Path
) -> None:
    """An edited package (a file's mtime moved) makes the running fork server stale: `pee run`
    runs in-process; `pee server start` replaces it, and runs go through the new one."""
    result = tmp_path / "probe.txt"
    plan = tmp_path / "probe.yaml"
    plan.write_text(probe_plan(result))
    env = {**server_env, "PROBE_VAR": "x"}
    old = fork_server_pid(env)
    edited = PROJECT_ROOT / "src" / "pee" / "__init__.py"
    before = edited.stat()
    try:
        os.utime(edited, ns=(before.st_atime_ns, before.st_mtime_ns + 1_000_000_000))
        done = pee(env, "run", str(plan), "--no-learn")
        assert 0 == done.returncode, done.stdout + done.stderr
        assert FORK_SERVER not in read_probe(result)["parent"]
        status = pee(env, "server", "status")
        assert "stale" in status.stdout, status.stdout
        renewed = start_server(env)
        assert renewed != old and old is not None and gone(old)
        done = pee(env, "run", str(plan), "--no-learn")
        assert 0 == done.returncode, done.stdout + done.stderr
        assert FORK_SERVER in read_probe(result)["parent"]
    finally:
        os.utime(edited, ns=(before.st_atime_ns, before.st_mtime_ns))
        # the module's later tests get a current fork server again
        start_server(env)


def test_the_fork_server_stops_with_the_server_and_ends_when_it_dies(tmp_path: Path) -> None:
    env = private_env(tmp_path / "state")
    env.pop(fork_protocol.DISABLE_ENV, None)
    pid = start_server(env)
    status = pee(env, "server", "status")
    assert f"fork server pid {pid}" in status.stdout, status.stdout
    stopped = pee(env, "server", "stop")
    assert 0 == stopped.returncode, stopped.stdout + stopped.stderr
    assert gone(pid)
    assert not listening(env) and fork_server_pid(env) is None

    # a dev server killed without `pee server stop`: its fork server ends by itself
    pid = start_server(env)
    record = json.loads((tmp_path / "state" / "server.json").read_text())
    try:
        os.kill(record["pid"], signal.SIGKILL)
        eventually(lambda: gone(pid), what="the fork server to end", timeout_s=60)
    finally:
        pee(env, "server", "stop")
    assert not listening(env)


ENV_PROBE = """
import json, os, sys, threading
from collections.abc import MutableMapping

real = os.environ
read = set()


class Recording(MutableMapping):
    def __getitem__(self, name):
        read.add(name)
        return real[name]

    def __contains__(self, name):
        read.add(name)
        return name in real

    def __setitem__(self, name, value):
        real[name] = value

    def __delitem__(self, name):
        del real[name]

    def __iter__(self):
        read.add("*")
        return iter(real)

    def __len__(self):
        return len(real)


os.environ = Recording()
real_getcwd = os.getcwd
asked_cwd = set()


def getcwd():
    asked_cwd.add(sys._getframe(1).f_globals.get("__name__"))
    return real_getcwd()


os.getcwd = getcwd
from pee.cli import fork_server

fork_server.preload()
print(json.dumps({
    "read": sorted(read),
    "asked_cwd": sorted(asked_cwd),
    "threads": threading.active_count(),
    "tasks": len(os.listdir("/proc/self/task")),
    "modules": sorted(sys.modules),
}))
"""


def test_the_fork_servers_imports_read_only_its_key_variables_and_start_no_thread() -> None:
    """What a module reads of the environment or the cwd while the fork server imports it would
    be the server's, not the run's: only the variables in its key (PYTHON*, IMPORT_ENVIRONMENT)
    may be read, only modules whose copy the run resets may keep the cwd, and no thread (the
    SDK's Rust runtime above all) may run before the fork."""
    done = subprocess.run(
        [sys.executable, "-P", "-c", ENV_PROBE],
        capture_output=True,
        text=True,
        cwd="/",
        check=True,
        timeout=180,
    )
    found = json.loads(done.stdout)
    unexpected = [
        name
        for name in found["read"]
        if not name.startswith("PYTHON") and name not in fork_protocol.IMPORT_ENVIRONMENT
    ]
    assert [] == unexpected
    # a module that keeps the cwd it was imported in gets the run's (fork_server.take_on)
    assert set(found["asked_cwd"]) <= set(fork_server.CWD_AT_IMPORT), found["asked_cwd"]
    assert (1, 1) == (found["threads"], found["tasks"])
    # configured per run from its own environment, never in the server
    assert not [m for m in found["modules"] if m.startswith(("opentelemetry", "pee.runtime.tel"))]


def test_the_clients_state_dir_is_the_runtimes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PEE_STATE_DIR", raising=False)
    assert str(state_dir()) == fork_protocol.state_dir()
    monkeypatch.setenv("PEE_STATE_DIR", "/somewhere/else")
    assert str(state_dir()) == fork_protocol.state_dir()
