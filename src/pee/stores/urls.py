"""Where the shared database is: `PEE_CACHE_URL`, parsed once into a `DatabaseUrl`.

Unset, every purpose keeps its own SQLite file in the state directory, as before the setting
existed (`cache.db` moved by PEE_CACHE_PATH, `durations.db` by PEE_DURATIONS_PATH, `runs.db`), so
nothing moves for a single host. Set, all purposes share that one database:

    PEE_CACHE_URL=postgresql://pee:secret@db.example:5432/pee   (postgres:// is accepted too)
    PEE_CACHE_URL=sqlite:////var/lib/pee/cache.db               (one SQLite file for everything)
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from urllib.parse import SplitResult, urlsplit, urlunsplit

from pee.paths import state_dir

ENV = "PEE_CACHE_URL"
EXAMPLE = "postgresql://USER:PASSWORD@HOST:5432/DATABASE"
SQLITE_EXAMPLE = "sqlite:////absolute/path/cache.db"

# purpose -> (the environment variable that moves its own SQLite file, the file's default name)
SQLITE_FILES = {
    "cache": ("PEE_CACHE_PATH", "cache.db"),
    "durations": ("PEE_DURATIONS_PATH", "durations.db"),
    "runs": ("PEE_RUNS_DB_PATH", "runs.db"),
}


class Dialect(str, Enum):
    SQLITE = "sqlite"
    POSTGRESQL = "postgresql"


class StoreConfigError(ValueError):
    """A store setting (PEE_CACHE_URL, PEE_ARTIFACT_URL) that cannot be used as given."""


@dataclass(frozen=True)
class DatabaseUrl:
    dialect: Dialect
    # SQLite: the file; PostgreSQL: the URL as given (the password in it is never printed)
    path: Path | None = None
    url: str = ""

    @property
    def display(self) -> str:
        """For messages and `pee cache stats`: the file, or the URL with its password masked."""
        if self.dialect is Dialect.SQLITE:
            return str(self.path)
        return mask_password(self.url)


def mask_password(url: str) -> str:
    parts = urlsplit(url)
    userinfo, at, host = parts.netloc.rpartition("@")
    if not at or ":" not in userinfo:
        return url
    netloc = f"{userinfo.split(':', 1)[0]}:***@{host}"
    return urlunsplit(SplitResult(parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def parse(url: str, *, setting: str = ENV) -> DatabaseUrl:
    """A database URL; StoreConfigError (naming `setting` and an example) when it is not one."""
    text = url.strip()
    scheme = text.split(":", 1)[0].lower() if ":" in text else ""
    if scheme in ("postgresql", "postgres"):
        parts = urlsplit(text)
        if not parts.hostname and "host=" not in parts.query:
            raise StoreConfigError(
                f"{setting}={mask_password(text)!r} names no database host; expected {EXAMPLE}"
            )
        try:
            _ = parts.port
        except ValueError:
            raise StoreConfigError(
                f"{setting}={mask_password(text)!r} has a port that is not a number; "
                f"expected {EXAMPLE}"
            ) from None
        # psycopg (libpq) reads both spellings; one spelling keeps the pools' keys apart
        if scheme == "postgres":
            text = "postgresql" + text[len("postgres") :]
        return DatabaseUrl(Dialect.POSTGRESQL, url=text)
    if scheme == "sqlite":
        # sqlite:////abs/file.db (SQLAlchemy's spelling) or sqlite:///relative/file.db
        rest = text[len("sqlite:") :]
        if not rest.startswith("///") or len(rest) <= 3:
            raise StoreConfigError(
                f"{setting}={text!r} names no file; expected {SQLITE_EXAMPLE} (four slashes "
                f"before an absolute path) or a PostgreSQL URL such as {EXAMPLE}"
            )
        return DatabaseUrl(Dialect.SQLITE, path=Path(rest[3:]))
    raise StoreConfigError(
        f"{setting}={mask_password(text)!r} is not a database URL this project can use; "
        f"expected {EXAMPLE} (PostgreSQL, shared by the workers of several hosts) or "
        f"{SQLITE_EXAMPLE}; unset it to keep the caches in the state directory"
    )


def configured() -> DatabaseUrl | None:
    """PEE_CACHE_URL parsed, or None when it is unset (each purpose keeps its own file)."""
    raw = os.environ.get(ENV, "").strip()
    return parse(raw) if raw else None


def for_purpose(purpose: str) -> DatabaseUrl:
    """The database of one purpose ("cache", "durations", "runs"): PEE_CACHE_URL when set,
    else that purpose's own SQLite file in the state directory."""
    shared = configured()
    if shared is not None:
        return shared
    variable, name = SQLITE_FILES[purpose]
    moved = os.environ.get(variable)
    return DatabaseUrl(Dialect.SQLITE, path=Path(moved) if moved else state_dir() / name)


def target(value: Path | str | None, purpose: str) -> DatabaseUrl:
    """What a store constructor was given: None (the configured database), a database URL, or
    a SQLite file's path (what the tests and `--path` pass)."""
    if value is None:
        return for_purpose(purpose)
    if isinstance(value, str) and "://" in value:
        return parse(value, setting="the database URL")
    return DatabaseUrl(Dialect.SQLITE, path=Path(value))
