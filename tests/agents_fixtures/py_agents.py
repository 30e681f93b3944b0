"""Python agents for tests (callable: tests.agents_fixtures.py_agents:<name>)."""

import asyncio
import threading


def summarise(user_stories, topic="none"):
    return {
        "summary": f"{len(user_stories)} stories about {topic}",
        "thread": threading.current_thread().name,
    }


async def summarise_async(user_stories, topic="none"):
    await asyncio.sleep(0.01)
    return {"summary": f"{len(user_stories)} stories about {topic}", "thread": "async"}


def forgets_an_output(user_stories, topic="none"):
    return {"summary": "only this"}


def returns_a_list(**inputs):
    return ["not", "a", "mapping"]


def returns_a_set(**inputs):
    return {"summary": {1, 2}, "thread": "x"}


def fails(**inputs):
    raise ValueError("the index is not built yet")


async def sleeps(**inputs):
    await asyncio.sleep(60)
    return {}


NOT_CALLABLE = 42


def large_document(seed=20):
    """~400 KB of hex digits: still over External Storage's 256 KiB threshold after lz4
    (PEE_LARGE_DOCUMENT_BYTES random bytes, hex-encoded, when set)."""
    import os
    import random

    size = int(os.environ.get("PEE_LARGE_DOCUMENT_BYTES") or 200_000)
    return {"doc": random.Random(seed).randbytes(size).hex()}


def measure_document(doc):
    import hashlib

    return {"size": len(doc), "sha256": hashlib.sha256(doc.encode()).hexdigest()}
