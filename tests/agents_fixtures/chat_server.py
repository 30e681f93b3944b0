"""A local OpenAI-compatible chat-completions server for tests (127.0.0.1, a free port).

`script` holds the answers to give, in order: (status, headers, reply content or raw body);
when it is empty every request gets `content` with status 200. `respond`, when set, answers
instead: it gets the recorded request and returns (status, headers, content or raw body); bytes
are sent as the raw body whatever the status.
Every request is recorded.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Recorded:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]
    at: float


@dataclass
class ChatServer:
    content: str = "hello"
    script: list[tuple[int, dict[str, str], str]] = field(default_factory=list)
    requests: list[Recorded] = field(default_factory=list)
    # answer this much later (for request timeouts)
    delay_s: float = 0.0
    respond: Callable[[Recorded], tuple[int, dict[str, str], str | bytes]] | None = None

    def __post_init__(self) -> None:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the http.server API
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                recorded = Recorded(self.path, dict(self.headers), body, time.monotonic())
                server.requests.append(recorded)
                time.sleep(server.delay_s)
                if server.respond is not None:
                    status, headers, content = server.respond(recorded)
                else:
                    status, headers, content = (
                        server.script.pop(0) if server.script else (200, {}, server.content)
                    )
                if isinstance(content, bytes):
                    data = content  # a raw body, whatever the status
                elif status == 200:
                    data = json.dumps(
                        {
                            "id": "chatcmpl-1",
                            "object": "chat.completion",
                            "model": body.get("model"),
                            "choices": [
                                {
                                    "index": 0,
                                    "finish_reason": "stop",
                                    "message": {"role": "assistant", "content": content},
                                }
                            ],
                        }
                    ).encode()
                else:
                    data = content.encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    for name, value in headers.items():
                        self.send_header(name, value)
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up waiting (the timeout test)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
