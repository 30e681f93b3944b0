"""pee.stores: PEE_CACHE_URL parsing (what each purpose opens, a clear error with an example for
a bad URL, passwords never shown) and the SQL layer's contract on both databases."""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from pee.stores import sql, urls
from pee.stores.urls import Dialect, StoreConfigError


def test_unset_each_purpose_keeps_its_own_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without PEE_CACHE_URL nothing moves: cache.db and durations.db in the state directory,
    or where PEE_CACHE_PATH / PEE_DURATIONS_PATH say."""
    for name in ("PEE_CACHE_URL", "PEE_CACHE_PATH", "PEE_DURATIONS_PATH"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PEE_STATE_DIR", str(tmp_path))
    assert tmp_path / "cache.db" == urls.for_purpose("cache").path
    assert tmp_path / "durations.db" == urls.for_purpose("durations").path
    monkeypatch.setenv("PEE_CACHE_PATH", str(tmp_path / "elsewhere.db"))
    assert tmp_path / "elsewhere.db" == urls.for_purpose("cache").path


def test_a_postgresql_url_is_shared_by_every_purpose(monkeypatch: pytest.MonkeyPatch) -> None:
    """postgres:// is read as postgresql://; every purpose opens the same database; the
    display masks the password."""
    monkeypatch.setenv("PEE_CACHE_URL", "postgres://pee:hunter2@db.example:5432/pee")
    cache, durations = urls.for_purpose("cache"), urls.for_purpose("durations")
    assert cache == durations and Dialect.POSTGRESQL is cache.dialect
    assert "postgresql://pee:hunter2@db.example:5432/pee" == cache.url
    assert "postgresql://pee:***@db.example:5432/pee" == cache.display


def test_a_sqlite_url_names_one_file(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PEE_CACHE_URL", "sqlite:////var/lib/pee/all.db")
    assert Path("/var/lib/pee/all.db") == urls.for_purpose("durations").path


@pytest.mark.parametrize(
    "bad", ["mysql://db/pee", "db.example:5432", "postgresql:///pee", "sqlite://", "sqlite:x.db"]
)
def test_a_bad_url_says_which_setting_and_gives_an_example(
    bad: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PEE_CACHE_URL", bad)
    with pytest.raises(StoreConfigError) as error:
        urls.for_purpose("cache")
    assert "PEE_CACHE_URL" in str(error.value)
    assert "://" in str(error.value).split("expected", 1)[1]


def test_a_bad_url_never_shows_its_password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PEE_CACHE_URL", "postgresql://pee:hunter2@db.example:port/pee")
    with pytest.raises(StoreConfigError) as error:
        urls.for_purpose("cache")
    assert "hunter2" not in str(error.value) and "port" in str(error.value)


DDL = ("create table if not exists counters (name text primary key, n {int} not null)",)


def test_increments_locks_and_placeholders_on_both_databases(database: Path | str) -> None:
    """`?` placeholders work on both; `number = number + ?` ... returning counts; the lock
    argument is accepted; a failing statement rolls back and names the database."""
    db = sql.connect(urls.target(database, "cache"))
    db.ensure_schema("counters-test", DDL)
    db.ensure_schema("counters-test", DDL)  # the second call is a no-op
    for _ in range(3):
        with db.transaction(lock="counters") as cursor:
            cursor.execute(
                "insert into counters(name, n) values(?, ?) on conflict(name) "
                "do update set n = counters.n + excluded.n returning n",
                ("hits", 2),
            )
    with db.transaction() as cursor:
        assert (6,) == tuple(cursor.execute("select n from counters").fetchone())
    with pytest.raises(sql.DatabaseError) as error, db.transaction() as cursor:
        cursor.execute("insert into counters(name, n) values(?, ?)", ("x", 1))
        cursor.execute("select * from no_such_table")
    assert db.display in str(error.value)
    with db.transaction() as cursor:
        assert [("hits",)] == [
            tuple(r) for r in cursor.execute("select name from counters").fetchall()
        ]


@pytest.fixture
def no_pools_left() -> Iterator[None]:
    """Pools opened towards nothing are closed after the test (the others reopen lazily)."""
    yield
    sql.close_pools()


@pytest.mark.usefixtures("no_pools_left")
def test_an_unreachable_postgresql_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """Nothing listens: DatabaseError names the database (password masked), within the pool's
    timeout, never a hang."""
    from pee.runtime.devserver import free_port

    monkeypatch.setattr(sql, "POOL_TIMEOUT_S", 2.0)
    url = f"postgresql://pee:hunter2@127.0.0.1:{free_port()}/pee?connect_timeout=1"
    db = sql.connect(urls.parse(url))
    with pytest.raises(sql.DatabaseError) as error, db.transaction() as cursor:
        cursor.execute("select 1")
    assert "127.0.0.1" in str(error.value) and "hunter2" not in str(error.value)


@pytest.mark.usefixtures("no_pools_left")
def test_a_resume_whose_cache_cannot_be_read_falls_back_to_the_query(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """--resume-from with an unreachable PEE_CACHE_URL: no snapshot, and the reason names the
    database (the context then comes from the run's history by query), never a crash."""
    from pee.activities.snapshot_cache import MISSING
    from pee.runtime.devserver import free_port
    from pee.runtime.resume import snapshot_context

    monkeypatch.setattr(sql, "POOL_TIMEOUT_S", 2.0)
    port = free_port()
    monkeypatch.setenv(
        "PEE_CACHE_URL", f"postgresql://pee:hunter2@127.0.0.1:{port}/pee?connect_timeout=1"
    )
    report = {
        "groups": {"g": {"status": "succeeded"}},
        "context_snapshots": [{"group": "g", "key": "g#abc", "stored": True}],
    }
    key, values, why = snapshot_context(report)
    assert (None, MISSING) == (key, values)
    assert "cannot be read" in why and f"127.0.0.1:{port}" in why and "hunter2" not in why


def test_a_sqlite_file_is_kept_open_in_wal_mode_and_reopened_when_deleted(
    tmp_path: Path,
) -> None:
    """One connection per thread and file serves every call (WAL, synchronous NORMAL: a commit
    without fsyncs); a failed block leaves no open transaction behind; a file deleted under the
    kept connection is created afresh, not written through the old one."""
    path = tmp_path / "kept.db"
    db = sql.SqliteDatabase(path)
    with db.transaction() as cursor:
        cursor.execute("create table t (n integer)")
        cursor.execute("insert into t values (1)")
        assert ["wal"] == [row[0] for row in cursor.execute("pragma journal_mode").fetchall()]
        assert [(1,)] == cursor.execute("pragma synchronous").fetchall()  # NORMAL
    first = sql._KEPT.by_path[path][0]
    with pytest.raises(RuntimeError), db.transaction() as cursor:
        cursor.execute("insert into t values (2)")
        raise RuntimeError("the caller's block fails")
    with sql.SqliteDatabase(path).transaction() as cursor:
        assert [(1,)] == cursor.execute("select n from t").fetchall()
    assert first is sql._KEPT.by_path[path][0]
    path.unlink()
    with db.transaction() as cursor:
        cursor.execute("create table if not exists t (n integer)")
        assert [] == cursor.execute("select n from t").fetchall()
    assert path.exists() and first is not sql._KEPT.by_path[path][0]


def test_a_process_that_exits_leaves_its_commits_in_the_database_file(tmp_path: Path) -> None:
    """Our entry points leave with os._exit (pee.runtime.exit.exit_process); the kept
    connections are closed before it, so the -wal file is folded back in: a copy of the database
    file alone (a backup, a move) holds every commit."""
    path = tmp_path / "exits.db"
    script = (
        "import sys; from pathlib import Path; from pee.stores import sql\n"
        "with sql.SqliteDatabase(Path(sys.argv[1])).transaction() as cursor:\n"
        "    cursor.execute('create table t (n integer)')\n"
        "    cursor.execute('insert into t values (7)')\n"
        "from pee.runtime.exit import exit_process\n"
        "exit_process(0)\n"
    )
    subprocess.run([sys.executable, "-c", script, str(path)], check=True, timeout=60)
    assert not (tmp_path / "exits.db-wal").exists()
    copy = tmp_path / "copy.db"
    shutil.copyfile(path, copy)
    connection = sqlite3.connect(copy)
    try:
        assert [(7,)] == connection.execute("select n from t").fetchall()
    finally:
        connection.close()
