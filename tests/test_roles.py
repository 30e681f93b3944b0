"""Built-in role agents (src/pee/activities/roles.py): deterministic, structured, small, and derived
from their inputs, so downstream documents reflect upstream ones."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from pee.activities import roles
from pee.engine.compile.graph import compile_plan
from pee.engine.compile.load import load_plan
from pee.engine.compiled import CompiledAgent

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE_PLANS = ["plans/seed.yaml", "plans/bmad-greenfield.yaml"]


def role_agent(
    agent_id: str,
    outputs: list[str],
    *,
    role: str | None = None,
    writes: list[str] | None = None,
    **fields: Any,
) -> CompiledAgent:
    return CompiledAgent(
        id=agent_id,
        role=role or agent_id,
        kind="role",
        group="g",
        outputs=outputs,
        writes=writes or [],
        **fields,
    )


def run_chain(path: str, inputs: dict[str, Any] | None = None) -> dict[str, Any]:
    """Every role agent of a plan in group order, each fed the context so far (no Temporal)."""
    plan = compile_plan(load_plan(ROOT / path))
    context: dict[str, Any] = {**plan.inputs, **(inputs or {})}
    for group in plan.groups:
        for agent_id in group.agents:
            agent = plan.agent(agent_id)
            snapshot = {
                k: context[k] for k in [*agent.inputs, *agent.optional_inputs] if k in context
            }
            produced = roles.generate(
                agent, snapshot, [k for k in agent.inputs if k not in context]
            )
            context.update({f"{agent_id}.{name}": v for name, v in produced.outputs.items()})
            context.update(produced.writes)
    return context


def test_the_built_in_roles_are_the_ones_the_plan_language_knows() -> None:
    """pee.engine.language.models.BUILTIN_ROLES (kind "role") and the implemented roles are the same
    set."""
    from pee.engine.language.models import BUILTIN_ROLES

    assert sorted(BUILTIN_ROLES) == sorted(roles.ROLES)


@pytest.mark.parametrize("path", EXAMPLE_PLANS)
def test_every_declared_output_and_write_is_produced_small_and_json(path: str) -> None:
    """Each role agent of the example plans yields all its outputs and writes, < 10 KB each."""
    plan = compile_plan(load_plan(ROOT / path))
    context = run_chain(path)
    for agent in plan.agents:
        assert "role" == agent.kind, agent.id
        for key in [f"{agent.id}.{name}" for name in agent.outputs] + agent.writes:
            assert key in context
            text = json.dumps(context[key])
            assert len(text.encode()) < 10_000, (key, len(text))


@pytest.mark.parametrize("path", EXAMPLE_PLANS)
def test_the_example_plans_outputs_are_role_documents_not_generic_ones(path: str) -> None:
    """Every output the example plans declare is one its role knows how to write."""
    plan = compile_plan(load_plan(ROOT / path))
    unknown = [
        f"{a.id}.{name}"
        for a in plan.agents
        for name in a.outputs
        if roles.normalise(name) not in roles.ROLES[roles.role_name(a.role)]
    ]
    assert [] == unknown


def test_generation_is_deterministic_and_ignores_input_order() -> None:
    """Same inputs (in any order) -> the same outputs, every time."""
    pm = role_agent("pm", ["user_stories", "prd.md", "requirements"])
    inputs = {"analyst.target_users": ["nurse", "doctor"], "project": "Ward rounds"}
    first = roles.generate(pm, inputs)
    again = roles.generate(pm, dict(reversed(list(inputs.items()))))
    assert first == again


def test_the_seed_chain_does_not_depend_on_the_hash_seed() -> None:
    """Two interpreters with different PYTHONHASHSEED produce byte-identical documents."""
    script = (
        "import json, sys; sys.path.insert(0, '.'); from tests.test_roles import run_chain;"
        "print(json.dumps(run_chain('plans/bmad-greenfield.yaml'), sort_keys=True))"
    )
    outputs = set()
    for seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        done = subprocess.run(
            [sys.executable, "-c", script],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        outputs.add(done.stdout)
    assert 1 == len(outputs)


def test_pm_stories_are_written_for_the_analysts_target_users() -> None:
    """The pm's stories, personas and requirements name the users the analyst found."""
    analyst = role_agent("analyst", ["target_users", "technical_constraints"])
    users = roles.generate(analyst, {"project": "Ward rounds"}).outputs["target_users"]
    pm = role_agent("pm", ["user_stories", "user_personas", "functional_requirements"])
    made = roles.generate(pm, {"analyst.target_users": users}).outputs
    names = [user["name"] for user in users]
    assert sorted(set(names)) == sorted({story["as_a"] for story in made["user_stories"]})
    assert all(any(name in persona["name"] for name in names) for persona in made["user_personas"])
    assert {s["id"] for s in made["user_stories"]} == {
        s for r in made["functional_requirements"] for s in r["stories"]
    }


def test_changing_an_upstream_value_changes_the_downstream_document() -> None:
    """Other target users -> other stories: content follows the inputs."""
    pm = role_agent("pm", ["user_stories"])
    nurses = roles.generate(pm, {"analyst.target_users": ["night nurse"]}).outputs
    pilots = roles.generate(pm, {"analyst.target_users": ["airline pilot"]}).outputs
    assert {"night nurse"} == {s["as_a"] for s in nurses["user_stories"]}
    assert {"airline pilot"} == {s["as_a"] for s in pilots["user_stories"]}
    assert all(story["acceptance_criteria"] for story in pilots["user_stories"])


def test_user_stories_have_the_documented_shape() -> None:
    """A story is {id, as_a, i_want, so_that, acceptance_criteria, ...}."""
    stories = roles.generate(role_agent("pm", ["user_stories"]), {}).outputs["user_stories"]
    assert stories
    for story in stories:
        assert {"id", "as_a", "i_want", "so_that", "acceptance_criteria"} <= set(story)


def test_seed_design_group_reflects_the_requirements_group() -> None:
    """ux_expert's screens cover pm's stories; architect's API serves pm's requirements."""
    context = run_chain("plans/seed.yaml")
    story_ids = {s["id"] for s in context["pm.user_stories"]}
    screen_stories = {
        s for screen in context["ux_expert.ui_spec"]["screens"] for s in screen["stories"]
    }
    assert story_ids == screen_stories
    requirement_ids = {r["id"] for r in context["pm.functional_requirements"]}
    assert requirement_ids == {
        api["requirement"] for api in context["architect.api_specifications"]
    }
    personas = {p["name"] for p in context["pm.user_personas"]}
    assert personas == {j["persona"] for j in context["ux_expert.user_journeys"]}


def test_bmad_chain_carries_the_story_from_brief_to_implementation() -> None:
    """Brief users -> PRD stories -> shards -> sm story -> dev files -> qa review."""
    context = run_chain("plans/bmad-greenfield.yaml", {"project": "Ward rounds"})
    brief_users = {u["name"] for u in context["analyst.project-brief.md"]["target_users"]}
    prd_stories = context["pm.prd.md"]["user_stories"]
    assert brief_users == {s["as_a"] for s in prd_stories}
    shard_story = context["po_2.sharded_docs"][0]["stories"][0]
    story = context["sm.story.md"]
    assert shard_story["id"] == story["id"]
    assert "# " + story["title"] in story["markdown"]
    files = context["dev.implementation_files"]
    assert all(story["id"] in f["implements"] for f in files)
    assert [f["path"] for f in files] == [f["path"] for f in context["qa.implementation_files"]]
    assert all(f["reviewed_by"] == "qa" for f in context["qa.implementation_files"])


def test_markdown_outputs_are_documents_with_rendered_text() -> None:
    """An output named *.md is a document: title, author role, markdown, digest."""
    doc = roles.generate(
        role_agent("analyst", ["project-brief.md"]), {"project": "Ward rounds"}
    ).outputs["project-brief.md"]
    assert {"title", "author_role", "markdown", "digest", "target_users"} <= set(doc)
    assert "Ward rounds" in doc["title"]
    assert doc["markdown"].startswith("# Project brief: Ward rounds")


def test_an_unknown_output_gets_a_generic_document_from_the_inputs() -> None:
    """A name the role does not know: title, author role, one section per input, digest."""
    agent = role_agent("architect", ["risk_register"], description="list the risks")
    inputs = {"pm.prd.md": {"title": "PRD: Ward rounds"}, "budget": "small"}
    doc = roles.generate(agent, inputs).outputs["risk_register"]
    assert "Risk register" in doc["title"]
    assert "architect" == doc["author_role"]
    assert [
        {"heading": "budget", "summary": "small"},
        {"heading": "pm.prd.md", "summary": "PRD: Ward rounds"},
    ] == doc["sections"]
    assert roles.digest(inputs) == doc["digest"]
    assert "list the risks" == doc["description"]


def test_a_shared_key_the_role_does_not_know_summarises_its_outputs() -> None:
    """writes: [ux_outputs] -> a summary of what the ux_expert produced."""
    agent = role_agent("ux_expert", ["ui_spec", "user_journeys"], writes=["ux_outputs"])
    summary = roles.generate(agent, {}).writes["ux_outputs"]
    assert ["ui_spec", "user_journeys"] == list(summary["outputs"])
    assert "ux_expert" == summary["author_role"]


def test_role_names_are_normalised_like_the_plan_language() -> None:
    """ "ux-expert" and "dev" are the ux_expert and developer roles."""
    assert "ux_expert" == roles.role_name("ux-expert")
    assert "developer" == roles.role_name("dev")
    files = roles.generate(role_agent("dev", ["implementation_files"], role="dev"), {})
    assert files.outputs["implementation_files"]


def test_missing_inputs_are_recorded_in_documents_and_fail_the_po_check() -> None:
    """A blocking input that had no value is named in the document; the po flags it."""
    po = role_agent("po", ["validation_report"], inputs=["pm.prd.md"])
    report = roles.generate(po, {}, ["pm.prd.md"]).outputs["validation_report"]
    assert ["pm.prd.md"] == report["missing_inputs"]
    assert "changes requested" == report["verdict"]


def test_po_validation_flags_a_story_without_a_requirement() -> None:
    """A story no functional requirement traces to fails the traceability check."""
    stories = [
        {
            "id": "US-1",
            "as_a": "nurse",
            "i_want": "see my ward",
            "so_that": "x",
            "acceptance_criteria": ["c"],
        },
        {
            "id": "US-2",
            "as_a": "nurse",
            "i_want": "print a list",
            "so_that": "y",
            "acceptance_criteria": ["c"],
        },
    ]
    requirements = [{"id": "FR-1", "statement": "see the ward", "stories": ["US-1"]}]
    po = role_agent("po", ["validation_report"])
    report = roles.generate(
        po, {"pm.user_stories": stories, "pm.functional_requirements": requirements}
    ).outputs["validation_report"]
    checks = {c["check"]: c["result"] for c in report["checks"]}
    assert "fail" == checks["every story traces to a functional requirement"]
    assert "changes requested" == report["verdict"]


def test_qa_results_follow_what_was_implemented() -> None:
    """Criteria of an implemented story pass, of a missing one fail; no files -> not run."""
    stories = [
        {
            "id": "US-1",
            "as_a": "nurse",
            "i_want": "see my ward",
            "so_that": "x",
            "acceptance_criteria": ["c1"],
        },
        {
            "id": "US-2",
            "as_a": "nurse",
            "i_want": "print a list",
            "so_that": "y",
            "acceptance_criteria": ["c2"],
        },
    ]
    files = [{"path": "app/ward.py", "implements": ["US-1"]}]
    qa = role_agent("qa", ["test_results"])
    tested = roles.generate(qa, {"pm.user_stories": stories, "dev.implementation_files": files})
    assert {"US-1": "passed", "US-2": "failed"} == {
        c["story"]: c["status"] for c in tested.outputs["test_results"]["cases"]
    }
    untested = roles.generate(qa, {"pm.user_stories": stories})
    assert {"not_run"} == {c["status"] for c in untested.outputs["test_results"]["cases"]}


@pytest.mark.parametrize(
    "value",
    [
        "a plain string",
        42,
        None,
        [],
        {"agent": "pm", "output": "user_stories", "digest": "ab"},
        [["nested"]],
        {"user_stories": "not a list"},
    ],
)
def test_odd_upstream_values_still_give_every_output(value: Any) -> None:
    """Whatever shape an upstream (e.g. simulate) agent produced, every role still answers."""
    for role, table in roles.ROLES.items():
        agent = role_agent(role, sorted(table))
        produced = roles.generate(agent, {"pm.user_stories": value, "analyst.target_users": value})
        assert sorted(table) == sorted(produced.outputs)
        json.dumps(produced.outputs)
