"""OpenTelemetry traces and metrics, and Temporal's own metrics on a Prometheus endpoint, for
every client and worker of this project.

Configured by the standard OpenTelemetry environment variables and nothing else:

- ``OTEL_TRACES_EXPORTER`` / ``OTEL_METRICS_EXPORTER``: ``console`` (to stderr, so a command's
  own output stays clean), ``otlp`` (needs the optional extra: ``pip install '.[otlp]'``),
  ``none``; comma-separated for several. Unset means off: a plain run creates no provider, adds
  no interceptor and behaves exactly as without this module.
- ``OTEL_SDK_DISABLED=true`` switches both off; ``OTEL_SERVICE_NAME`` / ``OTEL_RESOURCE_ATTRIBUTES``
  name the service (default ``parallel-execution-engine``); ``OTEL_EXPORTER_OTLP_PROTOCOL``
  (``http/protobuf``, the default, or ``grpc``), ``OTEL_EXPORTER_OTLP_ENDPOINT`` and the other
  OTLP variables are read by the OTLP exporters themselves; ``OTEL_METRIC_EXPORT_INTERVAL``
  by the periodic metric reader.

One Telemetry per process (`configure`, read lazily by `current`): `pee.runtime.connection.connect`
puts its interceptors on every client (workers built from a client inherit them) and its
Temporal Runtime under it; `pee.runtime.exit.exit_process` flushes it before the hard exit.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    ConsoleMetricExporter,
    MetricExporter,
    MetricReader,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SimpleSpanProcessor,
    SpanExporter,
)
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig

DEFAULT_SERVICE_NAME = "parallel-execution-engine"
EXPORTERS = ("console", "otlp", "none")
TRACER_NAME = "parallel-execution-engine"


class TelemetryConfigError(ValueError):
    """An OTEL_* variable or --metrics-port that cannot be honoured; the message says the fix."""


@dataclass
class Telemetry:
    tracer_provider: TracerProvider | None = None
    meter_provider: MeterProvider | None = None
    # a Temporal Runtime serving the SDK's metrics to Prometheus (--metrics-port)
    runtime: Runtime | None = None
    metrics_address: str | None = None
    _interceptors: list[Any] | None = field(default=None, repr=False)

    @property
    def enabled(self) -> bool:
        return self.tracer_provider is not None or self.meter_provider is not None

    def interceptors(self) -> list[Any]:
        """Client interceptors (workers built from the client inherit them): Temporal's
        TracingInterceptor when tracing, and the RunObserver that records each finished run's
        spans and metrics (src/pee/runtime/run_observer.py)."""
        if self._interceptors is None and not self.enabled:
            # nothing to trace or record: the interceptors' modules need not be loaded
            self._interceptors = []
        if self._interceptors is None:
            from temporalio.contrib.opentelemetry import TracingInterceptor

            from pee.runtime.run_observer import RunObserver

            found: list[Any] = []
            tracer = (
                self.tracer_provider.get_tracer(TRACER_NAME)
                if self.tracer_provider is not None
                else None
            )
            meter = (
                self.meter_provider.get_meter(TRACER_NAME)
                if self.meter_provider is not None
                else None
            )
            if tracer is not None:
                found.append(TracingInterceptor(tracer))
            if self.enabled:
                found.append(RunObserver(tracer, meter))
            self._interceptors = found
        return list(self._interceptors)

    def shutdown(self) -> None:
        """Export what is pending and stop the providers (a stopped provider records nothing)."""
        tracer, meter = self.tracer_provider, self.meter_provider
        self.tracer_provider = self.meter_provider = None
        self._interceptors = None
        for provider in (tracer, meter):
            if provider is not None:
                with contextlib.suppress(Exception):
                    provider.shutdown()


def exporter_names(env: Mapping[str, str], variable: str) -> list[str]:
    raw = (env.get(variable) or "").strip()
    names = [name.strip().lower() for name in raw.split(",") if name.strip()]
    unknown = [name for name in names if name not in EXPORTERS]
    if unknown:
        raise TelemetryConfigError(
            f"{variable}={raw!r}: unknown exporter {unknown[0]!r}; expected a comma-separated "
            f"list of {', '.join(EXPORTERS)}"
        )
    return [name for name in names if name != "none"]


def service_resource(env: Mapping[str, str]) -> Resource:
    """service.name from OTEL_SERVICE_NAME, else from OTEL_RESOURCE_ATTRIBUTES (which
    Resource.create reads), else ours."""
    name = env.get("OTEL_SERVICE_NAME")
    if not name and "service.name=" not in (env.get("OTEL_RESOURCE_ATTRIBUTES") or ""):
        name = DEFAULT_SERVICE_NAME
    return Resource.create({"service.name": name} if name else {})


def otlp_protocol(env: Mapping[str, str], signal: str) -> str:
    protocol = (
        env.get(f"OTEL_EXPORTER_OTLP_{signal}_PROTOCOL")
        or env.get("OTEL_EXPORTER_OTLP_PROTOCOL")
        or "http/protobuf"
    ).strip()
    if protocol not in ("http/protobuf", "grpc"):
        raise TelemetryConfigError(
            f"OTEL_EXPORTER_OTLP_PROTOCOL={protocol!r}: expected http/protobuf or grpc"
        )
    return protocol


def _missing_otlp(variable: str, err: ImportError) -> TelemetryConfigError:
    return TelemetryConfigError(
        f"{variable}=otlp needs the OTLP exporter, which is not installed ({err.name or err}): "
        "install the optional extra with `pip install '.[otlp]'` (the package "
        "opentelemetry-exporter-otlp), or set it to console or none"
    )


def span_exporter(name: str, env: Mapping[str, str]) -> SpanExporter:
    if name == "console":
        return ConsoleSpanExporter(out=sys.stderr)
    try:
        if otlp_protocol(env, "TRACES") == "grpc":
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
        else:
            # the gRPC and HTTP exporters are two classes under one name: an assignment error
            # when the gRPC one (the otlp extra) is installed, none when it is not
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import (  # type: ignore[assignment, unused-ignore]
                OTLPSpanExporter,
            )
    except ImportError as err:
        raise _missing_otlp("OTEL_TRACES_EXPORTER", err) from None
    return OTLPSpanExporter()


def metric_exporter(name: str, env: Mapping[str, str]) -> MetricExporter:
    if name == "console":
        return ConsoleMetricExporter(out=sys.stderr)
    try:
        if otlp_protocol(env, "METRICS") == "grpc":
            from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import (
                OTLPMetricExporter,
            )
        else:
            # the gRPC and HTTP exporters are two classes under one name: an assignment error
            # when the gRPC one (the otlp extra) is installed, none when it is not
            from opentelemetry.exporter.otlp.proto.http.metric_exporter import (  # type: ignore[assignment, unused-ignore]
                OTLPMetricExporter,
            )
    except ImportError as err:
        raise _missing_otlp("OTEL_METRICS_EXPORTER", err) from None
    return OTLPMetricExporter()


def prometheus_runtime(port: int, host: str | None = None) -> tuple[Runtime, str]:
    """A Temporal Runtime serving the SDK's own metrics at http://HOST:PORT/metrics (host:
    PEE_METRICS_HOST or 127.0.0.1; 0.0.0.0 lets a Prometheus on another machine scrape it)."""
    address = f"{host or os.environ.get('PEE_METRICS_HOST') or '127.0.0.1'}:{port}"
    try:
        runtime = Runtime(
            telemetry=TelemetryConfig(
                metrics=PrometheusConfig(bind_address=address, durations_as_seconds=True)
            )
        )
    except Exception as err:  # the bridge reports a busy port as a bare exception
        raise TelemetryConfigError(
            f"--metrics-port {port}: cannot serve Prometheus metrics at {address}: {err}; "
            "choose a free port"
        ) from None
    return runtime, address


def from_env(
    env: Mapping[str, str] | None = None,
    *,
    metrics_port: int | None = None,
    span_processors: list[Any] | None = None,
    metric_readers: list[MetricReader] | None = None,
) -> Telemetry:
    """The process's telemetry as the OTEL_* variables ask; `span_processors` and
    `metric_readers` add to what they ask (tests pass in-memory ones)."""
    env = os.environ if env is None else env
    disabled = (env.get("OTEL_SDK_DISABLED") or "").strip().lower() == "true"
    traces = [] if disabled else exporter_names(env, "OTEL_TRACES_EXPORTER")
    metrics = [] if disabled else exporter_names(env, "OTEL_METRICS_EXPORTER")
    processors = [
        SimpleSpanProcessor(span_exporter(name, env))
        if name == "console"
        else BatchSpanProcessor(span_exporter(name, env))
        for name in traces
    ]
    processors += span_processors or []
    readers: list[MetricReader] = [
        PeriodicExportingMetricReader(metric_exporter(name, env)) for name in metrics
    ]
    readers += metric_readers or []
    telemetry = Telemetry()
    if processors or readers:
        resource = service_resource(env)
        if processors:
            telemetry.tracer_provider = TracerProvider(resource=resource)
            for processor in processors:
                telemetry.tracer_provider.add_span_processor(processor)
        if readers:
            telemetry.meter_provider = MeterProvider(metric_readers=readers, resource=resource)
    if metrics_port is not None:
        telemetry.runtime, telemetry.metrics_address = prometheus_runtime(metrics_port)
    return telemetry


_CURRENT: Telemetry | None = None


def configure(*, metrics_port: int | None = None) -> Telemetry:
    """Set up this process's telemetry from the environment (entry points call it once, before
    connecting; raises TelemetryConfigError, exit 2)."""
    global _CURRENT
    if _CURRENT is not None:
        _CURRENT.shutdown()
    _CURRENT = from_env(metrics_port=metrics_port)
    return _CURRENT


def current() -> Telemetry:
    """The process's telemetry; configured from the environment on first use."""
    global _CURRENT
    if _CURRENT is None:
        _CURRENT = from_env()
    return _CURRENT


def shutdown() -> None:
    """Flush and stop the process's telemetry, if any was set up (before the hard exit)."""
    global _CURRENT
    if _CURRENT is not None:
        _CURRENT.shutdown()
        _CURRENT = None
