"""Client connection settings from the environment. TLS and API keys come later."""

from __future__ import annotations

import asyncio
import os

from temporalio.client import Client

DEFAULT_ADDRESS = "localhost:7233"
DEFAULT_NAMESPACE = "default"
DEFAULT_TASK_QUEUE = "parallel-execution-engine"


def env_address() -> str | None:
    """TEMPORAL_ADDRESS if set: None means "no server given" (the CLI then starts its own)."""
    return os.environ.get("TEMPORAL_ADDRESS") or None


def default_namespace() -> str:
    return os.environ.get("TEMPORAL_NAMESPACE") or DEFAULT_NAMESPACE


def default_task_queue() -> str:
    return os.environ.get("PEE_TASK_QUEUE") or DEFAULT_TASK_QUEUE


async def connect(
    address: str | None = None, namespace: str | None = None, *, starting_wait_s: float = 10.0
) -> Client:
    """Connect; a server that is up but still starting ("Unavailable") gets `starting_wait_s`."""
    target = address or env_address() or DEFAULT_ADDRESS
    deadline = asyncio.get_running_loop().time() + starting_wait_s
    while True:
        try:
            return await Client.connect(target, namespace=namespace or default_namespace())
        except RuntimeError as err:
            # the bridge reports connection problems as bare RuntimeErrors; a fresh dev server
            # accepts connections a moment before its frontend reports healthy
            starting = "Unavailable" in str(err) or "not healthy" in str(err)
            if not starting or asyncio.get_running_loop().time() > deadline:
                raise ConnectionError(f"cannot reach Temporal at {target}: {err}") from err
            await asyncio.sleep(0.2)
