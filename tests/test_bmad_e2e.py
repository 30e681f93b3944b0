"""BMAD end to end: `starter.py run plans/bmad-greenfield.yaml --output-dir DIR` on a private dev
server leaves the whole BMAD document set in DIR/docs (built-in role agents)."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import PROJECT_ROOT, starter

# document file -> lines it must contain
DOCUMENTS = {
    "analyst-project-brief.md": ["# Project brief: ", "## Target users",
                                 "## Technical constraints"],
    "pm-prd.md": ["# Product requirements: ", "## User personas", "- P1 ", "## User stories",
                  "- US-1: as a ", "## Requirements", "- FR-1: "],
    "ux-expert-front-end-spec.md": ["# Front-end specification: ", "## Screens", "## Components"],
    "architect-fullstack-architecture.md": ["# Full-stack architecture: ", "## Technology stack",
                                            "## API"],
    "sm-story.md": ["# Story 1.1: ", "## Acceptance criteria"],
    "implementation-plan.md": ["# Implementation plan: ", "## Steps", "- 1. create "],
    "qa-report.md": ["# QA report: ", "## Summary", "## Verdict"],
}


def test_bmad_greenfield_writes_every_document(cli_env: dict[str, str], tmp_path: Path) -> None:
    """Brief, PRD (personas, stories), front-end spec, architecture, story, implementation plan
    and QA report land in DIR/docs; the report says the run completed."""
    out = tmp_path / "out"
    done = starter(cli_env, "run", PROJECT_ROOT / "plans" / "bmad-greenfield.yaml",
                   "--output-dir", out)
    assert 0 == done.returncode, done.stdout + done.stderr
    assert f"Outputs written to {out}/ ({len(DOCUMENTS)} documents)" in done.stdout
    assert sorted(DOCUMENTS) == sorted(p.name for p in (out / "docs").iterdir())
    for name, expected in DOCUMENTS.items():
        text = (out / "docs" / name).read_text()
        missing = [line for line in expected if line not in text]
        assert [] == missing, (name, text)
    report = json.loads((out / "report.json").read_text())
    assert "completed" == report["status"]
    assert ["implementation_files", "implementation_plan.md"] == report["agents"]["dev"]["outputs"]


PRD_TEMPLATE = """\
template:
  id: prd-template-v2
  name: Product Requirements Document
  version: 2.0
  output: {format: markdown, filename: docs/prd.md, title: "Product Requirements Document"}
sections:
  - id: goals-context
    title: Goals and Background Context
    instruction: Draft goals from the brief.
    elicit: true
    template: "Goals come from the project brief."
"""


def test_bmad_dir_templates_render_the_steps_that_use_them(cli_env: dict[str, str],
                                                            tmp_path: Path) -> None:
    """--bmad-dir: pm `uses: prd-tmpl`, so DIR/templates/prd-tmpl.yaml renders docs/prd.md;
    steps without a template there stay built-in role agents."""
    bmad = tmp_path / "bmad-core"
    (bmad / "templates").mkdir(parents=True)
    (bmad / "templates" / "prd-tmpl.yaml").write_text(PRD_TEMPLATE)
    out = tmp_path / "out"
    done = starter(cli_env, "run", PROJECT_ROOT / "plans" / "bmad-greenfield.yaml",
                   "--bmad-dir", bmad, "--output-dir", out)
    assert 0 == done.returncode, done.stdout + done.stderr
    prd = (out / "docs" / "prd.md").read_text()
    assert prd.startswith("# Product Requirements Document\n")
    assert "## Goals and Background Context" in prd and "Goals come from the project brief." in prd
    assert not (out / "docs" / "pm-prd.md").exists()
    assert (out / "docs" / "architect-fullstack-architecture.md").is_file()
    report = json.loads((out / "report.json").read_text())
    assert ("template", "role") == (report["agents"]["pm"]["kind"],
                                    report["agents"]["architect"]["kind"])


def test_bmad_dir_must_be_a_folder(cli_env: dict[str, str], tmp_path: Path) -> None:
    done = starter(cli_env, "validate", PROJECT_ROOT / "plans" / "bmad-greenfield.yaml",
                   "--bmad-dir", tmp_path / "missing")
    assert 2 == done.returncode
    assert "--bmad-dir: expected a folder" in done.stderr


def test_importer_uses_a_listed_template_only_without_bmad_kind(tmp_path: Path) -> None:
    """DIR/templates holds prd-tmpl: pm (uses: prd-tmpl) becomes a template agent rooted at
    DIR; analyst, with no template there, stays a role agent; with bmad_kind, the kind wins."""
    from engine.graph import compile_plan
    from engine.plan import load_plan

    (tmp_path / "templates").mkdir()
    (tmp_path / "templates" / "prd-tmpl.yaml").write_text(PRD_TEMPLATE)
    path = PROJECT_ROOT / "plans" / "bmad-greenfield.yaml"
    given = {"bmad_dir": str(tmp_path)}
    pm = compile_plan(load_plan(path, given)).agent("pm")
    assert ("template", "templates/prd-tmpl.yaml", str(tmp_path)) == (
        pm.kind, pm.settings["template"], pm.settings["plan_dir"])
    assert "role" == compile_plan(load_plan(path, given)).agent("analyst").kind
    simulated = compile_plan(load_plan(path, {**given, "bmad_kind": "simulate"})).agent("pm")
    assert "simulate" == simulated.kind
