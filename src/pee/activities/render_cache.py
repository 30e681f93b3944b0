"""The template render cache (seed `caching.cache_levels.template_render_cache`).

Key: the template's id (a built-in id, or a file path plus the hash of its text, so an edited file
is a new template) plus the SHA-256 of the variables' canonical JSON. Entries live for `ttl_s`
(1 hour) and the cache holds at most `max_bytes` (50 MB) of rendered JSON, evicting the least
recently used entries first. The plan's `template_render_cache` settings reach each render
(compiled into a template agent's `settings.render_cache`): an entry lives as long as the TTL of
the render that stored it, and each render sets the size limit (a smaller one evicts at once).
It is in-process: each worker has its own, and a restarted worker starts empty (a miss only
costs a render; the result is the same).

`renders` counts the renders that actually ran, so tests (and the curious) can see hits.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from pee.engine.canonical import canonical_bytes, digest

DEFAULT_TTL_S = 3600.0
DEFAULT_MAX_BYTES = 50 * 1024**2


def cache_key(template_id: str, variables: Any) -> str:
    return f"{template_id}#{digest(variables)}"


class RenderCache:
    def __init__(
        self,
        ttl_s: float = DEFAULT_TTL_S,
        max_bytes: int = DEFAULT_MAX_BYTES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ttl_s = ttl_s
        self.max_bytes = max_bytes
        self._clock = clock
        # key -> (value, size in bytes, expiry time); order = least recently used first
        self._entries: OrderedDict[str, tuple[Any, int, float]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0
        self.renders = 0

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: str) -> Any | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None or entry[2] <= self._clock():
                if entry is not None:
                    self._drop(key)
                self.misses += 1
                return None
            self._entries.move_to_end(key)
            self.hits += 1
            return entry[0]

    def put(self, key: str, value: Any, ttl_s: float | None = None) -> None:
        """Keep ``value`` for ``ttl_s`` seconds (None: the cache's own TTL; inf: until evicted)."""
        size = len(canonical_bytes(value))
        ttl = self.ttl_s if ttl_s is None else ttl_s
        with self._lock:
            if key in self._entries:
                self._drop(key)
            if size > self.max_bytes or ttl <= 0:
                # larger than the whole cache: not worth evicting everything for
                return
            self._entries[key] = (value, size, self._clock() + ttl)
            self._bytes += size
            self._evict()

    def resize(self, max_bytes: int) -> None:
        """Set the size limit; entries past a smaller one go at once, least recently used first."""
        with self._lock:
            self.max_bytes = max_bytes
            self._evict()

    def _evict(self) -> None:
        while self._bytes > self.max_bytes and self._entries:
            self._drop(next(iter(self._entries)))

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._bytes = 0
            self.hits = self.misses = self.renders = 0

    def _drop(self, key: str) -> None:
        _value, size, _expiry = self._entries.pop(key)
        self._bytes -= size


_default: RenderCache | None = None


def default_cache() -> RenderCache:
    global _default
    if _default is None:
        _default = RenderCache()
    return _default
