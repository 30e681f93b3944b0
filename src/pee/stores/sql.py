"""One small SQL layer under the caches: SQLite (a file per host, the default) or PostgreSQL
(PEE_CACHE_URL, shared by the workers of several hosts), behind the same `Database`.

Callers write SQL once: `?` placeholders (rewritten to `%s` for psycopg, so no SQL text here holds
a literal `?` or `%`), and DDL with `{blob}`, `{float}`, `{int}` and `{id_column}` for the types
the two spell differently. Each call is one short transaction. Counters are incremented in SQL
(`number = number + ?`), never read and written back: PostgreSQL's READ COMMITTED would lose
concurrent updates. `transaction(lock=...)` serialises writers that must not interleave (cache
eviction, DDL): SQLite takes the file's write lock (BEGIN IMMEDIATE, as every transaction here
does), PostgreSQL a transaction-scoped advisory lock on the name, across hosts. An SQLite file is
kept open per thread and process and written in WAL mode with synchronous=NORMAL (see
`_open_sqlite`): a cache write on a run's critical path (the end-of-group context snapshot) took
milliseconds of fsyncs before.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from pee.stores.urls import DatabaseUrl, Dialect, StoreConfigError, for_purpose

if TYPE_CHECKING:
    from psycopg_pool import ConnectionPool

__all__ = [
    "Cursor",
    "Database",
    "DatabaseError",
    "Dialect",
    "PostgresDatabase",
    "SqliteDatabase",
    "StoreConfigError",
    "open_database",
]

TYPES = {
    Dialect.SQLITE: {"blob": "blob", "float": "real", "int": "integer", "id_column": ""},
    # PostgreSQL's real is 4 bytes: times in seconds since 1970 need double precision
    Dialect.POSTGRESQL: {
        "blob": "bytea",
        "float": "double precision",
        "int": "bigint",
        "id_column": "id bigserial not null,",
    },
}
# what an insertion-ordered row id is called: SQLite's implicit rowid (files written before
# PostgreSQL support have no id column), PostgreSQL's explicit `id_column`
ROW_ID = {Dialect.SQLITE: "rowid", Dialect.POSTGRESQL: "id"}
# an SQLite writer waits this long for another's lock before giving up
SQLITE_TIMEOUT_S = 30.0
# a PostgreSQL caller waits this long for a pooled connection
POOL_TIMEOUT_S = 30.0
POOL_MAX_SIZE = 4


class DatabaseError(RuntimeError):
    """The database cannot be reached, read or written; the message names which one."""


class Cursor(Protocol):
    rowcount: int

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Cursor: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...


class Database(Protocol):
    dialect: Dialect
    # the file, or the URL with its password masked: for messages and `pee cache stats`
    display: str

    def transaction(self, lock: str | None = None) -> AbstractContextManager[Cursor]:
        """One transaction, committed when the block ends without error."""
        ...

    def ensure_schema(self, name: str, ddl: Sequence[str]) -> None: ...

    def exists(self) -> bool:
        """False only for an SQLite file nobody has written yet (reads need not create it)."""
        ...

    @property
    def row_id(self) -> str: ...


class _SqliteCursor:
    def __init__(self, connection: sqlite3.Connection) -> None:
        self._connection = connection
        self._rows: list[Any] = []
        self.rowcount = -1

    def execute(self, sql: str, params: Sequence[Any] = ()) -> _SqliteCursor:
        cursor = self._connection.execute(sql, tuple(params))
        # read at once: SQLite cannot commit while a statement (an unread RETURNING) is open
        self._rows = cursor.fetchall()
        self.rowcount = cursor.rowcount
        return self

    def fetchone(self) -> Any:
        return self._rows.pop(0) if self._rows else None

    def fetchall(self) -> list[Any]:
        rows, self._rows = self._rows, []
        return rows


# (file, schema name) -> the file's inode once this process created that schema in it: the
# caches open their database for every lookup and store, and creating tables takes the write lock
_SQLITE_CREATED: dict[tuple[Path, str], int] = {}


def _inode(path: Path) -> int | None:
    try:
        return path.stat().st_ino
    except OSError:
        return None


class _KeptConnections(threading.local):
    """This thread's open SQLite connections, by file: (connection, the file's inode when opened,
    the process that opened it)."""

    def __init__(self) -> None:
        self.by_path: dict[Path, tuple[sqlite3.Connection, int | None, int]] = {}


_KEPT = _KeptConnections()
# a thread keeps at most this many files open (tests use a fresh file each; a worker one or two)
KEPT_PER_THREAD = 4
# connections a forked child inherited: never used nor closed there (closing one would release
# the parent's locks), only kept from being freed
_INHERITED: list[sqlite3.Connection] = []
# every connection this process kept open, over all threads: our entry points leave with
# os._exit (pee.runtime.exit), which closes nothing, and a connection left open leaves its
# commits in the -wal file (the database file itself stayed nearly empty: a copy of `cache.db`
# alone had none of them); exit_process closes them first, and the last close folds the -wal
# file back in and deletes it
_OPEN: dict[int, tuple[sqlite3.Connection, int]] = {}
_OPEN_LOCK = threading.Lock()


def _kept_open(connection: sqlite3.Connection) -> sqlite3.Connection:
    with _OPEN_LOCK:
        _OPEN[id(connection)] = (connection, os.getpid())
    return connection


def _close(connection: sqlite3.Connection) -> None:
    with _OPEN_LOCK:
        _OPEN.pop(id(connection), None)
    connection.close()


def _let_go(connection: sqlite3.Connection, opened_by: int) -> None:
    """A kept connection no longer used: closed, unless a parent process opened it."""
    if opened_by == os.getpid():
        _close(connection)
    else:
        _INHERITED.append(connection)


def close_kept() -> None:
    """Close every SQLite connection this process keeps open (at its exit)."""
    with _OPEN_LOCK:
        mine = [c for c, pid in _OPEN.values() if pid == os.getpid()]
        _OPEN.clear()
    for connection in mine:
        # another thread still in it at exit: SQLite recovers the -wal file on the next open
        with contextlib.suppress(sqlite3.Error):
            connection.close()


def _open_sqlite(path: Path) -> sqlite3.Connection:
    connection = sqlite3.connect(
        path, timeout=SQLITE_TIMEOUT_S, isolation_level="IMMEDIATE", check_same_thread=False
    )
    try:
        # WAL: a commit appends to the -wal file without an fsync (synchronous NORMAL), where the
        # rollback journal took several fsyncs per commit (ms each on a busy disk). Safe with
        # several processes on one host (not on a network file system); after a power loss the
        # last commits may be gone but the file is consistent: right for caches and run rows.
        connection.execute("pragma journal_mode=wal")
        connection.execute("pragma synchronous=normal")
    except sqlite3.Error:
        pass  # another process holds the file: this connection keeps the file's journal mode
    return connection


class SqliteDatabase:
    dialect = Dialect.SQLITE

    def __init__(self, path: Path) -> None:
        self.path = path
        self.display = str(path)

    @property
    def row_id(self) -> str:
        return ROW_ID[self.dialect]

    def exists(self) -> bool:
        return self.path.exists()

    def _connection(self) -> sqlite3.Connection:
        """This thread's open connection to the file: opening one per call cost more than the
        call's statements (and, in WAL mode, the last close checkpoints and deletes the -wal
        file). Reopened when the file was deleted or replaced since, or in a forked child."""
        kept = _KEPT.by_path
        inode = _inode(self.path)
        entry = kept.get(self.path)
        if entry is not None:
            connection, opened_inode, pid = entry
            if pid == os.getpid() and inode is not None and inode == opened_inode:
                return connection
            del kept[self.path]
            _let_go(connection, pid)
        if len(kept) >= KEPT_PER_THREAD:
            old, _, pid = kept.pop(next(iter(kept)))
            _let_go(old, pid)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        connection = _kept_open(_open_sqlite(self.path))
        kept[self.path] = (connection, _inode(self.path), os.getpid())
        return connection

    def _drop(self, connection: sqlite3.Connection) -> None:
        entry = _KEPT.by_path.get(self.path)
        if entry is not None and entry[0] is connection:
            del _KEPT.by_path[self.path]
        _close(connection)

    @contextmanager
    def transaction(self, lock: str | None = None) -> Iterator[Cursor]:
        # every write takes the write lock at its start (IMMEDIATE): the caches' reads also
        # write (hit counters, recency), and a deferred transaction upgraded later can fail with
        # "database is locked" at once instead of waiting. `lock` adds nothing here.
        try:
            connection = self._connection()
        except (sqlite3.Error, OSError) as err:
            raise DatabaseError(f"cannot open the SQLite database {self.path}: {err}") from err
        try:
            yield _SqliteCursor(connection)
            connection.commit()
        except BaseException as err:
            # the kept connection must not carry a half-done transaction into the next call
            try:
                connection.rollback()
            except sqlite3.Error:
                self._drop(connection)
            if isinstance(err, sqlite3.Error):
                raise DatabaseError(f"SQLite database {self.path}: {err}") from err
            raise

    def ensure_schema(self, name: str, ddl: Sequence[str]) -> None:
        created = _SQLITE_CREATED.get((self.path, name))
        # the same file as when this process created the tables (not deleted or replaced since)
        if created is not None and created == _inode(self.path):
            return
        with self.transaction() as cursor:
            for statement in ddl:
                cursor.execute(statement.format(**TYPES[self.dialect]))
        inode = _inode(self.path)
        if inode is not None:
            _SQLITE_CREATED[(self.path, name)] = inode


class _PostgresCursor:
    def __init__(self, cursor: Any) -> None:
        self._cursor = cursor
        self.rowcount = -1

    def execute(self, sql: str, params: Sequence[Any] = ()) -> _PostgresCursor:
        self._cursor.execute(sql.replace("?", "%s"), tuple(params))
        self.rowcount = self._cursor.rowcount
        return self

    def fetchone(self) -> Any:
        return self._cursor.fetchone()

    def fetchall(self) -> list[Any]:
        return list(self._cursor.fetchall())


# one pool per database URL per process: a connection is never shared by two threads at once
_POOLS: dict[str, ConnectionPool] = {}
_POOLS_LOCK = threading.Lock()
_PG_CREATED: set[tuple[str, str]] = set()


def _pool(url: str, display: str) -> ConnectionPool:
    with _POOLS_LOCK:
        pool = _POOLS.get(url)
        if pool is None:
            try:
                from psycopg_pool import ConnectionPool
            except ImportError as err:  # pragma: no cover - a dependency of the project
                raise StoreConfigError(
                    f"PEE_CACHE_URL names PostgreSQL ({display}) but psycopg is not "
                    "installed: pip install 'psycopg[binary]' psycopg-pool"
                ) from err
            # min_size 0: a command that opens a store once does not keep idle connections
            pool = ConnectionPool(
                url,
                min_size=0,
                max_size=POOL_MAX_SIZE,
                timeout=POOL_TIMEOUT_S,
                open=True,
                name=display,
            )
            _POOLS[url] = pool
        return pool


def close_pools() -> None:
    """Close every pool this process opened (tests stop their server after this)."""
    with _POOLS_LOCK:
        pools = list(_POOLS.values())
        _POOLS.clear()
        _PG_CREATED.clear()
    for pool in pools:
        pool.close()


class PostgresDatabase:
    dialect = Dialect.POSTGRESQL

    def __init__(self, url: str, display: str) -> None:
        self.url = url
        self.display = display

    @property
    def row_id(self) -> str:
        return ROW_ID[self.dialect]

    def exists(self) -> bool:
        return True

    @contextmanager
    def transaction(self, lock: str | None = None) -> Iterator[Cursor]:
        import psycopg
        from psycopg_pool import PoolTimeout

        try:
            with (
                _pool(self.url, self.display).connection() as connection,
                connection.transaction(),
                connection.cursor() as raw,
            ):
                cursor = _PostgresCursor(raw)
                if lock is not None:
                    # held until commit or rollback, by whichever host asks first
                    cursor.execute("select pg_advisory_xact_lock(hashtext(?))", (lock,))
                yield cursor
        except PoolTimeout as err:
            raise DatabaseError(
                f"cannot connect to the PostgreSQL database {self.display} within "
                f"{POOL_TIMEOUT_S:.0f} s: {err}; check that the server runs and accepts "
                "connections there, or fix or unset PEE_CACHE_URL"
            ) from err
        except psycopg.Error as err:
            raise DatabaseError(f"PostgreSQL database {self.display}: {err}") from err

    def ensure_schema(self, name: str, ddl: Sequence[str]) -> None:
        if (self.url, name) in _PG_CREATED:
            return
        # one DDL writer at a time across hosts: concurrent `create table if not exists` of
        # the same table can fail on PostgreSQL's catalog
        with self.transaction(lock="pee-schema") as cursor:
            for statement in ddl:
                cursor.execute(statement.format(**TYPES[self.dialect]))
        _PG_CREATED.add((self.url, name))


def connect(url: DatabaseUrl) -> SqliteDatabase | PostgresDatabase:
    if url.dialect is Dialect.SQLITE:
        assert url.path is not None
        return SqliteDatabase(url.path)
    return PostgresDatabase(url.url, url.display)


def open_database(purpose: str) -> SqliteDatabase | PostgresDatabase:
    """The database of "cache", "durations" or "runs" (pee.stores.urls.for_purpose)."""
    return connect(for_purpose(purpose))
