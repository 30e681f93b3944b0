"""`status`, `report`, `learn`, `conflicts` and `run --resume-from` given the id of a workflow
that is not a plan run (the shared pool's `resource-pool-NAME`): exit 2 saying what the id is,
instead of waiting for a status query the workflow does not have and blaming the worker."""

from __future__ import annotations

import re
import shlex
import subprocess
from pathlib import Path

import pytest

from pee.runtime.devserver import find_temporal_binary
from tests.helpers import starter

POOL_ID = "resource-pool-not-a-plan"


@pytest.fixture(scope="module")
def pool_workflow(cli_env: dict[str, str]) -> str:
    started = starter(cli_env, "server", "start", "--headless")
    assert 0 == started.returncode, started.stdout + started.stderr
    # no worker polls this queue: the workflow only has to exist, with its type
    subprocess.run(
        [
            str(find_temporal_binary()),
            "workflow",
            "start",
            "--address",
            f"127.0.0.1:{cli_env['PEE_DEV_PORT']}",
            "--type",
            "ResourcePoolWorkflow",
            "--task-queue",
            "nobody-polls",
            "--workflow-id",
            POOL_ID,
        ],
        check=True,
        capture_output=True,
        timeout=30,
    )
    return POOL_ID


@pytest.mark.parametrize(
    "args",
    [
        ("status", POOL_ID),
        ("report", POOL_ID),
        ("learn", POOL_ID),
        ("conflicts", POOL_ID),
        ("run", "plans/demo.yaml", "--no-worker", "--resume-from", POOL_ID),
    ],
)
def test_a_pool_workflow_id_is_bad_input_naming_what_it_is(
    cli_env: dict[str, str], pool_workflow: str, args: tuple[str, ...]
) -> None:
    done = starter(cli_env, *args)
    assert 2 == done.returncode, done.stdout + done.stderr
    assert f"{POOL_ID} is a ResourcePoolWorkflow, not a plan run (PlanWorkflow)" in done.stderr, (
        done.stderr
    )
    (hint,) = re.findall(r"`(\S*temporal workflow query [^`]+)`", done.stderr)
    assert f"--workflow-id {POOL_ID} --type state" in hint
    # at this module's server, whatever its port: its temporal.toml (no worker polls the
    # pool's queue here, so the query itself would only wait)
    config = shlex.split(hint)[shlex.split(hint).index("--config-file") + 1]
    assert Path(cli_env["PEE_STATE_DIR"]) / "temporal.toml" == Path(config)
    assert "no worker answered" not in done.stdout + done.stderr
