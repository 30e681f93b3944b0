"""`starter.py run PLAN --resume-from ID [--from-group G]` as a user runs it: a fixed plan resumed
from its failed run runs only what had not passed. Each test runs twice: with the caches in the
default SQLite file, and in PostgreSQL (PEE_CACHE_URL, tests/pg_support.py), where the
snapshots a resume reads live on a cluster."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.test_cli_run import Cli, cli  # noqa: F401  (the module's private dev server)

# a -> b -> c; b fails every attempt in the broken version
PLAN = """\
name: resumable
agents:
  a: {{kind: simulate, duration: 100ms, outputs: [x]}}
  b: {{kind: simulate, duration: 100ms, inputs: [a.x], outputs: [y]{broken}}}
  c: {{kind: simulate, duration: 100ms, inputs: [b.y]}}
"""
BROKEN = ", fail_times: always, retry: {max_attempts: 1}"


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, cli: Cli) -> tuple[Cli, str]:  # noqa: F811
    """The module's CLI on one cache backend, and a suffix that keeps its workflow ids apart."""
    if request.param == "sqlite":
        return cli, "s"
    url = request.getfixturevalue("pg_url")
    return Cli({**cli.env, "PEE_CACHE_URL": url}, cli.plans), "p"


def test_a_fixed_plan_resumes_from_its_failed_run(store: tuple[Cli, str], tmp_path: Path) -> None:
    """Run 1 fails at b (exit 1); the fixed plan resumed from it reuses a and completes (exit 0);
    --from-group with a group the plan lacks is bad input (exit 2); the completed run 2 resumed
    from its last group reuses the others and reads its context by query."""
    runner, n = store
    failed = runner.starter(
        "run",
        runner.plan("broken", PLAN.format(broken=BROKEN)),
        "--workflow-id",
        f"resumable-1{n}",
        "--report",
        tmp_path / "1.json",
    )
    assert 1 == failed.returncode, failed.stdout + failed.stderr
    fixed = runner.plan("fixed", PLAN.format(broken=""))
    done = runner.starter(
        "run",
        fixed,
        "--resume-from",
        f"resumable-1{n}",
        "--workflow-id",
        f"resumable-2{n}",
        "--report",
        tmp_path / "2.json",
    )
    assert 0 == done.returncode, done.stdout + done.stderr
    assert "Resuming resumable-1" in done.stdout
    assert "context from snapshot" in done.stdout
    first, second = (json.loads((tmp_path / f"{n}.json").read_text()) for n in (1, 2))
    assert f"resumable-1{n}" == second["resumed_from"]
    assert {"a": True, "b": False, "c": False} == {
        agent_id: entry["resumed"] for agent_id, entry in second["agents"].items()
    }
    group_a = second["agents"]["a"]["group"]
    assert first["snapshots"][group_a] == second["snapshots"][group_a]
    bad = runner.starter("run", fixed, "--resume-from", f"resumable-1{n}", "--from-group", "nope")
    assert 2 == bad.returncode
    assert "not a group" in bad.stderr
    # run 2 completed, so it stored no snapshot of its last group: resuming it from that group
    # reads the context from its history, and says so
    group_c = second["agents"]["c"]["group"]
    again = runner.starter(
        "run", fixed, "--resume-from", f"resumable-2{n}", "--from-group", group_c
    )
    assert 0 == again.returncode, again.stdout + again.stderr
    # in plan order: a's group, then b's (one group if they share it)
    reused = list(dict.fromkeys(second["agents"][agent]["group"] for agent in ("a", "b")))
    assert f"reusing groups {', '.join(reused)}, running {group_c} and after again" in again.stdout
    assert f"{group_c} passed after the last stored snapshot" in again.stdout


def test_without_its_snapshot_resume_reads_the_context_by_query_and_says_so(
    store: tuple[Cli, str], tmp_path: Path
) -> None:
    """`cache clear --plan P` removes the run's snapshots: the resume still works, from the
    `context` query, and its Resuming line says why."""
    runner, n = store
    text = PLAN.replace("name: resumable", "name: resumable-cleared")
    failed = runner.starter(
        "run",
        runner.plan("broken2", text.format(broken=BROKEN)),
        "--workflow-id",
        f"resumable-3{n}",
    )
    assert 1 == failed.returncode, failed.stdout + failed.stderr
    cleared = runner.starter("cache", "clear", "--plan", "resumable-cleared")
    assert "removed 1 context snapshot" in cleared.stdout, cleared.stdout + cleared.stderr
    done = runner.starter(
        "run",
        runner.plan("fixed2", text.format(broken="")),
        "--resume-from",
        f"resumable-3{n}",
        "--workflow-id",
        f"resumable-4{n}",
        "--report",
        tmp_path / "4.json",
    )
    assert 0 == done.returncode, done.stdout + done.stderr
    assert "no context snapshot to reuse" in done.stdout and "by query" in done.stdout
    report = json.loads((tmp_path / "4.json").read_text())
    assert report["agents"]["a"]["resumed"] and report["resumed_snapshot"] is None
