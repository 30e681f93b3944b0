"""A real PostgreSQL server for the store tests: Debian's binaries (`make test` installs the
`postgresql` package when missing, .ci/install-postgresql), `initdb` into a temporary folder as a
non-root user (PostgreSQL refuses to run as root), `pg_ctl start` on 127.0.0.1 on a free port,
stopped when the session ends. Each test that asks for `pg_url` gets a database of its own.

Host connections need a password (scram-sha-256), so the URLs the tests use carry one, as a
real deployment's do, and a test can check that no command prints it.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from pee.runtime.devserver import free_port
from pee.stores.sql import close_pools

USER = "pee"
PASSWORD = "s3cret-test-password"
# the account the server runs as when the tests run as root: Debian's package creates postgres
OS_USERS = ("postgres", "pee-postgres")


def bin_dir() -> Path | None:
    """Where initdb and pg_ctl are: PEE_PG_BIN, Debian's newest /usr/lib/postgresql/N/bin, or
    the PATH."""
    if os.environ.get("PEE_PG_BIN"):
        return Path(os.environ["PEE_PG_BIN"])
    versions = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda p: (
            int(Path(p).parent.parent.name) if Path(p).parent.parent.name.isdigit() else 0
        ),
    )
    if versions:
        return Path(versions[-1]).parent
    found = shutil.which("initdb")
    return Path(found).parent if found else None


def _require_bin() -> Path:
    found = bin_dir()
    if found is not None and (found / "pg_ctl").exists():
        return found
    message = (
        "PostgreSQL is not installed: `make test` installs Debian's postgresql package as root "
        "(.ci/install-postgresql), or apt-get install postgresql"
    )
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def _os_user() -> str | None:
    """None when the tests do not run as root (the server runs as the same user); else a
    non-root account, created with useradd when none exists."""
    if os.geteuid() != 0:
        return None
    for name in OS_USERS:
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            continue
    subprocess.run(
        ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", OS_USERS[1]],
        check=True,
        capture_output=True,
    )
    return OS_USERS[1]


@dataclass(frozen=True)
class PgServer:
    host: str
    port: int

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{USER}:{PASSWORD}@{self.host}:{self.port}/{database}"

    def create_database(self) -> str:
        """A new empty database's URL."""
        import psycopg

        name = f"t_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.url(), autocommit=True) as admin:
            admin.execute(f'create database "{name}"')
        return self.url(name)


def _as(user: str | None, command: list[str]) -> list[str]:
    return command if user is None else ["runuser", "-u", user, "--", *command]


def start_server() -> Iterator[PgServer]:
    pg_bin = _require_bin()
    user = _os_user()
    folder = Path(tempfile.mkdtemp(prefix="pee-pg-"))
    data, sockets = folder / "data", folder / "sockets"
    sockets.mkdir()
    password_file = folder / "password"
    password_file.write_text(PASSWORD + "\n")
    if user is not None:
        entry = pwd.getpwnam(user)
        for path in (folder, sockets, password_file):
            os.chown(path, entry.pw_uid, entry.pw_gid)
    port = free_port()
    log = folder / "server.log"
    subprocess.run(
        _as(
            user,
            [
                str(pg_bin / "initdb"),
                "-D",
                str(data),
                "-U",
                USER,
                f"--pwfile={password_file}",
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                "--encoding=UTF8",
                "--no-sync",
            ],
        ),
        check=True,
        capture_output=True,
        timeout=120,
    )
    options = f"-c listen_addresses=127.0.0.1 -p {port} -k {sockets} -c fsync=off"
    started = subprocess.run(
        _as(
            user,
            [
                str(pg_bin / "pg_ctl"),
                "-D",
                str(data),
                "-l",
                str(log),
                "-o",
                options,
                "-w",
                "-t",
                "120",
                "start",
            ],
        ),
        capture_output=True,
        text=True,
        timeout=180,
    )
    if started.returncode != 0:
        text = log.read_text() if log.exists() else ""
        raise RuntimeError(f"PostgreSQL did not start: {started.stderr}\n{text}")
    try:
        yield PgServer("127.0.0.1", port)
    finally:
        close_pools()
        subprocess.run(
            _as(user, [str(pg_bin / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"]),
            capture_output=True,
            timeout=120,
        )
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres() -> Iterator[PgServer]:
    """A PostgreSQL server on 127.0.0.1 for the session (one per xdist worker)."""
    yield from start_server()


@pytest.fixture
def pg_url(postgres: PgServer) -> str:
    """The URL of a database of this test's own, on the session's server."""
    return postgres.create_database()


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Path | str:
    """Each store test runs twice: on a SQLite file, and on a PostgreSQL database of its own."""
    if request.param == "sqlite":
        return tmp_path / "c.db"
    return str(request.getfixturevalue("pg_url"))
