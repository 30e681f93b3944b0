"""Template files: the built-in templates, where an agent's template file is (kept inside the
plan's folder) and how it is read. The template backend (pee.activities.template_backend) and the
prefetch (pee.activities.prefetch), which reads a later group's template files ahead of time, both
use it; the backend imports the prefetch's store, so this lives apart from both."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from temporalio.exceptions import ApplicationError

from pee.activities.backend_contract import invalid_settings
from pee.activities.template_render import is_bmad
from pee.activities.types import AgentTask

BUILTIN_PREFIX = "builtin:"

BUILTINS: dict[str, dict[str, Any]] = {
    "project-brief": {
        "template": {
            "id": "project-brief",
            "name": "Project Brief",
            "version": "1.0",
            "output": {
                "format": "markdown",
                "filename": "docs/brief.md",
                "title": "Project Brief: {{project_name}}",
            },
        },
        "sections": [
            {
                "id": "summary",
                "title": "Executive Summary",
                "type": "paragraphs",
                "instruction": "What is being built, for whom, and why now.",
                "template": "{{project_name}}: {{summary}}",
            },
            {
                "id": "problem",
                "title": "Problem Statement",
                "type": "paragraphs",
                "condition": "problem",
                "template": "{{problem}}",
            },
            {
                "id": "target_users",
                "title": "Target Users",
                "type": "bullet-list",
                "item_template": "{{item}}",
            },
            {
                "id": "constraints",
                "title": "Technical Constraints",
                "type": "bullet-list",
                "condition": "technical_constraints",
                "items": "technical_constraints",
                "item_template": "{{item}}",
            },
        ],
    },
    "prd": {
        "template": {
            "id": "prd",
            "name": "Product Requirements Document",
            "version": "1.0",
            "output": {
                "format": "markdown",
                "filename": "docs/prd.md",
                "title": "{{project_name}} Product Requirements Document",
            },
        },
        "sections": [
            {
                "id": "goals",
                "title": "Goals and Background Context",
                "type": "paragraphs",
                "template": "{{project_brief.title}}",
                "elicit": True,
                "instruction": "Summarise the brief's goals; confirm them with the user.",
            },
            {
                "id": "requirements",
                "title": "Requirements",
                "type": "numbered-list",
                "item_template": "{{item}}",
            },
            {
                "id": "user_personas",
                "title": "Personas",
                "type": "table",
                "columns": ["name", "goal"],
                "condition": "user_personas",
            },
            {
                "id": "epics",
                "title": "User Stories",
                "sections": [
                    {
                        "id": "user_stories",
                        "title": "{{item.id}} {{item.title}}",
                        "repeatable": True,
                        "template": "As a {{item.as_a}}, I want {{item.i_want}} so that "
                        "{{item.so_that}}.",
                    },
                ],
            },
        ],
    },
    "architecture": {
        "template": {
            "id": "architecture",
            "name": "Architecture Document",
            "version": "1.0",
            "output": {
                "format": "markdown",
                "filename": "docs/architecture.md",
                "title": "{{project_name}} Architecture",
            },
        },
        "sections": [
            {
                "id": "overview",
                "title": "High Level Overview",
                "type": "paragraphs",
                "template": "{{system_architecture}}",
            },
            {
                "id": "technology_stack",
                "title": "Tech Stack",
                "type": "table",
                "columns": ["category", "technology"],
                "condition": "technology_stack",
            },
            {
                "id": "api_specifications",
                "title": "API",
                "type": "bullet-list",
                "condition": "api_specifications",
                "item_template": "{{item}}",
            },
        ],
    },
}


def access_denied(task: AgentTask, message: str) -> ApplicationError:
    return ApplicationError(
        f"agent '{task.agent.id}': {message}", type="TemplateAccessDenied", non_retryable=True
    )


def template_root(task: AgentTask) -> Path:
    plan_dir = task.agent.settings.get("plan_dir")
    return Path(plan_dir if isinstance(plan_dir, str) and plan_dir else ".").resolve()


def template_path(task: AgentTask) -> Path | None:
    """The template file the agent names (checked to stay inside the plan's folder), or None
    for a built-in template."""
    name = task.agent.settings.get("template")
    if not isinstance(name, str) or not name.strip():
        raise invalid_settings(
            task,
            f"'template' must be a path or a built-in id "
            f"({', '.join(BUILTIN_PREFIX + b for b in BUILTINS)}), "
            f"found {name!r}",
        )
    if name.startswith(BUILTIN_PREFIX):
        if name[len(BUILTIN_PREFIX) :] not in BUILTINS:
            raise invalid_settings(
                task,
                f"no built-in template '{name}'; built-ins: "
                f"{[BUILTIN_PREFIX + b for b in BUILTINS]}",
            )
        return None
    root = template_root(task)
    given = Path(name).expanduser()
    path = (given if given.is_absolute() else root / given).resolve()
    if not path.is_relative_to(root):
        raise access_denied(
            task,
            f"template {name!r} is outside the plan's folder {str(root)!r}; "
            f"templates must live in the plan's folder or below it",
        )
    if not path.is_file():
        raise invalid_settings(task, f"template {name!r} not found (looked for {str(path)!r})")
    return path


def load_file(task: AgentTask, path: Path) -> tuple[str, Any]:
    """(template id for the cache, parsed template) of a template file."""
    name = task.agent.settings.get("template")
    text = path.read_text(encoding="utf-8")
    parsed: Any = text
    if path.suffix.lower() in (".yaml", ".yml"):
        import yaml  # only template agents read YAML: no worker's start-up cost

        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as err:
            raise invalid_settings(task, f"template {name!r} is not valid YAML: {err}") from None
        if is_bmad(data):
            parsed = data
    digest = hashlib.sha256(text.encode()).hexdigest()[:16]
    return f"{path}@{digest}", parsed
