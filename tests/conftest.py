"""Fixtures only (what tests share besides fixtures is in tests/helpers.py): a real Temporal dev
server per test process, the time-skipping test server, private `starter.py` environments, and
how `make test` spreads the suite over pytest-xdist workers.

Every path below is per process: under `pytest -n 2` each xdist worker imports this file
itself, so each worker has its own temp folders and its own servers on free ports."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from pee.runtime.devserver import free_port
from tests.helpers import TemporalHarness, harness, starter, time_skipping_harness
from tests.pg_support import database, pg_url, postgres  # noqa: F401
from tests.s3_support import s3_env, s3_server  # noqa: F401

# The defaults below are set by whichever test process imports this file first. xdist workers
# inherit the controller's environment, so a value the controller set is replaced in each worker
# (marked by PEE_TEST_ENV_OWNER); a value the user exported is kept.
_inherited = os.environ.get("PEE_TEST_ENV_OWNER") not in (None, str(os.getpid()))
os.environ["PEE_TEST_ENV_OWNER"] = str(os.getpid())


def _default(name: str, value: str) -> None:
    if _inherited or name not in os.environ:
        os.environ[name] = value


# `starter.py run` writes each run's documents to runs/<workflow-id>/ by default; tests (and the
# commands they start, which inherit the environment) write to a throwaway folder instead
_default("PEE_RUNS_DIR", tempfile.mkdtemp(prefix="pee-runs-"))
# and the agent output cache is a throwaway file, never the user's .temporal/cache.db
_default("PEE_CACHE_PATH", os.path.join(tempfile.mkdtemp(prefix="pee-cache-"), "cache.db"))
# and durations measured by runs go to a throwaway store, never the user's .temporal/durations.db
_default(
    "PEE_DURATIONS_PATH", os.path.join(tempfile.mkdtemp(prefix="pee-durations-"), "durations.db")
)
# artifacts of in-process workers and any embedded server a test starts without its own state
# dir: a throwaway folder per process, never the checkout's .temporal/ shared by both workers
_default("PEE_STATE_DIR", tempfile.mkdtemp(prefix="pee-state-"))
# command agents' process-tree records: per test process, not the host-wide folder a real
# worker on this machine uses (children inherit it, so a test's worker subprocesses share it)
_default("PEE_PROCESS_STATE_DIR", tempfile.mkdtemp(prefix="pee-trees-"))


# --- pytest-xdist (`make test` runs `pytest -n 2 --dist loadgroup`) ---------------------------

# Files that must not run at the same time as each other: they SIGKILL servers or workers, count
# processes or CPU seconds on the host, or drive Chromium (two browsers on two cores starve the
# suite). They share one xdist group, so one worker runs them one after another.
SERIAL = "serial"
SERIAL_FILES = {
    "test_activities_bench.py",
    "test_backend_command.py",
    "test_cluster_failover.py",
    # an embedded server and a long-lived conflicted run per module; once seen to find no open
    # conflict when overlapping other embedded-server files
    "test_conflict_demo.py",
    "test_embedded_codec.py",
    # counts AgentState objects across the whole process: another test's run beside it would
    "test_eviction_release.py",
    "test_render_runner.py",
    "test_report_chromium.py",
    # 2,000 agents on one in-process worker: seen to time agents out next to another large run
    "test_scale_2000.py",
    "test_web_ui_chromium.py",
    "test_worker_failover.py",
}


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Every test gets an xdist group: SERIAL for the files above, else its own file. So a
    module's tests stay in one worker (module-scoped servers start once, as with loadfile),
    and the SERIAL files never overlap one another. Runs before xdist reads the groups."""
    for item in items:
        if item.get_closest_marker("xdist_group") is not None:
            continue
        name = item.path.name
        item.add_marker(pytest.mark.xdist_group(SERIAL if name in SERIAL_FILES else name))


# --- starter.py against a private embedded dev server ------------------------------------------


def private_env(state: Path) -> dict[str, str]:
    """The environment of a user with a private embedded server: state dir `state`, free ports,
    nothing (TEMPORAL_*, a Temporal config file) steering the commands elsewhere."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("TEMPORAL_")
        and k not in ("PEE_TIME_SCALE", "PEE_TASK_QUEUE", "PEE_UI_URL")
    }
    # learned durations per state dir too, so runs of one module never steer another's compiles
    env.update(
        PEE_STATE_DIR=str(state),
        PEE_DURATIONS_PATH=str(state / "durations.db"),
        PEE_DEV_PORT=str(free_port()),
        PEE_UI_PORT=str(free_port()),
        # the embedded codec server's default (dev port + 1001) is not checked free, and
        # in the ephemeral range it can be a live connection's port: bind fails at random
        PEE_CODEC_PORT=str(free_port()),
        # nor may the user's Temporal client config file
        TEMPORAL_CONFIG_FILE=str(state / "no-temporal.toml"),
    )
    return env


@pytest.fixture(scope="module")
def cli_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """Environment for `starter.py` subprocesses with their own state dir and ports, so the
    embedded server they start is private to the module; stopped at the end."""
    env = private_env(tmp_path_factory.mktemp("state"))
    try:
        yield env
    finally:
        stopped = starter(env, "server", "stop")
        assert 0 == stopped.returncode, stopped.stdout + stopped.stderr


# --- real servers ------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def temporal() -> Iterator[TemporalHarness]:
    """A dev server for the session (one per xdist worker)."""
    yield from harness()


@pytest.fixture(scope="session")
def time_skipping() -> Iterator[TemporalHarness]:
    """The time-skipping test server for the session, for tests that wait on workflow timers."""
    yield from time_skipping_harness()


# Temporal suggests continue-as-new at 4,096 history events by default: a server that does at
# this many lets modest plans show the continue-as-new path (src/pee/workflows/continuation.py)
SUGGEST_CONTINUE_AS_NEW_AT = 400


@pytest.fixture(scope="session")
def suggesting() -> Iterator[TemporalHarness]:
    """A dev server that suggests continue-as-new at SUGGEST_CONTINUE_AS_NEW_AT events."""
    yield from harness(
        "--dynamic-config-value",
        f"limit.historyCount.suggestContinueAsNew={SUGGEST_CONTINUE_AS_NEW_AT}",
    )
