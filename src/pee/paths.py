"""Where the project keeps its local state, below every package: the engine, activities and
runtime all read it, so it lives in none of them (activities/artifacts.py needs state_dir and
must not import the runtime)."""

from __future__ import annotations

import os
from pathlib import Path

# the checkout (src/pee/paths.py -> three levels up); inside site-packages for a non-editable
# install, where PEE_STATE_DIR is set (the Docker image does)
PROJECT_ROOT = Path(__file__).resolve().parents[2]


def state_dir() -> Path:
    """Where the embedded server keeps its SQLite history, log and pid file: PEE_STATE_DIR or
    .temporal/ in the project."""
    return Path(os.environ.get("PEE_STATE_DIR") or PROJECT_ROOT / ".temporal")
