"""`run --output-dir`: documents an agent produced become files under docs/, plus report.json."""

from __future__ import annotations

import json
from pathlib import Path

from runtime.outputs import document_name, write_outputs
from tests.conftest import starter

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


def test_documents_are_named_by_filename_else_by_key() -> None:
    """A markdown mapping uses its filename's last part; plain text only from template agents."""
    assert "prd.md" == document_name("pm.prd", {"markdown": "x", "filename": "docs/prd.md"})
    assert "pm-brief.md" == document_name("pm.brief", {"markdown": "x"})
    assert "analyst-brief.md" == document_name("analyst.brief.md", {"markdown": "x"})
    assert "notes.md" == document_name("a.b", {"markdown": "x", "filename": "../../notes"})
    assert "w-note.md" == document_name("w.note", "text", ["w"])
    assert document_name("s.note", "text", ["w"]) is None
    assert document_name("pm.stories", [{"markdown": "x"}]) is None


def test_write_outputs_writes_docs_and_the_report(tmp_path: Path) -> None:
    """Every document lands in docs/ (a clashing name gets the agent id), report.json beside."""
    context = {
        "analyst.brief": {"markdown": "# Brief", "filename": "docs/brief.md"},
        "pm.brief": {"markdown": "# Other brief\n", "filename": "brief.md"},
        "writer.note": "hello",
        "pm.stories": ["not", "a", "document"],
        "project_name": "Acme",
    }
    written = write_outputs(tmp_path / "out", context, {"status": "completed"},
                            template_agents=["writer"])
    names = [str(path.relative_to(tmp_path / "out")) for path in written]
    assert ["docs/brief.md", "docs/pm-brief.md", "docs/writer-note.md", "report.json"] == names
    assert "# Brief\n" == (tmp_path / "out/docs/brief.md").read_text()
    assert "hello\n" == (tmp_path / "out/docs/writer-note.md").read_text()
    assert {"status": "completed"} == json.loads((tmp_path / "out/report.json").read_text())


def test_run_writes_template_documents_to_the_output_dir(cli_env: dict[str, str],
                                                         tmp_path: Path) -> None:
    """A real run: the plain template's text and the built-in PRD land in DIR/docs/."""
    (tmp_path / "note.md").write_text("{{project_name}}: {{user_stories.0.title}}\n")
    plan = tmp_path / "docs.yaml"
    plan.write_text(PLAN)
    out = tmp_path / "out"
    done = starter(cli_env, "run", plan, "--input", "project_name=Acme", "--output-dir", out)
    assert 0 == done.returncode, done.stdout + done.stderr
    assert f"Outputs written to {out}/ (2 documents)" in done.stdout
    assert "Acme: Sign up\n" == (out / "docs/writer-note.md").read_text()
    prd = (out / "docs/prd.md").read_text()
    assert prd.startswith("# Acme Product Requirements Document\n")
    assert "### S1 Sign up" in prd
    assert "completed" == json.loads((out / "report.json").read_text())["status"]


def test_the_default_output_dir_is_runs_slash_workflow_id(cli_env: dict[str, str],
                                                          tmp_path: Path) -> None:
    """Without --output-dir the run writes to <PEE_RUNS_DIR or runs>/<workflow-id>/."""
    (tmp_path / "note.md").write_text("{{project_name}}\n")
    plan = tmp_path / "docs.yaml"
    plan.write_text(PLAN)
    env = {**cli_env, "PEE_RUNS_DIR": str(tmp_path / "runs")}
    done = starter(env, "run", plan, "--input", "project_name=Acme", "--workflow-id", "docs-1")
    assert 0 == done.returncode, done.stdout + done.stderr
    assert "Acme\n" == (tmp_path / "runs/docs-1/docs/writer-note.md").read_text()
    assert (tmp_path / "runs/docs-1/report.json").is_file()
