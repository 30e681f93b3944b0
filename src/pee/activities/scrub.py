"""Keeping secrets in the agent: one scrubbing function for every string that leaves it.

The rule: a secret a backend reads on the worker (the http agent's ``api_key_env`` value, a
command agent's ``$VAR`` whose name says it is a credential) is registered with the agent's
`Scrubber` the moment it is read. From then on every string that can leave the agent goes
through `Scrubber.text` BEFORE it is cut to any length: result values (outputs and writes, deep),
error messages and details, heartbeat and progress details, and log records. Truncating first
would leave a prefix of a key that straddles the cut, so backends cut with `clip`/`clip_tail`,
which scrub first.

Covered forms of each secret: the value itself; base64 (standard and URL-safe alphabets) at
every byte offset, so the key inside ``user:key`` or ``key:`` (HTTP Basic) or any longer
encoded blob is found too; URL-encoding (quote and quote_plus, either hex case); JSON string
escaping (ASCII-only and not, ``\\/`` for ``/``); lower- and upper-case hex. A value shorter
than `MIN_SECRET_CHARS` is not scrubbed: it cannot be told apart from ordinary text and
replacing it would garble every result.

`current()` is the scrubber of the running agent (a context variable set by `run_agent`), so
`pee.activities.progress` and the log filter reach it without threading it through every call.
"""

from __future__ import annotations

import base64
import contextvars
import json
import logging
import re
import urllib.parse
from collections.abc import Iterable, Mapping
from typing import Any

REDACTED = "***"
MIN_SECRET_CHARS = 8
# an environment variable named with one of these words (or a word ending in the first four:
# APIKEY, GHTOKEN) carries a credential; the same convention as Airflow's secrets masker
SENSITIVE_WORDS = frozenset(
    {
        "key",
        "token",
        "secret",
        "password",
        "passwd",
        "passphrase",
        "credential",
        "credentials",
        "auth",
        "authorization",
        "cookie",
        "private",
        "pat",
    }
)
SENSITIVE_ENDINGS = ("key", "token", "secret", "password")
# the shortest base64 run worth matching: shorter cores match ordinary words by chance
MIN_ENCODED_CHARS = 6


def sensitive_name(name: str) -> bool:
    """OPENAI_API_KEY, GITHUB_TOKEN, DB_PASSWORD, APIKEY: yes; AUTHOR_NAME, MODE: no."""
    words = [word for word in re.split(r"[^a-z0-9]+", name.lower()) if word]
    return any(word in SENSITIVE_WORDS or word.endswith(SENSITIVE_ENDINGS) for word in words)


def _base64_cores(raw: bytes) -> set[str]:
    """The base64 characters that depend on `raw` alone, for each of the 3 byte offsets it may
    start at inside a longer encoded string (``user:key``, ``key:``...)."""
    cores: set[str] = set()
    for offset in range(3):
        encoded = base64.b64encode(b"\0" * offset + raw).decode().rstrip("=")
        # characters mixing bits of the prefix (front) or of whatever follows (back) vary
        front = (0, 2, 3)[offset]
        total = offset + len(raw)
        full, rest = divmod(total, 3)
        determined = full * 4 + (0, 1, 2)[rest]
        core = encoded[front:determined]
        if len(core) >= MIN_ENCODED_CHARS:
            cores.add(core)
            cores.add(core.replace("+", "-").replace("/", "_"))
    return cores


def encodings(secret: str) -> set[str]:
    """Every form of `secret` the scrubber looks for."""
    raw = secret.encode()
    forms = {secret, secret.encode().hex(), secret.encode().hex().upper()}
    for quoted in (urllib.parse.quote(secret, safe=""), urllib.parse.quote_plus(secret)):
        forms.add(quoted)
        forms.add(re.sub(r"%[0-9A-F]{2}", lambda m: m.group(0).lower(), quoted))
    for escaped in (json.dumps(secret)[1:-1], json.dumps(secret, ensure_ascii=False)[1:-1]):
        forms.add(escaped)
        forms.add(escaped.replace("/", "\\/"))
    forms |= _base64_cores(raw)
    return {form for form in forms if form}


class Scrubber:
    """Replaces every registered secret, in every form of `encodings`, by `REDACTED`."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._secrets: set[str] = set()
        # every form of every secret, each secret's encoded once (when it is added)
        self._forms: set[str] = set()
        self._pattern: re.Pattern[str] | None = None
        for secret in secrets:
            self.add(secret)

    def add(self, secret: str | None) -> None:
        if not secret or len(secret) < MIN_SECRET_CHARS or secret in self._secrets:
            return
        self._secrets.add(secret)
        self._forms |= encodings(secret)
        # longest first: a form inside another form must not leave the rest of the longer one
        ordered = sorted(self._forms, key=len, reverse=True)
        self._pattern = re.compile("|".join(map(re.escape, ordered)))

    def __bool__(self) -> bool:
        return self._pattern is not None

    def text(self, text: str) -> str:
        if self._pattern is None or not text:
            return text
        return self._pattern.sub(REDACTED, text)

    def value(self, value: Any) -> Any:
        """`value` with every string in it scrubbed (mapping keys too), structure kept."""
        if self._pattern is None:
            return value
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, Mapping):
            return {self.value(key): self.value(item) for key, item in value.items()}
        if isinstance(value, list | tuple):
            return type(value)(self.value(item) for item in value)
        return value

    def clip(self, text: str, limit: int, marker: str = "...") -> str:
        """The first `limit` characters of the SCRUBBED text (never cut, then scrubbed)."""
        text = self.text(text)
        return text if len(text) <= limit else text[:limit] + marker

    def clip_tail(self, text: str, limit: int, marker: str = "...") -> str:
        """The last `limit` characters of the scrubbed text."""
        text = self.text(text)
        return text if len(text) <= limit else marker + text[-limit:]


_current: contextvars.ContextVar[Scrubber | None] = contextvars.ContextVar(
    "pee_agent_scrubber", default=None
)
_NOTHING = Scrubber()


def current() -> Scrubber:
    """The running agent's scrubber (one that changes nothing outside an agent)."""
    return _current.get() or _NOTHING


def start() -> tuple[Scrubber, contextvars.Token[Scrubber | None]]:
    """A fresh scrubber for the agent about to run in this context; `finish(token)` after."""
    scrubber = Scrubber()
    return scrubber, _current.set(scrubber)


def finish(token: contextvars.Token[Scrubber | None]) -> None:
    _current.reset(token)


def register(secret: str | None) -> None:
    """A backend read `secret` on the worker: from now on nothing the agent sends carries it."""
    scrubber = _current.get()
    if scrubber is not None:
        scrubber.add(secret)


def text(value: str) -> str:
    return current().text(value)


def clip(value: str, limit: int, marker: str = "...") -> str:
    return current().clip(value, limit, marker)


def clip_tail(value: str, limit: int, marker: str = "...") -> str:
    return current().clip_tail(value, limit, marker)


class LogFilter(logging.Filter):
    """Scrubs a log record emitted while an agent runs (message and arguments, formatted)."""

    def filter(self, record: logging.LogRecord) -> bool:
        scrubber = _current.get()
        if scrubber:
            record.msg = scrubber.text(record.getMessage())
            record.args = None
            if record.exc_text:
                record.exc_text = scrubber.text(record.exc_text)
        return True


def install_log_filter(logger: logging.Logger) -> None:
    if not any(isinstance(existing, LogFilter) for existing in logger.filters):
        logger.addFilter(LogFilter())
