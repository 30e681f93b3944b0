"""`run --output-dir` and `outputs`: every agent output becomes a file (documents under docs/,
the rest under outputs/<agent>/), with an index and report.json; `outputs` prints them."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from pee.runtime.outputs import MAX_NAME_BYTES, document_filename, write_outputs
from tests.helpers import PROJECT_ROOT, starter

# pm (pretend) -> writer (plain template) and prd (built-in BMAD template), in parallel
PLAN = """\
name: docs
agents:
  pm:
    kind: simulate
    duration: 100ms
    outputs: [user_stories]
    values:
      user_stories:
        - {id: S1, title: Sign up, as_a: visitor, i_want: an account, so_that: I can buy}
  writer:
    kind: template
    template: note.md
    inputs: [pm.user_stories, project_name]
    outputs: [note]
  prd:
    kind: template
    template: "builtin:prd"
    inputs: [pm.user_stories, project_name]
    outputs: [prd]
"""


def test_documents_are_named_by_filename() -> None:
    """A markdown mapping with a filename uses its last part (.md added when it has none)."""
    assert "prd.md" == document_filename({"markdown": "x", "filename": "docs/prd.md"})
    assert "notes.md" == document_filename({"markdown": "x", "filename": "../../notes"})
    assert document_filename({"markdown": "x"}) is None
    assert document_filename("text") is None


def test_write_outputs_writes_every_output_the_index_and_the_report(tmp_path: Path) -> None:
    """Documents by filename under docs/ (a clashing name gets the agent id), other text as .md
    and data as .json under outputs/<agent>/, an index, report.json; plan inputs are left out."""
    context = {
        "analyst.brief": {"markdown": "# Brief", "filename": "docs/brief.md"},
        "pm.brief": {"markdown": "# Other brief\n", "filename": "brief.md"},
        "writer.note": "hello",
        "pm.stories": ["not", "a", "document"],
        "project_name": "Acme",
    }
    written = write_outputs(tmp_path / "out", context, {"status": "completed"})
    names = [str(path.relative_to(tmp_path / "out")) for path in written.paths]
    assert [
        "docs/brief.md",
        "docs/pm-brief.md",
        "outputs/pm/stories.json",
        "outputs/writer/note.md",
        "index.json",
        "index.md",
        "report.json",
    ] == names
    assert [] == written.failed
    assert "# Brief\n" == (tmp_path / "out/docs/brief.md").read_text()
    assert "# Other brief\n" == (tmp_path / "out/docs/pm-brief.md").read_text()
    assert "hello\n" == (tmp_path / "out/outputs/writer/note.md").read_text()
    assert ["not", "a", "document"] == json.loads(
        (tmp_path / "out/outputs/pm/stories.json").read_text()
    )
    index = json.loads((tmp_path / "out/index.json").read_text())
    assert [
        ("analyst", "brief", "docs/brief.md"),
        ("pm", "brief", "docs/pm-brief.md"),
        ("pm", "stories", "outputs/pm/stories.json"),
        ("writer", "note", "outputs/writer/note.md"),
    ] == [(row["agent"], row["output"], row["file"]) for row in index["outputs"]]
    assert (
        "| writer | note | [outputs/writer/note.md](outputs/writer/note.md) | text |"
        in (tmp_path / "out/index.md").read_text()
    )
    report = json.loads((tmp_path / "out/report.json").read_text())
    assert "completed" == report["status"]
    assert index["outputs"] == report["output_files"]


def test_colliding_document_names_are_all_written(tmp_path: Path) -> None:
    """Three documents asking for the same file name (two from one agent, names differing only
    in case) give three files with their own texts."""
    context = {
        "a.one": {"markdown": "first", "filename": "docs/prd.md"},
        "a.two": {"markdown": "second", "filename": "PRD.md"},
        "b.three": {"markdown": "third", "filename": "prd.md"},
    }
    written = write_outputs(tmp_path, context, None)
    docs = sorted(p.name for p in (tmp_path / "docs").iterdir())
    assert 3 == len(docs)
    assert ["first\n", "second\n", "third\n"] == sorted(
        (tmp_path / "docs" / name).read_text() for name in docs
    )
    assert 3 == len({row.file.lower() for row in written.entries})


def test_a_300_character_agent_id_gets_a_short_hashed_name(tmp_path: Path) -> None:
    """Ids too long for a file name are cut and hashed, so two of them stay apart."""
    long_a, long_b = "a" * 300, "a" * 299 + "b"
    context = {f"{long_a}.out": "from a", f"{long_b}.out": "from b"}
    written = write_outputs(tmp_path, context, None)
    assert [] == written.failed
    folders = {p.parent.name for p in written.paths if p.parent.parent.name == "outputs"}
    assert 2 == len(folders)
    assert all(len(name) <= MAX_NAME_BYTES for name in folders)
    assert {"from a\n", "from b\n"} == {
        (tmp_path / row.file).read_text() for row in written.entries
    }


def test_a_file_that_cannot_be_written_is_reported_not_raised(tmp_path: Path) -> None:
    """An output folder that is a file: nothing is written and every file is named in failed."""
    blocker = tmp_path / "taken"
    blocker.write_text("a file, not a folder")
    written = write_outputs(blocker, {"a.note": "x"}, {"status": "completed"})
    assert [] == written.paths
    assert {
        str(blocker / f) for f in ("outputs/a/note.md", "index.json", "index.md", "report.json")
    } == {path for path, _ in written.failed}


def test_template_notes_reach_the_index(tmp_path: Path) -> None:
    """Skipped sections, stated conditions, empty variables and elicit prompts of a rendered
    document are listed in index.md and index.json."""
    document = {
        "markdown": "# PRD",
        "filename": "prd.md",
        "title": "PRD",
        "skipped": ["epic-details: no list 'epics'"],
        "conditions": ["ui-goals: Project has UI requirements"],
        "missing": ["project_name"],
        "elicit": [{"section": "goals", "title": "Goals", "instruction": "Ask why."}],
    }
    write_outputs(tmp_path, {"pm.prd": document}, None)
    index = (tmp_path / "index.md").read_text()
    assert "- skipped: epic-details: no list 'epics'" in index
    assert "- applies only if: ui-goals: Project has UI requirements" in index
    assert "- empty variables: project_name" in index
    assert "- elicit (Goals): Ask why." in index
    [row] = json.loads((tmp_path / "index.json").read_text())["outputs"]
    assert ["project_name"] == row["missing"]


def test_run_writes_template_documents_to_the_output_dir(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    """A real run: the plain template's text and the built-in PRD land in DIR/docs/."""
    (tmp_path / "note.md").write_text("{{project_name}}: {{user_stories.0.title}}\n")
    plan = tmp_path / "docs.yaml"
    plan.write_text(PLAN)
    out = tmp_path / "out"
    done = starter(cli_env, "run", plan, "--input", "project_name=Acme", "--output-dir", out)
    assert 0 == done.returncode, done.stdout + done.stderr
    assert f"Outputs written to {out}/ (3 outputs, 2 as markdown" in done.stdout
    assert "Acme: Sign up\n" == (out / "outputs/writer/note.md").read_text()
    prd = (out / "docs/prd.md").read_text()
    assert prd.startswith("# Acme Product Requirements Document\n")
    assert "### S1 Sign up" in prd
    assert "completed" == json.loads((out / "report.json").read_text())["status"]


def test_the_default_output_dir_is_runs_slash_workflow_id(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    """Without --output-dir the run writes to <PEE_RUNS_DIR or runs>/<workflow-id>/."""
    (tmp_path / "note.md").write_text("{{project_name}}\n")
    plan = tmp_path / "docs.yaml"
    plan.write_text(PLAN)
    env = {**cli_env, "PEE_RUNS_DIR": str(tmp_path / "runs")}
    done = starter(env, "run", plan, "--input", "project_name=Acme", "--workflow-id", "docs-1")
    assert 0 == done.returncode, done.stdout + done.stderr
    assert "Acme\n" == (tmp_path / "runs/docs-1/outputs/writer/note.md").read_text()
    assert (tmp_path / "runs/docs-1/report.json").is_file()


def test_a_run_whose_outputs_cannot_be_written_exits_non_zero(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    """--output-dir naming a file: the run completes, but the command exits 1 and names what
    was not written."""
    (tmp_path / "note.md").write_text("{{project_name}}\n")
    plan = tmp_path / "docs.yaml"
    plan.write_text(PLAN)
    blocker = tmp_path / "blocker"
    blocker.write_text("not a folder")
    done = starter(cli_env, "run", plan, "--input", "project_name=Acme", "--output-dir", blocker)
    assert 1 == done.returncode, done.stdout + done.stderr
    assert "completed" in done.stdout
    assert f"{blocker}/outputs/writer/note.md" in done.stderr
    assert f"{blocker}/report.json" in done.stderr
    assert "Outputs written" not in done.stdout


def test_outputs_prints_an_agents_outputs_of_a_finished_run(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    """`outputs ID AGENT --name OUTPUT` prints the bare value; without --name every output of
    the agent under a header; unknown names exit 2 with the closest name."""
    (tmp_path / "note.md").write_text("{{project_name}}: {{user_stories.0.title}}\n")
    plan = tmp_path / "docs.yaml"
    plan.write_text(PLAN)
    done = starter(
        cli_env,
        "run",
        plan,
        "--input",
        "project_name=Acme",
        "--workflow-id",
        "outputs-1",
        "--output-dir",
        tmp_path / "out",
    )
    assert 0 == done.returncode, done.stdout + done.stderr
    note = starter(cli_env, "outputs", "outputs-1", "writer", "--name", "note")
    assert 0 == note.returncode, note.stderr
    assert "Acme: Sign up\n" == note.stdout
    every = starter(cli_env, "outputs", "outputs-1")
    assert 0 == every.returncode, every.stderr
    assert "==> writer.note <==\nAcme: Sign up\n" in every.stdout
    assert "==> prd.prd <==\n# Acme Product Requirements Document" in every.stdout
    assert '"title": "Sign up"' in every.stdout
    as_json = starter(cli_env, "outputs", "outputs-1", "pm", "--json")
    assert 0 == as_json.returncode, as_json.stderr
    assert "Sign up" == json.loads(as_json.stdout)["pm"]["user_stories"][0]["title"]
    typo = starter(cli_env, "outputs", "outputs-1", "writter")
    assert 2 == typo.returncode
    assert "did you mean 'writer'?" in typo.stderr
    unknown = starter(cli_env, "outputs", "no-such-run")
    assert 2 == unknown.returncode
    assert "no run with workflow id 'no-such-run'" in unknown.stderr


def test_a_run_with_a_300_character_agent_id_writes_its_outputs_and_report(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    """The id is valid, so its output lands under a shortened, hashed folder name and
    report.json is written; the index maps the full id to the file."""
    agent = "a" * 300
    plan = tmp_path / "long.yaml"
    plan.write_text(
        f"name: long\nagents:\n  {agent}:\n    kind: simulate\n    duration: 10ms\n"
        "    outputs: [note]\n    values: {note: hello}\n"
    )
    out = tmp_path / "out"
    done = starter(cli_env, "run", plan, "--output-dir", out)
    assert 0 == done.returncode, done.stdout + done.stderr
    [row] = json.loads((out / "index.json").read_text())["outputs"]
    assert agent == row["agent"]
    assert len(Path(row["file"]).parent.name) <= MAX_NAME_BYTES
    assert "hello\n" == (out / row["file"]).read_text()
    assert "completed" == json.loads((out / "report.json").read_text())["status"]


SLOW = """\
name: slow
agents:
  first: {kind: simulate, duration: 10ms, outputs: [note], values: {note: early}}
  second: {kind: simulate, duration: 25s, inputs: [first.note], outputs: [done]}
"""


def test_outputs_of_a_running_run(cli_env: dict[str, str], tmp_path: Path) -> None:
    """While `second` still works, `outputs` prints what `first` produced (the run's own worker
    answers) and says `second` has produced nothing yet (exit 1)."""
    plan = tmp_path / "slow.yaml"
    plan.write_text(SLOW)
    run = subprocess.Popen(
        [
            sys.executable,
            "starter.py",
            "run",
            plan,
            "--workflow-id",
            "slow-1",
            "--output-dir",
            tmp_path / "out",
        ],
        cwd=PROJECT_ROOT,
        env=cli_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        printed = starter(cli_env, "outputs", "slow-1", "first", "--name", "note")
        while printed.returncode != 0 and time.monotonic() < deadline:
            time.sleep(0.5)
            printed = starter(cli_env, "outputs", "slow-1", "first", "--name", "note")
        assert "early\n" == printed.stdout, printed.stderr
        pending = starter(cli_env, "outputs", "slow-1", "second")
        assert 1 == pending.returncode, pending.stdout + pending.stderr
        assert "not produced (running run): second.done" in pending.stderr
    finally:
        stdout, stderr = run.communicate(timeout=90)
    assert 0 == run.returncode, stdout + stderr


def test_outputs_say_no_worker_answered_when_the_query_fails() -> None:
    """A worker that just stopped still counts as a poller; the query then fails (no poller /
    deadline): `pee outputs` says so (OutputsUnavailable, exit 2), not a traceback."""
    import asyncio

    import pytest
    from temporalio.service import RPCError, RPCStatusCode

    from pee.runtime.run_outputs import OutputsUnavailable, _query

    class DeadQueue:
        async def query(self, *args: object, **kwargs: object) -> None:
            raise RPCError(
                "no poller seen for task queue recently", RPCStatusCode.FAILED_PRECONDITION, b""
            )

    with pytest.raises(OutputsUnavailable, match="is one polling q1"):
        asyncio.run(_query(DeadQueue(), "q1"))  # type: ignore[arg-type]
