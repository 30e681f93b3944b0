"""Record each finished run's spans and metrics on the worker that finishes it.

A worker interceptor wraps PlanWorkflow's run: when the run returns its report (or fails with
the report in its ApplicationError, or is cancelled), it hands the final report to a function
outside the workflow sandbox (a Temporal extern function, as the SDK's own TracingInterceptor
does), which turns it into spans (pee.engine.report.trace_spans) and metric points
(pee.engine.report.metrics) and records them with the OpenTelemetry SDK.

Why here: every run ends on exactly one worker, whoever started it (`starter.py run`, its
`--no-worker` form, the `temporal` CLI), so runs started from anywhere are covered; the report
is final at that point; and the workflow issues no extra command (no activity, no marker), so
a run with telemetry replays like one without. Replays are skipped (workflow.unsafe.is_replaying):
a worker that replays a history to answer a query never records the run again. A run whose
final workflow task fails and is retried ends twice on the same worker: only the first ending is
recorded (runs are remembered by id); recording never raises into the workflow (a broken
exporter is logged and ignored).
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any

import opentelemetry.context
import opentelemetry.trace
import temporalio.client
from opentelemetry.metrics import Meter
from opentelemetry.trace import Status, StatusCode, Tracer
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from temporalio import workflow
from temporalio.converter import PayloadConverter
from temporalio.exceptions import ApplicationError
from temporalio.worker import (
    ExecuteWorkflowInput,
    Interceptor,
    WorkflowInboundInterceptor,
    WorkflowInterceptorClassInput,
)

from pee.engine.report.metrics import DEFINITIONS, GAUGE, HISTOGRAM, run_metrics
from pee.engine.report.trace_spans import run_spans
from pee.engine.states import RUN_FINAL

log = logging.getLogger(__name__)

EXTERN = "__pee_run_finished"
# the header Temporal's TracingInterceptor propagates the starting client's span in
TRACE_HEADER = "_tracer-data"
OBSERVED_WORKFLOWS = ("PlanWorkflow",)
# how many recorded runs a worker remembers, to record each once
MAX_REMEMBERED_RUNS = 10_000
# report statuses of a run that has ended


class RunObserver(temporalio.client.Interceptor, Interceptor):
    """Worker interceptor: spans (when `tracer`) and metrics (when `meter`) per finished run.
    Also a (pass-through) client interceptor, so that workers built from the client inherit it."""

    def __init__(self, tracer: Tracer | None, meter: Meter | None) -> None:
        self.tracer = tracer
        self.meter = meter
        self._instruments: dict[str, Any] = {}
        # runs recorded by this process: a final workflow task that fails (an event arrived while
        # it ran) is retried and ends the run a second time; record the first ending only
        self._recorded: OrderedDict[tuple[str, str], None] = OrderedDict()

    def workflow_interceptor_class(
        self, input: WorkflowInterceptorClassInput
    ) -> type[WorkflowInboundInterceptor]:
        input.unsafe_extern_functions[EXTERN] = self.run_finished
        return _FinishedRunInterceptor

    def run_finished(self, report: Mapping[str, Any], carrier: Mapping[str, str] | None) -> None:
        """Outside the sandbox: record the run. Never raises (it runs in a workflow task)."""
        run = (str(report.get("workflow_id")), str(report.get("run_id")))
        if run in self._recorded:
            return
        self._recorded[run] = None
        while len(self._recorded) > MAX_REMEMBERED_RUNS:
            self._recorded.popitem(last=False)
        try:
            if self.tracer is not None:
                self.record_spans(report, carrier)
            if self.meter is not None:
                self.record_metrics(report)
        except Exception:
            log.exception("could not record telemetry for run %s", report.get("workflow_id"))

    def record_spans(self, report: Mapping[str, Any], carrier: Mapping[str, str] | None) -> None:
        assert self.tracer is not None
        # under the span of the client that started the run, when it was traced
        parent = (
            TraceContextTextMapPropagator().extract(dict(carrier))
            if carrier
            else opentelemetry.context.Context()
        )
        contexts: dict[str, opentelemetry.context.Context] = {}
        for spec in run_spans(report):
            context = contexts.get(spec.parent, parent) if spec.parent else parent
            span = self.tracer.start_span(
                spec.name, context=context, attributes=spec.attributes, start_time=_ns(spec.start)
            )
            if spec.error is not None:
                span.set_status(Status(StatusCode.ERROR, spec.error))
            span.end(end_time=_ns(spec.end))
            contexts[spec.key] = opentelemetry.trace.set_span_in_context(span, parent)

    def record_metrics(self, report: Mapping[str, Any]) -> None:
        for point in run_metrics(report):
            instrument = self._instrument(point.name)
            if point.definition.kind == HISTOGRAM:
                instrument.record(point.value, point.attributes)
            else:
                instrument.set(point.value, point.attributes)

    def _instrument(self, name: str) -> Any:
        if name not in self._instruments:
            assert self.meter is not None
            definition = DEFINITIONS[name]
            creators: dict[str, Callable[..., Any]] = {
                HISTOGRAM: self.meter.create_histogram,
                GAUGE: self.meter.create_gauge,
            }
            create = creators[definition.kind]
            self._instruments[name] = create(
                name, unit=definition.unit, description=definition.description
            )
        return self._instruments[name]


def _ns(moment: Any) -> int:
    return int(moment.timestamp() * 1_000_000_000)


class _FinishedRunInterceptor(WorkflowInboundInterceptor):
    """Inside the workflow: pass the final report out once, when the run ends live."""

    async def execute_workflow(self, input: ExecuteWorkflowInput) -> Any:
        try:
            result = await super().execute_workflow(input)
        except ApplicationError as err:
            # a failed run carries its report as the error's first detail
            self._finished(err.details[0] if err.details else None)
            raise
        except GeneratorExit:
            # the worker evicting the run (shutting down): the coroutine is being closed outside
            # the workflow's event loop, the run has not ended and workflow.info() is gone
            raise
        except workflow.ContinueAsNewError:
            # not an end: the next run carries on (and reports the whole run when it ends);
            # building a 5,000-agent status report here would only cost the task its time
            raise
        except BaseException:
            # cancelled (or an unexpected error): the report as the status query sees it
            self._finished(_status_report())
            raise
        self._finished(result)
        return result

    def _finished(self, report: Any) -> None:
        info = workflow.info()
        # only a run that has ended: a run evicted from the worker's cache (the worker shutting
        # down) is not one, whatever unwinds through here
        if (
            info.workflow_type not in OBSERVED_WORKFLOWS
            or not isinstance(report, dict)
            or report.get("status") not in RUN_FINAL
            or workflow.unsafe.is_replaying()
        ):
            return
        workflow.extern_functions()[EXTERN](report, _trace_carrier(info.headers))


def _status_report() -> Any:
    try:
        return workflow.instance().status()
    except Exception:
        return None


def _trace_carrier(headers: Mapping[str, Any]) -> dict[str, str] | None:
    payload = headers.get(TRACE_HEADER)
    if payload is None:
        return None
    try:
        (carrier,) = PayloadConverter.default.from_payloads([payload])
    except Exception:
        return None
    return dict(carrier) if isinstance(carrier, dict) else None
