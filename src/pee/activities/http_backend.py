"""The `http` backend: an OpenAI-compatible chat-completions client (llama.cpp server, vLLM,
Ollama, hosted APIs), on httpx (async, so a cancellation ends a request in flight at once).

Settings (CompiledAgent.settings):

- ``base_url``: e.g. ``http://127.0.0.1:8080/v1``; the request goes to
  ``POST {base_url}/chat/completions``.
- ``model``: sent as is (default "default", which local servers accept).
- ``api_key_env``: the NAME of a worker environment variable holding the key, sent as
  ``Authorization: Bearer ...``. Only the name is in the plan and the history; the key is read
  on the worker at call time and registered with the agent's scrubber (pee.activities.scrub), so
  neither it nor its common encodings leave the agent in a result, error, heartbeat or log.
  Which names a plan may use is the worker's call (pee.activities.key_policy).
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

Redirects are never followed: a 3xx answer fails non-retryably (``ModelRequestRejected``, naming
where it pointed), so neither the key nor the prompt goes anywhere but ``base_url``. Every
timeout (connect, read, write, pool) is ``request_timeout``; a reply body above
``MAX_REPLY_BYTES`` is refused rather than held in memory: the attempt fails at once
(``ModelReplyTooLarge``, not asked again inside the activity: the same server would most likely
send the same flood), and the agent's retry policy decides the rest.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from temporalio.exceptions import ApplicationError

from pee.activities import key_policy, scrub
from pee.activities.backend_contract import (
    build_result,
    contract_error,
    invalid_settings,
    number_setting,
    text_setting,
)
from pee.activities.progress import Progress
from pee.activities.types import AgentResult, AgentTask

if TYPE_CHECKING:
    import httpx

PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z0-9_.\-]+)\s*\}\}")
FENCE = re.compile(r"^\s*```[A-Za-z0-9_-]*\s*\n(.*?)\n?```\s*$", re.DOTALL)
REQUEST_TIMEOUT_S = 120.0
MAX_RETRIES = 4
MAX_RETRY_AFTER_S = 60.0
BACKOFF_FIRST_S = 0.5
BACKOFF_MAX_S = 30.0
BODY_TAIL_CHARS = 500
# a chat completion is kilobytes; a server streaming without end must not fill the worker
MAX_REPLY_BYTES = 32 * 1024 * 1024
JSON_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "number": (int, float),
    "integer": (int,),
    "boolean": (bool,),
    "array": (list,),
    "object": (dict,),
    "null": (type(None),),
}


@dataclass
class Reply:
    status: int
    body: bytes
    retry_after: float | None = None


class Redirected(Exception):
    """The server answered with a redirect, which is never followed."""

    def __init__(self, status: int, location: str) -> None:
        super().__init__(f"HTTP {status} to {location or '(no Location)'}")
        self.status = status
        self.location = location


class TooLarge(Exception):
    """The reply passed MAX_REPLY_BYTES (and was cut off there)."""

    def __init__(self, status: int) -> None:
        super().__init__(f"HTTP {status}: the reply is larger than {MAX_REPLY_BYTES} bytes")
        self.status = status


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
        raise invalid_settings(
            task,
            f"{what} uses placeholders {unknown}, which name no input "
            f"of the agent; inputs: {declared}",
        )
    return PLACEHOLDER.sub(lambda match: values.get(match.group(1), ""), template)


def default_prompt(task: AgentTask) -> str:
    names = [*task.agent.outputs, *task.agent.writes]
    return (
        f"You are the {task.agent.role} agent. Using these inputs:\n"
        f"{_as_text(task.inputs)}\n\nproduce: {', '.join(names)}."
    )


# ---- the reply -----------------------------------------------------------------------------


def reply_text(task: AgentTask, body: bytes) -> str:
    try:
        data = json.loads(body)
        content = data["choices"][0]["message"]["content"]
    except (ValueError, KeyError, IndexError, TypeError):
        raise contract_error(
            task,
            "the server's answer is not a chat completion (no "
            f"choices[0].message.content): {_tail(body)}",
            kind="InvalidModelReply",
            retryable=True,
        ) from None
    if not isinstance(content, str):
        raise contract_error(
            task,
            f"the model's reply content is {type(content).__name__}, not text",
            kind="InvalidModelReply",
            retryable=True,
        )
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
        raise contract_error(
            task,
            f"output_schema expects a JSON reply, but the model answered "
            f"{scrub.clip(text, 200)!r} ({err})",
            kind="InvalidModelReply",
            retryable=True,
        ) from None
    problem = schema_problem(schema, value)
    if problem:
        raise contract_error(
            task,
            f"the model's reply does not match output_schema: {problem}",
            kind="InvalidModelReply",
            retryable=True,
        )
    return value


# ---- the request ---------------------------------------------------------------------------


def _tail(body: bytes) -> str:
    # scrubbed BEFORE the cut: a key straddling it must not leave a prefix behind
    return scrub.clip(body.decode(errors="replace").strip(), BODY_TAIL_CHARS)


def _retry_after(value: str | None) -> float | None:
    # seconds only; an HTTP date is rare from these servers and falls back to our backoff
    try:
        return None if value is None else max(0.0, float(value.strip()))
    except ValueError:
        return None


def new_client(timeout: float) -> httpx.AsyncClient:
    """The client for one agent attempt: every timeout bounded, no redirect followed."""
    # imported by the first http agent: every worker loads this backend, few run one
    import httpx

    return httpx.AsyncClient(timeout=httpx.Timeout(timeout), follow_redirects=False)


async def post(
    client: httpx.AsyncClient, url: str, payload: bytes, headers: dict[str, str]
) -> Reply:
    """One request; Transient for what is worth another try, Redirected for a 3xx, TooLarge for a
    reply past MAX_REPLY_BYTES."""
    import httpx

    try:
        async with client.stream("POST", url, content=payload, headers=headers) as response:
            body = bytearray()
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > MAX_REPLY_BYTES:
                    raise TooLarge(response.status_code)
    except httpx.TimeoutException as err:
        raise Transient(f"{type(err).__name__}: the request timed out") from None
    except httpx.HTTPError as err:
        raise Transient(f"{type(err).__name__}: {err}") from None
    status = response.status_code
    retry_after = _retry_after(response.headers.get("Retry-After"))
    if response.is_redirect:
        raise Redirected(status, response.headers.get("Location", ""))
    if status == 429 or status >= 500:
        raise Transient(f"HTTP {status}: {_tail(bytes(body))}", retry_after)
    return Reply(status, bytes(body), retry_after)


def backoff(retry: int, retry_after: float | None) -> float:
    if retry_after is not None:
        return min(retry_after, MAX_RETRY_AFTER_S)
    return min(BACKOFF_MAX_S, BACKOFF_FIRST_S * 2**retry)


async def run(task: AgentTask, progress: Progress, scale: float) -> AgentResult:
    agent = task.agent
    base_url = text_setting(task, "base_url", required=True) or ""
    model = text_setting(task, "model") or "default"
    key_env = text_setting(task, "api_key_env")
    schema = agent.settings.get("output_schema")
    if schema is not None and not isinstance(schema, dict):
        raise invalid_settings(
            task, f"'output_schema' must be a JSON schema object, found {schema!r}"
        )
    if schema is None:
        if not agent.outputs:
            raise invalid_settings(
                task, "an http agent needs at least one declared output (the reply text goes there)"
            )
        unfilled = [
            name
            for name in [*agent.outputs[1:], *agent.writes]
            if name not in agent.defaults and name != agent.outputs[0]
        ]
        if unfilled:
            raise invalid_settings(
                task,
                f"the reply fills only the first output "
                f"'{agent.outputs[0]}'; {unfilled} have no default: "
                "give an output_schema to map a JSON reply onto them",
            )
    timeout = number_setting(task, "request_timeout", REQUEST_TIMEOUT_S, minimum=0.1)
    retries = int(number_setting(task, "max_retries", MAX_RETRIES))

    messages = []
    system = text_setting(task, "system")
    if system:
        messages.append({"role": "system", "content": render(task, system, "system")})
    prompt = text_setting(task, "prompt")
    messages.append(
        {
            "role": "user",
            "content": render(task, prompt, "prompt") if prompt else default_prompt(task),
        }
    )
    body: dict[str, Any] = {"model": model, "messages": messages}
    if "temperature" in agent.settings:
        body["temperature"] = number_setting(task, "temperature", 0.0)

    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    secret = ""
    if key_env:
        refused = key_policy.refusal(key_env, os.environ)
        if refused:
            raise ApplicationError(
                f"agent '{agent.id}': {refused}",
                type="KeyVariableNotAllowed",
                non_retryable=True,
            )
        secret = os.environ.get(key_env, "")
        if not secret:
            raise ApplicationError(
                f"agent '{agent.id}': api_key_env names '{key_env}', which is not set on this "
                "worker; set it in the worker's environment",
                type="MissingEnvironmentVariable",
                non_retryable=True,
            )
        # from here on nothing the agent sends may carry it, in any common encoding
        scrub.register(secret)
        headers["Authorization"] = f"Bearer {secret}"

    url = base_url.rstrip("/") + "/chat/completions"
    payload = json.dumps(body, ensure_ascii=False).encode()
    reply: Reply | None = None
    # time spent waiting on the network: requests in flight and the back-off between them
    waited = 0.0
    async with new_client(timeout) as client:
        for retry in range(retries + 1):
            progress.report(
                message=f"asking {model} at {base_url}" + (f" (retry {retry})" if retry else "")
            )
            began = time.monotonic()
            try:
                reply = await post(client, url, payload, headers)
                break
            except Redirected as err:
                raise ApplicationError(
                    f"agent '{agent.id}': {url} answered with a redirect ({err}); redirects are "
                    "not followed, so the key and the prompt go nowhere but base_url: set "
                    "base_url to the server's real address",
                    type="ModelRequestRejected",
                    non_retryable=True,
                ) from None
            except TooLarge as err:
                raise ApplicationError(
                    f"agent '{agent.id}': {url} sent a reply larger than "
                    f"{MAX_REPLY_BYTES // 2**20} MB (HTTP {err.status}), refused rather than "
                    "held in memory; check that base_url is an OpenAI-compatible chat-completions "
                    "server, and if it is, ask the model for a shorter answer in the prompt",
                    type="ModelReplyTooLarge",
                ) from None
            except Transient as err:
                if retry >= retries:
                    raise ApplicationError(
                        f"agent '{agent.id}': {url} still failing after {retries + 1} requests: "
                        f"{scrub.text(str(err))}",
                        type="ModelUnavailable",
                        next_retry_delay=None
                        if err.retry_after is None
                        else timedelta(seconds=min(err.retry_after, MAX_RETRY_AFTER_S)),
                    ) from None
                wait = backoff(retry, err.retry_after)
                progress.report(message=f"{scrub.clip(str(err), 80, '')}; retrying in {wait:.1f}s")
                await progress.sleep(wait)
            finally:
                waited += time.monotonic() - began
    assert reply is not None
    if reply.status >= 400:
        raise ApplicationError(
            f"agent '{agent.id}': {url} rejected the request with HTTP {reply.status}: "
            f"{_tail(reply.body)}",
            type="ModelRequestRejected",
            non_retryable=True,
        )
    text = reply_text(task, reply.body)
    if schema is None:
        result = build_result(
            task, {**agent.defaults, agent.outputs[0]: text}, source="the model's reply"
        )
    else:
        result = build_result(
            task,
            parse_structured(task, text, schema),
            source="the model's JSON reply",
            retryable=True,
        )
    return dataclasses.replace(result, io_wait_s=round(waited, 3))
