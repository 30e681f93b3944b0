"""BMAD end to end: `starter.py run plans/bmad-greenfield.yaml --output-dir DIR` on a private dev
server leaves the whole BMAD document set in DIR/docs (built-in role agents), named by BMAD
artifact; --llm runs every step on a local OpenAI-compatible server."""

from __future__ import annotations

import json
from pathlib import Path

from tests.helpers import PROJECT_ROOT, starter

# document file -> lines it must contain
DOCUMENTS = {
    "project-brief.md": ["# Project brief: ", "## Target users", "## Technical constraints"],
    "prd.md": [
        "# Product requirements: ",
        "## User personas",
        "- P1 ",
        "## User stories",
        "- US-1: as a ",
        "## Requirements",
        "- FR-1: ",
    ],
    "front-end-spec.md": ["# Front-end specification: ", "## Screens", "## Components"],
    "fullstack-architecture.md": ["# Full-stack architecture: ", "## Technology stack", "## API"],
    "story.md": ["# Story 1.1: ", "## Acceptance criteria"],
    "implementation-plan.md": ["# Implementation plan: ", "## Steps", "- 1. create "],
    "qa-report.md": ["# QA report: ", "## Summary", "## Verdict"],
}


def test_bmad_greenfield_writes_every_document(cli_env: dict[str, str], tmp_path: Path) -> None:
    """Brief, PRD (personas, stories), front-end spec, architecture, story, implementation plan
    and QA report land in DIR/docs; the report says the run completed."""
    out = tmp_path / "out"
    done = starter(
        cli_env, "run", PROJECT_ROOT / "plans" / "bmad-greenfield.yaml", "--output-dir", out
    )
    assert 0 == done.returncode, done.stdout + done.stderr
    assert f"Outputs written to {out}/ (10 outputs, {len(DOCUMENTS)} as markdown" in done.stdout
    # run says how it reads the workflow before it starts, as validate and plan do
    assert "interpretation (how this BMAD workflow is run):" in done.stdout
    assert (
        "skipped: step 3 (ux-expert_2): condition 'user_wants_ai_generation' is not set"
        in done.stdout
    )
    assert sorted(DOCUMENTS) == sorted(p.name for p in (out / "docs").iterdir())
    # the rest (files, shards) as JSON beside, by agent
    assert ["implementation_files.json"] == [p.name for p in (out / "outputs/dev").iterdir()]
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


def test_bmad_dir_templates_render_the_steps_that_use_them(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    """--bmad-dir: pm `uses: prd-tmpl`, so DIR/templates/prd-tmpl.yaml renders docs/prd.md;
    steps without a template there stay built-in role agents."""
    bmad = tmp_path / "bmad-core"
    (bmad / "templates").mkdir(parents=True)
    (bmad / "templates" / "prd-tmpl.yaml").write_text(PRD_TEMPLATE)
    out = tmp_path / "out"
    done = starter(
        cli_env,
        "run",
        PROJECT_ROOT / "plans" / "bmad-greenfield.yaml",
        "--bmad-dir",
        bmad,
        "--output-dir",
        out,
    )
    assert 0 == done.returncode, done.stdout + done.stderr
    prd = (out / "docs" / "prd.md").read_text()
    assert prd.startswith("# Product Requirements Document\n")
    assert "## Goals and Background Context" in prd and "Goals come from the project brief." in prd
    assert (out / "docs" / "fullstack-architecture.md").is_file()
    report = json.loads((out / "report.json").read_text())
    assert ("template", "role") == (
        report["agents"]["pm"]["kind"],
        report["agents"]["architect"]["kind"],
    )


def test_bmad_dir_must_be_a_folder(cli_env: dict[str, str], tmp_path: Path) -> None:
    done = starter(
        cli_env,
        "validate",
        PROJECT_ROOT / "plans" / "bmad-greenfield.yaml",
        "--bmad-dir",
        tmp_path / "missing",
    )
    assert 2 == done.returncode
    assert "--bmad-dir: expected a folder" in done.stderr


def test_importer_uses_a_listed_template_only_without_bmad_kind(tmp_path: Path) -> None:
    """DIR/templates holds prd-tmpl: pm (uses: prd-tmpl) becomes a template agent rooted at
    DIR; analyst, with no template there, stays a role agent; with bmad_kind, the kind wins."""
    from pee.engine.compile.graph import compile_plan
    from pee.engine.compile.load import load_plan

    (tmp_path / "templates").mkdir()
    (tmp_path / "templates" / "prd-tmpl.yaml").write_text(PRD_TEMPLATE)
    path = PROJECT_ROOT / "plans" / "bmad-greenfield.yaml"
    given = {"bmad_dir": str(tmp_path)}
    pm = compile_plan(load_plan(path, given)).agent("pm")
    assert ("template", "templates/prd-tmpl.yaml", str(tmp_path)) == (
        pm.kind,
        pm.settings["template"],
        pm.settings["plan_dir"],
    )
    assert "role" == compile_plan(load_plan(path, given)).agent("analyst").kind
    simulated = compile_plan(load_plan(path, {**given, "bmad_kind": "simulate"})).agent("pm")
    assert "simulate" == simulated.kind


UI_FORK = PROJECT_ROOT / "tests" / "plans" / "bmad" / "ui_fork.yaml"
CORE = PROJECT_ROOT / "tests" / "bmad" / "core"


def test_templates_named_in_notes_or_agent_file_change_the_documents(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    """ui_fork.yaml names prd-tmpl only in agents/pm.md and front-end-spec-tmpl only in the
    ux-expert's notes: with --bmad-dir those templates write docs/prd.md and
    docs/front-end-spec.md; without it the role agents write documents of the same names with
    their own content."""
    with_dir, without = tmp_path / "with", tmp_path / "without"
    done = starter(cli_env, "run", UI_FORK, "--bmad-dir", CORE, "--output-dir", with_dir)
    assert 0 == done.returncode, done.stdout + done.stderr
    assert "template: step 1 (pm) renders templates/prd-tmpl.yaml" in done.stdout
    plain = starter(cli_env, "run", UI_FORK, "--output-dir", without)
    assert 0 == plain.returncode, plain.stdout + plain.stderr
    made = {d.name: sorted(p.name for p in (d / "docs").iterdir()) for d in (with_dir, without)}
    assert {"prd.md", "front-end-spec.md"} <= set(made["with"]), made
    for name in ("prd.md", "front-end-spec.md"):
        assert (with_dir / "docs" / name).read_text() != (without / "docs" / name).read_text()
    assert "Goals and Background Context" not in (without / "docs" / "prd.md").read_text()
    spec = (with_dir / "docs" / "front-end-spec.md").read_text()
    assert "## Screens" in spec and "Screens named in the template fixture." in spec
    prd = (with_dir / "docs" / "prd.md").read_text()
    assert "## Goals and Background Context\n\n### Goals\n" in prd
