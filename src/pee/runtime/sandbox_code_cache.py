"""Compiled code of the modules the workflow sandbox re-imports, kept once per process.

The SDK's sandbox imports a workflow's module (and every module of it not passed through)
afresh for each run, so module-level state never leaks between runs. Each such import asks the
module's loader for its code: without a current bytecode cache (an editable install, a read-only
site-packages, PYTHONDONTWRITEBYTECODE) that compiles the source again, about 10 ms for
plan_workflow.py, at every run; with one it still reads and unmarshals the file. The module body
itself must run again each time (that is the isolation), but its code object is immutable and
the same for every run: this keeps it per source file, keyed by the file's modification time and
size as a bytecode cache is, and only for imports made while a sandboxed instance is being created.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import os
import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from types import CodeType, ModuleType

# (source path, mtime in ns, size) -> code: an edited source file gets a new entry
_CODES: dict[tuple[str, int, int], CodeType] = {}
_CODES_LOCK = threading.Lock()


class _CachingSourceLoader(importlib.machinery.SourceFileLoader):
    def get_code(self, fullname: str) -> CodeType:
        source = self.get_filename(fullname)
        stat = os.stat(source)
        key = (source, stat.st_mtime_ns, stat.st_size)
        code = _CODES.get(key)
        if code is None:
            compiled = super().get_code(fullname)
            if compiled is None:  # a source loader always returns code; typed Optional
                raise ImportError(f"no code for module {fullname} at {source}", name=fullname)
            with _CODES_LOCK:
                code = _CODES.setdefault(key, compiled)
        return code


class _SandboxImportFinder(importlib.abc.MetaPathFinder):
    """First on sys.meta_path; while a sandboxed instance is created on this thread, asks the
    finders after it for the module and swaps a plain source loader for the caching one."""

    def __init__(self) -> None:
        self._state = threading.local()

    @contextmanager
    def active(self) -> Iterator[None]:
        previous = getattr(self._state, "active", False)
        self._state.active = True
        try:
            yield
        finally:
            self._state.active = previous

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if not getattr(self._state, "active", False):
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is None:
                continue
            # exactly the standard loader: anything else (zip, namespace, a custom loader) is
            # left as its finder made it
            if type(spec.loader) is importlib.machinery.SourceFileLoader:
                spec.loader = _CachingSourceLoader(spec.loader.name, spec.loader.path)
            return spec
        return None


_FINDER = _SandboxImportFinder()
_INSTALL_LOCK = threading.Lock()


@contextmanager
def cached_imports() -> Iterator[None]:
    """Imports on this thread inside the block reuse code compiled by earlier ones."""
    with _INSTALL_LOCK:
        if _FINDER not in sys.meta_path:
            sys.meta_path.insert(0, _FINDER)
    with _FINDER.active():
        yield


def cached_modules() -> int:
    """Source files whose code is kept (for tests and diagnostics)."""
    return len(_CODES)
