"""The `http` backend: an OpenAI-compatible chat-completions client (llama.cpp server, vLLM,
Ollama, hosted APIs), standard library only.

Settings (CompiledAgent.settings):

- ``base_url``: e.g. ``http://127.0.0.1:8080/v1``; the request goes to
  ``POST {base_url}/chat/completions``.
- ``model``: sent as is (default "default", which local servers accept).
- ``api_key_env``: the NAME of a worker environment variable holding the key, sent as
  ``Authorization: Bearer ...``. Only the name is in the plan and the history; the key is read
  on the worker at call time, never logged, and scrubbed from every error message.
- ``system``, ``prompt``: templates; ``{{name}}`` is replaced by an input, named as declared
  ("pm.user_stories") or by its output part, after the first dot ("user_stories"), and
  ``{{agent}}`` / ``{{role}}`` by the agent's id / role. Text is inserted as is, anything else
  as indented JSON. No expressions, no code, no file access: a placeholder naming nothing the agent
  declares is a plan mistake (non-retryable); one naming an input absent from the snapshot
  becomes "". Without ``prompt`` the agent gets its inputs as JSON and the names it must produce.
- ``output_schema``: a JSON schema of an object. Without it the reply text becomes the first
  declared output (any other output or write must have a default, checked before the call).
  With it the reply must be a JSON object (```json fences are tolerated) that satisfies the
  schema (checked minimally: type object, ``required`` keys, each property's ``type``) and
  carries every declared output and write. A reply that does not is retryable
  (``InvalidModelReply``): a model may well answer better the next time.
- ``settings:`` (free-form) may add ``request_timeout`` (seconds per request, default 120),
  ``max_retries`` (default 4) and ``temperature``.

Retries inside the activity: 429 and 5xx answers, connection errors and request timeouts are
retried up to ``max_retries`` times, waiting ``Retry-After`` seconds when the server says so
(capped at 60 s) else an exponential backoff (0.5 s, 1 s, 2 s, ... capped at 30 s); the Progress
task heartbeats while we wait, so a cancellation still ends the agent at once. Then the attempt
fails retryably (``ModelUnavailable``), and Temporal's retry policy takes over. Other 4xx answers
(bad key, unknown model) fail non-retryably (``ModelRequestRejected``).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import re
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from temporalio.exceptions import ApplicationError

from activities.backend_contract import (
    build_result,
    contract_error,
    invalid_settings,
    number_setting,
    text_setting,
)
from activities.progress import Progress
from activities.types import AgentResult, AgentTask

PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z0-9_.\-]+)\s*\}\}")
FENCE = re.compile(r"^\s*```[A-Za-z0-9_-]*\s*\n(.*?)\n?```\s*$", re.DOTALL)
REQUEST_TIMEOUT_S = 120.0
MAX_RETRIES = 4
MAX_RETRY_AFTER_S = 60.0
BACKOFF_FIRST_S = 0.5
BACKOFF_MAX_S = 30.0
BODY_TAIL_CHARS = 500
JSON_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,), "number": (int, float), "integer": (int,), "boolean": (bool,),
    "array": (list,), "object": (dict,), "null": (type(None),),
}


@dataclass
class Reply:
    status: int
    body: bytes
    retry_after: float | None = None


class Transient(Exception):
    """A failure worth another try: 429, 5xx, connection error, timeout."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


# ---- templates -----------------------------------------------------------------------------


def _as_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True, default=str)


def template_values(task: AgentTask) -> tuple[dict[str, str], set[str]]:
    """Placeholder name -> text, and every name the agent declares (present or not)."""
    agent = task.agent
    known = {"agent", "role"}
    values = {"agent": agent.id, "role": agent.role}
    for reference in [*agent.inputs, *agent.optional_inputs, *task.inputs]:
        short = reference.split(".", 1)[-1]
        known.update((reference, short))
        if reference in task.inputs:
            text = _as_text(task.inputs[reference])
            values[reference] = text
            values.setdefault(short, text)
    return values, known


def render(task: AgentTask, template: str, what: str) -> str:
    values, known = template_values(task)
    unknown = sorted({name for name in PLACEHOLDER.findall(template) if name not in known})
    if unknown:
        declared = [*task.agent.inputs, *task.agent.optional_inputs]
        raise invalid_settings(task, f"{what} uses placeholders {unknown}, which name no input "
                                     f"of the agent; inputs: {declared}")
    return PLACEHOLDER.sub(lambda match: values.get(match.group(1), ""), template)


def default_prompt(task: AgentTask) -> str:
    names = [*task.agent.outputs, *task.agent.writes]
    return (f"You are the {task.agent.role} agent. Using these inputs:\n"
            f"{_as_text(task.inputs)}\n\nproduce: {', '.join(names)}.")


# ---- the reply -----------------------------------------------------------------------------


def reply_text(task: AgentTask, body: bytes) -> str:
    try:
        data = json.loads(body)
        content = data["choices"][0]["message"]["content"]
    except (ValueError, KeyError, IndexError, TypeError):
        raise contract_error(task, "the server's answer is not a chat completion (no "
                                   f"choices[0].message.content): {_tail(body)}",
                             kind="InvalidModelReply", retryable=True) from None
    if not isinstance(content, str):
        raise contract_error(task, f"the model's reply content is {type(content).__name__}, "
                                   "not text", kind="InvalidModelReply", retryable=True)
    return content


def schema_problem(schema: dict[str, Any], value: Any) -> str | None:
    """The first way `value` breaks `schema` (type, required, property types), or None."""
    if not isinstance(value, dict):
        return f"expected a JSON object, found {type(value).__name__}"
    missing = [key for key in schema.get("required") or [] if key not in value]
    if missing:
        return f"required keys {missing} are missing; it has {sorted(value)}"
    for key, spec in (schema.get("properties") or {}).items():
        if key not in value or not isinstance(spec, dict) or "type" not in spec:
            continue
        wanted = spec["type"] if isinstance(spec["type"], list) else [spec["type"]]
        item = value[key]
        ok = False
        for name in wanted:
            types = JSON_TYPES.get(name, (object,))
            # JSON booleans are not numbers
            if isinstance(item, types) and not (isinstance(item, bool) and bool not in types):
                ok = True
        if not ok:
            return f"'{key}' should be {' or '.join(wanted)}, found {type(item).__name__}"
    return None


def parse_structured(task: AgentTask, text: str, schema: dict[str, Any]) -> Any:
    fenced = FENCE.match(text)
    candidate = fenced.group(1) if fenced else text
    try:
        value = json.loads(candidate)
    except ValueError as err:
        raise contract_error(task, f"output_schema expects a JSON reply, but the model answered "
                                   f"{text[:200]!r} ({err})",
                             kind="InvalidModelReply", retryable=True) from None
    problem = schema_problem(schema, value)
    if problem:
        raise contract_error(task, f"the model's reply does not match output_schema: {problem}",
                             kind="InvalidModelReply", retryable=True)
    return value


# ---- the request ---------------------------------------------------------------------------


def _tail(body: bytes) -> str:
    text = body.decode(errors="replace").strip()
    return text if len(text) <= BODY_TAIL_CHARS else text[:BODY_TAIL_CHARS] + "..."


def _retry_after(value: str | None) -> float | None:
    # seconds only; an HTTP date is rare from these servers and falls back to our backoff
    try:
        return None if value is None else max(0.0, float(value.strip()))
    except ValueError:
        return None


def post(url: str, payload: bytes, headers: dict[str, str], timeout: float) -> Reply:
    """One blocking request (run in a thread); Transient for what is worth another try."""
    request = urllib.request.Request(url, data=payload, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            return Reply(response.status, response.read())
    except urllib.error.HTTPError as err:
        body = err.read() or b""
        retry_after = _retry_after(err.headers.get("Retry-After") if err.headers else None)
        if err.code == 429 or err.code >= 500:
            raise Transient(f"HTTP {err.code}: {_tail(body)}", retry_after) from None
        return Reply(err.code, body, retry_after)
    except (urllib.error.URLError, TimeoutError, ConnectionError, OSError) as err:
        reason = getattr(err, "reason", err)
        raise Transient(f"{type(err).__name__}: {reason}") from None


def backoff(retry: int, retry_after: float | None) -> float:
    if retry_after is not None:
        return min(retry_after, MAX_RETRY_AFTER_S)
    return min(BACKOFF_MAX_S, BACKOFF_FIRST_S * 2 ** retry)


async def run(task: AgentTask, progress: Progress, scale: float) -> AgentResult:
    agent = task.agent
    base_url = text_setting(task, "base_url", required=True) or ""
    model = text_setting(task, "model") or "default"
    key_env = text_setting(task, "api_key_env")
    schema = agent.settings.get("output_schema")
    if schema is not None and not isinstance(schema, dict):
        raise invalid_settings(task, f"'output_schema' must be a JSON schema object, "
                                     f"found {schema!r}")
    if schema is None:
        if not agent.outputs:
            raise invalid_settings(task, "an http agent needs at least one declared output "
                                         "(the reply text goes there)")
        unfilled = [name for name in [*agent.outputs[1:], *agent.writes]
                    if name not in agent.defaults and name != agent.outputs[0]]
        if unfilled:
            raise invalid_settings(task, f"the reply fills only the first output "
                                         f"'{agent.outputs[0]}'; {unfilled} have no default: "
                                         "give an output_schema to map a JSON reply onto them")
    timeout = number_setting(task, "request_timeout", REQUEST_TIMEOUT_S, minimum=0.1)
    retries = int(number_setting(task, "max_retries", MAX_RETRIES))

    messages = []
    system = text_setting(task, "system")
    if system:
        messages.append({"role": "system", "content": render(task, system, "system")})
    prompt = text_setting(task, "prompt")
    messages.append({"role": "user",
                     "content": render(task, prompt, "prompt") if prompt else default_prompt(task)})
    body: dict[str, Any] = {"model": model, "messages": messages}
    if "temperature" in agent.settings:
        body["temperature"] = number_setting(task, "temperature", 0.0)

    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    secret = ""
    if key_env:
        secret = os.environ.get(key_env, "")
        if not secret:
            raise ApplicationError(
                f"agent '{agent.id}': api_key_env names '{key_env}', which is not set on this "
                "worker; set it in the worker's environment",
                type="MissingEnvironmentVariable", non_retryable=True)
        headers["Authorization"] = f"Bearer {secret}"

    def scrub(text: str) -> str:
        return text.replace(secret, "***") if secret else text

    url = base_url.rstrip("/") + "/chat/completions"
    payload = json.dumps(body, ensure_ascii=False).encode()
    reply: Reply | None = None
    # time spent waiting on the network: requests in flight and the back-off between them
    waited = 0.0
    for retry in range(retries + 1):
        progress.report(message=f"asking {model} at {base_url}"
                                + (f" (retry {retry})" if retry else ""))
        began = time.monotonic()
        try:
            reply = await asyncio.to_thread(post, url, payload, headers, timeout)
            break
        except Transient as err:
            if retry >= retries:
                raise ApplicationError(
                    f"agent '{agent.id}': {url} still failing after {retries + 1} requests: "
                    f"{scrub(str(err))}",
                    type="ModelUnavailable",
                    next_retry_delay=None if err.retry_after is None
                    else timedelta(seconds=min(err.retry_after, MAX_RETRY_AFTER_S)),
                ) from None
            wait = backoff(retry, err.retry_after)
            progress.report(message=f"{scrub(str(err))[:80]}; retrying in {wait:.1f}s")
            await progress.sleep(wait)
        finally:
            waited += time.monotonic() - began
    assert reply is not None
    if reply.status >= 400:
        raise ApplicationError(
            f"agent '{agent.id}': {url} rejected the request with HTTP {reply.status}: "
            f"{scrub(_tail(reply.body))}",
            type="ModelRequestRejected", non_retryable=True)
    text = reply_text(task, reply.body)
    if schema is None:
        result = build_result(task, {**agent.defaults, agent.outputs[0]: text},
                              source="the model's reply")
    else:
        result = build_result(task, parse_structured(task, text, schema),
                              source="the model's JSON reply", retryable=True)
    return dataclasses.replace(result, io_wait_s=round(waited, 3))
