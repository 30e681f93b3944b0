"""Prefetching (seed `cache_optimization.prefetching`): warm a worker for the groups most likely
to start next while the current group runs.

The workflow starts one `prefetch_group` activity per such group (src/pee/workflows/cache_levels.py
chooses them) on its agents' task queue. It parses the group's template files
(`prefetch_templates`) and resolves the artifact references among the context values its agents
will read (`prefetch_context`) into this worker process's PrefetchStore. When the agent runs,
the template backend and the artifact resolution look here first: a hit skips the file read and
parse, or the artifact read and decompression. Each agent's hits and misses travel back in
AgentResult.cache["prefetch"], so the run report counts them.

The store is in-process (like the render cache): a prefetch helps the worker that ran it, and a
miss only costs the read it would have cost anyway. A template entry is used only while the
file's size and modification time are unchanged; values are keyed by their content hash, so
they never go stale. At most MAX_VALUE_BYTES of values are kept, least recently used first out.
"""

from __future__ import annotations

import asyncio
import threading
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any

from temporalio import activity

from pee.activities import template_files
from pee.activities.artifacts import REF_KEY, ArtifactError, ArtifactStore, encode, is_reference
from pee.activities.types import AgentTask, Prefetched, PrefetchTask

MAX_VALUE_BYTES = 64 * 1024 * 1024
HIT, MISS = "hits", "misses"


class PrefetchStore:
    def __init__(self, max_value_bytes: int = MAX_VALUE_BYTES) -> None:
        self.max_value_bytes = max_value_bytes
        # resolved template path -> ((size, mtime_ns), (template id, parsed template))
        self._templates: dict[str, tuple[tuple[int, int], tuple[str, Any]]] = {}
        # "sha256:<hex>" -> (value, size)
        self._values: OrderedDict[str, tuple[Any, int]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def put_template(self, path: Path, loaded: tuple[str, Any]) -> None:
        with self._lock:
            self._templates[str(path)] = (_fingerprint(path), loaded)

    def template(self, path: Path) -> tuple[str, Any] | None:
        with self._lock:
            entry = self._templates.get(str(path))
        if entry is None or entry[0] != _fingerprint(path):
            return None
        return entry[1]

    def put_value(self, digest: str, value: Any) -> None:
        size = len(encode(value))
        with self._lock:
            if digest in self._values or size > self.max_value_bytes:
                return
            self._values[digest] = (value, size)
            self._bytes += size
            while self._bytes > self.max_value_bytes:
                _old, (_value, old_size) = self._values.popitem(last=False)
                self._bytes -= old_size

    def value(self, digest: str) -> Any | None:
        with self._lock:
            entry = self._values.get(digest)
            if entry is None:
                return None
            self._values.move_to_end(digest)
            return entry[0]

    def clear(self) -> None:
        with self._lock:
            self._templates.clear()
            self._values.clear()
            self._bytes = 0


def _fingerprint(path: Path) -> tuple[int, int]:
    try:
        stat = path.stat()
    except OSError:
        return (-1, -1)
    return (stat.st_size, stat.st_mtime_ns)


_store = PrefetchStore()


def store() -> PrefetchStore:
    return _store


def count(counts: dict[str, dict[str, int]], outcome: str) -> None:
    level = counts.setdefault("prefetch", {})
    level[outcome] = level.get(outcome, 0) + 1


def resolve(
    value: Any,
    counts: dict[str, dict[str, int]],
    fetch: Callable[[dict[str, Any]], Any] | None = None,
) -> Any:
    """``value`` with every artifact reference replaced by its value: prefetched ones from the
    store (a hit), the rest read from the artifact store (a miss)."""
    if is_reference(value):
        found = _store.value(value[REF_KEY])
        if found is not None:
            count(counts, HIT)
            return found
        count(counts, MISS)
        return (fetch or ArtifactStore.default().get)(value)
    if isinstance(value, dict):
        return {key: resolve(item, counts, fetch) for key, item in value.items()}
    if isinstance(value, list):
        return [resolve(item, counts, fetch) for item in value]
    return value


def _warm_template(agent: Any) -> bool:
    task = AgentTask(agent=agent)
    path = template_files.template_path(task)
    if path is None:
        return False  # a built-in: nothing to read
    _store.put_template(path, template_files.load_file(task, path))
    return True


def _warm(task: PrefetchTask) -> Prefetched:
    done = Prefetched(task.group_id)
    for agent in task.templates:
        try:
            done.templates += _warm_template(agent)
        except Exception as err:  # noqa: BLE001 - the agent itself will report a bad template
            done.failed.append(f"{agent.id}: {type(err).__name__}: {err}")
    artifacts = ArtifactStore.default()
    for reference in task.references:
        if not is_reference(reference) or _store.value(reference[REF_KEY]) is not None:
            continue
        try:
            _store.put_value(reference[REF_KEY], artifacts.get(reference))
            done.values += 1
        except (ArtifactError, OSError) as err:
            done.failed.append(str(err))
    return done


@activity.defn
async def prefetch_group(task: PrefetchTask) -> Prefetched:
    """Parse templates and resolve references for a group likely to start next (best effort:
    what fails is listed, never raised; the agents will meet the same problem and say so)."""
    done = await asyncio.to_thread(_warm, task)
    if done.failed:
        activity.logger.info("prefetch for group %s: %s", task.group_id, done.failed)
    return done
