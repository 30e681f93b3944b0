"""Tracing: with OTEL_EXPORTER_OTLP_ENDPOINT set, `starter.py run` exports the run's spans
over OTLP/HTTP (what docker-compose.yml's tracing profile collects): starting the workflow, the
workflow itself and every agent activity, in one trace, under the configured service name."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from tests.conftest import PROJECT_ROOT, starter


class Collector:
    """An OTLP/HTTP trace receiver on a free port: POST /v1/traces, protobuf bodies."""

    def __init__(self) -> None:
        self.requests: list[ExportTraceServiceRequest] = []
        received = self.requests

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                request = ExportTraceServiceRequest()
                request.ParseFromString(body)
                received.append(request)
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def spans(self) -> list[tuple[str, str, bytes]]:
        """(service name, span name, trace id) of every span received."""
        found = []
        for request in self.requests:
            for resource_spans in request.resource_spans:
                service = next((attribute.value.string_value
                                for attribute in resource_spans.resource.attributes
                                if attribute.key == "service.name"), "")
                for scope in resource_spans.scope_spans:
                    found.extend((service, span.name, span.trace_id) for span in scope.spans)
        return found


@pytest.fixture
def collector() -> Iterator[Collector]:
    receiver = Collector()
    try:
        yield receiver
    finally:
        receiver.server.shutdown()


def test_a_run_exports_its_workflow_and_agent_spans(cli_env: dict[str, str],
                                                    collector: Collector) -> None:
    """demo.yaml's 4 agents: one StartWorkflow and RunWorkflow span, a RunActivity span per
    agent, all in one trace, service name from OTEL_SERVICE_NAME."""
    env = {**cli_env, "OTEL_EXPORTER_OTLP_ENDPOINT": collector.url,
           "OTEL_SERVICE_NAME": "pee-test", "OTEL_BSP_SCHEDULE_DELAY": "200"}
    done = starter(env, "run", PROJECT_ROOT / "plans" / "demo.yaml", "--time-scale", "0.1",
                   "--workflow-id", "traced-1")
    assert 0 == done.returncode, done.stdout + done.stderr
    spans = collector.spans()
    names = [name for _service, name, _trace in spans]
    assert 1 == names.count("StartWorkflow:PlanWorkflow"), names
    assert names.count("RunWorkflow:PlanWorkflow") >= 1, names
    assert 4 == names.count("RunActivity:run_agent"), names
    assert {"pee-test"} == {service for service, _name, _trace in spans}
    start_trace = next(trace for _s, name, trace in spans if name == "StartWorkflow:PlanWorkflow")
    assert {start_trace} == {trace for _s, name, trace in spans
                             if name in ("RunWorkflow:PlanWorkflow", "RunActivity:run_agent")}


def test_no_endpoint_no_interceptor(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without an OTLP endpoint nothing is traced: clients get no interceptor."""
    from runtime import tracing

    for name in tracing.ENDPOINT_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    assert [] == tracing.client_interceptors()
