"""The worker's build id: a hash of the package's own source and the Temporal SDK's version.

Left unset, the Temporal SDK derives one by hashing the bytecode of every loaded module, which
took about a third of a second of every `pee run` before its first agent. The engine's
behaviour is its own code plus the SDK that runs it, so those two name it: the id stays the same
for the same code and changes with any edit or SDK upgrade. Reading the package's ~140 small
files costs a few milliseconds (the installed distribution's metadata, for its version, would
cost more than that).
"""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path

import temporalio

import pee

PACKAGE_ROOT = Path(pee.__file__).resolve().parent


@functools.cache
def build_id(root: Path = PACKAGE_ROOT) -> str:
    """``root``: the package folder whose ``*.py`` files are hashed (tests pass a copy)."""
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        digest.update(path.relative_to(root).as_posix().encode())
        digest.update(b"\0")
        digest.update(path.read_bytes())
        digest.update(b"\0")
    return f"pee-{digest.hexdigest()[:16]}-temporalio-{temporalio.__version__}"
