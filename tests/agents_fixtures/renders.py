"""Render functions for tests, at module level so a render process can import them by name
(pee.activities.render_runner passes the function by reference)."""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from typing import Any


def timed_render(source: Any, scope: Mapping[str, Any]) -> tuple[Any, list[str]]:
    """Takes 0.2 s; the text is "<start> <end>" (wall clock), to see whether renders overlap."""
    start = time.time()
    time.sleep(0.2)
    return f"{start} {time.time()}", []


def sleepy_render(source: Any, scope: Mapping[str, Any]) -> tuple[Any, list[str]]:
    time.sleep(30)
    return "late", []


def runaway_render(source: Any, scope: Mapping[str, Any]) -> tuple[Any, list[str]]:
    """Writes its pid to scope["pid_file"], then burns CPU forever."""
    path = str(scope["pid_file"])
    with open(path + ".tmp", "w") as out:
        out.write(str(os.getpid()))
    os.replace(path + ".tmp", path)
    count = 0
    while True:
        count += 1


def failing_render(source: Any, scope: Mapping[str, Any]) -> tuple[Any, list[str]]:
    raise ValueError("the render broke")
