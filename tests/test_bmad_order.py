"""BMAD order, links, gates, the interpretation section and --bmad-dir templates (issue 15).

Fixtures: tests/plans/bmad/ui_fork.yaml and brownfield_links.yaml (each header gives the
expected order), tests/bmad/core (a small BMAD install: agents/pm.md, three templates).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pee.engine.compile.graph import compile_plan
from pee.engine.compile.load import load_plan
from pee.engine.language.errors import (
    BmadFolderError,
    BmadTemplateError,
    InvalidValueError,
    PlanValidationError,
    UnknownVariableError,
)
from pee.engine.language.plan import Plan

ROOT = Path(__file__).parent.parent
FIXTURES = Path(__file__).parent / "plans" / "bmad"
UI_FORK = FIXTURES / "ui_fork.yaml"
BROWNFIELD = FIXTURES / "brownfield_links.yaml"
CORE = Path(__file__).parent / "bmad" / "core"
AI = {"user_wants_ai_generation": "y"}


def starter(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "starter.py", *map(str, args)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def waits(plan: Plan) -> dict[str, list[str]]:
    """Each agent's references (what it reads or waits for), in sequence order."""
    return {agent_id: list(spec.inputs) for agent_id, spec in plan.agents.items()}


def reasons(plan: Plan, agent: str) -> list[str]:
    assert plan.interpretation is not None
    return [f"{link.after}: {link.reason}" for link in plan.interpretation.links_of(agent)]


def ancestors(plan: Plan, agent: str) -> set[str]:
    """Every agent that `agent` waits for, directly or not (blocking edges of the compiled plan)."""
    compile_plan(plan)
    before: dict[str, set[str]] = {}
    for edge in plan.resolution.edges:
        if edge.blocking:
            before.setdefault(edge.target, set()).add(edge.source)
    seen: set[str] = set()
    todo = [agent]
    while todo:
        for source in before.get(todo.pop(), ()):
            if source not in seen:
                seen.add(source)
                todo.append(source)
    return seen


def notes(plan: Plan) -> list[str]:
    assert plan.interpretation is not None
    return [note.render() for note in plan.interpretation.notes]


# -- order and links ---------------------------------------------------------------------------


def test_ui_fork_order_is_the_documented_one() -> None:
    """ui_fork.yaml imports with the waits its header lists."""
    plan = load_plan(UI_FORK, AI)
    expected = {
        "analyst": [],
        "pm": ["analyst.project-brief.md"],
        "ux-expert": ["pm.prd.md"],
        "ux-expert_2": ["ux-expert.front-end-spec.md"],
        "architect": ["ux-expert.front-end-spec.md"],
        "po": ["architect.completion"],
        "po_2": [
            "analyst.project-brief.md",
            "pm.prd.md",
            "ux-expert.front-end-spec.md",
            "ux-expert_2.v0_prompt",
            "architect.front-end-architecture.md",
            "po.completion",
        ],
        "sm": ["po_2.sharded_docs"],
        "dev": ["sm.story.md"],
        "qa": ["dev.implementation_files"],
    }
    assert expected == waits(plan)


def test_ui_fork_runs_architecture_beside_the_ai_prompt() -> None:
    """Architecture and the AI front-end prompt both wait for the front-end spec and not for
    each other, so they share a parallel group; the PO waits for both."""
    plan = load_plan(UI_FORK, AI)
    compiled = compile_plan(plan)
    group = compiled.agent("architect").group
    expected = (group, True, False, False)
    actual = (
        compiled.agent("ux-expert_2").group,
        next(g for g in compiled.groups if g.id == group).parallel,
        "architect" in ancestors(plan, "ux-expert_2"),
        "ux-expert_2" in ancestors(plan, "architect"),
    )
    assert expected == actual
    assert {"ux-expert", "pm", "analyst"} == ancestors(plan, "architect")
    assert {"ux-expert_2", "architect"} <= ancestors(plan, "po")


def test_step_without_requires_follows_the_step_before_it() -> None:
    """The epic retrospective (no requires) waits for QA, the step before it, not time zero."""
    plan = load_plan(UI_FORK, {"epic_complete": "yes"})
    expected = ["qa.completion"]
    assert expected == plan.agents["po_3"].inputs
    assert ["qa: follows the previous step (no requires)"] == reasons(plan, "po_3")
    assert {"analyst", "pm", "po", "po_2", "sm", "dev", "qa"} <= ancestors(plan, "po_3")


def test_abstract_requirement_waits_for_every_earlier_producer() -> None:
    """all_artifacts_in_project reads every document made before the step, skipped ones not."""
    plan = load_plan(UI_FORK)  # the AI prompt is skipped: no v0_prompt to read
    expected = [
        "analyst.project-brief.md",
        "pm.prd.md",
        "ux-expert.front-end-spec.md",
        "architect.front-end-architecture.md",
        "po.completion",
    ]
    assert expected == plan.agents["po_2"].inputs


def test_po_validation_is_a_gate_for_every_later_step() -> None:
    """Every step after the PO's validation waits for it, directly or through a step that does;
    the shard step, which reads only earlier documents, gets the gate edge itself."""
    plan = load_plan(UI_FORK, {**AI, "epic_complete": "on"})
    later = ["po_2", "sm", "dev", "qa", "po_3"]
    assert [] == [agent for agent in later if "po" not in ancestors(plan, agent)]
    expected = "po: PO gate: step 5 (po) validates all_artifacts before later steps run"
    assert expected in reasons(plan, "po_2")


def test_existing_or_and_requirements_link_to_earlier_steps() -> None:
    """existing_ui_analysis <- step ui_analysis; sharded_docs_or_brownfield_docs <- the shard
    step; story_and_architecture <- story.md and architecture.md."""
    plan = load_plan(BROWNFIELD)
    expected = {
        "pm": ["ui_analysis.several_documents"],
        "sm": ["po_2.sharded_docs"],
        "dev": ["sm.story.md", "architect.architecture.md"],
    }
    assert expected == {agent: waits(plan)[agent] for agent in expected}
    assert "existing_ui_analysis" not in plan.inputs
    expected_reason = "ui_analysis: requires existing_ui_analysis: made by step ui_analysis"
    assert [expected_reason] == reasons(plan, "pm")


def test_brownfield_order_is_the_documented_one() -> None:
    """brownfield_links.yaml: the route that continues is taken, its `_path` condition holds."""
    plan = load_plan(BROWNFIELD)
    expected = [
        "enhancement_classification",
        "ui_analysis",
        "documentation_check",
        "pm",
        "architect",
        "po",
        "po_2",
        "sm",
        "dev",
    ]
    assert expected == list(plan.agents)
    assert ["enhancement_classification.completion"] == plan.agents["ui_analysis"].inputs
    assert ["ui_analysis.completion"] == plan.agents["documentation_check"].inputs


def test_a_chosen_route_runs_its_agent_and_ends_the_workflow() -> None:
    """--set based_on_classification=single_story: the route's pm runs after the
    classification, and the note says which steps do not run."""
    plan = load_plan(
        BROWNFIELD,
        {"based_on_classification": "single_story"},
        set_names=["based_on_classification"],
    )
    assert ["enhancement_classification", "single_story"] == list(plan.agents)
    route = plan.agents["single_story"]
    assert ("pm", ["enhancement_classification.completion"]) == (route.role, route.inputs)
    assert any("route 'single_story' ends the workflow" in n for n in notes(plan))


def test_an_unknown_route_is_an_error_naming_the_routes() -> None:
    with pytest.raises(PlanValidationError) as caught:
        load_plan(BROWNFIELD, {"based_on_classification": "single_stroy"})
    [problem] = caught.value.problems
    assert (InvalidValueError, "did you mean 'single_story'?") == (type(problem), problem.fix)


def test_pseudo_agent_says_how_it_runs() -> None:
    """pm/architect is not one agent: the interpretation says so and how it is run."""
    plan = load_plan(BROWNFIELD, {"after_prd_creation": "1"})
    [note] = [n for n in notes(plan) if n.startswith("pseudo-agent:")]
    assert "'pm/architect' is not one BMAD agent (one of pm or architect)" in note
    assert "runs as a simulated agent" in note
    assert "simulate" == compile_plan(plan).agent("architecture_decision").kind


# -- --set names and values ----------------------------------------------------------------------


@pytest.mark.parametrize("value", ["true", "yes", "y", "Y", "1", "on"])
def test_truthy_spellings_include_the_step(value: str) -> None:
    plan = load_plan(UI_FORK, {"user_wants_ai_generation": value})
    assert "ux-expert_2" in plan.agents


@pytest.mark.parametrize("value", ["false", "no", "n", "0", "off"])
def test_falsy_spellings_skip_the_step(value: str) -> None:
    plan = load_plan(UI_FORK, {"user_wants_ai_generation": value})
    assert "ux-expert_2" not in plan.agents


def test_any_other_condition_value_is_an_error() -> None:
    with pytest.raises(PlanValidationError) as caught:
        load_plan(UI_FORK, {"user_wants_ai_generation": "maybe"})
    [problem] = caught.value.problems
    expected = (InvalidValueError, "--set user_wants_ai_generation", "'maybe'")
    assert expected == (type(problem), problem.location.path, problem.found)


def test_unknown_set_name_is_an_error_with_the_closest_name() -> None:
    with pytest.raises(PlanValidationError) as caught:
        load_plan(
            UI_FORK, {"user_wants_ai_generaton": "true"}, set_names=["user_wants_ai_generaton"]
        )
    [problem] = caught.value.problems
    expected = (UnknownVariableError, "did you mean 'user_wants_ai_generation'?")
    assert expected == (type(problem), problem.fix)


def test_known_set_names_are_accepted() -> None:
    """Conditions, project variables and the loader's own names pass the check."""
    names = {"epic_complete": "no", "project_name": "Acme", "bmad_duration": "1s"}
    plan = load_plan(UI_FORK, names, set_names=list(names))
    assert "po_3" not in plan.agents


# -- templates from --bmad-dir -------------------------------------------------------------------


def test_templates_come_from_notes_and_agent_files() -> None:
    """pm: prd-tmpl, named only in agents/pm.md; ux-expert: front-end-spec-tmpl, named only in
    its notes; architect: none (its listed template is not in templates/)."""
    compiled = compile_plan(load_plan(UI_FORK, {"bmad_dir": str(CORE)}))
    actual = {
        a: (compiled.agent(a).kind, compiled.agent(a).settings.get("template"))
        for a in ("pm", "ux-expert", "architect")
    }
    expected = {
        "pm": ("template", "templates/prd-tmpl.yaml"),
        "ux-expert": ("template", "templates/front-end-spec-tmpl.yaml"),
        "architect": ("role", None),
    }
    assert expected == actual


def test_without_bmad_dir_the_same_steps_are_role_agents() -> None:
    compiled = compile_plan(load_plan(UI_FORK))
    assert {"role"} == {compiled.agent(a).kind for a in ("pm", "ux-expert", "architect")}


def test_brownfield_workflow_prefers_the_brownfield_template() -> None:
    """agents/pm.md lists prd-tmpl and brownfield-prd-tmpl: a brownfield workflow takes the
    brownfield one."""
    compiled = compile_plan(load_plan(BROWNFIELD, {"bmad_dir": str(CORE)}))
    assert "templates/brownfield-prd-tmpl.yaml" == compiled.agent("pm").settings["template"]


def test_interpretation_names_each_template_and_each_step_without_one() -> None:
    plan = load_plan(UI_FORK, {"bmad_dir": str(CORE)})
    lines = notes(plan)
    expected = [
        "template: step 1 (pm) renders templates/prd-tmpl.yaml (agents/pm.md lists "
        "prd-tmpl.yaml and its create-doc task)",
        "template: step 2 (ux-expert) renders templates/front-end-spec-tmpl.yaml (its notes "
        "name front-end-spec-tmpl)",
    ]
    assert [] == [line for line in expected if line not in lines]
    [architect] = [line for line in lines if line.startswith("template: step 4 (architect)")]
    assert "gets no template from --bmad-dir" in architect
    assert "agents/architect.md lists none in templates/" in architect


def copy_core(tmp_path: Path) -> Path:
    folder = tmp_path / "core"
    shutil.copytree(CORE, folder)
    return folder


def test_broken_template_is_a_validation_error_naming_the_file(tmp_path: Path) -> None:
    folder = copy_core(tmp_path)
    broken = folder / "templates" / "prd-tmpl.yaml"
    broken.write_text("template:\n  id: prd\nsections: [\n  - id: goals\n")
    with pytest.raises(PlanValidationError) as caught:
        load_plan(UI_FORK, {"bmad_dir": str(folder)})
    [problem] = caught.value.problems
    assert (BmadTemplateError, str(broken)) == (type(problem), problem.location.file)
    assert "is not valid YAML" in problem.message and problem.location.line is not None


def test_template_named_in_notes_but_missing_is_an_error(tmp_path: Path) -> None:
    folder = copy_core(tmp_path)
    (folder / "templates" / "front-end-spec-tmpl.yaml").unlink()
    with pytest.raises(PlanValidationError) as caught:
        load_plan(UI_FORK, {"bmad_dir": str(folder)})
    [problem] = caught.value.problems
    expected = (BmadTemplateError, str(folder.resolve() / "templates" / "front-end-spec-tmpl.yaml"))
    assert expected == (type(problem), problem.location.file)


def test_folder_without_templates_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "agents").mkdir()
    with pytest.raises(PlanValidationError) as caught:
        load_plan(UI_FORK, {"bmad_dir": str(tmp_path)})
    [problem] = caught.value.problems
    assert BmadFolderError is type(problem)
    assert "has no templates/ folder" in problem.message


# -- the commands a user types -------------------------------------------------------------------


def test_plan_explains_each_derived_edge() -> None:
    result = starter(
        "plan", UI_FORK, "--set", "user_wants_ai_generation=y", "--set", "epic_complete=true"
    )
    assert 0 == result.returncode, result.stderr
    expected = [
        "BMAD order (why each step waits):",
        "  architect after ux-expert.front-end-spec.md: requires front-end-spec.md",
        "  ux-expert_2 after ux-expert.front-end-spec.md: requires front-end-spec.md",
        "  po after architect: follows the previous step (no requires)",
        "  po_2 after po: PO gate: step 5 (po) validates all_artifacts before later steps run",
        "  po_3 after qa: follows the previous step (no requires)",
        "interpretation (how this BMAD workflow is run):",
    ]
    lines = result.stdout.splitlines()
    assert [] == [line for line in expected if line not in lines]


def test_validate_prints_the_interpretation_section() -> None:
    result = starter("validate", BROWNFIELD)
    assert 0 == result.returncode, result.stderr
    lines = result.stdout.splitlines()
    assert "interpretation (how this BMAD workflow is run):" in lines
    kinds = {line.split(":")[0].strip(" -") for line in lines[2:]}
    assert {"routing", "included", "skipped", "repeats", "guidance"} <= kinds


def test_validate_refuses_an_unknown_set_name() -> None:
    result = starter("validate", UI_FORK, "--set", "epic_completed=true")
    assert 2 == result.returncode
    assert "--set epic_completed" in result.stderr
    assert "did you mean 'epic_complete'?" in result.stderr


def test_input_is_accepted_by_validate_and_plan() -> None:
    """A requirement nobody creates is given with --input on validate and plan, as on run."""
    path = "tests/plans/bmad_brownfield.yaml"
    assert 2 == starter("validate", path).returncode
    given = ("--input", "existing_documentation_or_analysis=docs/")
    validated = starter("validate", path, *given)
    planned = starter("plan", path, *given, "--format", "json")
    assert (0, 0) == (validated.returncode, planned.returncode), validated.stderr
    assert (
        "reads plan input existing_documentation_or_analysis"
        in starter("plan", path, *given).stdout
    )


def test_plan_json_carries_the_interpretation() -> None:
    import json

    result = starter("plan", UI_FORK, "--format", "json")
    assert 0 == result.returncode, result.stderr
    interpretation = json.loads(result.stdout)["interpretation"]
    links = [(k["agent"], k["after"], k["reason"]) for k in interpretation["links"]]
    assert ("po", "architect", "follows the previous step (no requires)") in links
    assert any(n["kind"] == "skipped" for n in interpretation["notes"])


def test_validate_with_a_broken_template_exits_2_naming_it(tmp_path: Path) -> None:
    folder = copy_core(tmp_path)
    (folder / "templates" / "prd-tmpl.yaml").write_text("sections: [unclosed\n")
    result = starter("validate", UI_FORK, "--bmad-dir", folder)
    assert 2 == result.returncode
    assert "prd-tmpl.yaml" in result.stderr and "not valid YAML" in result.stderr


def test_validate_with_a_folder_without_templates_exits_2(tmp_path: Path) -> None:
    result = starter("validate", UI_FORK, "--bmad-dir", tmp_path)
    assert 2 == result.returncode
    assert "has no templates/ folder" in result.stderr


def test_order_and_interpretation_do_not_depend_on_the_hash_seed() -> None:
    """`plan` prints the same BMAD order and interpretation under two PYTHONHASHSEEDs."""
    import os

    outputs = []
    for seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        result = subprocess.run(
            [
                sys.executable,
                "starter.py",
                "plan",
                str(BROWNFIELD),
                "--bmad-dir",
                str(CORE),
                "--format",
                "json",
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
            env=env,
        )
        assert 0 == result.returncode, result.stderr
        outputs.append(result.stdout)
    assert outputs[0] == outputs[1]


def test_broken_agent_definition_is_a_validation_error_naming_it(tmp_path: Path) -> None:
    """agents/pm.md whose YAML block does not parse is reported with its file and line."""
    folder = copy_core(tmp_path)
    broken = folder / "agents" / "pm.md"
    broken.write_text("# pm\n\n```yaml\ndependencies:\n  templates: [prd-tmpl.yaml\n```\n")
    with pytest.raises(PlanValidationError) as caught:
        load_plan(UI_FORK, {"bmad_dir": str(folder)})
    [problem] = caught.value.problems
    # the block starts at line 4; the unclosed list runs to the end of the block
    assert (BmadFolderError, str(broken)) == (type(problem), problem.location.file)
    assert problem.location.line in (5, 6, 7), problem.render()


def test_validate_json_carries_the_interpretation() -> None:
    import json

    result = starter("validate", BROWNFIELD, "--json")
    assert 0 == result.returncode, result.stderr
    data = json.loads(result.stdout)
    kinds = {link["kind"] for link in data["interpretation"]["links"]}
    assert (True, {"requires", "previous", "gate", "validates"}) == (data["valid"], kinds)


def test_a_set_value_for_a_requirement_made_in_the_run_is_said_to_be_unused() -> None:
    """--set prd.md=... names a requirement, but pm makes prd.md: the note says it is not read."""
    plan = load_plan(UI_FORK, {"prd.md": "x"}, set_names=["prd.md"])
    expected = (
        "input: --set prd.md is not read: the requirement it names is made by an earlier "
        "step of this run"
    )
    assert expected in notes(plan)
    assert ["analyst.project-brief.md"] == plan.agents["pm"].inputs


def test_a_project_folder_holding_bmad_core_is_pointed_at_it(tmp_path: Path) -> None:
    """--bmad-dir at the project (with .bmad-core/ inside): the error names the folder meant."""
    shutil.copytree(CORE, tmp_path / ".bmad-core")
    with pytest.raises(PlanValidationError) as caught:
        load_plan(UI_FORK, {"bmad_dir": str(tmp_path)})
    [problem] = caught.value.problems
    assert f"did you mean --bmad-dir {tmp_path.resolve() / '.bmad-core'}?" == problem.fix


def test_a_folder_holding_a_bmad_install_under_another_name_is_pointed_at_it(
    tmp_path: Path,
) -> None:
    """--bmad-dir one level too high (tests/bmad rather than tests/bmad/core): the fix names it."""
    shutil.copytree(CORE, tmp_path / "core")
    with pytest.raises(PlanValidationError) as caught:
        load_plan(UI_FORK, {"bmad_dir": str(tmp_path)})
    [problem] = caught.value.problems
    assert f"did you mean --bmad-dir {tmp_path.resolve() / 'core'}?" == problem.fix


def test_a_misspelt_uses_names_the_template_meant(tmp_path: Path) -> None:
    """uses: prd-tmp names no template, task or checklist: the note says which template is close."""
    workflow = tmp_path / "typo.yaml"
    workflow.write_text(
        "workflow:\n  id: typo\n  sequence:\n    - agent: pm\n      creates: prd.md\n"
        "      uses: prd-tmp\n"
    )
    lines = notes(load_plan(workflow, {"bmad_dir": str(CORE)}))
    assert (
        "template: step 0 (pm) uses prd-tmp (no template, task or checklist prd-tmp; "
        "did you mean uses: prd-tmpl?), not a template"
    ) in lines
