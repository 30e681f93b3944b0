"""No secret leaves an agent: the scrubber's forms and its cut-after-scrub rule, and a real run
against a model server that echoes the key (200, 4xx, 5xx, a reply that is no chat completion, a
reply that breaks the schema, a redirect to another port), after which the key and its encodings
are searched in the raw workflow history, the report, the command's output, every SQLite file
and the output folder."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import urllib.parse
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import lz4.frame
import pytest
from temporalio.client import Client

from pee.activities import scrub
from pee.activities.scrub import REDACTED, Scrubber
from tests.agents_fixtures.chat_server import ChatServer, Recorded
from tests.helpers import starter

KEY_ENV = "PEE_PROBE_KEY"
# "/" and "+" make the URL-encoded, JSON-escaped and base64 forms differ from the key itself
KEY = f"sk-probe/{uuid.uuid4().hex}+Zq="
MARKER = f"PROBE-MARKER-{uuid.uuid4().hex}"


def echoes(key: str) -> list[str]:
    """The forms an echoing server sends back (computed here, not by the code under test)."""
    return [
        key,
        base64.b64encode(key.encode()).decode(),
        base64.b64encode(f"user:{key}".encode()).decode(),
        base64.b64encode(f"{key}:".encode()).decode(),
        base64.urlsafe_b64encode(f"ab:{key}".encode()).decode(),
        urllib.parse.quote(key, safe=""),
        urllib.parse.quote_plus(key),
        json.dumps(key)[1:-1].replace("/", "\\/"),
        key.encode().hex(),
    ]


# ---- the scrubber ----------------------------------------------------------------------------


# ids by position: the key is random per process, and pytest-xdist needs every worker to collect
# the same test ids
@pytest.mark.parametrize("form", echoes(KEY), ids=[f"form{i}" for i in range(len(echoes(KEY)))])
def test_every_common_encoding_of_the_key_is_scrubbed(form: str) -> None:
    scrubbed = Scrubber([KEY]).text(f"before {form} after")
    assert form not in scrubbed and REDACTED in scrubbed
    assert scrubbed.startswith("before ") and scrubbed.endswith(" after")


@pytest.mark.parametrize("prefix", ["", "a", "ab", "user:", "Basic x", "q"])
def test_base64_of_the_key_is_found_at_any_offset_inside_a_longer_blob(prefix: str) -> None:
    blob = base64.b64encode(f"{prefix}{KEY}:rest".encode()).decode()
    scrubbed = Scrubber([KEY]).text(blob)
    head, redacted, tail = scrubbed.partition(REDACTED)
    # all that is left: the prefix's and the tail's own characters, and at most 3 more that
    # mix their bits with the key's first and last byte
    assert redacted and len(head) <= len(prefix) * 4 // 3 + 3
    assert len(tail) <= len(":rest") * 4 // 3 + 4


def test_the_key_is_scrubbed_before_the_cut_so_no_prefix_straddles_it() -> None:
    scrubber = Scrubber([KEY])
    text = "x" * 495 + KEY + "tail"
    clipped = scrubber.clip(text, 500)
    assert KEY[:5] not in clipped
    assert clipped.startswith("x" * 495) and clipped.endswith("...")
    tail = scrubber.clip_tail("head" + KEY + "y" * 495, 500)
    assert KEY[-5:] not in tail


def test_values_are_scrubbed_deep_and_short_values_are_not_secrets() -> None:
    scrubber = Scrubber([KEY, "short"])
    assert {"a": [REDACTED, {REDACTED: "x"}], "n": 3} == scrubber.value(
        {"a": [KEY, {KEY: "x"}], "n": 3}
    )
    assert "short stays" == scrubber.text("short stays")


def test_log_records_emitted_while_an_agent_runs_are_scrubbed(
    caplog: pytest.LogCaptureFixture,
) -> None:
    logger = logging.getLogger("pee.test.scrub")
    scrub.install_log_filter(logger)
    scrubber, token = scrub.start()
    try:
        scrub.register(KEY)
        with caplog.at_level(logging.WARNING, logger="pee.test.scrub"):
            logger.warning("the server said %s", f"bad key {KEY}")
    finally:
        scrub.finish(token)
    assert ["the server said bad key ***"] == [r.getMessage() for r in caplog.records]
    assert scrubber and not scrub.current()


# ---- a real run against an echoing server ----------------------------------------------------


def key_of(request: Recorded) -> str:
    return request.headers.get("Authorization", "").removeprefix("Bearer ")


def echo_server(redirect_to: str) -> ChatServer:
    """Answers by the requested model name, echoing the key it was sent."""

    def respond(request: Recorded) -> tuple[int, dict[str, str], str | bytes]:
        key = key_of(request)
        model = request.body.get("model")
        if model == "ok":
            # a document (so it is written to the output folder) full of the key
            markdown = f"# {MARKER}\n\nyou sent " + " | ".join(echoes(key))
            return 200, {}, json.dumps({"reply": {"markdown": markdown, "filename": "ok.md"}})
        if model == "reject":
            # the key straddles the 500-character cut of the error body
            return 401, {}, "E" * 495 + key + " is not a valid key"
        if model == "overloaded":
            return 503, {"Retry-After": "0"}, "O" * 490 + key
        if model == "notchat":
            return 200, {}, ("N" * 496 + key).encode()
        if model == "schema":
            # not JSON; the key straddles the 200-character excerpt of the reply
            return 200, {}, "S" * 197 + key
        if model == "redirect":
            return 307, {"Location": f"{redirect_to}/chat/completions?key={key}"}, ""
        return 404, {}, "unknown model"

    server = ChatServer()
    server.respond = respond
    return server


@pytest.fixture
def servers() -> Iterator[tuple[ChatServer, ChatServer]]:
    other = ChatServer()
    echo = echo_server(other.base_url)
    try:
        yield echo, other
    finally:
        echo.close()
        other.close()


def probe_plan(path: Path, base_url: str) -> Path:
    def agent(model: str, **extra: Any) -> dict[str, Any]:
        return {
            "kind": "http",
            "base_url": base_url,
            "model": model,
            "api_key_env": KEY_ENV,
            "prompt": "say something",
            "outputs": ["reply"],
            "retry": {"max_attempts": 1},
            **extra,
        }

    plan = {
        "name": "secrets-probe",
        "agents": {
            "ok": agent("ok", output_schema={"type": "object", "required": ["reply"]}),
            "reject": agent("reject"),
            "overloaded": agent("overloaded", settings={"max_retries": 1}),
            "notchat": agent("notchat"),
            "schema": agent("schema", output_schema={"type": "object", "required": ["reply"]}),
            "redirect": agent("redirect"),
        },
        "groups": {
            "all": {
                "agents": ["ok", "reject", "overloaded", "notchat", "schema", "redirect"],
                "success_criteria": "at_least_one_agent_succeeds",
            }
        },
    }
    path.write_text(json.dumps(plan))
    return path


def decoded_history(history_json: str) -> str:
    """The raw history JSON plus every payload decoded (base64, and lz4 where compressed)."""
    texts = [history_json]
    stack: list[Any] = [json.loads(history_json)]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            if isinstance(item.get("data"), str):
                data = base64.b64decode(item["data"])
                encoding = (item.get("metadata") or {}).get("encoding", "")
                if base64.b64decode(encoding or "") == b"binary/lz4":
                    data = lz4.frame.decompress(data)
                texts.append(data.decode(errors="replace"))
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return "\n".join(texts)


def files_under(*roots: Path) -> dict[str, bytes]:
    found: dict[str, bytes] = {}
    for root in roots:
        paths = [root] if root.is_file() else sorted(root.rglob("*"))
        found.update({str(p): p.read_bytes() for p in paths if p.is_file()})
    return found


def test_an_echoing_model_server_never_gets_the_key_into_anything_stored(
    cli_env: dict[str, str], tmp_path: Path, servers: tuple[ChatServer, ChatServer]
) -> None:
    echo, other = servers
    plan = probe_plan(tmp_path / "probe.yaml", echo.base_url)
    out, report_file = tmp_path / "out", tmp_path / "report.json"
    cache_dir = tmp_path / "cache"
    cache_dir.mkdir()
    env = {
        **cli_env,
        KEY_ENV: KEY,
        # uncompressed payloads: a leak in the SQLite history would be readable bytes
        "PEE_COMPRESSION_THRESHOLD": str(10**9),
        "PEE_CACHE_PATH": str(cache_dir / "cache.db"),
    }
    workflow_id = f"secrets-probe-{uuid.uuid4().hex[:8]}"
    done = starter(
        env,
        "run",
        plan,
        "--no-learn",
        "--workflow-id",
        workflow_id,
        "--report",
        report_file,
        "--output-dir",
        out,
    )
    logs = done.stdout + done.stderr
    assert 0 == done.returncode, logs
    report = json.loads(report_file.read_text())
    statuses = {agent: row["status"] for agent, row in report["agents"].items()}
    assert "succeeded" == statuses.pop("ok")
    assert set(statuses.values()) == {"failed"}, statuses
    # the server saw the key every time; nothing followed the redirect to the other port
    assert all(key_of(request) == KEY for request in echo.requests)
    assert {"ok", "reject", "overloaded", "notchat", "schema", "redirect"} == {
        request.body["model"] for request in echo.requests
    }
    assert [] == other.requests
    assert "redirect" in report["agents"]["redirect"]["error"]

    async def raw_history() -> str:
        client = await Client.connect(f"127.0.0.1:{env['PEE_DEV_PORT']}")
        history = await client.get_workflow_handle(workflow_id).fetch_history()
        return decoded_history(history.to_json())

    history = asyncio.run(raw_history())
    stored = files_under(out, report_file, cache_dir, Path(env["PEE_STATE_DIR"]))
    assert any(name.endswith("dev.db") for name in stored)
    # the run's reply is there (so the search does look at the right places)...
    assert MARKER in history
    assert MARKER in (out / "docs" / "ok.md").read_text()
    assert any(MARKER.encode() in data for name, data in stored.items() if "dev.db" in name)
    # ...and no form of the key, nor the prefix of one cut at 500 or 200 characters
    forms = [*echoes(KEY), KEY[:8]]
    places = {"history": history.encode(), "logs": logs.encode(), **stored}
    leaks = [
        (form, place) for form in forms for place, data in places.items() if form.encode() in data
    ]
    assert [] == leaks


def test_heartbeat_and_progress_details_are_scrubbed(monkeypatch: pytest.MonkeyPatch) -> None:
    """A 503 whose body starts with the key: while the agent waits to retry, its heartbeats and
    progress signals say what happened ("HTTP 503: ***"), never the key."""
    from pee.activities.types import AgentTask
    from pee.engine.compiled import CompiledAgent, RetrySpec
    from tests.test_activities import FakeClient, environment, run

    monkeypatch.setenv(KEY_ENV, KEY)
    server = ChatServer()
    server.script = [(503, {"Retry-After": "1"}, f"{KEY} is overloaded")]
    try:
        agent = CompiledAgent(
            id="writer",
            role="writer",
            kind="http",
            group="g",
            outputs=["reply"],
            estimated_s=0.0,
            retry=RetrySpec(max_attempts=1, initial_interval_s=0.1),
            settings={"base_url": server.base_url, "api_key_env": KEY_ENV, "prompt": "hi"},
        )
        client = FakeClient()
        env = environment(heartbeat_timeout_s=0.3, client=client)
        beats: list[Any] = []
        env.on_heartbeat = lambda *details: beats.append(details)
        result = run(AgentTask(agent=agent, progress_interval_s=0.1), env)
    finally:
        server.close()
    assert {"reply": "hello"} == result.outputs
    sent = json.dumps([beats, [str(signal) for signal in client.signals]], default=str)
    assert "HTTP 503: ***" in sent
    assert not [form for form in [*echoes(KEY), KEY[:8]] if form in sent]


def test_progress_scrubs_whatever_a_backend_reports() -> None:
    """The safety net: a message a backend did not scrub itself is scrubbed in the snapshot
    that heartbeats and progress signals carry."""
    from pee.activities.progress import Progress
    from pee.activities.types import AgentTask
    from pee.engine.compiled import CompiledAgent
    from tests.test_activities import environment

    task = AgentTask(agent=CompiledAgent(id="a", role="a", kind="http", group="g", estimated_s=0.0))

    async def report() -> str:
        scrubber, token = scrub.start()
        try:
            scrub.register(KEY)
            progress = Progress(task)
            progress.report(message=f"talking to {KEY}")
            return progress.snapshot().message
        finally:
            scrub.finish(token)

    message = asyncio.run(environment().run(report))
    assert message.startswith("talking to ***") and KEY[:8] not in message


@pytest.mark.parametrize(
    ("name", "credential"),
    [
        ("OPENAI_API_KEY", True),
        ("GITHUB_TOKEN", True),
        ("DB_PASSWORD", True),
        ("APIKEY", True),
        ("AUTHOR_NAME", False),
        ("MODE", False),
        ("HOME", False),
    ],
)
def test_credential_variables_are_known_by_their_name(name: str, credential: bool) -> None:
    assert credential == scrub.sensitive_name(name)
