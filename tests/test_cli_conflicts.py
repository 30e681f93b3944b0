"""`starter.py conflicts` and `starter.py resolve` without a run: option checking (exit 2 before
anything is sent), the listing's table, and the resolve commands it prints. The commands against
a real paused run are in tests/test_conflict_demo.py."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from pee.cli.conflict_commands import format_conflicts, resolve_commands
from pee.cli.main import build_parser
from pee.runtime.devserver import free_port
from tests.conftest import private_env
from tests.helpers import PROJECT_ROOT

CONTEXT = {
    "temporal": ".venv/bin/temporal",
    "connection": " --address 127.0.0.1:7233",
    "starter_flags": "",
}
OPEN = {
    "id": "c1",
    "key": "platform",
    "kind": "write_write",
    "status": "open",
    "current_version": 2,
    "writers": ["ux_expert", "architect"],
    "base": {"target": "web"},
    "current": {"target": "mobile_first"},
    "incoming": {"target": "desktop_primary"},
    "message": "'architect' and 'ux_expert' changed 'platform' incompatibly at target",
}
RESOLVED = {
    **OPEN,
    "id": "c2",
    "key": "tone",
    "status": "resolved",
    "resolution": {"by": "ann", "choice": "current", "value": "calm", "version": 4},
}


def starter(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "starter.py", *args],
        cwd=PROJECT_ROOT,
        env=private_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (("--choice", "value", "--value", "{target: web}"), "--value is not valid JSON"),
        (("--choice", "value", "--value", "web"), "quote strings as JSON"),
        (("--choice", "value"), "--choice value needs --value JSON"),
        (("--choice", "incoming", "--value", '"web"'), "--value goes with --choice value"),
        (("--choice", "both"), "invalid choice: 'both'"),
        (
            ("--choice", "current", "--expected-version", "-1"),
            "expected a whole number of 0 or more",
        ),
    ],
)
def test_malformed_resolve_options_exit_two_before_anything_is_sent(
    tmp_path: Path, args: tuple[str, ...], words: str
) -> None:
    """Bad --value JSON, a value without --choice value (or the reverse), a bad choice or
    version: exit 2 with a message saying what to write (no server is even looked for)."""
    done = starter(tmp_path, "resolve", "some-run", "c1", *args)
    assert 2 == done.returncode, done.stdout + done.stderr
    assert words in done.stderr, done.stderr


@pytest.mark.parametrize(
    "command", [("conflicts", "some-run"), ("resolve", "some-run", "c1", "--choice", "current")]
)
def test_an_unreachable_address_exits_two(tmp_path: Path, command: tuple[str, ...]) -> None:
    """--address where nothing listens: exit 2, never a silently started server."""
    done = starter(tmp_path, *command, "--address", f"127.0.0.1:{free_port()}")
    assert 2 == done.returncode, done.stdout + done.stderr
    assert "nothing listens" in done.stderr


def test_both_commands_are_registered_with_their_options() -> None:
    """starter.py knows conflicts (--format, --all) and resolve (--choice, --value, --signal)."""
    parser = build_parser()
    listing = parser.parse_args(["conflicts", "wf", "--format", "json", "--all"])
    assert ("wf", "json", True) == (listing.workflow_id, listing.format, listing.all)
    resolve = parser.parse_args(
        [
            "resolve",
            "wf",
            "c1",
            "--choice",
            "value",
            "--value",
            "1",
            "--expected-version",
            "3",
            "--signal",
        ]
    )
    assert ("wf", "c1", "value", "1", 3, True) == (
        resolve.workflow_id,
        resolve.conflict_id,
        resolve.choice,
        resolve.value,
        resolve.expected_version,
        resolve.signal,
    )


def test_the_resolve_commands_are_ready_to_paste() -> None:
    """starter.py, update and signal commands; the JSON input is shell-quoted and parses back to
    the Update's payload; odd workflow ids are quoted too."""
    starter_line, update, signal = resolve_commands("demo 1", "c1", "incoming", 2, CONTEXT)
    assert "pee resolve 'demo 1' c1 --choice incoming --expected-version 2" == (starter_line)
    payload = {"conflict_id": "c1", "choice": "incoming", "expected_version": 2}
    for line, verb in ((update, ["update", "execute"]), (signal, ["signal"])):
        argv = shlex.split(line)
        assert [".venv/bin/temporal", "workflow", *verb] == argv[: 2 + len(verb)]
        options = dict(zip(argv[2 + len(verb) :: 2], argv[3 + len(verb) :: 2], strict=True))
        assert {
            "--address": "127.0.0.1:7233",
            "--workflow-id": "demo 1",
            "--name": "resolve_conflict",
        } == {k: options[k] for k in ("--address", "--workflow-id", "--name")}
        assert payload == json.loads(options["--input"])


def test_the_listing_has_a_table_and_commands_for_open_conflicts_only() -> None:
    """A row per conflict shown; values and resolve commands under each open one; a settled
    conflict says how it ended instead."""
    text = format_conflicts([OPEN, RESOLVED], [OPEN, RESOLVED], "wf", CONTEXT)
    lines = text.splitlines()
    assert "2 conflict(s) in wf, 1 open" == lines[0]
    assert ["id", "key", "kind", "status", "version", "writers"] == lines[2].split()
    assert ["c1", "platform", "write_write", "open", "2", "ux_expert,", "architect"] == (
        lines[4].split()
    )
    assert 'current (ux_expert): {"target": "mobile_first"}' in text
    assert 'incoming (architect): {"target": "desktop_primary"}' in text
    assert 1 == text.count("workflow update execute")
    assert """resolved: choice current, by ann, value "calm", 'tone' version 4""" in text


def test_no_open_conflicts_says_so_and_points_at_all() -> None:
    """Nothing open: one line, counting the settled ones."""
    assert "no open conflicts in wf (1 settled; --all lists them)" == format_conflicts(
        [], [RESOLVED], "wf", CONTEXT
    )
    assert "no open conflicts in wf" == format_conflicts([], [], "wf", CONTEXT)


def test_long_values_are_shortened_in_the_listing() -> None:
    """A big value prints as its first 100 characters, never the whole thing."""
    big: dict[str, Any] = {**OPEN, "incoming": "x" * 5000}
    text = format_conflicts([big], [big], "wf", CONTEXT)
    assert (
        max(
            len(line) for line in text.splitlines() if "incoming" in line and "workflow" not in line
        )
        < 130
    )
