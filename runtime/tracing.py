"""OpenTelemetry traces of runs, on when OTEL_EXPORTER_OTLP_ENDPOINT is set.

Every client this project makes (runtime.connection.connect) then carries Temporal's
TracingInterceptor, so starting a run, the workflow and each agent activity become spans
(`StartWorkflow:PlanWorkflow`, `RunWorkflow:PlanWorkflow`, `RunActivity:run_agent`, ...) of one
trace, exported over OTLP/HTTP to the endpoint (docker-compose.yml's tracing profile: the
collector at http://otel-collector:4318, which forwards to Jaeger). The exporter is the
`tracing` extra (`pip install -e '.[tracing]'`); the standard OTEL_* variables apply
(OTEL_SERVICE_NAME, OTEL_EXPORTER_OTLP_HEADERS, ...). Entry points flush pending spans before
they exit (runtime.exit).
"""

from __future__ import annotations

import os
from typing import Any

from runtime.connection import ConnectionConfigError

DEFAULT_SERVICE_NAME = "parallel-execution-engine"
ENDPOINT_VARIABLES = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")

_provider: Any = None


class TracingUnavailable(ConnectionConfigError):
    """An OTLP endpoint is configured but the exporter package is not installed."""


def endpoint() -> str | None:
    for name in ENDPOINT_VARIABLES:
        if os.environ.get(name):
            return os.environ[name]
    return None


def client_interceptors() -> list[Any]:
    """[TracingInterceptor] when an OTLP endpoint is set (the exporter set up once), else []."""
    if endpoint() is None:
        return []
    global _provider
    if _provider is None:
        try:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        except ImportError:
            raise TracingUnavailable(
                f"OTEL_EXPORTER_OTLP_ENDPOINT is set ({endpoint()}) but the OTLP exporter is not "
                "installed: pip install -e '.[tracing]', or unset the variable") from None
        from opentelemetry import trace
        from opentelemetry.sdk.resources import SERVICE_NAME, Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        service = os.environ.get("OTEL_SERVICE_NAME") or DEFAULT_SERVICE_NAME
        provider = TracerProvider(resource=Resource.create({SERVICE_NAME: service}))
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        trace.set_tracer_provider(provider)
        _provider = provider
    from temporalio.contrib.opentelemetry import TracingInterceptor

    return [TracingInterceptor()]


def flush(timeout_s: float = 5.0) -> None:
    """Export what is still buffered (entry points exit hard, skipping atexit handlers)."""
    if _provider is not None:
        _provider.force_flush(timeout_millis=int(timeout_s * 1000))
