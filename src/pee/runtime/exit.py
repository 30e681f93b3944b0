"""Exit with the right code even when the Rust bridge would crash interpreter shutdown.

After all work has succeeded, the Temporal core's threads can call into Python while the
interpreter finalises and abort it (sdk-python issue 300), turning exit code 0 into 134/139.
Our entry points therefore shut down worker, then client, then the event loop (leaving
`asyncio.run`), flush, and leave with os._exit: the interpreter never finalises with the bridge
alive, so the code we return is the code the shell sees.
"""

from __future__ import annotations

import contextlib
import os
import sys
import traceback
from collections.abc import Callable
from typing import NoReturn

EXIT_INTERRUPTED = 130
# what a shell reports for a process killed by SIGPIPE (128 + 13), as `cat big | head` does
EXIT_BROKEN_PIPE = 141


def exit_process(code: int) -> NoReturn:
    # spans and metrics still buffered would die with os._exit: export them first
    telemetry = sys.modules.get("pee.runtime.telemetry")
    if telemetry is not None:
        with contextlib.suppress(Exception):
            telemetry.shutdown()
    # SQLite stores kept open would leave their commits in the -wal files (pee.stores.sql)
    stores = sys.modules.get("pee.stores.sql")
    if stores is not None:
        with contextlib.suppress(Exception):
            stores.close_kept()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os._exit(code)


def silence_stdout() -> None:
    """Point stdout at /dev/null, so the final flush of what is still buffered for a closed
    pipe cannot fail again."""
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())


def run_entry(main: Callable[[], int | None]) -> NoReturn:
    """Run an entry point's main() and exit hard with its code, however it ends.

    argparse's SystemExit (2 on bad arguments, 0 on --help) and Ctrl-C keep their usual codes.
    """
    try:
        code = main()
    except SystemExit as stop:
        if stop.code is None or isinstance(stop.code, int):
            code = stop.code or 0
        else:
            # sys.exit("message") prints the message and exits 1, as the interpreter would
            print(stop.code, file=sys.stderr)
            code = 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        code = EXIT_INTERRUPTED
    except BrokenPipeError:
        # the reader went away (`report ID | head`): no traceback, nothing more to write to it
        silence_stdout()
        code = EXIT_BROKEN_PIPE
    except Exception:
        # a bug, not a verdict on the run: show it, and still leave without the bridge crash
        traceback.print_exc()
        code = 1
    exit_process(int(code or 0))
