"""The template backend: placeholders, BMAD v4 template YAML, the sandbox and the render cache."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest

from pee.activities import template_backend
from pee.activities.agents import run_agent
from pee.activities.render_cache import DEFAULT_MAX_BYTES, RenderCache, cache_key, default_cache
from pee.activities.types import AgentTask
from pee.engine.compiled import CompiledAgent
from tests.agents_fixtures import renders
from tests.test_activities import environment, failure, run

TEMPLATES = Path(__file__).parent / "templates"

STORIES = [
    {"title": "Sign up", "as_a": "visitor", "i_want": "an account", "criteria": ["email", "pw"]},
    {"title": "Log in", "as_a": "member", "i_want": "to log in"},
]


def template_agent(
    template: str,
    *,
    outputs: tuple[str, ...] = ("doc",),
    plan_dir: Path = TEMPLATES,
    **settings: Any,
) -> CompiledAgent:
    return CompiledAgent(
        id="writer",
        role="writer",
        kind="template",
        group="g",
        outputs=list(outputs),
        estimated_s=0.0,
        settings={"template": template, "plan_dir": str(plan_dir), **settings},
    )


@pytest.fixture(autouse=True)
def fresh_cache() -> None:
    default_cache().clear()
    default_cache().resize(DEFAULT_MAX_BYTES)


def test_plain_placeholders_use_full_refs_short_names_and_dotted_paths() -> None:
    """{{project_name}}, {{pm.prd.title}}, {{prd.title}} and list indexes all resolve."""
    inputs = {"project_name": "Acme", "pm.prd": {"title": "The PRD"}, "pm.user_stories": STORIES}
    result = run(AgentTask(agent=template_agent("brief.md"), inputs=inputs))
    assert (
        "# Acme\n\nOwner: The PRD (The PRD)\nStories: Sign up\nMissing: []\n"
        == result.outputs["doc"]
    )


def test_a_missing_variable_renders_empty_and_is_recorded() -> None:
    """Missing names render as empty text and are listed in the document's `missing`."""
    document, missing = template_backend.render(
        template_backend.BUILTINS["project-brief"], template_backend.variables({})
    )
    assert ["project_name", "summary", "target_users"] == missing
    assert missing == document["missing"]
    assert "# Project Brief:\n" in document["markdown"]


def test_bmad_template_with_repeatable_conditional_and_nested_sections() -> None:
    """The fixture renders to exactly this document; elicit is recorded, never waited for."""
    inputs = {
        "project_name": "acme",
        "analyst.summary": "two stories",
        "pm.personas": [{"name": "Ann", "goal": "ship"}],
        "has_risks": False,
        "pm.user_stories": STORIES,
    }
    result = run(AgentTask(agent=template_agent("sub/stories.yaml"), inputs=inputs))
    document = result.outputs["doc"]
    expected = """\
# Stories for acme

## Introduction

acme has two stories.

## Personas

| Name | Goal |
|---|---|
| Ann | ship |

## Stories

### Story 1: Sign up

As a visitor, I want an account.

#### Acceptance criteria

1. email
2. pw

### Story 2: Log in

As a member, I want to log in.

---

## Template notes

Sections skipped:
- risks: condition 'has_risks' is false
- stories.user_stories[2].criteria: condition 'criteria' names no known variable

To elicit from the user:
- Introduction: Say what this is.
"""
    assert expected == document["markdown"]
    assert ("markdown", "docs/acme-stories.md", "Stories for acme") == (
        document["format"],
        document["filename"],
        document["title"],
    )
    assert [
        {"section": "intro", "title": "Introduction", "instruction": "Say what this is."}
    ] == document["elicit"]
    assert [] == document["missing"]
    assert "story-doc@2.0" == document["template"]


def test_builtin_prd_renders_stories_and_personas() -> None:
    """builtin:prd needs no file: a user story per item, personas as a table."""
    inputs = {
        "project_name": "Acme",
        "analyst.project_brief": {"title": "Brief"},
        "pm.requirements": ["fast", "safe"],
        "pm.user_personas": [{"name": "Ann", "goal": "ship"}],
        "pm.user_stories": [
            {
                "id": "S1",
                "title": "Sign up",
                "as_a": "visitor",
                "i_want": "an account",
                "so_that": "I can buy",
            }
        ],
    }
    document = run(AgentTask(agent=template_agent("builtin:prd"), inputs=inputs)).outputs["doc"]
    assert "docs/prd.md" == document["filename"]
    assert (
        "### S1 Sign up\n\nAs a visitor, I want an account so that I can buy."
        in (document["markdown"])
    )
    assert "1. fast\n2. safe" in document["markdown"]
    assert "| Ann | ship |" in document["markdown"]
    assert ["goals"] == [e["section"] for e in document["elicit"]]


@pytest.mark.parametrize("path", ["../test_activities.py", "/etc/passwd", "sub/../../conftest.py"])
def test_templates_outside_the_plan_folder_are_rejected(path: str) -> None:
    """`..` and absolute paths leaving the plan's folder fail non-retryably, naming the folder."""
    error = failure(AgentTask(agent=template_agent(path)))
    assert ("TemplateAccessDenied", True) == (error.type, error.non_retryable)
    assert "outside the plan's folder" in error.message


def test_placeholders_never_evaluate_code() -> None:
    """Expressions, attribute access and format specs are left as text, never run."""
    text = "{{ __import__('os') }} {{x.__class__}} {x.__class__} {{x|upper}}"
    rendered, missing = template_backend.render(text, {"x": "v"})
    assert text.replace("{{x.__class__}}", "") == rendered
    assert ["x.__class__"] == missing


def test_unknown_builtin_and_missing_file_are_plan_mistakes() -> None:
    """Both fail non-retryably with InvalidAgentSettings."""
    for name in ("builtin:nope", "nope.md"):
        error = failure(AgentTask(agent=template_agent(name)))
        assert ("InvalidAgentSettings", True) == (error.type, error.non_retryable)


def test_second_render_with_the_same_variables_is_served_from_the_cache() -> None:
    """Same template + same variables: one render; other variables: a new render."""
    cache = default_cache()
    task = AgentTask(agent=template_agent("brief.md"), inputs={"project_name": "A"})
    first, second = run(task), run(task)
    assert first.outputs == second.outputs
    assert (1, 1) == (cache.renders, cache.hits)
    run(AgentTask(agent=template_agent("brief.md"), inputs={"project_name": "B"}))
    assert 2 == cache.renders


def test_cache_expires_after_its_ttl_and_evicts_least_recently_used_by_size() -> None:
    """TTL and the byte limit both drop entries; the most recently used survives."""
    now = [0.0]
    cache = RenderCache(ttl_s=10, max_bytes=30, clock=lambda: now[0])
    cache.put("a", "x" * 10)
    cache.put("b", "y" * 10)
    assert cache.get("a") is not None
    cache.put("c", "z" * 10)  # 36 bytes of JSON > 30: "b" (least recently used) goes
    assert (True, None, True) == (
        cache.get("a") is not None,
        cache.get("b"),
        cache.get("c") is not None,
    )
    now[0] = 11.0
    assert cache.get("a") is None
    assert cache_key("t", {"b": 1, "a": 2}) == cache_key("t", {"a": 2, "b": 1})


def test_results_carry_render_cache_hits_and_misses() -> None:
    """AgentResult.cache["template_render"]: a miss for the first render, a hit for the same
    variables again (the workflow adds these up for the report)."""
    task = AgentTask(agent=template_agent("brief.md"), inputs={"project_name": "A"})
    assert {"hits": 0, "misses": 1} == run(task).cache["template_render"]
    assert {"hits": 1, "misses": 0} == run(task).cache["template_render"]


def test_the_plans_render_cache_ttl_and_size_limit_apply() -> None:
    """settings.render_cache (compiled from the plan): ttl 0 keeps nothing; a short ttl expires;
    a size limit below the document's size keeps nothing and shrinks the cache at once."""

    def renders(agent: CompiledAgent, times: int = 2, pause_s: float = 0.0) -> int:
        default_cache().clear()
        for _ in range(times):
            run(AgentTask(agent=agent, inputs={"project_name": "A"}))
            time.sleep(pause_s)
        return default_cache().renders

    assert 1 == renders(template_agent("brief.md", render_cache={"ttl": 3600}))
    assert 2 == renders(template_agent("brief.md", render_cache={"ttl": 0}))
    assert 2 == renders(template_agent("brief.md", render_cache={"ttl": 0.2}), pause_s=0.3)
    assert 1 == renders(template_agent("brief.md", render_cache={"ttl": "session_lifetime"}))
    assert 2 == renders(template_agent("brief.md", render_cache={"size_limit": 10}))
    assert 10 == default_cache().max_bytes
    assert 2 == renders(template_agent("brief.md", render_cache={"size_limit": 0}))


def test_bad_render_cache_settings_are_plan_mistakes() -> None:
    """A negative ttl or a size limit that is not bytes fails non-retryably."""
    for bad in ({"ttl": -1}, {"size_limit": "big"}, "yes"):
        error = failure(AgentTask(agent=template_agent("brief.md", render_cache=bad)))
        assert ("InvalidAgentSettings", True) == (error.type, error.non_retryable)


def test_the_plans_cache_level_and_template_engine_reach_template_agents() -> None:
    """compile copies caching_system.cache_levels.template_render_cache (ttl, size_limit capped
    by resource_pool.template_engine.cache_size) and template_engine's concurrent_renders and
    render_timeout into each template agent's settings."""
    from pee.engine.compile.graph import compile_plan
    from pee.engine.compile.load import loads_plan

    text = """
name: render-settings
agents:
  writer: {kind: template, template: builtin:prd, outputs: [doc]}
resource_manager:
  resource_pool:
    template_engine: {concurrent_renders: 2, render_timeout: 5s, cache_size: 1KB}
caching_system:
  cache_levels:
    template_render_cache: {ttl: 2m, size_limit: 2KB}
"""
    (agent,) = compile_plan(loads_plan(text)).agents
    assert {"ttl": 120.0, "size_limit": 1024} == agent.settings["render_cache"]
    assert {"concurrent_renders": 2, "render_timeout": 5.0} == agent.settings["template_engine"]
    assert (2, 5.0) == template_backend.limits(AgentTask(agent=agent))
    off = compile_plan(loads_plan(text + "  enabled: false\n")).agents[0]
    assert 0 == off.settings["render_cache"]["size_limit"]
    default = compile_plan(
        loads_plan(
            "name: d\nagents:\n  w: {kind: template, template: builtin:prd, outputs: [doc]}\n"
        )
    ).agents[0]
    assert {"ttl": 3600.0, "size_limit": 50 * 1024**2} == default.settings["render_cache"]


def test_render_timeout_and_concurrency_come_from_settings() -> None:
    """template_engine settings override the defaults (3 renders, 120 s)."""
    default = template_agent("brief.md")
    custom = template_agent(
        "brief.md", template_engine={"concurrent_renders": 1, "render_timeout": 0.5}
    )
    assert (3, 120.0) == template_backend.limits(AgentTask(agent=default))
    assert (1, 0.5) == template_backend.limits(AgentTask(agent=custom))


def test_concurrent_renders_are_limited_by_a_semaphore(monkeypatch: pytest.MonkeyPatch) -> None:
    """With concurrent_renders 1, renders never overlap (each reports when it ran, from its
    render process)."""

    async def main() -> list[Any]:
        tasks = [
            AgentTask(
                agent=template_agent("brief.md", template_engine={"concurrent_renders": 1}),
                inputs={"project_name": str(i)},
            )
            for i in range(3)
        ]
        return await asyncio.gather(*(environment().run(run_agent, t) for t in tasks))

    monkeypatch.setattr(template_backend, "render", renders.timed_render)
    spans = sorted(tuple(map(float, r.outputs["doc"].split())) for r in asyncio.run(main()))
    assert all(end <= start for (_, end), (start, _) in zip(spans, spans[1:], strict=False))
    assert 3 == default_cache().renders


def test_a_render_slower_than_render_timeout_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    """render_timeout bounds one render: RenderTimeout, retryable."""
    monkeypatch.setattr(template_backend, "render", renders.sleepy_render)
    error = failure(
        AgentTask(agent=template_agent("brief.md", template_engine={"render_timeout": 0.1}))
    )
    assert ("RenderTimeout", False) == (error.type, error.non_retryable)


def test_compiled_template_agents_carry_the_plan_folder(tmp_path: Path) -> None:
    """compile records plan_dir for template agents, so relative paths need no worker cwd."""
    from pee.engine.compile.graph import compile_plan
    from pee.engine.compile.load import load_plan

    plan_file = tmp_path / "plan.yaml"
    plan_file.write_text(
        "name: t\nagents:\n  w: {kind: template, template: t.md, outputs: [doc]}\n"
    )
    compiled = compile_plan(load_plan(str(plan_file), {}))
    assert str(tmp_path.resolve()) == compiled.agent("w").settings["plan_dir"]


def test_variables_whose_names_contain_dots() -> None:
    """BMAD outputs such as project-brief.md are one name: their fields still resolve."""
    from pee.activities.template_backend import lookup, variables

    scope = variables({"analyst.project-brief.md": {"title": "Brief", "goals": ["a"]}})
    assert "Brief" == lookup(scope, "analyst.project-brief.md.title")
    assert "Brief" == lookup(scope, "project-brief.md.title")
    assert "a" == lookup(scope, "project-brief.md.goals.0")
