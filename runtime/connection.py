"""Client connection settings from the environment. TLS and API keys come later."""

from __future__ import annotations

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


async def connect(address: str | None = None, namespace: str | None = None) -> Client:
    return await Client.connect(
        address or env_address() or DEFAULT_ADDRESS,
        namespace=namespace or default_namespace(),
    )
