"""The template sandbox root: the one folder a template agent may read, chosen by the engine.

A plan is YAML a user may have been handed, so the folder a `template` agent reads from is
never the plan's to choose: it is the plan file's folder, or for a BMAD workflow run with
``--bmad-dir DIR`` that install folder (the converter marks its template steps with it). The
compiled plan carries it as the agent's ``settings.plan_dir``, which the worker's template
backend enforces (src/pee/activities/template_backend.py). A plan that writes ``plan_dir`` itself is
refused, and a template path that leaves the root (``..``, an absolute path elsewhere, a
symlink out) is refused at validate already, not only when the agent runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from pee.engine.language.errors import SandboxError

if TYPE_CHECKING:
    from pee.engine.language.models import AgentSpec
    from pee.engine.language.plan import Plan

# the setting the engine fills with the root (command agents: the base of a relative cwd)
ROOT_SETTING = "plan_dir"
BUILTIN_PREFIX = "builtin:"


def plan_folder(plan: Plan) -> str | None:
    """The plan file's folder, or None for a plan given as text with no file."""
    if not plan.source.file:
        return None
    return str(Path(plan.source.file).resolve().parent)


def _is_bmad_root(plan: Plan, given: Any) -> bool:
    """``given`` names the --bmad-dir folder of a BMAD workflow (resolved: the converter may
    write the folder's resolved path)."""
    if not plan.bmad_dir or not isinstance(given, str) or not given:
        return False
    return Path(given).resolve() == Path(plan.bmad_dir).resolve()


def sandbox_root(plan: Plan, spec: AgentSpec) -> str | None:
    """The folder ``spec``'s templates (and relative cwd) resolve against: the --bmad-dir
    folder for a step the BMAD converter pointed there, else the plan's folder."""
    given = spec.settings.get(ROOT_SETTING)
    if _is_bmad_root(plan, given):
        return str(Path(str(given)).resolve())  # a str: _is_bmad_root checked it
    return plan_folder(plan)


def check_sandbox(plan: Plan) -> list[SandboxError]:
    problems: list[SandboxError] = []
    for agent_id, spec in plan.agents.items():
        given = spec.settings.get(ROOT_SETTING)
        if ROOT_SETTING in spec.settings and not _is_bmad_root(plan, given):
            problems.append(
                SandboxError(
                    f"agent '{agent_id}' sets settings.{ROOT_SETTING}, the folder its templates "
                    "are read from; only the engine sets it",
                    value=given,
                    location=plan.source.locate(
                        (*plan.agent_paths[agent_id].path_of("settings"), ROOT_SETTING)
                    )
                    if agent_id in plan.agent_paths
                    else plan.agent_location(agent_id),
                    expected="no plan_dir: templates come from the plan's folder (or --bmad-dir)",
                    found=f"{given!r:.80}",
                    fix="remove settings.plan_dir and keep the template in the plan's folder "
                    "or below it (a BMAD install: run with --bmad-dir DIR)",
                )
            )
        if spec.resolved_kind(agent_id) == "template" and spec.template is not None:
            problem = _escape(plan, agent_id, spec)
            if problem is not None:
                problems.append(problem)
    return problems


def _escape(plan: Plan, agent_id: str, spec: AgentSpec) -> SandboxError | None:
    """A template path that leaves the sandbox root, or None."""
    name: Any = spec.template
    root = sandbox_root(plan, spec)
    if not isinstance(name, str) or name.startswith(BUILTIN_PREFIX) or root is None:
        return None
    base = Path(root).resolve()
    given = Path(name).expanduser()
    # resolve() follows symlinks, so a link inside the folder that points out is caught too
    path = (given if given.is_absolute() else base / given).resolve()
    if path.is_relative_to(base):
        return None
    return SandboxError(
        f"agent '{agent_id}' reads template {name!r}, outside the folder templates are read "
        f"from ({base})",
        value=name,
        location=plan.agent_location(agent_id, "template"),
        expected=f"a path inside {base}, or a built-in template (builtin:prd...)",
        found=str(path),
        fix="copy the template into the plan's folder and name it relatively",
    )
