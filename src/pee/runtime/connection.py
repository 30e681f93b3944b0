"""Where the Temporal server is and how to reach it securely: one place for every entry point.

What a command connects with is resolved field by field: its flags (`--address`, `--namespace`,
`--profile`, `--tls*`, `--api-key`), else Temporal's own environment variables and client
config profile (`temporalio.envconfig`: `TEMPORAL_ADDRESS`, `TEMPORAL_NAMESPACE`,
`TEMPORAL_API_KEY`, `TEMPORAL_TLS`, `TEMPORAL_TLS_SERVER_CA_CERT_PATH`,
`TEMPORAL_TLS_CLIENT_CERT_PATH`, `TEMPORAL_TLS_CLIENT_KEY_PATH`, `TEMPORAL_TLS_SERVER_NAME`,
`TEMPORAL_GRPC_META_*`, `TEMPORAL_PROFILE` in `TEMPORAL_CONFIG_FILE`), else the local default.
The same variables therefore configure worker.py and starter.py in a container and on a laptop,
and the `temporal` CLI reads them too.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest
from temporalio.client import Client
from temporalio.converter import DataConverter
from temporalio.envconfig import ClientConfigProfile
from temporalio.service import RPCError, RPCStatusCode, TLSConfig

from pee.runtime.codec import data_converter
from pee.runtime.connection_flags import (
    CA_SETTING,
    CERT_SETTING,
    DEFAULT_NAMESPACE,
    KEY_SETTING,
    SERVER_NAME_SETTING,
    ConnectionFlags,
    local_default_address,
    setting_name,
    split_address,
)
from pee.stores.blobs import S3BlobStore, s3_settings
from pee.stores.urls import StoreConfigError
from pee.stores.urls import configured as configured_database

if TYPE_CHECKING:
    from pee.runtime import telemetry as otel


class ConnectionConfigError(ConnectionError):
    """The connection settings are unusable (a missing certificate file, a profile that does
    not exist, a key without its certificate); the message names the setting and the fix.
    A ConnectionError, so every entry point reports it like an unreachable server (exit 2)."""


class SecureConnectionError(ConnectionError):
    """The TLS handshake or the first call over it failed; the message says why and which
    setting fixes it."""


# a PEM given as a file (Path) or, from TEMPORAL_TLS_*_DATA or a profile's `data`, as text
PemSource = Path | bytes


@dataclass(frozen=True)
class ConnectionSettings:
    """Everything Client.connect needs, resolved (see the module docstring for the order)."""

    address: str
    namespace: str
    api_key: str | None = None
    tls: bool = False
    tls_ca: PemSource | None = None
    tls_cert: PemSource | None = None
    tls_key: PemSource | None = None
    tls_server_name: str | None = None
    rpc_metadata: Mapping[str, str] = field(default_factory=dict)

    def with_namespace(self, namespace: str | None) -> ConnectionSettings:
        return replace(self, namespace=namespace) if namespace else self

    def tls_config(self) -> TLSConfig | bool:
        """Client.connect's `tls`: False, or a TLSConfig with the PEMs read (checked first)."""
        if not self.tls:
            return False
        return TLSConfig(
            server_root_ca_cert=read_pem(self.tls_ca, CA_SETTING, "CERTIFICATE"),
            client_cert=read_pem(self.tls_cert, CERT_SETTING, "CERTIFICATE"),
            client_private_key=read_pem(self.tls_key, KEY_SETTING, "PRIVATE KEY"),
            domain=self.tls_server_name,
        )

    def describe(self) -> str:
        """How this connects, for a worker's first line: 'TLS (CA ca.pem, client cert)'."""
        if not self.tls:
            return "plain text" + (", API key" if self.api_key else "")
        parts = [f"CA {describe_source(self.tls_ca)}" if self.tls_ca else "system CAs"]
        if self.tls_cert:
            parts.append(f"client cert {describe_source(self.tls_cert)}")
        if self.tls_server_name:
            parts.append(f"server name {self.tls_server_name}")
        if self.api_key:
            parts.append("API key")
        return f"TLS ({', '.join(parts)})"


def describe_source(source: PemSource) -> str:
    return str(source) if isinstance(source, Path) else "inline PEM"


def read_pem(source: PemSource | None, setting: tuple[str, str], kind: str) -> bytes | None:
    """The PEM bytes, or a ConnectionConfigError naming the setting when they cannot be."""
    if source is None:
        return None
    if isinstance(source, Path):
        try:
            data = source.read_bytes()
        except OSError as err:
            raise ConnectionConfigError(
                f"{setting_name(setting)}: cannot read {source}: {err.strerror or err}"
            ) from None
        where = str(source)
    else:
        data, where = source, "the inline PEM"
    if b"-----BEGIN" not in data or kind.encode() not in data:
        raise ConnectionConfigError(
            f"{setting_name(setting)}: {where} holds no PEM {kind.lower()} (expected a "
            f"'-----BEGIN ...{kind}-----' block)"
        )
    return data


def load_profile(profile: str | None, env: Mapping[str, str] | None = None) -> ClientConfigProfile:
    """Temporal's client config: the profile (TOML file) with TEMPORAL_* variables on top."""
    # an empty variable counts as unset (compose's `${TEMPORAL_API_KEY:-}` gives ""), where
    # the bridge would read it as an empty key, or the current folder as the CA file
    given = os.environ if env is None else env
    try:
        return ClientConfigProfile.load(
            profile, override_env_vars={k: v for k, v in given.items() if v != ""}
        )
    except Exception as err:  # the bridge's ConfigError is not importable as a public name
        raise ConnectionConfigError(
            f"Temporal client config: {err} (profile {profile or 'from TEMPORAL_PROFILE'}; "
            "the file is TEMPORAL_CONFIG_FILE or ~/.config/temporalio/temporal.toml)"
        ) from None


def resolve_settings(
    flags: ConnectionFlags | None = None, env: Mapping[str, str] | None = None
) -> ConnectionSettings:
    """Flags over the environment over the profile over the defaults; checks combinations."""
    flags = flags or ConnectionFlags()
    loaded = load_profile(flags.profile, env)
    tls_from_profile = loaded.tls
    ca = flags.tls_ca or (tls_from_profile.server_root_ca_cert if tls_from_profile else None)
    cert = flags.tls_cert or (tls_from_profile.client_cert if tls_from_profile else None)
    key = flags.tls_key or (tls_from_profile.client_private_key if tls_from_profile else None)
    server_name = flags.tls_server_name or (
        tls_from_profile.server_name if tls_from_profile else None
    )
    api_key = flags.api_key or loaded.api_key
    explicit_tls = bool(
        flags.tls or flags.tls_ca or flags.tls_cert or flags.tls_key or flags.tls_server_name
    )
    disabled = tls_from_profile is not None and tls_from_profile.disabled is True
    # TEMPORAL_TLS=false switches TLS off for the environment's TLS settings and API key (a
    # plain-text server behind an authenticating proxy); a --tls* flag still switches it on
    tls = explicit_tls or (not disabled and (tls_from_profile is not None or api_key is not None))
    if (cert is None) != (key is None):
        given, missing = (CERT_SETTING, KEY_SETTING) if cert else (KEY_SETTING, CERT_SETTING)
        raise ConnectionConfigError(
            f"{setting_name(given)} is set but {setting_name(missing)} is not: mTLS needs the "
            "client certificate and its private key"
        )
    address = flags.address or loaded.address or local_default_address()
    try:
        split_address(address)
    except ValueError as err:
        source = "--address" if flags.address else "TEMPORAL_ADDRESS (or the profile's address)"
        raise ConnectionConfigError(f"{source}: {err}") from None
    return ConnectionSettings(
        address=address,
        namespace=flags.namespace or loaded.namespace or DEFAULT_NAMESPACE,
        api_key=api_key,
        tls=tls,
        tls_ca=as_source(ca),
        tls_cert=as_source(cert),
        tls_key=as_source(key),
        tls_server_name=server_name,
        rpc_metadata=dict(loaded.grpc_meta),
    )


def as_source(value: str | Path | bytes | None) -> PemSource | None:
    """Flags and *_PATH variables are paths; a profile's `data` arrives as PEM text."""
    if value is None or isinstance(value, (Path, bytes)):
        return value
    return value.encode() if "-----BEGIN" in value else Path(value)


def explain_failure(settings: ConnectionSettings, error: str) -> str | None:
    """What a TLS-related connect failure means and which setting fixes it; None if it is not
    one. The Rust bridge reports these as text (rustls/tonic error names)."""
    target = settings.address
    if "UnknownIssuer" in error or "BadSignature" in error:
        trusted = (
            f"the CA in {describe_source(settings.tls_ca)}"
            if settings.tls_ca
            else "any of the system's CAs"
        )
        return (
            f"TLS to {target} failed: the server's certificate is not signed by {trusted}; "
            f"give the CA that signed it with {setting_name(CA_SETTING)}"
        )
    if "NotValidForName" in error:
        expected = settings.tls_server_name or split_address(target)[0]
        return (
            f"TLS to {target} failed: the server's certificate is not valid for "
            f"'{expected}'; set {setting_name(SERVER_NAME_SETTING)} to a name it carries"
        )
    if "Expired" in error or "NotValidYet" in error:
        return f"TLS to {target} failed: the server's certificate is expired or not yet valid"
    if "InvalidContentType" in error or "CorruptMessage" in error:
        return (
            f"TLS to {target} failed: the server does not speak TLS; leave out the --tls* "
            "options and TEMPORAL_TLS* variables (and the API key) for it"
        )
    if "PrivateKeyParseError" in error:
        key = describe_source(settings.tls_key) if settings.tls_key else "the key"
        return (
            f"{setting_name(KEY_SETTING)}: {key} is not a private key the TLS library can "
            "read (PEM: PKCS#8, RSA or EC)"
        )
    # under TLS 1.3 a server that wants a client certificate rejects it after the client's side
    # of the handshake is done, so the client only sees the connection drop on its first call
    # (how the drop is worded depends on timing: EOF, broken pipe, reset, closed)
    squashed = error.lower().replace(" ", "").replace("_", "")
    dropped = any(
        sign in squashed
        for sign in (
            "closenotify",
            "unexpectedeof",
            "brokenpipe",
            "connectionreset",
            "connectionclosed",
            "connectionaborted",
            "certificaterequired",
            "badcertificate",
        )
    )
    if settings.tls and dropped:
        if settings.tls_cert is None:
            return (
                f"TLS to {target} failed: the server closed the connection after the "
                "handshake; it requires a client certificate (mTLS): give "
                f"{setting_name(CERT_SETTING)} and {setting_name(KEY_SETTING)}"
            )
        return (
            f"TLS to {target} failed: the server closed the connection after the "
            f"handshake; it refused the client certificate "
            f"{describe_source(settings.tls_cert)} (it must be signed by a CA the server "
            "trusts)"
        )
    if not settings.tls and dropped:
        return (
            f"cannot talk to Temporal at {target}: the server closed the connection; if "
            "it requires TLS, add --tls (and --tls-ca for a private CA)"
        )
    return None


async def shared_stores_converter() -> DataConverter:
    """The data converter, once the store settings are known to work: PEE_CACHE_URL parses,
    PEE_ARTIFACT_URL's bucket answers (a worker that cannot store large payloads says so at
    start, naming the bucket, the endpoint and the fix, not at its first large result).
    ConnectionConfigError otherwise."""
    try:
        configured_database()
        converter = data_converter()
        settings = s3_settings()
        if settings is not None:
            await asyncio.to_thread(S3BlobStore(settings).check)
    except StoreConfigError as err:
        raise ConnectionConfigError(str(err)) from None
    return converter


def process_telemetry() -> otel.Telemetry | None:
    """The process's telemetry (pee.runtime.telemetry.current()), or None when nothing asks for
    any: no OTEL_* variable and no command configured it (--metrics-port). The OpenTelemetry
    SDK is then never imported, which saved `pee run` a quarter of a second."""
    if "pee.runtime.telemetry" not in sys.modules and not any(
        name.startswith("OTEL_") for name in os.environ
    ):
        return None
    from pee.runtime import telemetry as otel

    return otel.current()


async def connect(
    settings: ConnectionSettings | str | None = None,
    namespace: str | None = None,
    *,
    starting_wait_s: float = 10.0,
    telemetry: otel.Telemetry | None = None,
) -> Client:
    """Connect; a server that is up but still starting ("Unavailable") gets `starting_wait_s`.

    A string is an address, with everything else from the environment. `telemetry` (default:
    the process's, pee.runtime.telemetry.current()) adds its tracing and run-observing
    interceptors, which workers built from this client inherit, and its Temporal Runtime
    (Prometheus metrics). Raises ConnectionConfigError for unusable settings,
    SecureConnectionError (a ConnectionError) for a failed TLS handshake, ConnectionError with
    the address in the message otherwise.
    """
    if not isinstance(settings, ConnectionSettings):
        settings = resolve_settings(ConnectionFlags(address=settings))
    settings = settings.with_namespace(namespace)
    target, namespace = settings.address, settings.namespace
    tls = settings.tls_config()
    telemetry = telemetry or process_telemetry()
    converter = await shared_stores_converter()
    deadline = asyncio.get_running_loop().time() + starting_wait_s
    while True:
        try:
            client = await Client.connect(
                target,
                namespace=namespace,
                data_converter=converter,
                tls=tls,
                api_key=settings.api_key,
                rpc_metadata=dict(settings.rpc_metadata),
                interceptors=telemetry.interceptors() if telemetry else [],
                # None: the SDK's default runtime
                runtime=telemetry.runtime if telemetry else None,
            )
            break
        except RuntimeError as err:
            explained = explain_failure(settings, str(err))
            if explained:
                raise SecureConnectionError(explained) from err
            # the bridge reports connection problems as bare RuntimeErrors; a fresh dev server
            # accepts connections a moment before its frontend reports healthy
            starting = "Unavailable" in str(err) or "not healthy" in str(err)
            if not starting or asyncio.get_running_loop().time() > deadline:
                raise ConnectionError(f"cannot reach Temporal at {target}: {err}") from err
            await asyncio.sleep(0.2)
    try:
        # a wrong namespace otherwise surfaces later as a worker validation crash
        await client.workflow_service.describe_namespace(
            DescribeNamespaceRequest(namespace=namespace)
        )
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            raise ConnectionError(f"namespace '{namespace}' does not exist at {target}") from None
        if err.status == RPCStatusCode.UNAUTHENTICATED:
            raise ConnectionError(
                f"Temporal at {target} refused the credentials: {err.message} (check the API "
                "key, --api-key or TEMPORAL_API_KEY, or the client certificate)"
            ) from None
        # not allowed to describe it (a scoped API key) is no reason to stop here
    return client
