"""The codec server: decode/encode over HTTP, CORS for the UI origin only, the auth token, and
`temporal workflow show --codec-endpoint` reading compressed history through it."""

from __future__ import annotations

import base64
import json
import subprocess
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest

from runtime.codec import ENCODING
from runtime.codec_server import serve
from runtime.devserver import find_temporal_binary
from tests.conftest import TemporalHarness, compiled_plan, group, sim

ORIGIN = "http://127.0.0.1:8233"


@pytest.fixture()
def codec_url() -> Iterator[str]:
    server = serve("127.0.0.1", 0, ORIGIN, token="secret-token")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def post(url: str, body: dict, **headers: str) -> tuple[int, dict, dict]:
    request = urllib.request.Request(url, json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json", **headers})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), json.loads(error.read() or b"{}")


def big_payload() -> dict:
    data = json.dumps("x" * 50_000).encode()
    return {"metadata": {"encoding": base64.b64encode(b"json/plain").decode()},
            "data": base64.b64encode(data).decode()}


def test_encode_then_decode_round_trips(codec_url: str) -> None:
    """/encode compresses a large payload to binary/lz4 and /decode gives it back."""
    auth = {"Authorization": "secret-token"}
    status, _, encoded = post(f"{codec_url}/encode", {"payloads": [big_payload()]}, **auth)
    assert 200 == status
    (payload,) = encoded["payloads"]
    assert ENCODING == base64.b64decode(payload["metadata"]["encoding"])
    status, _, decoded = post(f"{codec_url}/decode", encoded, **auth)
    assert (200, [big_payload()]) == (status, decoded["payloads"])


def test_token_and_cors(codec_url: str) -> None:
    """Without the token: 401. CORS headers only for the configured UI origin."""
    assert 401 == post(f"{codec_url}/decode", {"payloads": []})[0]
    _, headers, _ = post(f"{codec_url}/decode", {"payloads": []}, Authorization="secret-token",
                         Origin=ORIGIN)
    assert ORIGIN == headers.get("Access-Control-Allow-Origin")
    _, headers, _ = post(f"{codec_url}/decode", {"payloads": []}, Authorization="secret-token",
                         Origin="http://evil.example")
    assert "Access-Control-Allow-Origin" not in headers


def test_temporal_cli_decodes_history_through_it(temporal: TemporalHarness,
                                                 codec_url: str) -> None:
    """`temporal workflow show --codec-endpoint` shows a compressed input as plain JSON."""
    agents = [sim(f"agent{i}", "g", 0.0, padding="p" * 200) for i in range(60)]
    plan = compiled_plan(agents, [group("g", [a.id for a in agents])])

    async def body(handle):
        await handle.result()
        return handle.id

    workflow_id = temporal.with_plan(plan, body)

    def show(*extra: str) -> dict:
        out = subprocess.run(
            [str(find_temporal_binary()), "workflow", "show", "--workflow-id", workflow_id,
             "--address", temporal.address, "--output", "json", *extra],
            capture_output=True, text=True, timeout=60, check=True).stdout
        started = json.loads(out)["events"][0]["workflowExecutionStartedEventAttributes"]
        return started["input"]["payloads"][0]

    raw = show()
    decoded = show("--codec-endpoint", codec_url, "--codec-auth", "secret-token")
    assert ENCODING == base64.b64decode(raw["metadata"]["encoding"])
    assert b"json/plain" == base64.b64decode(decoded["metadata"]["encoding"])
    assert "agent59" in json.loads(base64.b64decode(decoded["data"]))["plan"]["agents"][59]["id"]
