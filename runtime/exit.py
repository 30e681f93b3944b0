"""Exit with the right code even when the Rust bridge would crash interpreter shutdown.

After all work has succeeded, the Temporal core's threads can call into Python while the
interpreter finalises and abort it (sdk-python issue 300), turning exit code 0 into 134/139.
Our entry points therefore flush and leave with os._exit once everything is shut down in order.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import sys
from typing import NoReturn

# scripts that are ours to end; anything else (pytest calling main()) keeps a normal exit
ENTRY_SCRIPTS = ("starter.py", "worker.py")


def exit_process(code: int) -> NoReturn:
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os._exit(code)


def is_entry_point() -> bool:
    main = sys.modules.get("__main__")
    return os.path.basename(getattr(main, "__file__", None) or "") in ENTRY_SCRIPTS


def exit_hard_at_shutdown(code: int) -> int:
    """Arrange for a process started from one of our scripts to end with ``code`` via os._exit.

    atexit runs before the interpreter starts finalising, so the bridge never sees a half-dead
    interpreter. Returns ``code`` so a handler can ``return exit_hard_at_shutdown(code)``.
    """
    if is_entry_point():
        atexit.register(exit_process, code)
    return code
