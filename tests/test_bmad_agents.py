"""How imported BMAD steps run (pee.engine.language.bmad_agents): role agents that reflect the
workflow, the project and the brief; --set values in templates; --llm agents on a local
OpenAI-compatible server whose prompt carries the persona, the template instructions and the
upstream document."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from pee.activities import roles
from pee.engine.compile.graph import compile_plan
from pee.engine.compile.load import load_plan
from pee.engine.language.bmad_agents import workflow_info
from tests.agents_fixtures.chat_server import ChatServer
from tests.helpers import starter

CORE = Path(__file__).parent / "bmad" / "core"
SERVICE = CORE / "workflows" / "greenfield-service.yaml"
FULLSTACK = CORE / "workflows" / "greenfield-fullstack.yaml"
BRIEF = "A chore tracker for families who share a home."
SECRET = f"sk-test-{uuid.uuid4().hex}"
KEY_ENV = "PEE_TEST_BMAD_KEY"


@pytest.fixture
def server() -> Iterator[ChatServer]:
    chat = ChatServer()
    try:
        yield chat
    finally:
        chat.close()


def architecture(workflow: Path) -> str:
    """The built-in architect's document for the workflow, from the same upstream PRD."""
    variables = {"project_name": "Acme", "project_brief": BRIEF}
    agent = compile_plan(load_plan(workflow, variables)).agent("architect")
    prd = {"title": "PRD", "markdown": "# Product requirements: Acme\n\n- FR-1: sign in\n"}
    inputs = {"pm.prd.md": prd, **variables}
    return roles.generate(agent, inputs).outputs["architecture.md"]["markdown"]


@pytest.mark.parametrize(
    ("workflow", "kind", "stage"),
    [
        ({"id": "greenfield-service", "project_types": ["rest-api"]}, "service", "greenfield"),
        ({"id": "brownfield-fullstack"}, "fullstack", "brownfield"),
        ({"id": "greenfield-ui", "type": "greenfield"}, "ui", "greenfield"),
        ({"id": "my-flow", "name": "Anything"}, "fullstack", "greenfield"),
    ],
)
def test_workflow_kind_from_the_workflows_own_words(
    workflow: dict[str, object], kind: str, stage: str
) -> None:
    info = workflow_info(workflow)
    assert (kind, stage) == (info["project_kind"], info["stage"])


def test_a_service_architecture_has_no_front_end_and_a_fullstack_one_has() -> None:
    """Same inputs, two workflows: the documents differ the way the workflow kinds do."""
    service, fullstack = architecture(SERVICE), architecture(FULLSTACK)
    assert service.startswith("# Service architecture: Acme\n")
    assert fullstack.startswith("# Full-stack architecture: Acme\n")
    assert "frontend" not in service and "web-frontend" not in service
    assert "- frontend: " in fullstack and "- web-frontend: renders the screens" in fullstack


def test_role_documents_quote_the_brief_and_their_upstream_document() -> None:
    text = architecture(SERVICE)
    assert f"- Brief as given: {BRIEF}" in text
    assert "- BMAD workflow: Greenfield service (greenfield, service project)" in text
    assert '- pm.prd.md: Product requirements: Acme: "- FR-1: sign in"' in text


def test_set_values_reach_every_bmad_agent_as_optional_inputs() -> None:
    plan = compile_plan(
        load_plan(
            SERVICE, {"project_name": "Acme", "bmad_dir": str(CORE), "bmad_templates": ["prd-tmpl"]}
        )
    )
    assert [["project_name"]] * 3 == [a.optional_inputs for a in plan.agents]
    assert "bmad_dir" not in plan.inputs and "bmad_templates" not in plan.inputs


def test_a_run_fills_the_template_from_set_and_writes_role_documents(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    """--bmad-dir and --set project_name=Acme: the PRD template's title and text carry Acme;
    the built-in analyst quotes the brief; the service architecture has no front end."""
    out = tmp_path / "out"
    done = starter(
        cli_env,
        "run",
        SERVICE,
        "--bmad-dir",
        CORE,
        "--set",
        "project_name=Acme",
        "--set",
        f"project_brief={BRIEF}",
        "--output-dir",
        out,
    )
    assert 0 == done.returncode, done.stdout + done.stderr
    prd = (out / "docs" / "prd.md").read_text()
    assert prd.startswith("# Acme Product Requirements Document (PRD)\n")
    assert "- Read the brief of Acme\n" in prd
    assert "## Template notes" in prd
    brief = (out / "docs" / "project-brief.md").read_text()
    assert BRIEF in brief
    assert "frontend" not in (out / "docs" / "architecture.md").read_text()
    [row] = [
        r for r in json.loads((out / "index.json").read_text())["outputs"] if r["agent"] == "pm"
    ]
    assert row["elicit"][0]["section"] == "goals-context"
    # the same notes in the report and on the console
    report = json.loads((out / "report.json").read_text())
    assert row == next(r for r in report["output_files"] if r["agent"] == "pm")
    assert "Template notes (listed at the end of each document):" in done.stdout
    assert "  docs/prd.md: 2 condition(s) left to the reader" in done.stdout


def test_llm_agents_get_persona_template_and_upstream_and_their_replies_are_outputs(
    cli_env: dict[str, str], tmp_path: Path, server: ChatServer
) -> None:
    """--llm: three chat requests in BMAD order; the pm's system message is its persona file,
    its prompt has the create-doc task, the template's instructions and the analyst's reply;
    each reply is its step's document in the output folder and in `outputs`; the key is sent
    as Bearer but is nowhere in the compiled plan."""
    server.script = [
        (200, {}, "# Brief\nANALYST-REPLY"),
        (200, {}, "# PRD\nPM-REPLY"),
        (200, {}, "# Architecture\nARCHITECT-REPLY"),
    ]
    env = {**cli_env, KEY_ENV: SECRET}
    llm = [
        "--bmad-dir",
        CORE,
        "--llm",
        server.base_url,
        "--model",
        "tiny",
        "--api-key-env",
        KEY_ENV,
        "--set",
        "project_name=Acme",
    ]
    compiled = starter(env, "compile", FULLSTACK, *llm)
    assert 0 == compiled.returncode, compiled.stderr
    assert SECRET not in compiled.stdout and KEY_ENV in compiled.stdout
    out = tmp_path / "out"
    done = starter(env, "run", FULLSTACK, *llm, "--workflow-id", "bmad-llm-1", "--output-dir", out)
    assert 0 == done.returncode, done.stdout + done.stderr
    assert 3 == len(server.requests)
    analyst, pm, _architect = (r.body for r in server.requests)
    assert all(f"Bearer {SECRET}" == r.headers["Authorization"] for r in server.requests)
    assert "tiny" == pm["model"]
    system, prompt = (m["content"] for m in pm["messages"])
    assert "PERSONA-MARKER-PM" in system
    assert "TASK-MARKER-CREATE-DOC" in prompt
    assert "# Template templates/prd-tmpl.yaml: write these sections, in order" in prompt
    assert "Instruction: Ask whether a Project Brief exists; draft the goals from it." in prompt
    assert "Only if: PRD has UX/UI requirements" in prompt
    assert "Document title: Acme Product Requirements Document (PRD)" in prompt
    assert "## analyst.project-brief.md\n# Brief\nANALYST-REPLY" in prompt
    # the analyst's persona placeholder is filled from --set
    assert "writes briefs for Acme" in analyst["messages"][0]["content"]
    assert "# PRD\nPM-REPLY\n" == (out / "outputs" / "pm" / "prd.md").read_text()
    assert "ARCHITECT-REPLY" in (out / "outputs" / "architect" / "architecture.md").read_text()
    printed = starter(env, "outputs", "bmad-llm-1", "pm", "--name", "prd.md")
    assert 0 == printed.returncode, printed.stderr
    assert "# PRD\nPM-REPLY\n" == printed.stdout
    for path in out.rglob("*"):
        assert not path.is_file() or SECRET not in path.read_text(), path


def test_llm_options_need_llm_and_a_url(cli_env: dict[str, str]) -> None:
    """--model without --llm, and a --llm that is not a URL, are plan errors (exit 2)."""
    done = starter(cli_env, "validate", SERVICE, "--model", "tiny")
    assert 2 == done.returncode
    assert "--model needs --llm BASE_URL" in done.stderr
    done = starter(cli_env, "validate", SERVICE, "--llm", "localhost:8080")
    assert 2 == done.returncode
    assert "llm.base_url must be an http(s) URL" in done.stderr


NATIVE = """\
name: native-llm
llm: {base_url: "http://127.0.0.1:9/v1", model: tiny, api_key_env: MY_KEY}
agents:
  writer: {kind: http, outputs: [haiku]}
  own: {kind: http, base_url: "http://127.0.0.1:10/v1", outputs: [note]}
"""


def test_a_native_plans_llm_is_the_default_endpoint_of_its_http_agents() -> None:
    """`llm:` fills an http agent without an endpoint; one with its own base_url keeps its own
    model and key (the default's key never goes to another server)."""
    from pee.engine.compile.load import loads_plan

    plan = compile_plan(loads_plan(NATIVE))
    settings = {
        a.id: {k: a.settings.get(k) for k in ("base_url", "model", "api_key_env")}
        for a in plan.agents
    }
    assert {
        "writer": {"base_url": "http://127.0.0.1:9/v1", "model": "tiny", "api_key_env": "MY_KEY"},
        "own": {"base_url": "http://127.0.0.1:10/v1", "model": None, "api_key_env": None},
    } == settings


def test_llm_beside_workflow_makes_every_bmad_step_an_llm_agent(tmp_path: Path) -> None:
    """A BMAD file's `llm:` works as --llm does (without --bmad-dir: a generic persona)."""
    text = SERVICE.read_text() + '\nllm: {base_url: "http://127.0.0.1:9/v1", model: m}\n'
    path = tmp_path / "service.yaml"
    path.write_text(text)
    plan = compile_plan(load_plan(path, {}))
    assert ["http"] * 3 == [a.kind for a in plan.agents]
    assert "You are the BMAD pm agent." == plan.agent("pm").settings["system"]
    assert (
        "## analyst.project-brief.md\n{{analyst.project-brief.md}}"
        in (plan.agent("pm").settings["prompt"])
    )


def test_the_ui_forks_ai_front_end_prompt_is_a_document(tmp_path: Path) -> None:
    """The UX expert's v0_prompt is a document named ai-frontend-prompt.md, written to docs/."""
    from pee.engine.compiled import CompiledAgent
    from pee.runtime.outputs import write_outputs

    agent = CompiledAgent(
        id="ux-expert_2",
        role="ux-expert",
        kind="role",
        group="g",
        outputs=["v0_prompt"],
        settings={"bmad_step": 3},
    )
    spec = {"markdown": "# Front-end spec\n\n- S1 Sign up", "screens": [{"name": "Sign up"}]}
    value = roles.generate(
        agent, {"ux-expert.front-end-spec.md": spec, "project_name": "Acme"}
    ).outputs["v0_prompt"]
    assert "ai-frontend-prompt.md" == value["filename"]
    assert "Generate a " in value["prompt"] and "Sign up" in value["prompt"]
    write_outputs(tmp_path, {"ux-expert_2.v0_prompt": value}, None)
    text = (tmp_path / "docs" / "ai-frontend-prompt.md").read_text()
    assert text.startswith("# AI front-end prompt: Acme\n")
    assert "## Prompt (paste into v0 or Lovable)" in text


def test_a_brownfield_architecture_says_it_enhances_an_existing_system(tmp_path: Path) -> None:
    text = FULLSTACK.read_text().replace("greenfield", "brownfield")
    path = tmp_path / "brownfield.yaml"
    path.write_text(text)
    assert architecture(path).startswith("# Brownfield full-stack architecture: Acme\n")
