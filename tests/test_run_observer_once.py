"""A run that ends twice on one worker (its final workflow task failed because an event arrived
while it ran, and was retried) is recorded once: the observer remembers the runs it recorded."""

from __future__ import annotations

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from pee.runtime.run_observer import RunObserver

REPORT = {
    "workflow_id": "w",
    "run_id": "r",
    "plan": "p",
    "status": "cancelled",
    "error": None,
    "started_at": "2025-01-01T00:00:00+00:00",
    "finished_at": "2025-01-01T00:00:01+00:00",
    "makespan_s": 1.0,
    "agents": {},
    "groups": {},
    "alerts": [],
    "critical_path": [],
    "parallel_efficiency": None,
    "events": [],
    "conflicts": [],
}


def test_the_same_run_ending_twice_is_recorded_once() -> None:
    """Two endings of run (w, r): one PlanRun span; another run id: recorded too."""
    spans = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(spans))
    observer = RunObserver(provider.get_tracer("t"), None)
    observer.run_finished(REPORT, None)
    observer.run_finished({**REPORT, "makespan_s": 1.2}, None)
    observer.run_finished({**REPORT, "run_id": "r2"}, None)
    runs = [s for s in spans.get_finished_spans() if s.name.startswith("PlanRun")]
    assert [("w", "r"), ("w", "r2")] == [
        (s.attributes["temporalWorkflowID"], s.attributes["temporalRunID"]) for s in runs
    ]
