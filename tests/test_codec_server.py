"""The codec server as the Web UI and the temporal CLI call it (the codec server protocol):
decode/encode at any path depth and with any query string, X-Namespace, CORS preflight for the
UI's origin, the token as the endpoint's path or the Authorization header; and hardened: other
origins refused, an lz4 bomb and oversized or malformed requests answered with a 4xx."""

from __future__ import annotations

import base64
import json
import re
import socket
import urllib.error
import urllib.request
from collections.abc import Iterator

import lz4.frame
import pytest
from google.protobuf import json_format
from temporalio.api.common.v1 import Payload, Payloads

from pee.runtime.codec import ENCODING
from pee.runtime.codec_server import MAX_BODY, MAX_DECODED, BackgroundCodecServer, CodecServerConfig
from tests.helpers import TemporalHarness, compiled_plan, group, shown_events, sim

ORIGIN = "http://127.0.0.1:8233"
TOKEN = "secret-token"


@pytest.fixture(scope="module")
def codec_url() -> Iterator[str]:
    """A codec server that requires TOKEN and grants CORS to ORIGIN; its base URL."""
    server = BackgroundCodecServer(CodecServerConfig(origin=ORIGIN, token=TOKEN)).start()
    try:
        yield server.url
    finally:
        server.stop()


def post(
    url: str, body: dict | bytes, method: str = "POST", **headers: str
) -> tuple[int, dict, dict]:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    request = urllib.request.Request(
        url,
        data if method == "POST" else None,
        method=method,
        headers={"Content-Type": "application/json", **headers},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, dict(response.headers), json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), json.loads(error.read() or b"{}")


def raw_request(url: str, head: bytes) -> int:
    """Send bytes as they are (urllib would fix the headers) and return the status code."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(head)
        reply = b""
        while b"\r\n" not in reply:
            chunk = sock.recv(4096)
            if not chunk:
                break
            reply += chunk
    return int(reply.split(b" ", 2)[1])


def big_payload() -> dict:
    data = json.dumps("x" * 50_000).encode()
    return {
        "metadata": {"encoding": base64.b64encode(b"json/plain").decode()},
        "data": base64.b64encode(data).decode(),
    }


def lz4_body(data: bytes) -> dict:
    message = Payloads(payloads=[Payload(metadata={"encoding": ENCODING}, data=data)])
    return json.loads(json_format.MessageToJson(message))


@pytest.mark.parametrize(
    "path",
    [
        f"/{TOKEN}/{{action}}",
        f"/{TOKEN}/{{action}}?preserveStorageRefs=true",
        f"/{TOKEN}/{{action}}/?preserveStorageRefs=true&other=1",
    ],
)
def test_encode_then_decode_round_trips_with_the_token_as_the_path(
    codec_url: str, path: str
) -> None:
    """/encode compresses a large payload to binary/lz4 and /decode gives it back, with the
    query strings the Web UI adds and the X-Namespace header."""
    status, _, encoded = post(
        codec_url + path.format(action="encode"),
        {"payloads": [big_payload()]},
        **{"X-Namespace": "default"},
    )
    assert 200 == status, encoded
    (payload,) = encoded["payloads"]
    assert ENCODING == base64.b64decode(payload["metadata"]["encoding"])
    status, _, decoded = post(
        codec_url + path.format(action="decode"), encoded, **{"X-Namespace": "other-namespace"}
    )
    assert (200, [big_payload()]) == (status, decoded["payloads"])


def test_the_token_may_come_as_the_authorization_header(codec_url: str) -> None:
    """`temporal --codec-auth TOKEN`: Authorization: TOKEN (or Bearer TOKEN) at a bare path."""
    for value in (TOKEN, f"Bearer {TOKEN}"):
        status, _, decoded = post(
            f"{codec_url}/decode", {"payloads": [big_payload()]}, Authorization=value
        )
        assert (200, [big_payload()]) == (status, decoded["payloads"])


def test_a_missing_token_is_401_and_a_wrong_one_403(codec_url: str) -> None:
    """No token at all: 401 saying where it goes; a wrong path or header token: 403."""
    status, _, body = post(f"{codec_url}/decode", {"payloads": []})
    assert 401 == status and "token" in body["error"]
    assert 403 == post(f"{codec_url}/wrong-token/decode", {"payloads": []})[0]
    assert 403 == post(f"{codec_url}/decode", {"payloads": []}, Authorization="wrong")[0]


def test_preflight_and_cors_for_the_ui_origin_only(codec_url: str) -> None:
    """OPTIONS from the UI's origin: 204 with the CORS grants (X-Namespace among the headers);
    a POST from the UI's origin carries them too; any other origin is refused outright."""
    status, headers, _ = post(
        f"{codec_url}/{TOKEN}/decode?preserveStorageRefs=true",
        b"",
        method="OPTIONS",
        Origin=ORIGIN,
        **{
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type,x-namespace",
        },
    )
    assert (204, ORIGIN) == (status, headers.get("Access-Control-Allow-Origin"))
    assert "POST" in headers["Access-Control-Allow-Methods"]
    assert "X-Namespace" in headers["Access-Control-Allow-Headers"]
    status, headers, _ = post(f"{codec_url}/{TOKEN}/decode", {"payloads": []}, Origin=ORIGIN)
    assert (200, ORIGIN) == (status, headers.get("Access-Control-Allow-Origin"))
    for method in ("OPTIONS", "POST"):
        status, headers, body = post(
            f"{codec_url}/{TOKEN}/decode",
            {"payloads": []},
            method=method,
            Origin="http://evil.example",
        )
        assert 403 == status and "http://evil.example" in body["error"], method
        assert "Access-Control-Allow-Origin" not in headers


def test_an_lz4_bomb_is_refused_with_413(codec_url: str) -> None:
    """A frame that expands past the decode budget (here 128 MiB of zeros in ~0.5 MB) is a
    413 naming the limit (at most MAX_DECODED), not hundreds of megabytes of answer."""
    bomb = lz4.frame.compress(b"\0" * (2 * MAX_DECODED))
    status, _, body = post(f"{codec_url}/{TOKEN}/decode", lz4_body(bomb))
    assert 413 == status, body
    limit = int(re.search(r"exceed (\d+) bytes", body["error"]).group(1))
    assert limit <= MAX_DECODED


def test_the_ratio_cap_stops_a_small_bomb_early() -> None:
    """Above the floor, decoded bytes may be at most max_ratio times the body: a 20 KB frame
    of zeros (5 MB decoded) is refused by a server with a 1 MB floor and ratio 64."""
    config = CodecServerConfig(origin=ORIGIN, token=None)
    assert 1024 * 1024 == config.ratio_floor and 64 == config.max_ratio
    server = BackgroundCodecServer(config).start()
    try:
        bomb = lz4.frame.compress(b"\0" * (5 * 1024 * 1024))
        assert len(bomb) * 64 < 5 * 1024 * 1024
        assert 413 == post(f"{server.url}/decode", lz4_body(bomb))[0]
        fine = lz4.frame.compress(b"\0" * (512 * 1024))
        assert 400 == post(f"{server.url}/decode", lz4_body(fine))[0]  # zeros: no Payload
    finally:
        server.stop()


@pytest.mark.parametrize(
    "length", [b"-1", b"abc", b"1e3", str(MAX_BODY + 1).encode(), b"99999999999999999999"]
)
def test_a_bad_or_oversized_content_length_is_4xx(codec_url: str, length: bytes) -> None:
    """Negative, non-numeric or over the cap: refused before any body is read."""
    head = (
        (
            f"POST /{TOKEN}/decode HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            "Connection: close\r\nContent-Length: "
        ).encode()
        + length
        + b"\r\n\r\n"
    )
    assert raw_request(codec_url, head) in (400, 413)


def test_a_missing_content_length_is_411(codec_url: str) -> None:
    head = (f"POST /{TOKEN}/decode HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").encode()
    assert 411 == raw_request(codec_url, head)


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (b"{not json", "not Payloads JSON"),
        (b'{"payloads": 3}', "not Payloads JSON"),
        (b'{"payloads": [{"data": "%%%"}]}', "not Payloads JSON"),
        (b'{"unknown": []}', "not Payloads JSON"),
        (json.dumps(lz4_body(b"not an lz4 frame")).encode(), "cannot decode"),
        (json.dumps(lz4_body(lz4.frame.compress(b"x" * 1000)[:-8])).encode(), "cannot decode"),
        (json.dumps(lz4_body(lz4.frame.compress(b"\xff" * 100))).encode(), "cannot decode"),
    ],
)
def test_a_malformed_body_is_400_saying_what_is_wrong(
    codec_url: str, body: bytes, words: str
) -> None:
    """Bad JSON, the wrong shape, bad base64, a corrupt or truncated frame, a frame that
    does not hold a Payload: 400 with the reason."""
    status, _, answer = post(f"{codec_url}/{TOKEN}/decode", body)
    assert 400 == status and words in answer["error"], answer


def test_no_payloads_is_an_empty_answer(codec_url: str) -> None:
    """`{}` (empty Payloads in protobuf JSON, what the CLI sends for a query without
    arguments) and an empty list are answered, not refused."""
    for body in ({}, {"payloads": []}):
        status, _, answer = post(f"{codec_url}/{TOKEN}/encode", body)
        assert (200, []) == (status, answer.get("payloads", []))


def test_other_paths_and_methods_are_4xx(codec_url: str) -> None:
    assert 404 == post(f"{codec_url}/{TOKEN}/transcode", {"payloads": []})[0]
    assert 405 == post(f"{codec_url}/{TOKEN}/decode", b"", method="GET")[0]


def test_the_server_answers_after_every_refusal(codec_url: str) -> None:
    """None of the above knocked it over: a good request still succeeds."""
    assert 200 == post(f"{codec_url}/{TOKEN}/decode", {"payloads": [big_payload()]})[0]


def test_temporal_cli_decodes_history_through_it(temporal: TemporalHarness, codec_url: str) -> None:
    """`temporal workflow show --codec-endpoint` shows a compressed input as plain JSON, with
    the token as the endpoint's path and as --codec-auth."""
    agents = [sim(f"agent{i}", "g", 0.0, padding="p" * 200) for i in range(60)]
    plan = compiled_plan(agents, [group("g", [a.id for a in agents])])

    async def body(handle):
        await handle.result()
        return handle.id

    workflow_id = temporal.with_plan(plan, body)

    def show(*extra: str) -> dict:
        events = shown_events(temporal.address, workflow_id, *extra)
        return events[0]["workflowExecutionStartedEventAttributes"]["input"]["payloads"][0]

    raw = show()
    assert ENCODING == base64.b64decode(raw["metadata"]["encoding"])
    for flags in (
        ("--codec-endpoint", f"{codec_url}/{TOKEN}"),
        ("--codec-endpoint", codec_url, "--codec-auth", TOKEN),
    ):
        decoded = show(*flags)
        assert b"json/plain" == base64.b64decode(decoded["metadata"]["encoding"])
        agent = json.loads(base64.b64decode(decoded["data"]))["plan"]["agents"][59]
        assert "agent59" == agent["id"]
