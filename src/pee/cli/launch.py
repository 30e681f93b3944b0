"""The `pee` console script: `pee run` goes through the fork server beside the embedded dev
server when one is up and current (pee.cli.fork_client), skipping about half a second of
imports; everything else, and `run` whenever the server cannot be used, is pee.cli.main.

Kept small: what is imported here is paid by every command before it starts."""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import NoReturn


def entry() -> NoReturn:
    if sys.argv[1:2] == ["run"]:
        try:
            from pee.cli import fork_client

            code = fork_client.run(sys.argv)
        except KeyboardInterrupt:
            # Ctrl-C before the run started, as pee.runtime.exit.run_entry says it
            print("interrupted", file=sys.stderr)
            code = 130
        if code is not None:
            for stream in (sys.stdout, sys.stderr):
                stream.flush()
            os._exit(code)
    from pee.cli.main import entry as in_process

    in_process()
