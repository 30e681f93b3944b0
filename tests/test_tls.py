"""Secure connections: worker.py and starter.py over TLS and mTLS, configured by flags, by
Temporal's TEMPORAL_* variables and by a client config profile, against a TLS-terminating proxy
in front of a real dev server (the dev server has no TLS options); and the clear errors (exit 2)
for a wrong CA, a missing client certificate and plain text to a TLS endpoint."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from pee.runtime.connection import (
    ConnectionConfigError,
    ConnectionFlags,
    resolve_settings,
)
from pee.runtime.devserver import DevServer, free_port
from tests.helpers import PROJECT_ROOT
from tests.tls_support import Pki, TlsProxy, make_pki

DEMO = PROJECT_ROOT / "plans" / "demo.yaml"


@dataclass
class Endpoints:
    pki: Pki
    tls: str
    mtls: str
    plain: str
    folder: Path


@pytest.fixture(scope="module")
def endpoints(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Endpoints]:
    folder = tmp_path_factory.mktemp("tls")
    pki = make_pki(folder / "pki")
    with (
        DevServer(folder / "dev.db", ui=False) as server,
        TlsProxy(server.address, pki) as tls,
        TlsProxy(server.address, pki, require_client_cert=True) as mtls,
    ):
        yield Endpoints(pki, tls.address, mtls.address, server.address, folder)


def clean_env(folder: Path, **extra: str) -> dict[str, str]:
    """No TEMPORAL_*/PEE_*/OTEL_* from the caller, no user config file, a private state dir."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TEMPORAL_", "PEE_", "OTEL_"))}
    env.update(
        PEE_STATE_DIR=str(folder / "state"),
        PEE_DEV_PORT=str(free_port()),
        TEMPORAL_CONFIG_FILE=str(folder / "no-such-config.toml"),
        PEE_RUNS_DIR=str(folder / "runs"),
        PEE_CACHE_PATH=str(folder / "cache.db"),
    )
    env.update(extra)
    return env


def starter(env: dict[str, str], *args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "starter.py", *map(str, args)],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=90,
    )


def worker_once(env: dict[str, str], *args: str | Path) -> subprocess.CompletedProcess[str]:
    """worker.py that is expected to fail at connect (it never gets to serve)."""
    return subprocess.run(
        [sys.executable, "worker.py", *map(str, args)],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def start_worker(env: dict[str, str], *args: str | Path) -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen(
        [sys.executable, "worker.py", *map(str, args)],
        cwd=PROJECT_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout is not None
    return process, process.stdout.readline()


def stop(process: subprocess.Popen[str]) -> int:
    process.terminate()
    return process.wait(timeout=30)


def test_run_completes_over_tls_worker_by_profile_starter_by_environment(
    endpoints: Endpoints,
) -> None:
    """worker.py reads a client config profile (TOML), starter.py TEMPORAL_* variables with an
    API key: the run goes through the TLS proxy and completes (exit 0)."""
    folder = endpoints.folder
    config = folder / "temporal.toml"
    config.write_text(
        f'[profile.secure]\naddress = "{endpoints.tls}"\n'
        f'[profile.secure.tls]\nserver_ca_cert_path = "{endpoints.pki.ca}"\n'
    )
    queue = "tls-profile"
    worker, first_line = start_worker(
        clean_env(folder, TEMPORAL_CONFIG_FILE=str(config)),
        "--profile",
        "secure",
        "--task-queue",
        queue,
    )
    try:
        assert f"at {endpoints.tls}" in first_line, first_line
        assert f"TLS (CA {endpoints.pki.ca}" in first_line, first_line
        env = clean_env(
            folder,
            TEMPORAL_ADDRESS=endpoints.tls,
            TEMPORAL_TLS_SERVER_CA_CERT_PATH=str(endpoints.pki.ca),
            TEMPORAL_API_KEY="not-checked-by-the-dev-server",
        )
        done = starter(
            env,
            "run",
            DEMO,
            "--time-scale",
            "0.1",
            "--no-worker",
            "--task-queue",
            queue,
            "--workflow-id",
            "tls-demo-1",
        )
        assert 0 == done.returncode, done.stdout + done.stderr
        assert f"Started tls-demo-1 on task queue {queue} at {endpoints.tls}" in done.stdout
        status = starter(env, "status", "tls-demo-1", "--json")
        assert 0 == status.returncode, status.stderr
        assert '"status": "completed"' in status.stdout
    finally:
        assert 0 == stop(worker)


def test_run_completes_over_mtls_with_a_client_certificate(endpoints: Endpoints) -> None:
    """starter.py with --tls-ca/--tls-cert/--tls-key against the mTLS endpoint: exit 0."""
    pki = endpoints.pki
    done = starter(
        clean_env(endpoints.folder),
        "run",
        DEMO,
        "--time-scale",
        "0.1",
        "--address",
        endpoints.mtls,
        "--tls-ca",
        pki.ca,
        "--tls-cert",
        pki.client_cert,
        "--tls-key",
        pki.client_key,
    )
    assert 0 == done.returncode, done.stdout + done.stderr
    assert "completed" in done.stdout


def test_mtls_without_a_client_certificate_is_refused_clearly(endpoints: Endpoints) -> None:
    """The mTLS endpoint without --tls-cert: exit 2, the message asks for the certificate."""
    done = worker_once(
        clean_env(endpoints.folder), "--address", endpoints.mtls, "--tls-ca", endpoints.pki.ca
    )
    assert 2 == done.returncode, done.stdout + done.stderr
    assert "requires a client certificate (mTLS)" in done.stderr
    assert "--tls-cert (or TEMPORAL_TLS_CLIENT_CERT_PATH)" in done.stderr


def test_a_client_certificate_the_server_does_not_trust_is_refused_clearly(
    endpoints: Endpoints,
) -> None:
    """A client certificate signed by another CA: exit 2, naming that certificate."""
    pki = endpoints.pki
    done = worker_once(
        clean_env(endpoints.folder),
        "--address",
        endpoints.mtls,
        "--tls-ca",
        pki.ca,
        "--tls-cert",
        pki.rogue_cert,
        "--tls-key",
        pki.rogue_key,
    )
    assert 2 == done.returncode, done.stdout + done.stderr
    assert f"it refused the client certificate {pki.rogue_cert}" in done.stderr


def test_a_wrong_ca_is_refused_clearly(endpoints: Endpoints) -> None:
    """A CA that did not sign the server's certificate: exit 2, naming that CA file."""
    other = endpoints.pki.other_ca
    done = worker_once(
        clean_env(endpoints.folder, TEMPORAL_TLS_SERVER_CA_CERT_PATH=str(other)),
        "--address",
        endpoints.tls,
    )
    assert 2 == done.returncode, done.stdout + done.stderr
    assert f"the server's certificate is not signed by the CA in {other}" in done.stderr
    assert "--tls-ca (or TEMPORAL_TLS_SERVER_CA_CERT_PATH)" in done.stderr


def test_a_server_name_the_certificate_lacks_is_refused_clearly(endpoints: Endpoints) -> None:
    """--tls-server-name that the certificate does not carry: exit 2, naming the name."""
    done = worker_once(
        clean_env(endpoints.folder),
        "--address",
        endpoints.tls,
        "--tls-ca",
        endpoints.pki.ca,
        "--tls-server-name",
        "temporal.example",
    )
    assert 2 == done.returncode, done.stdout + done.stderr
    assert "not valid for 'temporal.example'" in done.stderr


def test_tls_to_a_plain_text_server_and_plain_text_to_tls_are_explained(
    endpoints: Endpoints,
) -> None:
    """Both mismatches exit 2 with a hint about the TLS settings."""
    env = clean_env(endpoints.folder)
    to_plain = worker_once(env, "--address", endpoints.plain, "--tls-ca", endpoints.pki.ca)
    assert 2 == to_plain.returncode, to_plain.stdout + to_plain.stderr
    assert "the server does not speak TLS" in to_plain.stderr
    to_tls = starter(env, "status", "anything", "--address", endpoints.tls)
    assert 2 == to_tls.returncode, to_tls.stdout + to_tls.stderr
    assert "if it requires TLS, add --tls" in to_tls.stderr


def test_unusable_tls_settings_are_named_before_connecting(tmp_path: Path) -> None:
    """A missing CA file, a file that is not PEM, a certificate without its key, an unknown
    profile: each a ConnectionConfigError naming the setting."""
    not_pem = tmp_path / "ca.txt"
    not_pem.write_text("hello")
    env = {"TEMPORAL_CONFIG_FILE": str(tmp_path / "none.toml")}
    with pytest.raises(ConnectionConfigError, match=r"--tls-ca .*cannot read .*missing\.pem"):
        resolve_settings(ConnectionFlags(tls_ca=str(tmp_path / "missing.pem")), env).tls_config()
    with pytest.raises(ConnectionConfigError, match=r"holds no PEM certificate"):
        resolve_settings(ConnectionFlags(tls_ca=str(not_pem)), env).tls_config()
    with pytest.raises(ConnectionConfigError, match=r"--tls-cert .* is set but --tls-key"):
        resolve_settings(ConnectionFlags(tls_cert=str(not_pem)), env)
    with pytest.raises(ConnectionConfigError, match=r"Profile 'nope' not found"):
        resolve_settings(ConnectionFlags(profile="nope"), env)


def test_settings_resolve_flags_over_environment_over_profile(tmp_path: Path) -> None:
    """Field by field: a flag beats TEMPORAL_*, which beats the profile; an API key implies
    TLS; TEMPORAL_TLS=false turns it off again; nothing set = plain text to localhost."""
    config = tmp_path / "temporal.toml"
    config.write_text(
        '[profile.default]\naddress = "profile:7233"\nnamespace = "from-profile"\n'
        '[profile.default.tls]\nserver_name = "profile-name"\n'
    )
    env = {"TEMPORAL_CONFIG_FILE": str(config), "TEMPORAL_NAMESPACE": "from-env"}
    settings = resolve_settings(ConnectionFlags(address="flag:7233"), env)
    assert ("flag:7233", "from-env", True, "profile-name") == (
        settings.address,
        settings.namespace,
        settings.tls,
        settings.tls_server_name,
    )
    keyed = resolve_settings(
        None, {"TEMPORAL_CONFIG_FILE": str(config / "none"), "TEMPORAL_API_KEY": "k"}
    )
    assert (True, "k") == (keyed.tls, keyed.api_key)
    off = resolve_settings(
        None,
        {
            "TEMPORAL_CONFIG_FILE": str(config / "none"),
            "TEMPORAL_API_KEY": "k",
            "TEMPORAL_TLS": "false",
        },
    )
    assert (False, "k") == (off.tls, off.api_key)
    bare = resolve_settings(None, {"TEMPORAL_CONFIG_FILE": str(config / "none")})
    assert (False, "default") == (bare.tls, bare.namespace)
    assert bare.address.startswith("localhost:")
