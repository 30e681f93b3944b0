"""The http backend against a local chat-completions server: prompt templates, the reply as the
first output or mapped by output_schema, retries honouring Retry-After, and no secret anywhere
in the workflow history."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from pee.activities import http_backend
from pee.activities.types import AgentTask
from pee.engine.compiled import CompiledAgent, RetrySpec
from tests.agents_fixtures.chat_server import ChatServer
from tests.helpers import TemporalHarness, compiled_plan, group
from tests.test_activities import environment, failure, run

SECRET = f"sk-test-{uuid.uuid4().hex}"
KEY_ENV = "PEE_TEST_LLM_KEY"


@pytest.fixture
def server() -> Iterator[ChatServer]:
    chat = ChatServer()
    try:
        yield chat
    finally:
        chat.close()


@pytest.fixture(autouse=True)
def api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY_ENV, SECRET)


def llm(
    server: ChatServer,
    *,
    outputs: tuple[str, ...] = ("brief",),
    writes: tuple[str, ...] = (),
    defaults: dict[str, Any] | None = None,
    **settings: Any,
) -> CompiledAgent:
    return CompiledAgent(
        id="analyst",
        role="analyst",
        kind="http",
        group="g",
        inputs=["topic"],
        optional_inputs=["pm.user_stories"],
        outputs=list(outputs),
        writes=list(writes),
        defaults=dict(defaults or {}),
        estimated_s=0.0,
        retry=RetrySpec(max_attempts=2, initial_interval_s=0.1),
        settings={
            "base_url": server.base_url,
            "model": "tiny",
            "api_key_env": KEY_ENV,
            "system": "You are the {{role}}.",
            "prompt": "Write a brief about {{topic}}. Stories: {{user_stories}}",
            **settings,
        },
    )


def test_the_reply_text_becomes_the_first_output(server: ChatServer) -> None:
    """Templates filled from inputs (absent optional -> ""), key sent as Bearer, model passed."""
    server.content = "# Brief\nA todo app."
    result = run(AgentTask(agent=llm(server), inputs={"topic": "todo apps"}))
    assert {"brief": "# Brief\nA todo app."} == result.outputs
    [request] = server.requests
    assert "/v1/chat/completions" == request.path
    assert f"Bearer {SECRET}" == request.headers["Authorization"]
    assert {
        "model": "tiny",
        "messages": [
            {"role": "system", "content": "You are the analyst."},
            {"role": "user", "content": "Write a brief about todo apps. Stories: "},
        ],
    } == request.body


def test_non_text_inputs_are_inserted_as_json(server: ChatServer) -> None:
    run(AgentTask(agent=llm(server), inputs={"topic": "t", "pm.user_stories": ["s1"]}))
    assert server.requests[0].body["messages"][1]["content"].endswith('Stories: [\n  "s1"\n]')


def test_a_429_is_retried_after_the_seconds_in_retry_after(server: ChatServer) -> None:
    """429 with Retry-After: 1 -> the second request comes >= 1 s later, heartbeating meanwhile,
    and its answer is the result."""
    server.script = [(429, {"Retry-After": "1"}, '{"error": "slow down"}')]
    env = environment(heartbeat_timeout_s=0.3)
    beats: list[Any] = []
    env.on_heartbeat = lambda *details: beats.append(details)
    result = run(AgentTask(agent=llm(server), inputs={"topic": "t"}), env)
    assert {"brief": "hello"} == result.outputs
    first, second = server.requests
    assert second.at - first.at >= 0.95
    assert len(beats) >= 3


def test_the_time_waiting_on_the_network_is_measured(server: ChatServer) -> None:
    """io_wait_s covers the request in flight (a server answering after 0.3 s) and is part of
    the attempt's elapsed_s (the network_latency_impact metric's two terms)."""
    server.delay_s = 0.3
    result = run(AgentTask(agent=llm(server), inputs={"topic": "t"}))
    assert result.io_wait_s is not None and result.elapsed_s is not None
    assert 0.3 <= result.io_wait_s <= result.elapsed_s


def test_5xx_answers_beyond_max_retries_fail_the_attempt_retryably(server: ChatServer) -> None:
    server.script = [(503, {}, "overloaded")] * 3
    error = failure(AgentTask(agent=llm(server, max_retries=1), inputs={"topic": "t"}))
    assert ("ModelUnavailable", False) == (error.type, error.non_retryable)
    assert "after 2 requests" in error.message and "HTTP 503: overloaded" in error.message
    assert 2 == len(server.requests)


def test_an_oversized_reply_fails_the_attempt_at_once_and_says_what_to_check(
    server: ChatServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A reply past MAX_REPLY_BYTES is not asked for again inside the agent (the same server
    would send the same flood); the message says what to check."""
    monkeypatch.setattr(http_backend, "MAX_REPLY_BYTES", 2 * 1024 * 1024)
    server.content = "x" * (3 * 1024 * 1024)
    error = failure(AgentTask(agent=llm(server, max_retries=3), inputs={"topic": "t"}))
    assert ("ModelReplyTooLarge", False) == (error.type, error.non_retryable)
    assert "larger than 2 MB (HTTP 200)" in error.message and "base_url" in error.message
    assert 1 == len(server.requests)


def test_a_request_that_times_out_counts_as_a_failed_request(server: ChatServer) -> None:
    """request_timeout 0.2 s against a server answering after 1 s: ModelUnavailable, retryable."""
    server.delay_s = 1.0
    agent = llm(server, request_timeout=0.2, max_retries=0)
    error = failure(AgentTask(agent=agent, inputs={"topic": "t"}))
    assert ("ModelUnavailable", False) == (error.type, error.non_retryable)
    assert "timed out" in error.message


def test_a_rejected_request_is_non_retryable_and_never_shows_the_key(server: ChatServer) -> None:
    """401 whose body echoes the key: the error names the status, the key is scrubbed."""
    server.script = [(401, {}, json.dumps({"error": f"bad key {SECRET}"}))]
    error = failure(AgentTask(agent=llm(server), inputs={"topic": "t"}))
    assert ("ModelRequestRejected", True) == (error.type, error.non_retryable)
    assert "HTTP 401" in error.message and "bad key ***" in error.message
    assert SECRET not in error.message


def test_output_schema_maps_a_json_reply_onto_outputs_and_writes(server: ChatServer) -> None:
    """A fenced JSON reply -> each declared output and write from its key."""
    server.content = (
        '```json\n{"brief": "B", "target_users": ["devs"], "constraints": {"budget": 10}}\n```'
    )
    schema = {
        "type": "object",
        "required": ["brief", "target_users"],
        "properties": {
            "brief": {"type": "string"},
            "target_users": {"type": "array"},
            "constraints": {"type": ["object", "null"]},
        },
    }
    agent = llm(
        server, outputs=("brief", "target_users"), writes=("constraints",), output_schema=schema
    )
    result = run(AgentTask(agent=agent, inputs={"topic": "t"}))
    assert {"brief": "B", "target_users": ["devs"]} == result.outputs
    assert {"constraints": {"budget": 10}} == result.writes


@pytest.mark.parametrize(
    ("content", "words"),
    [
        ("Sure! Here is the brief.", "expects a JSON reply"),
        ('{"brief": "B"}', "required keys ['target_users'] are missing"),
        ('{"brief": 3, "target_users": []}', "'brief' should be string, found int"),
    ],
)
def test_a_reply_that_breaks_the_schema_is_retryable(
    server: ChatServer, content: str, words: str
) -> None:
    server.content = content
    schema = {
        "type": "object",
        "required": ["brief", "target_users"],
        "properties": {"brief": {"type": "string"}, "target_users": {"type": "array"}},
    }
    error = failure(
        AgentTask(
            agent=llm(server, outputs=("brief", "target_users"), output_schema=schema),
            inputs={"topic": "t"},
        )
    )
    assert ("InvalidModelReply", False) == (error.type, error.non_retryable)
    assert words in error.message


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"prompt": "About {{nothing_declared}}"}, "placeholders ['nothing_declared']"),
        ({"base_url": None}, "'base_url' is required"),
        ({"api_key_env": "PEE_TEST_NO_SUCH_KEY"}, "'PEE_TEST_NO_SUCH_KEY', which is not set"),
    ],
)
def test_plan_and_worker_mistakes_fail_before_any_request(
    server: ChatServer, change: dict[str, Any], words: str
) -> None:
    agent = llm(server)
    for name, value in change.items():
        if value is None:
            del agent.settings[name]
        else:
            agent.settings[name] = value
    error = failure(AgentTask(agent=agent, inputs={"topic": "t"}))
    assert (True, True) == (error.non_retryable, words in error.message)
    assert [] == server.requests


@pytest.mark.parametrize(
    ("key_env", "allow_list", "words"),
    [
        ("AWS_SECRET_ACCESS_KEY", None, "one of the worker's own credentials (AWS_*)"),
        ("TEMPORAL_API_KEY", None, "one of the worker's own credentials (TEMPORAL_*)"),
        (KEY_ENV, "OPENAI_API_KEY, LLM_*", "PEE_HTTP_KEY_ENVS (OPENAI_API_KEY, LLM_*) does not"),
    ],
)
def test_a_plan_cannot_send_a_variable_the_worker_does_not_allow(
    server: ChatServer,
    monkeypatch: pytest.MonkeyPatch,
    key_env: str,
    allow_list: str | None,
    words: str,
) -> None:
    """The plan names the variable and the URL; the worker's credentials never go there, and
    PEE_HTTP_KEY_ENVS narrows the names a plan may use. Refused before any request."""
    monkeypatch.setenv(key_env, SECRET)
    if allow_list is not None:
        monkeypatch.setenv("PEE_HTTP_KEY_ENVS", allow_list)
    error = failure(AgentTask(agent=llm(server, api_key_env=key_env), inputs={"topic": "t"}))
    assert ("KeyVariableNotAllowed", True) == (error.type, error.non_retryable)
    assert words in error.message
    assert SECRET not in error.message
    assert [] == server.requests


def test_an_allow_listed_worker_credential_is_sent(
    server: ChatServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The worker owner may allow a guarded name explicitly; a pattern in the list matches."""
    monkeypatch.setenv("AWS_BEDROCK_KEY", SECRET)
    monkeypatch.setenv("PEE_HTTP_KEY_ENVS", "OTHER, AWS_BEDROCK_*")
    run(AgentTask(agent=llm(server, api_key_env="AWS_BEDROCK_KEY"), inputs={"topic": "t"}))
    assert f"Bearer {SECRET}" == server.requests[0].headers["Authorization"]


def test_several_outputs_without_a_schema_need_defaults(server: ChatServer) -> None:
    """Without output_schema only the first output is filled: the others need defaults."""
    error = failure(AgentTask(agent=llm(server, outputs=("brief", "users")), inputs={"topic": "t"}))
    assert ("InvalidAgentSettings", True) == (error.type, error.non_retryable)
    result = run(
        AgentTask(
            agent=llm(server, outputs=("brief", "users"), defaults={"users": []}),
            inputs={"topic": "t"},
        )
    )
    assert {"brief": "hello", "users": []} == result.outputs


def readable(history_json: str) -> str:
    """The history JSON plus every payload in it decoded (payload data is base64 there)."""
    texts = [history_json]
    stack: list[Any] = [json.loads(history_json)]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            if isinstance(item.get("data"), str):
                texts.append(base64.b64decode(item["data"]).decode(errors="replace"))
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return "\n".join(texts)


def test_the_api_key_never_appears_in_the_workflow_history(
    temporal: TemporalHarness, server: ChatServer
) -> None:
    """An http agent run by PlanWorkflow: the key reaches the server, not the history."""
    server.script = [(429, {"Retry-After": "0"}, f'{{"error": "limit for {SECRET}"}}')]
    server.content = "the brief"
    plan = compiled_plan([llm(server)], [group("g", ["analyst"])], inputs={"topic": "todo"})

    async def body(handle: Any) -> tuple[dict[str, Any], str]:
        report = await handle.result()
        history = await handle.fetch_history()
        return report, readable(history.to_json())

    report, history = temporal.with_plan(plan, body)
    assert "completed" == report["status"]
    assert "succeeded" == report["agents"]["analyst"]["status"]
    assert f"Bearer {SECRET}" == server.requests[-1].headers["Authorization"]
    assert "the brief" in history
    assert KEY_ENV in history
    assert SECRET not in history
