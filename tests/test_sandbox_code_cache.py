"""pee.runtime.sandbox_code_cache: a module imported afresh inside `cached_imports()` (as the
workflow sandbox does for every run) runs its body again with fresh state but reuses the code
compiled the first time; an edited source file is compiled again; imports outside the block are
untouched. The sandbox-level guarantees (module state per run, restrictions) are in
tests/test_sandbox_runner.py, which runs through the lean runner that uses this."""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from pee.runtime.sandbox_code_cache import cached_imports

SOURCE = "RUNS = []\nRUNS.append(1)\n\ndef answer():\n    return {value}\n"


@pytest.fixture
def module_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.syspath_prepend(str(tmp_path))
    # no bytecode next to the source: each plain import compiles it, as in an environment
    # with PYTHONDONTWRITEBYTECODE or a read-only install
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    yield tmp_path
    for name in [name for name in sys.modules if name.startswith("cache_probe")]:
        del sys.modules[name]


def _write(directory: Path, name: str, value: int) -> None:
    path = directory / f"{name}.py"
    path.write_text(SOURCE.format(value=value))
    importlib.invalidate_caches()


def _fresh_import(name: str) -> ModuleType:
    # what the sandbox does for each run: the module is not in its sys.modules yet
    sys.modules.pop(name, None)
    return importlib.import_module(name)


def test_a_reimport_runs_the_body_again_with_the_code_compiled_once(module_dir: Path) -> None:
    _write(module_dir, "cache_probe_a", 1)
    with cached_imports():
        first = _fresh_import("cache_probe_a")
        second = _fresh_import("cache_probe_a")
    assert first is not second
    assert first.RUNS == [1] and second.RUNS == [1]  # state is the new run's own
    assert first.RUNS is not second.RUNS
    assert first.answer.__code__ is second.answer.__code__


def test_an_edited_source_is_compiled_again(module_dir: Path) -> None:
    _write(module_dir, "cache_probe_b", 1)
    with cached_imports():
        before = _fresh_import("cache_probe_b")
        _write(module_dir, "cache_probe_b", 22)  # another size, so another key on any clock
        stat = (module_dir / "cache_probe_b.py").stat()
        os.utime(module_dir / "cache_probe_b.py", ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
        after = _fresh_import("cache_probe_b")
    assert before.answer() == 1
    assert after.answer() == 22


def test_imports_outside_the_block_compile_as_usual(module_dir: Path) -> None:
    _write(module_dir, "cache_probe_c", 1)
    with cached_imports():
        cached = _fresh_import("cache_probe_c")
    plain = _fresh_import("cache_probe_c")
    again = _fresh_import("cache_probe_c")
    assert plain.answer.__code__ is not again.answer.__code__
    assert cached.answer.__code__ is not plain.answer.__code__
