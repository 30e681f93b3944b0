"""The issue's "done when", as a user does it: `plans/conflict-demo.yaml` started detached and
served by `worker.py`, paused on conflict c1 (developer blocked) in `starter.py status`, listed by
`starter.py conflicts`, resolved with the conflict guide's own `temporal workflow update execute`
line, and completed with the resolved value in the report. A second run is resolved by signal.

Separate processes against a private embedded dev server (own state dir and ports). The tests
share two paused runs and run in file order: the last ones resolve them.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from pee.engine.rules.merge import value_hash
from tests.conftest import private_env
from tests.helpers import PROJECT_ROOT, eventually
from tests.test_cli_run import Cli
from tests.test_temporal_cli_hints import project_like_folder

DEMO = PROJECT_ROOT / "plans" / "conflict-demo.yaml"
# what the demo's agents write to `platform` (plans/conflict-demo.yaml)
UX = {"target": "mobile_first", "offline": False}
ARCHITECT = {"target": "desktop_primary", "offline": False}
# the conflict guide's (docs/guides/conflicts.md) example run id, replaced by this module's;
# its `.temporal/temporal.toml` is this module's state directory's
# (tests.test_temporal_cli_hints.project_like_folder)
DOCS_ID, DOCS_CONFIG = "conflict-demo-1", ".temporal/temporal.toml"


@dataclass
class Demo:
    cli: Cli
    # resolved by the conflict guide's temporal update command, and by `resolve --signal`
    by_update: str
    by_signal: str


def start_demo(cli: Cli, workflow_id: str, task_queue: str) -> None:
    done = cli.starter(
        "run", DEMO, "--workflow-id", workflow_id, "--task-queue", task_queue, "--detach"
    )
    assert 0 == done.returncode, done.stdout + done.stderr
    assert workflow_id == done.stdout.strip().splitlines()[-1]


def blocked_status(cli: Cli, workflow_id: str) -> str | None:
    status = cli.starter("status", workflow_id)
    assert 0 == status.returncode, status.stdout + status.stderr
    if re.search(r"^developer\s+\S+\s+blocked", status.stdout, re.MULTILINE):
        return status.stdout
    return None


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    cli = Cli(private_env(tmp_path_factory.mktemp("state")), tmp_path_factory.mktemp("plans"))
    started = cli.starter("server", "start", "--headless")
    assert 0 == started.returncode, started.stdout + started.stderr
    task_queue = f"conflict-demo-{uuid.uuid4().hex[:8]}"
    worker = cli.worker("--task-queue", task_queue)
    try:
        suffix = uuid.uuid4().hex[:6]
        runs = Demo(cli, f"conflict-demo-update-{suffix}", f"conflict-demo-signal-{suffix}")
        for workflow_id in (runs.by_update, runs.by_signal):
            start_demo(cli, workflow_id, task_queue)
        # every test starts from the paused run, whatever ran before it: under xdist the module
        # may be set up again between two of its tests, with fresh runs
        for workflow_id in (runs.by_update, runs.by_signal):
            eventually(
                lambda w=workflow_id: blocked_status(cli, w),
                what=f"developer blocked in {workflow_id}",
                timeout_s=60.0,
                interval_s=0.3,
            )
        yield runs
    finally:
        worker.terminate()
        worker.wait(timeout=30)
        stopped = cli.starter("server", "stop")
        assert 0 == stopped.returncode, stopped.stdout + stopped.stderr


def report(cli: Cli, workflow_id: str) -> dict[str, Any]:
    done = cli.starter("report", workflow_id, "--format", "json")
    assert 0 == done.returncode, done.stdout + done.stderr
    return dict(json.loads(done.stdout))


def completed(cli: Cli, workflow_id: str) -> dict[str, Any] | None:
    data = report(cli, workflow_id)
    return data if data["status"] != "running" else None


def docs_command(kind: str) -> str:
    """The conflict guide's (docs/guides/conflicts.md) `temporal workflow <kind>` command for
    the demo (continuations joined)."""
    text = (PROJECT_ROOT / "docs" / "guides" / "conflicts.md").read_text().replace("\\\n", " ")
    for line in text.splitlines():
        if f"temporal workflow {kind}" in line and "resolve_conflict" in line:
            return line.strip()
    raise AssertionError(
        f"docs/guides/conflicts.md has no `temporal workflow {kind} ... resolve_conflict` line"
    )


def test_status_shows_the_run_paused_with_developer_blocked(demo: Demo) -> None:
    """Within seconds the run is paused: developer blocked by the conflict, docs done."""
    for workflow_id in (demo.by_update, demo.by_signal):
        text = eventually(
            lambda w=workflow_id: blocked_status(demo.cli, w),
            what="developer blocked",
            interval_s=0.3,
        )
        assert re.search(r"^docs\s+\S+\s+succeeded", text, re.MULTILINE), text
        assert "running" in text.splitlines()[0]


def test_conflicts_json_lists_c1_with_the_version_to_send(demo: Demo) -> None:
    """`conflicts --format json`: c1 on `platform`, open, current_version 2 (ux_expert's
    write), writers ux_expert then architect, their values."""
    done = demo.cli.starter("conflicts", demo.by_update, "--format", "json")
    assert 0 == done.returncode, done.stdout + done.stderr
    (conflict,) = json.loads(done.stdout)
    assert ("c1", "platform", "write_write", "open", 2, ["ux_expert", "architect"]) == (
        conflict["id"],
        conflict["key"],
        conflict["kind"],
        conflict["status"],
        conflict["current_version"],
        conflict["writers"],
    )
    assert (UX, ARCHITECT) == (conflict["current"], conflict["incoming"])
    assert conflict["message"]


def test_conflicts_text_prints_the_commands_that_resolve_it(demo: Demo) -> None:
    """The text listing gives the starter.py, update and signal commands for c1."""
    done = demo.cli.starter("conflicts", demo.by_update)
    assert 0 == done.returncode, done.stdout + done.stderr
    payload = '{"conflict_id": "c1", "choice": "incoming", "expected_version": 2}'
    assert (
        f"pee resolve {demo.by_update} c1 --choice incoming --expected-version 2"
    ) in done.stdout
    config = Path(demo.cli.env["PEE_STATE_DIR"]) / "temporal.toml"
    for kind in ("update execute", "signal"):
        assert (
            f"workflow {kind} --config-file {config} --workflow-id {demo.by_update} "
            f"--name resolve_conflict --input '{payload}'"
        ) in done.stdout


def test_a_stale_or_unknown_resolution_is_rejected_and_writes_nothing(demo: Demo) -> None:
    """resolve with a stale expected_version or an unknown id: exit 2 with the validator's
    message; the conflict stays open at the same version."""
    stale = demo.cli.starter(
        "resolve", demo.by_update, "c1", "--choice", "incoming", "--expected-version", "1"
    )
    assert 2 == stale.returncode, stale.stdout + stale.stderr
    assert "resolution rejected" in stale.stderr and "stale" in stale.stderr, stale.stderr
    unknown = demo.cli.starter("resolve", demo.by_update, "c9", "--choice", "current")
    assert 2 == unknown.returncode, unknown.stdout + unknown.stderr
    assert "c9" in unknown.stderr, unknown.stderr
    listed = json.loads(demo.cli.starter("conflicts", demo.by_update, "--format", "json").stdout)
    assert [("c1", "open", 2)] == [(c["id"], c["status"], c["current_version"]) for c in listed]


def test_an_unknown_run_exits_two(demo: Demo) -> None:
    """conflicts/resolve for a workflow id the server does not know: exit 2, saying so."""
    for command in (
        ("conflicts", "no-such-run"),
        ("resolve", "no-such-run", "c1", "--choice", "current"),
    ):
        done = demo.cli.starter(*command)
        assert 2 == done.returncode, done.stdout + done.stderr
        assert "no run with workflow id 'no-such-run'" in done.stderr


def test_the_readme_update_command_resolves_c1_and_the_run_completes(
    demo: Demo, tmp_path: Path
) -> None:
    """The conflict guide's `temporal workflow update execute` line, with this run's id, run from a
    folder laid out like the project (its .temporal/ this module's): c1 resolved with the
    incoming value; the run completes and its report shows it."""
    command = docs_command("update execute")
    assert f"--config-file {DOCS_CONFIG} --workflow-id {DOCS_ID} " in command
    argv = [demo.by_update if arg == DOCS_ID else arg for arg in shlex.split(command)]
    folder = project_like_folder(demo.cli.env, tmp_path)
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60, cwd=folder)
    assert 0 == done.returncode, done.stdout + done.stderr
    final = eventually(
        lambda: completed(demo.cli, demo.by_update), what="the run to complete", interval_s=0.3
    )
    assert "completed" == final["status"]
    assert "succeeded" == final["agents"]["developer"]["status"]
    (conflict,) = final["conflicts"]
    assert ("c1", "resolved", "incoming") == (
        conflict["id"],
        conflict["status"],
        conflict["resolution"]["choice"],
    )
    assert ARCHITECT == conflict["resolution"]["value"]
    assert value_hash(ARCHITECT) == conflict["resolution"]["value_hash"]
    assert (3, 3) == (conflict["resolution"]["version"], final["context_versions"]["platform"])


def test_resolve_by_signal_with_a_value_completes_the_other_run(demo: Demo) -> None:
    """`resolve --signal --choice value --value JSON`: applied, and the run completes with that
    value; an invalid signal before it is reported, never crashing the run."""
    chosen = {"target": "responsive_web", "offline": True}
    stale = demo.cli.starter(
        "resolve",
        demo.by_signal,
        "c1",
        "--choice",
        "current",
        "--expected-version",
        "1",
        "--signal",
    )
    assert 2 == stale.returncode, stale.stdout + stale.stderr
    assert "resolution rejected" in stale.stderr, stale.stderr
    done = demo.cli.starter(
        "resolve",
        demo.by_signal,
        "c1",
        "--choice",
        "value",
        "--value",
        json.dumps(chosen),
        "--signal",
    )
    assert 0 == done.returncode, done.stdout + done.stderr
    assert "signal resolve_conflict sent" in done.stdout
    final = eventually(
        lambda: completed(demo.cli, demo.by_signal), what="the run to complete", interval_s=0.3
    )
    assert "completed" == final["status"]
    (conflict,) = final["conflicts"]
    assert ("resolved", "value") == (conflict["status"], conflict["resolution"]["choice"])
    assert (chosen, value_hash(chosen)) == (
        conflict["resolution"]["value"],
        conflict["resolution"]["value_hash"],
    )
    (rejected,) = final["rejected_resolutions"]
    assert ("c1", "current") == (rejected["conflict_id"], rejected["choice"])
    assert "stale" in rejected["reason"]
    resolved = demo.cli.starter("conflicts", demo.by_signal, "--all", "--format", "json")
    assert ["resolved"] == [c["status"] for c in json.loads(resolved.stdout)]
