"""Every `temporal` command that our commands print, and the docs' for the embedded server,
works as printed against an embedded server on non-default ports and shows payloads decoded:
`server start`/`status` hints, the end of `run`, `compile`'s start line (with the search
attributes when asked for), and docs/guides/web-ui.md's "Start a run with the temporal CLI" and
search-attribute commands (run in a folder laid out like the project: `.venv/bin/temporal`
and `.temporal/` pointing at this module's binary and state directory).

Payloads are compressed from 300 bytes here, so "decoded" is never vacuous: the same command
with `--address` instead of the config file shows binary/lz4.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from pee.runtime.devserver import find_temporal_binary
from tests.conftest import cli_env  # noqa: F401  (the module's server)
from tests.helpers import PROJECT_ROOT, starter

THRESHOLD = "300"
PLAN = """\
name: {name}
agents:
  hint_probe:
    kind: simulate
    duration: 1s
    outputs: [notes]
  reader:
    kind: simulate
    duration: 1s
    inputs: [hint_probe.notes]
"""


@pytest.fixture(scope="module")
def env(cli_env: dict[str, str]) -> dict[str, str]:  # noqa: F811
    cli_env["PEE_COMPRESSION_THRESHOLD"] = THRESHOLD
    return cli_env


@pytest.fixture(scope="module")
def started(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    done = starter(env, "server", "start")
    assert 0 == done.returncode, done.stdout + done.stderr
    return done


@pytest.fixture(scope="module")
def worker(env: dict[str, str], started: subprocess.CompletedProcess[str]) -> Iterator[None]:
    """A worker on the default task queue, the one printed and the docs' commands name."""
    process = subprocess.Popen(
        [sys.executable, "worker.py"],
        cwd=PROJECT_ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    try:
        yield
    finally:
        process.terminate()
        process.wait(timeout=30)


def temporal_lines(text: str) -> list[str]:
    """The `temporal ...` commands in a command's output (one per line, indented or after
    a label)."""
    return [
        match.group(1).strip()
        for match in re.finditer(r"(\S*temporal workflow .+)$", text, re.MULTILINE)
    ]


def run_verbatim(
    command: str,
    cwd: Path = PROJECT_ROOT,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    # as a shell reads it: a trailing `# ...` is a comment, not arguments
    done = subprocess.run(
        shlex.split(command, comments=True),
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert 0 == done.returncode, f"{command}\n{done.stdout}{done.stderr}"
    return done


def write_plan(tmp_path: Path, name: str) -> Path:
    plan = tmp_path / f"{name}.yaml"
    plan.write_text(PLAN.format(name=name))
    return plan


def test_server_start_and_status_print_commands_that_work(
    env: dict[str, str], started: subprocess.CompletedProcess[str]
) -> None:
    """The `temporal workflow list --config-file ...` of `server start` and `server status`
    reach the server on its port (nothing listens at the CLI's default)."""
    status = starter(env, "server", "status")
    assert 0 == status.returncode, status.stdout
    for output in (started.stdout, status.stdout):
        (command,) = temporal_lines(output)
        assert "--config-file" in command and env["PEE_DEV_PORT"] not in command
        run_verbatim(command)


def test_the_end_of_run_prints_a_describe_that_shows_the_result_decoded(
    env: dict[str, str], started: subprocess.CompletedProcess[str], tmp_path: Path
) -> None:
    """`run`'s last lines name `temporal workflow describe` for the run: it shows the
    compressed result as JSON (json/plain), where plain `--address` shows binary/lz4."""
    workflow_id = f"hints-{uuid.uuid4().hex[:6]}"
    done = starter(
        env,
        "run",
        write_plan(tmp_path, "hints"),
        "--workflow-id",
        workflow_id,
        "--time-scale",
        "0.2",
        "--no-learn",
        "--output-dir",
        tmp_path / "out",
    )
    assert 0 == done.returncode, done.stdout + done.stderr
    (command,) = temporal_lines(done.stdout)
    assert f"workflow describe --workflow-id {workflow_id}" in command
    described = run_verbatim(command).stdout
    assert re.search(r"ResultEncoding\s+json/plain", described), described
    assert f'"workflow_id":"{workflow_id}"' in described
    config = shlex.split(command)
    at = config.index("--config-file")
    config[at : at + 2] = ["--address", f"127.0.0.1:{env['PEE_DEV_PORT']}"]
    raw = run_verbatim(shlex.join(config)).stdout
    assert re.search(r"ResultEncoding\s+binary/lz4", raw), raw


def test_compile_prints_a_start_with_the_search_attributes(
    env: dict[str, str], worker: None, tmp_path: Path
) -> None:
    """`compile --search-attributes -o FILE` prints a `temporal workflow start` that starts
    the run on the embedded server with PeePlan set: the run is found by its PeePlan and
    completes, its result read decoded."""
    name = f"hints-sa-{uuid.uuid4().hex[:6]}"
    compiled = starter(
        env,
        "compile",
        write_plan(tmp_path, name),
        "--time-scale",
        "0.2",
        "--no-learn",
        "--search-attributes",
        "-o",
        tmp_path / "run.json",
    )
    assert 0 == compiled.returncode, compiled.stderr
    (command,) = temporal_lines(compiled.stderr)
    assert f"--search-attribute 'PeePlan=\"{name}\"'" in command
    run_verbatim(command)
    config = command[command.index("--config-file") :].split()[1]
    temporal = str(find_temporal_binary())
    result = run_verbatim(
        f"{temporal} workflow result --config-file {config} --workflow-id {name}-1"
    ).stdout
    assert re.search(r"Status\s+COMPLETED", result) and f'"plan":"{name}"' in result, result
    listed = run_verbatim(
        f"{temporal} workflow list --config-file {config} "
        f'--query \'PeePlan="{name}" AND PeeStatus="completed"\''
    ).stdout
    assert f"{name}-1" in listed


def docs_block(heading: str) -> str:
    """One section of docs/guides/web-ui.md, up to the next one (continuations joined)."""
    text = (PROJECT_ROOT / "docs" / "guides" / "web-ui.md").read_text()
    section = text[text.index(heading) :]
    end = section.find("\n## ")
    return section[: end if end != -1 else None].replace("\\\n", " ")


def project_like_folder(env: dict[str, str], tmp_path: Path) -> Path:
    """A folder where the docs' relative paths mean this module's binary and state."""
    folder = tmp_path / "project"
    (folder / ".venv" / "bin").mkdir(parents=True)
    (folder / ".venv" / "bin" / "temporal").symlink_to(find_temporal_binary())
    (folder / ".temporal").symlink_to(env["PEE_STATE_DIR"], target_is_directory=True)
    return folder


def test_the_readme_temporal_cli_commands_work_verbatim(
    env: dict[str, str], worker: None, tmp_path: Path
) -> None:
    """ "Start a run with the temporal CLI": start with the compiled seed plan, describe,
    query, result (decoded); and the search-attribute list/count commands of "Watch it in the
    Web UI" -- each line exactly as docs/guides/web-ui.md has it."""
    folder = project_like_folder(env, tmp_path)
    compiled = starter(
        env,
        "compile",
        "plans/seed.yaml",
        "--simulate",
        "--time-scale",
        "0.005",
        "--no-learn",
        "-o",
        folder / "seed-input.json",
    )
    assert 0 == compiled.returncode, compiled.stderr
    block = docs_block("## Start a run with the temporal CLI")
    commands = [
        line.strip()
        for line in block.splitlines()
        if line.strip().startswith(".venv/bin/temporal workflow")
        and "--config-file .temporal/temporal.toml" in line
    ]
    verbs = [shlex.split(command)[2] for command in commands]
    assert ["start", "describe", "query", "result"] == verbs, commands
    # the user's shell: no TEMPORAL_* pointing anywhere
    shell = {k: v for k, v in env.items() if not k.startswith("TEMPORAL_")}
    outputs = {
        verb: run_verbatim(command, folder, shell).stdout
        for verb, command in zip(verbs, commands, strict=True)
    }
    assert re.search(r"ResultEncoding\s+json/plain", outputs["result"]), outputs["result"]
    assert '"workflow_id":"seed-from-cli"' in outputs["result"]
    watch = docs_block("## Watch it in the Web UI")
    lines = [
        line.strip()
        for line in watch.splitlines()
        if line.strip().startswith(".venv/bin/temporal workflow")
    ]
    assert 4 == len(lines) and all(
        "--config-file .temporal/temporal.toml" in line for line in lines
    ), lines
    # a run started by starter.py carries PeePlan from its start
    detached = starter(
        env,
        "run",
        "plans/seed.yaml",
        "--simulate",
        "--time-scale",
        "0.005",
        "--no-learn",
        "--workflow-id",
        "seed-listed",
        "--detach",
    )
    assert 0 == detached.returncode, detached.stdout + detached.stderr
    listed = run_verbatim(lines[0], folder, shell).stdout
    assert "seed-listed" in listed and "seed-from-cli" not in listed, listed
    for line in lines[1:]:
        run_verbatim(line, folder, shell)
