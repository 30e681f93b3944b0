"""`codec-server`: decode lz4 payloads for the Web UI and the temporal CLI."""

from __future__ import annotations

import argparse
from typing import Any

from runtime.codec_server import DEFAULT_ORIGIN, DEFAULT_PORT, serve


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "codec-server", help="serve /decode and /encode for the Web UI and `temporal`",
        description="Serve the lz4 payload codec over HTTP so the Temporal Web UI "
        "(Settings → Codec Server) and `temporal --codec-endpoint http://127.0.0.1:PORT` show "
        "compressed payloads decoded. Runs until Ctrl-C.",
    )
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="default 8234")
    parser.add_argument("--host", default="127.0.0.1", help="default 127.0.0.1")
    parser.add_argument("--cors-origin", default=DEFAULT_ORIGIN,
                        help=f"the Web UI's origin allowed to call it (default {DEFAULT_ORIGIN})")
    parser.add_argument("--auth-token", help="require this Authorization header value")
    parser.set_defaults(handler=run_codec_server)


def run_codec_server(args: argparse.Namespace) -> int:
    server = serve(args.host, args.port, args.cors_origin, args.auth_token)
    print(f"codec server at http://{args.host}:{args.port} (CORS origin {args.cors_origin}); "
          "Ctrl-C stops", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0
