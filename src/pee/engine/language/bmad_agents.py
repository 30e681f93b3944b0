"""How imported BMAD steps run: what each agent knows about the run, and real (LLM) agents.

`configure` finishes the agents pee.engine.language.bmad made from a workflow's sequence:

- every agent's settings carry ``bmad_workflow`` (id, name, greenfield or brownfield, and the
  project kind: fullstack, service or ui), so the built-in role agents write for this workflow
  (no front end in a service architecture);
- every agent reads the run's own values (``--set``/``--input`` such as ``project_name`` or
  ``project_brief``) as optional inputs, so templates and role agents can use them;
- with an LLM (``--llm BASE_URL --model M --api-key-env VAR``, or ``llm:`` beside ``workflow:``
  in the file), every agent becomes an ``http`` agent: an OpenAI-compatible chat whose system
  message is the agent's persona file (``agents/<agent>.md`` of --bmad-dir) and whose prompt
  holds the step's task, the template's instructions section by section and the upstream
  documents (as ``{{placeholders}}`` the http backend fills at run time). The reply becomes the
  step's first output; the key stays in the worker's environment (only its variable's name is
  in the plan).

Pure: the files of --bmad-dir are read by the CLI (``bmad_files``: relative path -> text).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import yaml

from pee.engine.language.errors import InvalidValueError, Location, PlanError

# variables the importer consumes itself: never run inputs
INTERNAL_PREFIX = "bmad_"
LLM_KEYS = ("base_url", "model", "api_key_env")
# what an agent without any output calls its reply (a PO validation, say)
REPLY_OUTPUT = "reply.md"
_INPUT_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")
_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z0-9_.\-]+)\s*\}\}")
MAX_FILE_CHARS = 60_000


class ProjectKind:
    FULLSTACK = "fullstack"
    SERVICE = "service"
    UI = "ui"


@dataclass(frozen=True)
class Llm:
    base_url: str
    model: str
    api_key_env: str | None


def is_internal(name: str) -> bool:
    return name.startswith(INTERNAL_PREFIX)


def llm_from(
    variables: Mapping[str, Any], data: Mapping[str, Any], where: Location
) -> tuple[Llm | None, list[PlanError]]:
    """The LLM every step runs on: --llm (``bmad_llm``) wins over the file's ``llm:``."""
    given = variables.get("bmad_llm") or data.get("llm")
    if given is None:
        return None, []
    if (
        not isinstance(given, Mapping)
        or set(given) - set(LLM_KEYS)
        or not all(isinstance(given.get(k), str | None) for k in LLM_KEYS)
    ):
        return None, [
            InvalidValueError(
                "'llm' must be a mapping of base_url, model and api_key_env",
                value=given,
                location=where,
                expected="llm: {base_url: http://127.0.0.1:8080/v1, model: M, api_key_env: VAR}",
                found=f"{given!r:.80}",
            )
        ]
    base_url = (given.get("base_url") or "").strip()
    if not re.match(r"https?://", base_url):
        return None, [
            InvalidValueError(
                "llm.base_url must be an http(s) URL",
                value=base_url,
                location=where,
                expected="e.g. http://127.0.0.1:8080/v1 (POST {base_url}/chat/completions)",
                found=repr(base_url),
                fix="write an http(s) base URL such as http://127.0.0.1:8080/v1",
            )
        ]
    return Llm(
        base_url=base_url,
        model=(given.get("model") or "default").strip(),
        api_key_env=(given.get("api_key_env") or None),
    ), []


def workflow_info(workflow: Mapping[str, Any]) -> dict[str, str]:
    """Id, name, greenfield/brownfield and the project kind, from the workflow's own words."""
    wid = str(workflow.get("id") or "")
    name = str(workflow.get("name") or wid)
    types = workflow.get("project_types")
    words = " ".join(
        [wid, name, *(str(t) for t in types)] if isinstance(types, list) else [wid, name]
    ).lower()
    stage = str(workflow.get("type") or "").lower()
    if stage not in ("greenfield", "brownfield"):
        stage = "brownfield" if "brownfield" in words else "greenfield"
    if re.search(r"full[-_ ]?stack", words):
        kind = ProjectKind.FULLSTACK
    elif re.search(r"service|api|backend|microservice", words):
        kind = ProjectKind.SERVICE
    elif re.search(r"(^|[-_ ])ui([-_ ]|$)|front[-_ ]?end|spa|mobile", words):
        kind = ProjectKind.UI
    else:
        kind = ProjectKind.FULLSTACK
    return {"id": wid, "name": name, "stage": stage, "project_kind": kind}


def run_facts(variables: Mapping[str, Any]) -> list[str]:
    """The run's own values an agent may read: every --set/--input name but the importer's."""
    return [name for name in variables if not is_internal(name) and _INPUT_NAME.fullmatch(name)]


def configure(
    agents: dict[str, dict[str, Any]],
    workflow: Mapping[str, Any],
    variables: Mapping[str, Any],
    llm: Llm | None,
) -> None:
    """Finish the imported agents in place (see the module docstring)."""
    info = workflow_info(workflow)
    facts = run_facts(variables)
    files = variables.get("bmad_files")
    files = files if isinstance(files, Mapping) else {}
    for agent_id, agent in agents.items():
        agent.setdefault("settings", {})["bmad_workflow"] = info
        had = list(agent.get("optional_inputs") or [])
        optional = had + [f for f in facts if f not in agent["inputs"] and f not in had]
        if optional:
            agent["optional_inputs"] = optional
        if llm is not None:
            _as_llm_agent(agent_id, agent, llm, info, files)


def _as_llm_agent(
    agent_id: str,
    agent: dict[str, Any],
    llm: Llm,
    info: Mapping[str, str],
    files: Mapping[str, str],
) -> None:
    role = str(agent.get("role") or agent_id)
    settings = agent["settings"]
    template_file = agent.pop("template", None) or (
        f"templates/{settings['uses']}.yaml" if isinstance(settings.get("uses"), str) else None
    )
    settings.pop("plan_dir", None)
    if not agent["outputs"]:
        agent["outputs"] = [REPLY_OUTPUT]
    # the reply fills the first output; an update of a second artifact keeps a pointer to it
    agent["defaults"] = {
        **{name: f"(see {agent['outputs'][0]})" for name in agent["outputs"][1:]},
        **(agent.get("defaults") or {}),
    }
    known = {*agent["inputs"], *agent.get("optional_inputs", []), "agent", "role"}
    known |= {ref.split(".", 1)[-1] for ref in known}
    persona_file = f"agents/{role}.md"
    persona = files.get(persona_file)
    agent.update(
        kind="http",
        base_url=llm.base_url,
        model=llm.model,
        system=_escape(persona, known) if persona else f"You are the BMAD {role} agent.",
    )
    if llm.api_key_env:
        agent["api_key_env"] = llm.api_key_env
    template = files.get(template_file) if template_file else None
    agent["prompt"] = build_prompt(
        agent_id,
        agent,
        info,
        known,
        template_file,
        template,
        files.get("tasks/create-doc.md") if template else None,
    )
    settings["bmad_persona"] = persona_file if persona else None
    settings["bmad_template"] = template_file if template else None


def _escape(text: str, known: set[str]) -> str:
    """Literal text for the http backend's prompt: a placeholder naming one of the agent's
    inputs stays (the backend fills it), any other becomes <name> for the model to fill."""
    return _PLACEHOLDER.sub(
        lambda m: m.group(0) if m.group(1) in known else f"<{m.group(1)}>", text
    )


def build_prompt(
    agent_id: str,
    agent: Mapping[str, Any],
    info: Mapping[str, str],
    known: set[str],
    template_file: str | None,
    template: str | None,
    task: str | None,
) -> str:
    settings = agent["settings"]
    first = agent["outputs"][0]
    lines = [
        "# Your task",
        f"BMAD workflow '{info['name']}' ({info['stage']}, {info['project_kind']} project), "
        f"step {settings.get('bmad_step')}: you are the {agent.get('role') or agent_id} agent.",
    ]
    for key in ("action", "notes"):
        text = settings.get(key)
        if isinstance(text, str) and text.strip():
            lines.append(f"{key.capitalize()}: {' '.join(text.split())}")
    lines.append(
        f"Write '{first}'. Reply with the complete document in Markdown and nothing "
        "else: no questions, no preamble. Where the template asks to elicit from the "
        "user, decide yourself and say what you assumed."
    )
    facts = [ref for ref in agent.get("optional_inputs", []) if "." not in ref]
    if facts:
        lines += ["", "# Given for this run"]
        lines += [f"- {name}: {{{{{name}}}}}" for name in facts]
    if task:
        lines += ["", "# How to create a document (tasks/create-doc.md)", _escape(task, known)]
    if template_file and template:
        lines += [
            "",
            f"# Template {template_file}: write these sections, in order",
            *template_outline(template, known),
        ]
    elif template_file:
        lines += [
            "",
            f"# Template: BMAD's {template_file} (its text was not given: "
            "--bmad-dir adds it); follow its usual structure",
        ]
    upstream = [*agent["inputs"], *[r for r in agent.get("optional_inputs", []) if "." in r]]
    if upstream:
        lines += ["", "# Upstream documents"]
        for ref in upstream:
            lines += ["", f"## {ref}", f"{{{{{ref}}}}}"]
    if agent.get("validates"):
        lines += ["", f"Validate the work of: {', '.join(agent['validates'])}."]
    return "\n".join(lines)


def template_outline(text: str, known: set[str]) -> list[str]:
    """The template's sections as instructions, one heading per section."""
    try:
        data = yaml.safe_load(text[:MAX_FILE_CHARS])
    except yaml.YAMLError:
        return [_escape(text[:MAX_FILE_CHARS], known)]
    if not isinstance(data, Mapping) or not isinstance(data.get("sections"), list):
        return [_escape(text[:MAX_FILE_CHARS], known)]
    meta = data["template"] if isinstance(data.get("template"), Mapping) else {}
    output = meta["output"] if isinstance(meta.get("output"), Mapping) else {}
    lines = []
    if output.get("title"):
        lines.append(f"Document title: {_escape(str(output['title']), known)}")
    _outline(data["sections"], 2, known, lines)
    return lines


def _outline(sections: list[Any], level: int, known: set[str], lines: list[str]) -> None:
    for section in sections:
        if not isinstance(section, Mapping):
            continue
        title = section.get("title") or section.get("id") or "section"
        lines += ["", f"{'#' * min(level, 6)} {_escape(str(title), known)}"]
        if section.get("condition"):
            lines.append(f"Only if: {section['condition']}")
        if section.get("repeatable"):
            lines.append("Repeat this section once per item.")
        if section.get("type"):
            lines.append(f"Format: {section['type']}")
        for key, label in (
            ("instruction", "Instruction"),
            ("template", "Template"),
            ("item_template", "Each item"),
        ):
            if isinstance(section.get(key), str) and section[key].strip():
                lines.append(f"{label}: {_escape(section[key].strip(), known)}")
        if isinstance(section.get("items"), list):
            lines += [f"- {_escape(str(item), known)}" for item in section["items"]]
        if section.get("elicit"):
            lines.append(
                "(BMAD elicits this section from the user: decide and state your assumptions.)"
            )
        if isinstance(section.get("sections"), list):
            _outline(section["sections"], level + 1, known, lines)
