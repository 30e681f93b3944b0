"""The `template` backend: renders a document from the agent's input snapshot.

Settings: ``template``: a path (relative to the plan's folder, ``plan_dir``) or a built-in id
(``builtin:project-brief``, ``builtin:prd``, ``builtin:architecture``). Optional
``template_engine: {concurrent_renders, render_timeout}`` (free-form agent ``settings``; `compile`
fills it from the plan's resource_pool.template_engine) overrides the defaults of 3 renders at
once and 120 s per render, and ``render_cache: {ttl, size_limit}`` (filled from the plan's
caching_system.cache_levels.template_render_cache) sets how long and how much of the render
cache (pee.activities.render_cache) keeps.

Rendering (pee.activities.template_render): ``{{placeholders}}`` filled from the agent's inputs,
and BMAD v4 template YAML (sections, plain-English conditions, repeatables, ``items:``,
``elicit``). Two template forms:

- plain text (any file that is not BMAD YAML): ``{{placeholders}}`` only. The agent's first
  declared output gets the rendered text; variables without a value are logged as a warning.
- BMAD v4 template YAML: the first declared output gets ``{"format", "filename", "title",
  "markdown", "elicit", "missing", "skipped", "conditions", "stubs", "template"}``.

Every other declared output and shared write gets the same value as the first output.

Sandbox: rendering is text substitution only (no expression evaluation, no attribute access, no
format specs), YAML is read with ``safe_load``, and a template path must stay inside the plan's
folder (``..`` or absolute paths that leave it fail with ``TemplateAccessDenied``, non-retryable).
Results are cached (pee.activities.render_cache); template files a prefetch parsed ahead of time
(pee.activities.prefetch) are taken from there. Each result's ``cache`` says what both did.
"""

from __future__ import annotations

import asyncio
import copy
import math
import weakref
from collections.abc import Mapping
from typing import Any

from temporalio import activity
from temporalio.exceptions import ApplicationError

from pee.activities import prefetch, render_runner
from pee.activities.backend_contract import build_result, invalid_settings
from pee.activities.progress import Progress
from pee.activities.render_cache import DEFAULT_TTL_S, cache_key, default_cache
from pee.activities.template_files import (  # noqa: F401 - the backend's loading API
    BUILTIN_PREFIX,
    BUILTINS,
    access_denied,
    load_file,
    template_path,
    template_root,
)
from pee.activities.template_render import (  # noqa: F401 - the backend's rendering API
    MISSING,
    PLACEHOLDER,
    TemplateError,
    is_bmad,
    lookup,
    render,
    render_bmad,
    substitute,
    text_of,
    variables,
)
from pee.activities.types import AgentResult, AgentTask

DEFAULT_CONCURRENT_RENDERS = 3
DEFAULT_RENDER_TIMEOUT_S = 120.0


def load(task: AgentTask, counts: dict[str, dict[str, int]] | None = None) -> tuple[str, Any]:
    """(template id for the cache, parsed template: a BMAD mapping or plain text). A template
    file prefetched while an earlier group ran (pee.activities.prefetch) is taken from there."""
    path = template_path(task)
    if path is None:
        name = str(task.agent.settings["template"])
        return name, BUILTINS[name[len(BUILTIN_PREFIX) :]]
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
        raise invalid_settings(
            task, f"'concurrent_renders' must be a whole number >= 1, found {concurrent!r}"
        )
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0:
        raise invalid_settings(task, f"'render_timeout' must be seconds > 0, found {timeout!r}")
    return concurrent, float(timeout)


# one semaphore per event loop and limit: asyncio primitives belong to the loop that uses them
_semaphores: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[int, asyncio.Semaphore]] = (
    weakref.WeakKeyDictionary()
)


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
        raise invalid_settings(
            task, f"'render_cache.ttl' must be seconds >= 0 or session_lifetime, found {ttl!r}"
        )
    if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 0):
        raise invalid_settings(
            task, f"'render_cache.size_limit' must be bytes >= 0, found {size!r}"
        )
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
                # in a render process, killed on timeout or cancel (pee.activities.render_runner)
                value, missing = await render_runner.runner().run(
                    render, source, scope, timeout=timeout
                )
            except asyncio.TimeoutError:
                raise ApplicationError(
                    f"agent '{task.agent.id}': rendering {template_id!r} took longer than "
                    f"render_timeout {timeout:g}s",
                    type="RenderTimeout",
                ) from None
            except TemplateError as err:
                raise invalid_settings(task, f"template {template_id!r}: {err}") from None
        cache.renders += 1
        cache.put(key, value, ttl_s=ttl_s)
        if missing:
            activity.logger.warning(
                "agent '%s': template variables without a value (rendered empty): %s",
                task.agent.id,
                missing,
            )
    agent = task.agent
    produced = {name: value for name in [*agent.outputs, *agent.writes]}
    result = build_result(task, produced, source=f"template {template_id!r}")
    result.cache = counts
    return result
