"""What `pee run` does before its first agent (issue 17, item 6): the worker's build id is set
(the SDK would otherwise hash every loaded module) and stable for the same code, and the
modules the first agent does not need are not imported on the way."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from pee.runtime.build_id import PACKAGE_ROOT, build_id
from pee.runtime.worker import build_worker
from tests.helpers import TemporalHarness

ROOT = Path(__file__).resolve().parent.parent


def test_the_worker_gets_the_packages_build_id(temporal: TemporalHarness) -> None:
    async def config() -> dict[str, Any]:
        return dict(build_worker(temporal.client, "build-id").config())

    assert build_id() == temporal.run(config())["build_id"]
    assert build_id().startswith("pee-")


def test_the_build_id_is_the_same_for_the_same_code_and_changes_with_an_edit(
    tmp_path: Path,
) -> None:
    """Another process computes the same id; a copy of the package has its id, and editing one
    file of the copy changes it."""
    again = subprocess.run(
        [sys.executable, "-c", "from pee.runtime.build_id import build_id; print(build_id())"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert build_id() == again.stdout.strip()
    copy = tmp_path / "pee"
    shutil.copytree(PACKAGE_ROOT, copy, ignore=shutil.ignore_patterns("__pycache__"))
    assert build_id() == build_id(copy)
    edited = tmp_path / "edited"
    shutil.copytree(copy, edited)
    (edited / "runtime" / "worker.py").write_text(
        (copy / "runtime" / "worker.py").read_text() + "\n# an edit\n"
    )
    assert build_id(edited) != build_id(copy)


LAZY = ("aiohttp", "networkx", "httpx", "opentelemetry.sdk", "pee.runtime.telemetry")
PROBE = """
import json, sys
import pee.cli.main, pee.runtime.runner, pee.engine.compile.graph, pee.engine.compile.load
from pee.engine.compile.load import loads_plan
from pee.engine.compile.graph import compile_plan
from pee.runtime.connection import process_telemetry
compile_plan(loads_plan("agents:\\n  a: {outputs: [x]}\\n  b: {inputs: [a.x]}\\n"))
loaded = [m for m in sys.argv[1:] if m in sys.modules]
telemetry = process_telemetry() is not None
print(json.dumps({
    "loaded": loaded,
    "telemetry": telemetry,
    "after": [m for m in sys.argv[1:] if m in sys.modules],
}))
"""


def run_script(script: str, *args: str, env: dict[str, str] | None = None) -> Any:
    """What `script`, run by a fresh Python of the project (its own imports), prints as JSON."""
    done = subprocess.run(
        [sys.executable, "-c", script, *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        check=True,
    )
    return json.loads(done.stdout)


def probe(env: dict[str, str]) -> dict[str, Any]:
    return dict(run_script(PROBE, *LAZY, env=env))


def test_run_imports_no_module_its_first_agent_does_not_need() -> None:
    """The CLI, the runner and the analyser of an acyclic plan load no codec server (aiohttp),
    no networkx, no http client and no OpenTelemetry SDK; the SDK comes with an OTEL_*
    variable."""
    plain = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    assert {"loaded": [], "telemetry": False, "after": []} == probe(plain)
    traced = probe({**plain, "OTEL_SDK_DISABLED": "true"})
    assert traced["telemetry"] is True
    assert "pee.runtime.telemetry" in traced["after"]


WORKER_PROBE = """
import json, sys
import pee.runtime.runner
print(json.dumps([m for m in sys.argv[1:] if m in sys.modules]))
"""
# what compiling needs (in `pee run`'s compiling child) or an agent needs once it runs, never
# a worker's start: the plan language's models, YAML, psutil, ctypes
WORKER_LAZY = ("pee.engine.language.models", "pee.engine.compile.load", "yaml", "psutil", "ctypes")


def test_the_runner_and_its_worker_load_no_plan_language_models() -> None:
    assert [] == run_script(WORKER_PROBE, *WORKER_LAZY)


PARSER_PROBE = """
import json, sys
from pee.cli.main import build_parser
build_parser()
print(json.dumps([m for m in sys.modules if m == "temporalio" or m.startswith("temporalio.")]))
"""


def test_the_command_line_is_built_without_the_temporal_sdk() -> None:
    """`pee validate` and `pee plan` never connect: building the parser (the connection
    flags included) imports no temporalio."""
    assert [] == run_script(PARSER_PROBE)
