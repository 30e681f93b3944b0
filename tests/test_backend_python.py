"""The python backend: `callable: module:function`, inputs as keyword arguments named after the
output part of the reference (after its first dot), sync in a thread, async awaited, clear
failures."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from pee.activities.agents import run_agent
from pee.activities.python_backend import keyword
from pee.activities.types import AgentTask
from pee.engine.compiled import CompiledAgent
from tests.test_activities import environment, failure, run

MODULE = "tests.agents_fixtures.py_agents"


def python_agent(
    function: str,
    *,
    inputs: tuple[str, ...] = ("pm.user_stories",),
    optional: tuple[str, ...] = ("topic",),
    outputs: tuple[str, ...] = ("summary",),
    writes: tuple[str, ...] = ("thread",),
    spec: str | None = None,
) -> CompiledAgent:
    return CompiledAgent(
        id="py",
        role="py",
        kind="python",
        group="g",
        inputs=list(inputs),
        optional_inputs=list(optional),
        outputs=list(outputs),
        writes=list(writes),
        estimated_s=0.0,
        settings={"callable": spec or f"{MODULE}:{function}"},
    )


@pytest.mark.parametrize(
    ("reference", "name"),
    [
        ("pm.user_stories", "user_stories"),
        ("topic", "topic"),
        ("pm.prd.md", "prd_md"),
        ("a.c-d", "c_d"),
        ("ux expert.ui spec", "ui_spec"),
    ],
)
def test_an_input_is_passed_as_its_output_part_with_underscores(reference: str, name: str) -> None:
    assert name == keyword(reference)


def test_a_sync_function_runs_in_a_thread_with_inputs_as_keywords() -> None:
    """pm.user_stories -> user_stories=..., topic -> topic=...; outputs and writes filled."""
    task = AgentTask(
        agent=python_agent("summarise"), inputs={"pm.user_stories": ["a", "b"], "topic": "billing"}
    )
    result = run(task)
    assert {"summary": "2 stories about billing"} == result.outputs
    assert "MainThread" != result.writes["thread"]


def test_an_async_function_is_awaited_and_an_absent_optional_input_keeps_its_default() -> None:
    result = run(
        AgentTask(agent=python_agent("summarise_async"), inputs={"pm.user_stories": ["a"]})
    )
    assert {"summary": "1 stories about none"} == result.outputs
    assert {"thread": "async"} == result.writes


def test_missing_declared_outputs_fail_non_retryably() -> None:
    error = failure(
        AgentTask(agent=python_agent("forgets_an_output"), inputs={"pm.user_stories": []})
    )
    assert ("MissingOutputs", True) == (error.type, error.non_retryable)
    assert "['thread']" in error.message


@pytest.mark.parametrize(
    ("function", "words"),
    [
        ("returns_a_list", "must be a JSON object"),
        ("returns_a_set", "not plain JSON"),
    ],
)
def test_a_result_that_is_not_a_mapping_of_json_fails(function: str, words: str) -> None:
    error = failure(AgentTask(agent=python_agent(function), inputs={"pm.user_stories": []}))
    assert (True, True) == (error.non_retryable, words in error.message)


@pytest.mark.parametrize(
    ("spec", "words"),
    [
        ("tests.agents_fixtures.no_such_module:f", "No module named"),
        ("tests.agents_fixtures.broken_module:f", "a_package_that_is_not_installed"),
        (f"{MODULE}:no_such_function", "has no attribute 'no_such_function'"),
        (f"{MODULE}:NOT_CALLABLE", "not a function"),
    ],
)
def test_an_import_problem_is_non_retryable_and_says_what_failed(spec: str, words: str) -> None:
    error = failure(AgentTask(agent=python_agent("", spec=spec), inputs={"pm.user_stories": []}))
    assert ("CallableNotFound", True) == (error.type, error.non_retryable)
    assert words in error.message and "importable on the worker" in error.message


@pytest.mark.parametrize("spec", ["no_colon", "a.b:", ":f", "a b:c", 42])
def test_a_malformed_callable_is_a_plan_mistake(spec: Any) -> None:
    agent = python_agent("summarise")
    agent.settings["callable"] = spec
    error = failure(AgentTask(agent=agent))
    assert ("InvalidAgentSettings", True) == (error.type, error.non_retryable)


def test_two_inputs_with_the_same_keyword_are_a_plan_mistake() -> None:
    """pm.notes and qa.notes would both be notes=...: refused before the call."""
    error = failure(
        AgentTask(
            agent=python_agent("summarise", inputs=("pm.notes", "qa.notes")),
            inputs={"pm.notes": 1, "qa.notes": 2},
        )
    )
    assert ("CallableSignatureError", True) == (error.type, error.non_retryable)
    assert "'pm.notes' and 'qa.notes'" in error.message


def test_a_function_that_cannot_take_its_inputs_is_refused_before_the_call() -> None:
    error = failure(
        AgentTask(agent=python_agent("summarise", inputs=("pm.prd",)), inputs={"pm.prd": "x"})
    )
    assert ("CallableSignatureError", True) == (error.type, error.non_retryable)
    assert "['prd']" in error.message


def test_an_exception_in_the_function_is_retryable_with_its_class_as_type() -> None:
    error = failure(AgentTask(agent=python_agent("fails"), inputs={"pm.user_stories": []}))
    assert ("ValueError", False) == (error.type, error.non_retryable)
    assert "the index is not built yet" in error.message


def test_cancellation_ends_an_async_function() -> None:
    env = environment()

    async def go() -> None:
        work = asyncio.ensure_future(env.run(run_agent, AgentTask(agent=python_agent("sleeps"))))
        await asyncio.sleep(0.2)
        env.cancel()
        await asyncio.wait_for(work, timeout=5)

    with pytest.raises(asyncio.CancelledError):
        asyncio.run(go())
