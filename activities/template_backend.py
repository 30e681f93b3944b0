"""The `template` backend: renders a document from the agent's input snapshot.

Settings: ``template``: a path (relative to the plan's folder, ``plan_dir``) or a built-in id
(``builtin:project-brief``, ``builtin:prd``, ``builtin:architecture``). Optional
``template_engine: {concurrent_renders, render_timeout}`` (free-form agent ``settings``; `compile`
fills it from the plan's resource_pool.template_engine) overrides the defaults of 3 renders at
once and 120 s per render, and ``render_cache: {ttl, size_limit}`` (filled from the plan's
caching_system.cache_levels.template_render_cache) sets how long and how much of the render
cache (activities.render_cache) keeps.

Variables: every input is usable by its full ref (``{{pm.user_stories}}``, also as a dotted path
into ``pm``) and by its output name alone (``{{user_stories}}``) when no other input has that name.
``{{a.b.c}}`` walks into mappings (and lists by index). A missing variable renders as empty text
and is recorded (``missing`` in the document; a warning for plain templates).

Two template forms:

- plain text (any file that is not BMAD YAML): ``{{placeholders}}`` only. The agent's first
  declared output gets the rendered text.
- BMAD v4 template YAML: ``template: {id, name, version, output: {format, filename, title}}`` and
  ``sections``. A section has ``id``, ``title``, ``instruction`` (guidance for a human or a model,
  not rendered), ``type`` (paragraphs, bullet-list, numbered-list, table, ...), ``template``,
  ``item_template`` (one line per item of the list named by ``items`` or the section id),
  ``columns`` (tables: the item keys, rendered as a markdown table), ``repeatable`` (rendered once
  per item of the list named by ``repeat_over`` or the section id, with ``item``, ``index`` and the
  item's keys in scope), ``condition`` (rendered only when the named variable is truthy; ``not
  X`` inverts; a condition naming nothing known is false and recorded), nested ``sections``, and
  ``elicit`` (recorded in the document's ``elicit`` list; never waits for anyone). The first
  declared output gets ``{"format", "filename", "title", "markdown", "elicit", "missing",
  "template"}``.

Every other declared output and shared write gets the same value as the first output.

Sandbox: rendering is text substitution only (no expression evaluation, no attribute access, no
format specs), YAML is read with ``safe_load``, and a template path must stay inside the plan's
folder (``..`` or absolute paths that leave it fail with ``TemplateAccessDenied``, non-retryable).
Results are cached (activities.render_cache); template files a prefetch parsed ahead of time
(activities.prefetch) are taken from there. Each result's ``cache`` says what both did.
"""

from __future__ import annotations

import asyncio
import copy
import hashlib
import json
import math
import re
import weakref
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities import prefetch, render_runner
from activities.backend_contract import build_result, invalid_settings
from activities.progress import Progress
from activities.render_cache import DEFAULT_TTL_S, cache_key, default_cache
from activities.types import AgentResult, AgentTask

DEFAULT_CONCURRENT_RENDERS = 3
DEFAULT_RENDER_TIMEOUT_S = 120.0
BUILTIN_PREFIX = "builtin:"
# {{ name }} or {{ a.b.c }}: names only, nothing else is ever interpreted
PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_\-]*(?:\.[A-Za-z0-9_\-]+)*)\s*\}\}")
MISSING = object()

BUILTINS: dict[str, dict[str, Any]] = {
    "project-brief": {
        "template": {"id": "project-brief", "name": "Project Brief", "version": "1.0",
                     "output": {"format": "markdown", "filename": "docs/brief.md",
                                "title": "Project Brief: {{project_name}}"}},
        "sections": [
            {"id": "summary", "title": "Executive Summary", "type": "paragraphs",
             "instruction": "What is being built, for whom, and why now.",
             "template": "{{project_name}}: {{summary}}"},
            {"id": "problem", "title": "Problem Statement", "type": "paragraphs",
             "condition": "problem", "template": "{{problem}}"},
            {"id": "target_users", "title": "Target Users", "type": "bullet-list",
             "item_template": "{{item}}"},
            {"id": "constraints", "title": "Technical Constraints", "type": "bullet-list",
             "condition": "technical_constraints", "items": "technical_constraints",
             "item_template": "{{item}}"},
        ],
    },
    "prd": {
        "template": {"id": "prd", "name": "Product Requirements Document", "version": "1.0",
                     "output": {"format": "markdown", "filename": "docs/prd.md",
                                "title": "{{project_name}} Product Requirements Document"}},
        "sections": [
            {"id": "goals", "title": "Goals and Background Context", "type": "paragraphs",
             "template": "{{project_brief.title}}", "elicit": True,
             "instruction": "Summarise the brief's goals; confirm them with the user."},
            {"id": "requirements", "title": "Requirements", "type": "numbered-list",
             "item_template": "{{item}}"},
            {"id": "user_personas", "title": "Personas", "type": "table",
             "columns": ["name", "goal"], "condition": "user_personas"},
            {"id": "epics", "title": "User Stories", "sections": [
                {"id": "user_stories", "title": "{{item.id}} {{item.title}}", "repeatable": True,
                 "template": "As a {{item.as_a}}, I want {{item.i_want}} so that "
                             "{{item.so_that}}."},
            ]},
        ],
    },
    "architecture": {
        "template": {"id": "architecture", "name": "Architecture Document", "version": "1.0",
                     "output": {"format": "markdown", "filename": "docs/architecture.md",
                                "title": "{{project_name}} Architecture"}},
        "sections": [
            {"id": "overview", "title": "High Level Overview", "type": "paragraphs",
             "template": "{{system_architecture}}"},
            {"id": "technology_stack", "title": "Tech Stack", "type": "table",
             "columns": ["category", "technology"], "condition": "technology_stack"},
            {"id": "api_specifications", "title": "API", "type": "bullet-list",
             "condition": "api_specifications", "item_template": "{{item}}"},
        ],
    },
}


class TemplateError(ValueError):
    """A template that cannot be rendered (bad YAML shape); the plan must change."""


# ---- variables and placeholders --------------------------------------------------------------


def variables(inputs: Mapping[str, Any]) -> dict[str, Any]:
    """The render scope: full refs, short output names (when unambiguous), and agent mappings."""
    scope: dict[str, Any] = dict(inputs)
    short: dict[str, list[str]] = {}
    for ref in inputs:
        if "." in ref:
            owner, name = ref.split(".", 1)
            short.setdefault(name, []).append(ref)
            nested = scope.setdefault(owner, {})
            if isinstance(nested, dict) and owner not in inputs:
                nested[name] = inputs[ref]
    for name, refs in short.items():
        if name not in inputs and len(refs) == 1:
            scope[name] = inputs[refs[0]]
    return scope


def lookup(scope: Mapping[str, Any], path: str) -> Any:
    """``path`` into the scope. Names may contain dots themselves (``analyst.project-brief.md``
    is one input), so the longest leading part that names a variable wins, then the rest walks
    into it: ``{{project-brief.md.title}}``."""
    parts = path.split(".")
    for cut in range(len(parts), 0, -1):
        head = ".".join(parts[:cut])
        if head in scope:
            value = _walk(scope[head], parts[cut:])
            if value is not MISSING:
                return value
    return MISSING


def _walk(value: Any, parts: list[str]) -> Any:
    for part in parts:
        if isinstance(value, Mapping) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return MISSING
    return value


def text_of(value: Any) -> str:
    if value is None or value is MISSING:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, str | int | float):
        return str(value)
    if isinstance(value, Mapping) and isinstance(value.get("markdown"), str):
        return value["markdown"]
    if isinstance(value, list) and all(isinstance(v, str | int | float) for v in value):
        return "\n".join(f"- {v}" for v in value)
    return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)


def substitute(text: str, scope: Mapping[str, Any], missing: list[str]) -> str:
    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        value = lookup(scope, name)
        if value is MISSING and name not in missing:
            missing.append(name)
        return text_of(value)

    return PLACEHOLDER.sub(replace, text)


# ---- BMAD v4 template YAML -------------------------------------------------------------------


@dataclass
class Rendering:
    missing: list[str] = field(default_factory=list)
    elicit: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def is_bmad(data: Any) -> bool:
    return isinstance(data, Mapping) and isinstance(data.get("sections"), list) and (
        isinstance(data.get("template"), Mapping))


def _truthy(scope: Mapping[str, Any], condition: Any, rendering: Rendering, where: str) -> bool:
    if isinstance(condition, bool):
        return condition
    text = str(condition).strip()
    negate = text.startswith("not ")
    name = text[4:].strip() if negate else text
    value = lookup(scope, name)
    if value is MISSING:
        rendering.skipped.append(f"{where}: condition {text!r} names no known variable")
        return negate
    return (not value) if negate else bool(value)


def _list(scope: Mapping[str, Any], name: str) -> list[Any] | None:
    value = lookup(scope, name)
    if isinstance(value, Mapping) and not isinstance(value.get("markdown"), str):
        # a mapping of items: one item per entry
        return [{"key": k, **(v if isinstance(v, Mapping) else {"value": v})}
                for k, v in value.items()]
    return value if isinstance(value, list) else None


def _item_scope(scope: Mapping[str, Any], item: Any, index: int) -> dict[str, Any]:
    inner = {**scope, "item": item, "index": index + 1}
    if isinstance(item, Mapping):
        inner.update({str(k): v for k, v in item.items()})
    return inner


def _table(items: list[Any], columns: list[str], scope: Mapping[str, Any],
           rendering: Rendering) -> str:
    if not columns:
        first = next((i for i in items if isinstance(i, Mapping)), {})
        columns = [str(k) for k in first]
    if not columns:
        columns = ["item"]
    lines = ["| " + " | ".join(c.replace("_", " ").title() for c in columns) + " |",
             "|" + "---|" * len(columns)]
    for index, item in enumerate(items):
        inner = _item_scope(scope, item, index)
        cells = [text_of(lookup(inner, c)).replace("|", "\\|").replace("\n", " ")
                 for c in columns]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _body(section: Mapping[str, Any], scope: Mapping[str, Any], rendering: Rendering) -> str:
    kind = str(section.get("type") or "paragraphs")
    parts: list[str] = []
    if isinstance(section.get("template"), str):
        parts.append(substitute(section["template"], scope, rendering.missing).strip())
    item_template = section.get("item_template")
    list_kind = kind in ("bullet-list", "numbered-list", "table")
    if item_template is not None or list_kind:
        source = str(section.get("items") or section.get("id") or "")
        items = _list(scope, source) if source else None
        if items is None:
            if (item_template is not None or not parts) and source not in rendering.missing:
                rendering.missing.append(source)
        elif kind == "table":
            parts.append(_table(items, [str(c) for c in section.get("columns") or []], scope,
                                rendering))
        else:
            lines = []
            for index, item in enumerate(items):
                inner = _item_scope(scope, item, index)
                text = (substitute(str(item_template), inner, rendering.missing)
                        if item_template is not None else text_of(item))
                marker = f"{index + 1}." if kind == "numbered-list" else "-"
                lines.append(f"{marker} {text.strip()}")
            parts.append("\n".join(lines))
    return "\n\n".join(p for p in parts if p)


def _section(section: Any, scope: Mapping[str, Any], level: int, rendering: Rendering) -> str:
    if not isinstance(section, Mapping):
        raise TemplateError(f"a section must be a mapping, found {section!r}")
    sid = str(section.get("id") or section.get("title") or "section")
    if "condition" in section and not _truthy(scope, section["condition"], rendering, sid):
        return ""
    if section.get("repeatable"):
        source = str(section.get("repeat_over") or sid)
        items = _list(scope, source)
        if items is None:
            if source not in rendering.missing:
                rendering.missing.append(source)
            return ""
        return "\n\n".join(filter(None, (
            _one(section, _item_scope(scope, item, i), level, rendering, f"{sid}[{i + 1}]")
            for i, item in enumerate(items))))
    return _one(section, scope, level, rendering, sid)


def _one(section: Mapping[str, Any], scope: Mapping[str, Any], level: int,
         rendering: Rendering, sid: str) -> str:
    title = substitute(str(section.get("title") or ""), scope, rendering.missing).strip()
    if section.get("elicit"):
        rendering.elicit.append({"section": sid, "title": title,
                                 "instruction": str(section.get("instruction") or "").strip()})
    parts = [f"{'#' * min(level, 6)} {title}"] if title else []
    body = _body(section, scope, rendering)
    if body:
        parts.append(body)
    children = section.get("sections") or []
    if not isinstance(children, list):
        raise TemplateError(f"section '{sid}': 'sections' must be a list")
    for child in children:
        text = _section(child, scope, level + 1, rendering)
        if text:
            parts.append(text)
    return "\n\n".join(parts)


def render_bmad(data: Mapping[str, Any], scope: Mapping[str, Any]) -> dict[str, Any]:
    meta = data["template"]
    output = meta.get("output") or {}
    if not isinstance(output, Mapping):
        raise TemplateError("'template.output' must be a mapping {format, filename, title}")
    rendering = Rendering()
    title = substitute(str(output.get("title") or meta.get("name") or ""), scope,
                       rendering.missing).strip()
    parts = [f"# {title}"] if title else []
    for section in data["sections"]:
        text = _section(section, scope, 2, rendering)
        if text:
            parts.append(text)
    return {
        "format": str(output.get("format") or "markdown"),
        "filename": substitute(str(output.get("filename") or f"{meta.get('id', 'document')}.md"),
                               scope, rendering.missing),
        "title": title,
        "markdown": "\n\n".join(parts) + "\n",
        "elicit": rendering.elicit,
        "missing": rendering.missing,
        "skipped": rendering.skipped,
        "template": f"{meta.get('id', '')}@{meta.get('version', '')}",
    }


def render(source: Any, scope: Mapping[str, Any]) -> tuple[Any, list[str]]:
    """(rendered value, missing variable names) for a loaded template (text or BMAD mapping)."""
    if is_bmad(source):
        document = render_bmad(source, scope)
        return document, list(document["missing"])
    missing: list[str] = []
    return substitute(str(source), scope, missing), missing


# ---- loading (sandboxed) ---------------------------------------------------------------------


def access_denied(task: AgentTask, message: str) -> ApplicationError:
    return ApplicationError(f"agent '{task.agent.id}': {message}", type="TemplateAccessDenied",
                            non_retryable=True)


def template_root(task: AgentTask) -> Path:
    plan_dir = task.agent.settings.get("plan_dir")
    return Path(plan_dir if isinstance(plan_dir, str) and plan_dir else ".").resolve()


def template_path(task: AgentTask) -> Path | None:
    """The template file the agent names (checked to stay inside the plan's folder), or None
    for a built-in template."""
    name = task.agent.settings.get("template")
    if not isinstance(name, str) or not name.strip():
        raise invalid_settings(task, f"'template' must be a path or a built-in id "
                                     f"({', '.join(BUILTIN_PREFIX + b for b in BUILTINS)}), "
                                     f"found {name!r}")
    if name.startswith(BUILTIN_PREFIX):
        if name[len(BUILTIN_PREFIX):] not in BUILTINS:
            raise invalid_settings(task, f"no built-in template '{name}'; built-ins: "
                                         f"{[BUILTIN_PREFIX + b for b in BUILTINS]}")
        return None
    root = template_root(task)
    given = Path(name).expanduser()
    path = (given if given.is_absolute() else root / given).resolve()
    if not path.is_relative_to(root):
        raise access_denied(task, f"template {name!r} is outside the plan's folder {str(root)!r}; "
                                  f"templates must live in the plan's folder or below it")
    if not path.is_file():
        raise invalid_settings(task, f"template {name!r} not found (looked for {str(path)!r})")
    return path


def load_file(task: AgentTask, path: Path) -> tuple[str, Any]:
    """(template id for the cache, parsed template) of a template file."""
    name = task.agent.settings.get("template")
    text = path.read_text(encoding="utf-8")
    parsed: Any = text
    if path.suffix.lower() in (".yaml", ".yml"):
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as err:
            raise invalid_settings(task, f"template {name!r} is not valid YAML: {err}") from None
        if is_bmad(data):
            parsed = data
    digest = hashlib.sha256(text.encode()).hexdigest()[:16]
    return f"{path}@{digest}", parsed


def load(task: AgentTask, counts: dict[str, dict[str, int]] | None = None) -> tuple[str, Any]:
    """(template id for the cache, parsed template: a BMAD mapping or plain text). A template
    file prefetched while an earlier group ran (activities.prefetch) is taken from there."""
    path = template_path(task)
    if path is None:
        name = str(task.agent.settings["template"])
        return name, BUILTINS[name[len(BUILTIN_PREFIX):]]
    found = prefetch.store().template(path)
    if counts is not None:
        prefetch.count(counts, prefetch.HIT if found is not None else prefetch.MISS)
    return found if found is not None else load_file(task, path)


# ---- limits and the backend ------------------------------------------------------------------


def limits(task: AgentTask) -> tuple[int, float]:
    """(concurrent renders, render timeout s) from settings["template_engine"], else defaults."""
    engine = task.agent.settings.get("template_engine") or {}
    if not isinstance(engine, Mapping):
        raise invalid_settings(task, f"'template_engine' must be a mapping, found {engine!r}")
    concurrent = engine.get("concurrent_renders", DEFAULT_CONCURRENT_RENDERS)
    timeout = engine.get("render_timeout", DEFAULT_RENDER_TIMEOUT_S)
    if isinstance(concurrent, bool) or not isinstance(concurrent, int) or concurrent < 1:
        raise invalid_settings(task, f"'concurrent_renders' must be a whole number >= 1, "
                                     f"found {concurrent!r}")
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0:
        raise invalid_settings(task, f"'render_timeout' must be seconds > 0, found {timeout!r}")
    return concurrent, float(timeout)


# one semaphore per event loop and limit: asyncio primitives belong to the loop that uses them
_semaphores: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[int, asyncio.Semaphore]] = (
    weakref.WeakKeyDictionary())


def _semaphore(limit: int) -> asyncio.Semaphore:
    per_loop = _semaphores.setdefault(asyncio.get_running_loop(), {})
    if limit not in per_loop:
        per_loop[limit] = asyncio.Semaphore(limit)
    return per_loop[limit]


def render_cache_settings(task: AgentTask) -> tuple[float, int | None]:
    """(ttl s, size limit bytes or None = the cache's own) from settings["render_cache"], which
    `compile` fills from the plan's caching_system.cache_levels.template_render_cache (ttl
    session_lifetime = until evicted; size_limit 0 or caching switched off = no caching)."""
    given = task.agent.settings.get("render_cache") or {}
    if not isinstance(given, Mapping):
        raise invalid_settings(task, f"'render_cache' must be a mapping, found {given!r}")
    ttl = given.get("ttl", DEFAULT_TTL_S)
    size = given.get("size_limit")
    if ttl in (None, "session_lifetime"):
        ttl = math.inf
    if isinstance(ttl, bool) or not isinstance(ttl, int | float) or ttl < 0:
        raise invalid_settings(task, f"'render_cache.ttl' must be seconds >= 0 or "
                                     f"session_lifetime, found {ttl!r}")
    if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 0):
        raise invalid_settings(task, f"'render_cache.size_limit' must be bytes >= 0, "
                                     f"found {size!r}")
    if given.get("enabled") is False:
        size = 0
    return float(ttl), size


async def run(task: AgentTask, progress: Progress, scale: float) -> AgentResult:
    counts: dict[str, dict[str, int]] = {}
    template_id, source = await asyncio.to_thread(load, task, counts)
    scope = variables(task.inputs)
    ttl_s, size_limit = render_cache_settings(task)
    cache = default_cache()
    if size_limit is not None and size_limit != cache.max_bytes:
        cache.resize(size_limit)
    key = cache_key(template_id, scope)
    cached = cache.get(key)
    # a copy: the cached value must not change with what happens to this agent's result
    value = copy.deepcopy(cached)
    counts["template_render"] = {"hits": int(cached is not None), "misses": int(cached is None)}
    if value is None:
        concurrent, timeout = limits(task)
        progress.report(message=f"rendering {task.agent.settings.get('template')}")
        async with _semaphore(concurrent):
            try:
                # in a render process, killed on timeout or cancel (activities.render_runner)
                value, missing = await render_runner.runner().run(render, source, scope,
                                                                  timeout=timeout)
            except asyncio.TimeoutError:
                raise ApplicationError(
                    f"agent '{task.agent.id}': rendering {template_id!r} took longer than "
                    f"render_timeout {timeout:g}s", type="RenderTimeout") from None
            except TemplateError as err:
                raise invalid_settings(task, f"template {template_id!r}: {err}") from None
        cache.renders += 1
        cache.put(key, value, ttl_s=ttl_s)
        if missing:
            activity.logger.warning("agent '%s': template variables without a value (rendered "
                                    "empty): %s", task.agent.id, missing)
    agent = task.agent
    produced = {name: value for name in [*agent.outputs, *agent.writes]}
    result = build_result(task, produced, source=f"template {template_id!r}")
    result.cache = counts
    return result
