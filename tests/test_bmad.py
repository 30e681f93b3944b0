"""BMAD v4 workflow import: edges from creates/requires, conditions, plan inputs and errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pee.engine.language.bmad import bmad_to_native, is_bmad, normalise_artifact
from pee.engine.language.errors import (
    InvalidValueError,
    MissingProducerError,
    PlanError,
    PlanValidationError,
    UnknownKeyError,
    UnresolvedInputError,
)
from pee.engine.language.yamlsrc import SourceMap, load_yaml, parse_yaml

PLANS = Path(__file__).parent / "plans"
# the greenfield fixture doubles as the example BMAD plan users can run
GREENFIELD = Path(__file__).parent.parent / "plans" / "bmad-greenfield.yaml"
BROWNFIELD = PLANS / "bmad_brownfield.yaml"


def edges(plan: dict[str, Any]) -> dict[str, tuple[list[str], list[str], list[str]]]:
    """Each agent's (inputs, outputs, validates), in emitted order."""
    return {
        agent_id: (agent["inputs"], agent["outputs"], agent.get("validates", []))
        for agent_id, agent in plan["agents"].items()
    }


def import_file(path: Path, variables: dict[str, str] | None = None) -> dict[str, Any]:
    data, source = load_yaml(path)
    return bmad_to_native(data, source, variables or {})


def import_text(text: str, variables: dict[str, str] | None = None) -> dict[str, Any]:
    data, source = parse_yaml(text, "inline.yaml")
    return bmad_to_native(data, source, variables or {})


def problems_of(text: str, variables: dict[str, str] | None = None) -> list[PlanError]:
    with pytest.raises(PlanValidationError) as caught:
        import_text(text, variables)
    return caught.value.problems


def line_of(path: Path, needle: str) -> int:
    lines = path.read_text(encoding="utf-8").splitlines()
    return next(number for number, text in enumerate(lines, 1) if needle in text)


GREENFIELD_DEFAULT = {
    "analyst": ([], ["project-brief.md"], []),
    "pm": (["analyst.project-brief.md"], ["prd.md"], []),
    "ux-expert": (["pm.prd.md"], ["front-end-spec.md"], []),
    "architect": (["pm.prd.md", "ux-expert.front-end-spec.md"], ["fullstack-architecture.md"], []),
    # no requires: follows the step before it
    "po": (["architect.completion"], [], ["analyst", "pm", "ux-expert", "architect"]),
    # all_artifacts_in_project: every earlier document; and the PO's validation gate
    "po_2": (
        [
            "analyst.project-brief.md",
            "pm.prd.md",
            "ux-expert.front-end-spec.md",
            "architect.fullstack-architecture.md",
            "po.completion",
        ],
        ["sharded_docs"],
        [],
    ),
    "sm": (["po_2.sharded_docs"], ["story.md"], []),
    "dev": (["sm.story.md"], ["implementation_files"], []),
    "qa": (["dev.implementation_files"], ["implementation_files"], []),
}


def test_greenfield_default_edges_and_order() -> None:
    """With no variables the greenfield import has the documented edges, in sequence order."""
    plan = import_file(GREENFIELD)
    actual = edges(plan)
    expected = GREENFIELD_DEFAULT
    assert list(expected) == list(actual)
    assert expected == actual


def test_greenfield_agent_fields() -> None:
    """An agent keeps its BMAD role, no kind (so it runs as the built-in role agent) and the
    step's settings."""
    agent = import_file(GREENFIELD)["agents"]["sm"]
    expected = {
        "role": "sm",
        "description": "create_story",
        "inputs": ["po_2.sharded_docs"],
        "outputs": ["story.md"],
        "settings": {
            "bmad_step": 11,
            "action": "create_story",
            "repeats": "for_each_epic",
            "bmad_workflow": {
                "id": "greenfield-demo",
                "name": "Greenfield full-stack demo",
                "stage": "greenfield",
                "project_kind": "fullstack",
            },
        },
    }
    assert expected == agent


def test_greenfield_plan_header_and_notes() -> None:
    """The plan takes the workflow id and lists every step that did not become an agent."""
    plan = import_file(GREENFIELD)
    expected_header = ("greenfield-demo", {}, True)
    title = "BMAD workflow 'Greenfield full-stack demo' (greenfield): Plan a new"
    actual_header = (plan["name"], plan["inputs"], plan["description"].startswith(title))
    assert expected_header == actual_header
    skipped_or_guidance = [
        note.split()[2] for note in plan["notes"] if note.startswith(("skipped:", "guidance:"))
    ]
    expected_steps = ["3", "5", "7", "8", "9", "12", "15", "16"]
    assert expected_steps == skipped_or_guidance
    expected_skip = (
        "skipped: step 3 (ux-expert_2): condition 'user_wants_ai_generation' is not set "
        "(include it with --set user_wants_ai_generation=true; true/yes/y/1/on count as true)"
    )
    expected_last = (
        "guidance: step 16 'workflow_end' is guidance for a person, no agent runs: move_to_ide"
    )
    assert expected_skip in plan["notes"]
    assert expected_last == plan["notes"][-1]


@pytest.mark.parametrize(
    ("variables", "expected"),
    [
        pytest.param(
            {"user_wants_ai_generation": "true"},
            {
                "ux-expert_2": (["ux-expert.front-end-spec.md"], ["v0_prompt"], []),
                "po": (
                    ["architect.completion"],
                    [],
                    ["analyst", "pm", "ux-expert", "ux-expert_2", "architect"],
                ),
            },
            id="v0-prompt",
        ),
        pytest.param(
            {"architecture_suggests_prd_changes": "YES"},
            {
                "pm_2": (["architect.fullstack-architecture.md", "pm.prd.md"], ["prd.md"], []),
                "po": (["pm_2.completion"], [], ["analyst", "pm_2", "ux-expert", "architect"]),
                "po_2": (
                    [
                        "analyst.project-brief.md",
                        "pm_2.prd.md",
                        "ux-expert.front-end-spec.md",
                        "architect.fullstack-architecture.md",
                        "po.completion",
                    ],
                    ["sharded_docs"],
                    [],
                ),
            },
            id="prd-update-read-downstream",
        ),
        pytest.param(
            {"user_wants_story_review": "on", "qa_left_unchecked_items": "1"},
            {
                "analyst_pm": (["sm.story.md"], ["story.md"], []),
                "dev": (["analyst_pm.story.md"], ["implementation_files"], []),
                "dev_2": (["qa.implementation_files"], ["implementation_files"], []),
            },
            id="story-review-and-qa-fix",
        ),
        pytest.param(
            {"user_wants_ai_generation": "false", "architecture_suggests_prd_changes": "no"},
            {"ux-expert_2": None, "pm_2": None, "po": GREENFIELD_DEFAULT["po"]},
            id="falsy-values-skip",
        ),
    ],
)
def test_greenfield_conditions(variables: dict[str, str], expected: dict[str, Any]) -> None:
    """A conditional step runs only when its variable is truthy, and later readers follow it."""
    actual = edges(import_file(GREENFIELD, variables))
    assert expected == {agent_id: actual.get(agent_id) for agent_id in expected}


def test_greenfield_emits_included_steps_in_sequence_order() -> None:
    """Included conditional steps sit at their sequence position; ids do not shift."""
    every = {
        name: "true"
        for name in (
            "user_wants_ai_generation",
            "architecture_suggests_prd_changes",
            "po_checklist_issues",
            "user_wants_story_review",
            "qa_left_unchecked_items",
        )
    }
    plan = import_file(GREENFIELD, every)
    expected = [
        "analyst",
        "pm",
        "ux-expert",
        "ux-expert_2",
        "architect",
        "pm_2",
        "po",
        "various",
        "po_2",
        "sm",
        "analyst_pm",
        "dev",
        "qa",
        "dev_2",
    ]
    assert expected == list(plan["agents"])
    review = plan["agents"]["analyst_pm"]
    expected_review = ("analyst/pm", True)
    assert expected_review == (review["role"], review["optional"])


def test_optional_step_marks_agent_optional() -> None:
    """An `optional: true` step is included and flagged optional; others carry no flag."""
    agents = import_file(GREENFIELD)["agents"]
    expected = {"qa": True, "dev": None}
    assert expected == {name: agents[name].get("optional") for name in expected}


def test_kind_and_duration_variables() -> None:
    """`bmad_kind` and `bmad_duration` set every agent's kind and duration."""
    agents = import_file(GREENFIELD, {"bmad_kind": "template", "bmad_duration": "2s"})["agents"]
    assert {("template", "2s")} == {(a["kind"], a["duration"]) for a in agents.values()}


def test_brownfield_unresolved_requirement_reports_line_and_fix() -> None:
    """A requirement nobody creates is an UnresolvedInputError at its `requires:` line."""
    data, source = load_yaml(BROWNFIELD)
    with pytest.raises(PlanValidationError) as caught:
        bmad_to_native(data, source, {})
    [problem] = caught.value.problems
    expected = (
        UnresolvedInputError,
        "existing_documentation_or_analysis",
        str(BROWNFIELD),
        line_of(BROWNFIELD, "requires: existing_documentation_or_analysis"),
        "workflow.sequence[4].requires",
    )
    actual = (
        type(problem),
        problem.value,
        problem.location.file,
        problem.location.line,
        problem.location.path,
    )
    assert expected == actual
    # 'analysis' would be the skipped step project_analysis: the error says how to include it
    expected_hint = (
        True,
        True,
        "step 3 (project_analysis) would make it but is skipped: "
        "condition 'documentation_inadequate' is 'unset'",
    )
    fix = problem.fix or ""
    assert expected_hint == (
        "--set existing_documentation_or_analysis=VALUE" in fix,
        "--set documentation_inadequate=true" in fix,
        problem.found,
    )


def test_brownfield_imports_with_supplied_input() -> None:
    """Supplying the missing requirement makes it a plan input read by name."""
    plan = import_file(BROWNFIELD, {"existing_documentation_or_analysis": "docs/"})
    expected = {
        "enhancement_classification": ([], [], []),
        # major_enhancement_path holds: the routing step took major_enhancement
        "documentation_check": (["enhancement_classification.completion"], [], []),
        # its only requirement comes from outside: it still follows the step before it
        "pm": (
            ["existing_documentation_or_analysis", "documentation_check.completion"],
            ["prd.md"],
            [],
        ),
        "architect": (["pm.prd.md"], ["architecture.md"], []),
        "po": (["architect.completion"], [], ["pm", "architect"]),
        "po_2": (["pm.prd.md", "architect.architecture.md", "po.completion"], ["sharded_docs"], []),
        "sm": (["po_2.sharded_docs"], ["story.md"], []),
        "dev": (["sm.story.md"], ["implementation_files"], []),
    }
    assert expected == edges(plan)
    expected_inputs = {"existing_documentation_or_analysis": "docs/"}
    assert expected_inputs == plan["inputs"]
    expected_settings = {
        "bmad_step": 0,
        "step": "enhancement_classification",
        "action": "classify enhancement scope",
        "notes": "Decide whether this is a single story, a small feature or a major enhancement.\n",
        "bmad_workflow": {
            "id": "brownfield-demo",
            "name": "Brownfield enhancement demo",
            "stage": "brownfield",
            "project_kind": "fullstack",
        },
    }
    assert expected_settings == plan["agents"]["enhancement_classification"]["settings"]


def test_brownfield_conditional_analysis_feeds_validation_and_sharding() -> None:
    """documentation_inadequate adds project_analysis, which pm reads (its requirement names
    the analysis), po validates and po_2 reads."""
    variables = {"existing_documentation_or_analysis": "docs/", "documentation_inadequate": "true"}
    actual = edges(import_file(BROWNFIELD, variables))
    expected = {
        # no requires: after the classification step before it
        "project_analysis": (
            ["documentation_check.completion"],
            ["brownfield-architecture.md"],
            [],
        ),
        # existing_documentation_or_analysis: 'analysis' is made by the step project_analysis
        "pm": (["project_analysis.brownfield-architecture.md"], ["prd.md"], []),
        "po": (["architect.completion"], [], ["project_analysis", "pm", "architect"]),
        "po_2": (
            [
                "project_analysis.brownfield-architecture.md",
                "pm.prd.md",
                "architect.architecture.md",
                "po.completion",
            ],
            ["sharded_docs"],
            [],
        ),
    }
    assert expected == {agent_id: actual[agent_id] for agent_id in expected}


def test_every_unresolved_requirement_is_listed() -> None:
    """All unresolved requirements are reported together, each with its own line."""
    text = """\
workflow:
  sequence:
    - agent: pm
      creates: prd.md
      requires: brief.md
    - agent: architect
      creates: architecture.md
      requires:
        - prd.md
        - coding standards (draft)
"""
    problems = problems_of(text)
    expected = [
        (UnresolvedInputError, "brief.md", 5, "supply it with --set brief_md=VALUE"),
        (UnresolvedInputError, "coding_standards", 10, "supply it with --set coding_standards="),
    ]
    actual = [
        (type(p), p.value, p.location.line, (p.fix or "")[: len(fix)])
        for p, (_, _, _, fix) in zip(problems, expected, strict=False)
    ]
    assert expected == actual
    assert len(expected) == len(problems)


@pytest.mark.parametrize(
    ("variables", "expected_inputs"),
    [
        ({"brief.md": "x"}, {"brief_md": "x"}),
        ({"brief_md": "y"}, {"brief_md": "y"}),
    ],
)
def test_plan_input_names_have_no_dots(
    variables: dict[str, str], expected_inputs: dict[str, str]
) -> None:
    """A supplied requirement becomes a dot-free plan input (a dot would mean agent.output)."""
    plan = import_text(
        "workflow:\n  sequence:\n    - agent: pm\n      creates: prd.md\n"
        "      requires: brief.md\n",
        variables,
    )
    assert (expected_inputs, ["brief_md"]) == (plan["inputs"], plan["agents"]["pm"]["inputs"])


def test_requirement_made_only_by_skipped_step_says_so() -> None:
    """When only a skipped conditional step creates a requirement, the fix names its condition."""
    text = """\
workflow:
  sequence:
    - agent: architect
      creates: notes.md
      condition: want_notes
    - agent: pm
      requires: notes.md
"""
    [problem] = problems_of(text)
    expected = (
        "only step 0 (architect) creates it and it is skipped: condition 'want_notes' is 'unset'",
        True,
    )
    assert expected == (problem.found, "--set want_notes=true" in (problem.fix or ""))


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("prd.md (if needed)", "prd.md"),
        ("v0_prompt (optional)", "v0_prompt"),
        ("  Front-End-Spec.md  ", "front-end-spec.md"),
        ("brownfield-architecture.md (or multiple documents)", "brownfield-architecture.md"),
        ("notes.md (a) (b)", "notes.md"),
        ("any flagged   documents", "any_flagged_documents"),
        ("PRD.MD", "prd.md"),
        ("sharded_docs", "sharded_docs"),
        ("(optional)", ""),
    ],
)
def test_normalise_artifact(raw: str, expected: str) -> None:
    """Artifact names lose trailing remarks, case and outer spaces; dots stay."""
    assert expected == normalise_artifact(raw)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"workflow": {"sequence": []}}, True),
        ({"workflow": {"sequence": "x"}}, False),
        ({"workflow": []}, False),
        ({"agents": {}}, False),
        ([], False),
        (None, False),
    ],
)
def test_is_bmad(data: Any, expected: bool) -> None:
    """Only a mapping with a workflow mapping holding a sequence list is BMAD."""
    assert expected == is_bmad(data)


MALFORMED = [
    pytest.param("- a\n- b\n", [(InvalidValueError, "")], id="not-a-mapping"),
    pytest.param("workflow: 3\n", [(InvalidValueError, "workflow")], id="workflow-not-mapping"),
    pytest.param(
        "workflow:\n  sequence: steps\n",
        [(InvalidValueError, "workflow.sequence")],
        id="sequence-not-list",
    ),
    pytest.param(
        "workflow:\n  sequence:\n    - 42\n    - agent: pm\n",
        [(InvalidValueError, "workflow.sequence[0]")],
        id="step-not-mapping",
    ),
    pytest.param(
        "workflow:\n  sequence:\n    - agnet: pm\n      creates: prd.md\n",
        [(UnknownKeyError, "workflow.sequence[0].agnet")],
        id="unknown-key",
    ),
    pytest.param(
        "workflow:\n  sequence:\n    - agent: pm\n      requires: {a: 1}\n",
        [(InvalidValueError, "workflow.sequence[0].requires")],
        id="requires-mapping",
    ),
    pytest.param(
        "workflow:\n  sequence:\n    - agent: pm\n      creates: prd.md\n"
        "    - agent: qa\n      requires: [prd.md, 3]\n",
        [(InvalidValueError, "workflow.sequence[1].requires[1]")],
        id="requires-list-with-number",
    ),
    pytest.param(
        "workflow:\n  sequence:\n    - agent: pm\n      creates: (optional)\n",
        [(InvalidValueError, "workflow.sequence[0].creates")],
        id="empty-artifact-name",
    ),
    pytest.param(
        "workflow:\n  sequence:\n    - agent: pm\n      optional: maybe\n      condtion: x\n"
        "    - agent: [qa]\n",
        [
            (InvalidValueError, "workflow.sequence[0].optional"),
            (UnknownKeyError, "workflow.sequence[0].condtion"),
            (InvalidValueError, "workflow.sequence[1].agent"),
        ],
        id="several-problems-at-once",
    ),
    pytest.param(
        "workflow:\n  sequence:\n    - agent: po\n      validates: prd.md\n",
        [(MissingProducerError, "workflow.sequence[0].validates")],
        id="validates-unknown-artifact",
    ),
    pytest.param(
        "workflow:\n  sequence:\n    - agent: pm\n      condition: never\n",
        [(InvalidValueError, "workflow.sequence")],
        id="nothing-runnable",
    ),
]


@pytest.mark.parametrize(("text", "expected"), MALFORMED)
def test_malformed_workflows(text: str, expected: list[tuple[type, str]]) -> None:
    """Malformed workflows raise PlanValidationError listing each problem where it sits."""
    actual = [(type(p), p.location.path) for p in problems_of(text)]
    assert expected == actual


def test_unknown_key_suggests_the_close_match() -> None:
    """A typo'd step key says which key was probably meant, with its line."""
    [problem] = problems_of("workflow:\n  sequence:\n    - agnet: pm\n      creates: prd.md\n")
    expected = ("did you mean 'agent'?", 3)
    assert expected == (problem.fix, problem.location.line)


_scalars = st.none() | st.booleans() | st.integers() | st.text(max_size=12)
_keys = (
    st.sampled_from(
        [
            "agent",
            "creates",
            "requires",
            "updates",
            "validates",
            "condition",
            "optional",
            "step",
            "routes",
            "workflow_end",
            "notes",
            "optional_steps",
            "repeats",
            "x",
        ]
    )
    | st.text(max_size=6)
    | st.integers()
)
_values = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_keys, inner, max_size=5),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    sequence=st.lists(st.dictionaries(_keys, _values, max_size=6) | _values, max_size=6),
    variables=st.dictionaries(st.text(max_size=10), st.sampled_from(["true", "no", "x"])),
)
def test_random_workflows_raise_only_plan_errors(sequence: list[Any], variables: Any) -> None:
    """Any workflow dict either imports or raises a PlanError, never anything else."""
    try:
        plan = bmad_to_native({"workflow": {"sequence": sequence}}, SourceMap(), variables)
    except PlanError:
        return
    assert set(plan) == {"name", "description", "inputs", "agents", "notes"}
