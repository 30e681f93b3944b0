"""A codec server for the Temporal Web UI and `temporal --codec-endpoint`: POST /decode and
/encode with `{"payloads": [...]}` (payloads in protobuf JSON), answered by runtime.codec.

CORS is granted to the configured UI origin only; with an auth token, requests must carry
`Authorization: <token>` (the UI's and the CLI's `--codec-auth` header).
"""

from __future__ import annotations

import asyncio
import json
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from google.protobuf import json_format
from temporalio.api.common.v1 import Payloads

from runtime.codec import Lz4Codec

DEFAULT_PORT = 8234
DEFAULT_ORIGIN = "http://127.0.0.1:8233"
MAX_BODY = 64 * 1024 * 1024


def transcode(body: bytes, path: str, codec: Lz4Codec) -> bytes:
    """The JSON answer to one /decode or /encode request body."""
    payloads = Payloads()
    json_format.Parse(body, payloads)
    step = codec.decode if path.endswith("/decode") else codec.encode
    result = asyncio.run(step(list(payloads.payloads)))
    return json_format.MessageToJson(Payloads(payloads=result)).encode()


def make_handler(origin: str, token: str | None, codec: Lz4Codec) -> type[BaseHTTPRequestHandler]:
    class CodecHandler(BaseHTTPRequestHandler):
        def _cors(self) -> None:
            if self.headers.get("Origin") == origin:
                self.send_header("Access-Control-Allow-Origin", origin)
                self.send_header("Access-Control-Allow-Methods", "POST, OPTIONS")
                self.send_header("Access-Control-Allow-Headers",
                                 "Content-Type, X-Namespace, Authorization")
                self.send_header("Access-Control-Allow-Credentials", "true")

        def _reply(self, status: HTTPStatus, body: bytes = b"",
                   content_type: str = "application/json") -> None:
            self.send_response(status)
            self._cors()
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_OPTIONS(self) -> None:  # noqa: N802 (http.server's naming)
            self._reply(HTTPStatus.OK)

        def do_POST(self) -> None:  # noqa: N802
            if not self.path.rstrip("/").endswith(("/decode", "/encode")):
                self._reply(HTTPStatus.NOT_FOUND, b'{"error": "POST /decode or /encode"}')
                return
            if token is not None and self.headers.get("Authorization") != token:
                self._reply(HTTPStatus.UNAUTHORIZED, b'{"error": "missing or wrong token"}')
                return
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY:
                self._reply(HTTPStatus.REQUEST_ENTITY_TOO_LARGE)
                return
            try:
                answer = transcode(self.rfile.read(length), self.path.rstrip("/"), codec)
            except (json_format.ParseError, ValueError, RuntimeError) as exc:
                self._reply(HTTPStatus.BAD_REQUEST,
                            json.dumps({"error": f"cannot transcode: {exc}"}).encode())
                return
            self._reply(HTTPStatus.OK, answer)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # quiet: the UI polls often

    return CodecHandler


def serve(host: str = "127.0.0.1", port: int = DEFAULT_PORT, origin: str = DEFAULT_ORIGIN,
          token: str | None = None) -> ThreadingHTTPServer:
    """A started-but-not-serving server; call serve_forever() (or run it in a thread)."""
    return ThreadingHTTPServer((host, port), make_handler(origin, token, Lz4Codec()))
