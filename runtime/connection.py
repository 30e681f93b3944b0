"""Where the Temporal server is, and connecting to it. TLS and API keys come later."""

from __future__ import annotations

import asyncio
import os
import socket

from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from runtime import telemetry as otel
from runtime.codec import data_converter

DEFAULT_DEV_PORT = 7233
DEFAULT_NAMESPACE = "default"
DEFAULT_TASK_QUEUE = "parallel-execution-engine"
LOCAL_HOSTS = ("localhost", "127.0.0.1", "::1", "[::1]")


def dev_port() -> int:
    """The embedded dev server's frontend port: PEE_DEV_PORT (tests use their own) or 7233."""
    return int(os.environ.get("PEE_DEV_PORT") or DEFAULT_DEV_PORT)


def local_default_address() -> str:
    return f"localhost:{dev_port()}"


def default_address() -> str:
    """TEMPORAL_ADDRESS if set, else the local default (where the embedded server runs)."""
    return os.environ.get("TEMPORAL_ADDRESS") or local_default_address()


def default_namespace() -> str:
    return os.environ.get("TEMPORAL_NAMESPACE") or DEFAULT_NAMESPACE


def default_task_queue() -> str:
    return os.environ.get("PEE_TASK_QUEUE") or DEFAULT_TASK_QUEUE


def split_address(address: str) -> tuple[str, int]:
    """HOST:PORT (IPv6 as [::1]:7233) -> (host, port); ValueError when malformed."""
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ValueError(f"expected HOST:PORT, found {address!r}")
    return host.strip("[]"), int(port)


def is_local_default(address: str) -> bool:
    """True for this machine at the embedded server's port: the one address we may start."""
    try:
        host, port = split_address(address)
    except ValueError:
        return False
    return host in LOCAL_HOSTS and port == dev_port()


def listening(address: str, timeout_s: float = 0.5) -> bool:
    """Whether something accepts TCP connections at HOST:PORT (not necessarily Temporal)."""
    try:
        host, port = split_address(address)
        with socket.create_connection((host, port), timeout=timeout_s):
            return True
    except (OSError, ValueError):
        return False


async def connect(
    address: str | None = None, namespace: str | None = None, *, starting_wait_s: float = 10.0,
    telemetry: otel.Telemetry | None = None,
) -> Client:
    """Connect; a server that is up but still starting ("Unavailable") gets `starting_wait_s`.

    `telemetry` (default: the process's, runtime.telemetry.current()) adds its tracing and
    run-observing interceptors, which workers built from this client inherit, and its Temporal
    Runtime (Prometheus metrics). Raises ConnectionError with the address in the message for
    anything else.
    """
    target = address or default_address()
    namespace = namespace or default_namespace()
    telemetry = telemetry or otel.current()
    extra: dict[str, object] = {}
    if telemetry.runtime is not None:
        extra["runtime"] = telemetry.runtime
    deadline = asyncio.get_running_loop().time() + starting_wait_s
    while True:
        try:
            client = await Client.connect(target, namespace=namespace,
                                          data_converter=data_converter(),
                                          interceptors=telemetry.interceptors(),
                                          **extra)  # type: ignore[arg-type]
            break
        except RuntimeError as err:
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
        # not allowed to describe it (a scoped API key) is no reason to stop here
    return client
