"""`codec-server`: decode lz4 payloads for the Web UI and the temporal CLI."""

from __future__ import annotations

import argparse
import os
from typing import Any

from pee.runtime.codec_defaults import DEFAULT_ORIGIN, DEFAULT_PORT, TOKEN_ENV

EXIT_OK, EXIT_BAD_INPUT = 0, 2


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "codec-server",
        help="serve /decode and /encode for the Web UI and `temporal`",
        description="Serve the lz4 payload codec over HTTP (the Temporal codec server protocol) "
        "so the Temporal Web UI and `temporal --codec-endpoint http://127.0.0.1:PORT` show "
        "compressed payloads decoded. Requests from any Origin but --cors-origin are refused. "
        "Runs until Ctrl-C or SIGTERM.",
    )
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="default 8234")
    parser.add_argument("--host", default="127.0.0.1", help="default 127.0.0.1")
    parser.add_argument(
        "--cors-origin",
        default=DEFAULT_ORIGIN,
        help=f"the Web UI's origin allowed to call it (default {DEFAULT_ORIGIN})",
    )
    parser.add_argument(
        "--auth-token",
        help=f"require this token (default {TOKEN_ENV}; none when unset), as the "
        "endpoint's path (http://HOST:PORT/TOKEN) or the Authorization header "
        "(`temporal --codec-auth TOKEN`). Prefer the variable: arguments are "
        "visible to other local users",
    )
    parser.set_defaults(handler=run_codec_server)


def run_codec_server(args: argparse.Namespace) -> int:
    from pee.runtime.codec_server import CodecServerConfig, run

    token = args.auth_token or os.environ.get(TOKEN_ENV) or None
    if token is not None and ("/" in token or not token.strip()):
        print(
            "error: --auth-token: a token cannot contain '/' or be blank (it is a path "
            "segment of the endpoint)"
        )
        return EXIT_BAD_INPUT
    config = CodecServerConfig(origin=args.cors_origin.rstrip("/"), token=token)
    print(
        f"codec server at http://{args.host}:{args.port} (CORS origin {config.origin}"
        f"{', token required' if token else ''}); Ctrl-C stops",
        flush=True,
    )
    try:
        run(config, args.host, args.port)
    except OSError as err:
        print(f"error: cannot serve on {args.host}:{args.port}: {err}")
        return EXIT_BAD_INPUT
    return EXIT_OK
