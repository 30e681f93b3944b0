"""Which worker environment variables an `http` agent's ``api_key_env`` may name.

Why a rule at all: the plan names both the variable and the URL its value is sent to, so without
one any plan could send the worker's own credentials (its Temporal API key, the S3 secret, the
cache database's URL with its password) to a host of the plan's choosing. The worker owner
decides: ``PEE_HTTP_KEY_ENVS`` (comma-separated names or shell-style patterns, e.g.
``OPENAI_API_KEY,LLM_*``) is an allow-list; unset, any variable may be named except the worker's
own connection and store credentials below, so existing plans keep working on a laptop.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping

ALLOW_LIST_VARIABLE = "PEE_HTTP_KEY_ENVS"

# what the worker itself connects with (runtime/connection.py, stores/urls.py, OTLP exporters)
WORKER_CREDENTIALS = (
    "TEMPORAL_*",
    "AWS_*",
    "PEE_CACHE_URL",
    "PEE_ARTIFACT_URL",
    "OTEL_EXPORTER_OTLP_*HEADERS",
)


def patterns(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())


def refusal(name: str, environ: Mapping[str, str]) -> str | None:
    """Why ``name`` may not be sent as a key on this worker, or None when it may."""
    allowed = patterns(environ.get(ALLOW_LIST_VARIABLE, ""))
    if allowed:
        if any(fnmatch.fnmatchcase(name, pattern) for pattern in allowed):
            return None
        return (
            f"api_key_env names '{name}', which this worker's {ALLOW_LIST_VARIABLE} "
            f"({', '.join(allowed)}) does not allow; add it there on the worker, or name an "
            "allowed variable in the plan"
        )
    guarded = [p for p in WORKER_CREDENTIALS if fnmatch.fnmatchcase(name, p)]
    if guarded:
        return (
            f"api_key_env names '{name}', one of the worker's own credentials "
            f"({guarded[0]}), which a plan may not send to a model server; put the model's "
            f"key in a variable of its own, or allow this one explicitly with "
            f"{ALLOW_LIST_VARIABLE}={name} on the worker"
        )
    return None
