"""Observability on real dev servers: OpenTelemetry spans and metrics of a run (captured with the
SDK's in-memory exporter and reader), the Prometheus endpoint of `--metrics-port`, the PeePlan/
PeeStatus/PeeGroup search attributes, and the OTEL_* configuration rules."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from temporalio.client import Client, WorkflowHandle
from temporalio.worker import Replayer

from pee.runtime import devserver, telemetry
from pee.runtime.codec import data_converter
from pee.runtime.connection import connect
from pee.runtime.devserver import free_port
from pee.runtime.run_observer import RunObserver
from pee.runtime.worker import build_worker
from pee.workflows import search
from pee.workflows.plan_workflow import PlanWorkflow
from pee.workflows.types import PlanRunInput
from tests.helpers import (
    NO_RETRY,
    PROJECT_ROOT,
    TemporalHarness,
    agent_running,
    async_eventually,
    compiled_plan,
    group,
    sim,
    starter,
    until_status,
    with_sections,
)


def small_plan(name: str, slow_s: float = 0.3) -> Any:
    """a, then b ‖ c (c the slower), validated nowhere: three agents in two groups."""
    return compiled_plan(
        [
            sim("a", "first", 0.1),
            sim("b", "pair", 0.1, inputs=["a.out"]),
            sim("c", "pair", slow_s, inputs=["a.out"]),
        ],
        [group("first", ["a"]), group("pair", ["b", "c"], ["first"], timeout_s=30.0)],
        name=name,
    )


class Captured:
    def __init__(self) -> None:
        self.spans = InMemorySpanExporter()
        self.metrics = InMemoryMetricReader()
        self.telemetry = telemetry.from_env(
            {}, span_processors=[SimpleSpanProcessor(self.spans)], metric_readers=[self.metrics]
        )

    def finished(self) -> list[ReadableSpan]:
        return list(self.spans.get_finished_spans())

    def metric_points(self) -> dict[str, list[Any]]:
        data = self.metrics.get_metrics_data()
        found: dict[str, list[Any]] = {}
        for resource in data.resource_metrics if data else []:
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    found.setdefault(metric.name, []).extend(metric.data.data_points)
        return found


def run_traced(
    temporal: TemporalHarness,
    captured: Captured,
    plan: Any,
    body: Callable[[WorkflowHandle[Any, Any]], Awaitable[Any]] | None = None,
    **fields: Any,
) -> tuple[dict[str, Any], Any]:
    """Run `plan` with a client (and so a worker) carrying the captured telemetry; returns the
    report and the run's history."""

    async def go() -> tuple[dict[str, Any], Any]:
        client = await connect(temporal.address, telemetry=captured.telemetry)
        task_queue = f"otel-{uuid.uuid4()}"
        async with build_worker(client, task_queue):
            handle = await client.start_workflow(
                PlanWorkflow.run,
                PlanRunInput(plan=plan, **fields),
                id=f"{plan.name}-{uuid.uuid4().hex[:8]}",
                task_queue=task_queue,
            )
            if body is not None:
                await body(handle)
            report = await handle.result()
            history = await handle.fetch_history()
        return report, history

    return temporal.run(go())


def by_name(spans: list[ReadableSpan], name: str) -> ReadableSpan:
    (found,) = [s for s in spans if s.name == name]
    return found


def test_a_traced_run_has_run_group_agent_and_barrier_spans(temporal: TemporalHarness) -> None:
    """PlanRun under the starting client's StartWorkflow span, groups under the run, agents
    and barrier decisions under their group; Temporal's own spans in the same trace; times and
    attributes as in the report."""
    captured = Captured()
    report, _ = run_traced(temporal, captured, small_plan("traced"))
    spans = captured.finished()
    start = by_name(spans, "StartWorkflow:PlanWorkflow")
    run = by_name(spans, "PlanRun:traced")
    first, pair = by_name(spans, "Group:first"), by_name(spans, "Group:pair")
    agents = {name: by_name(spans, f"Agent:{name}") for name in ("a", "b", "c")}
    barriers = [s for s in spans if s.name == "Barrier:all_completed"]

    assert start.context.span_id == run.parent.span_id
    assert [run.context.span_id] * 2 == [first.parent.span_id, pair.parent.span_id]
    assert [first.context.span_id, pair.context.span_id, pair.context.span_id] == [
        agents[name].parent.span_id for name in ("a", "b", "c")
    ]
    assert sorted([first.context.span_id, pair.context.span_id]) == sorted(
        b.parent.span_id for b in barriers
    )
    assert 3 == len([s for s in spans if s.name == "RunActivity:run_agent"])
    assert {start.context.trace_id} == {
        s.context.trace_id for s in spans if not s.name.startswith("Query")
    }

    c = agents["c"]
    assert {
        "pee.agent": "c",
        "pee.group": "pair",
        "pee.attempt": 1,
        "pee.cache_status": "off",
        "pee.agent_status": "succeeded",
    }.items() <= dict(c.attributes or {}).items()
    assert report["agents"]["c"]["duration_s"] == pytest.approx(
        (c.end_time - c.start_time) / 1e9, abs=0.002
    )
    assert report["makespan_s"] == pytest.approx((run.end_time - run.start_time) / 1e9, abs=0.002)
    assert report["workflow_id"] == dict(run.attributes or {})["temporalWorkflowID"]


def test_a_traced_run_records_the_seed_metrics_from_its_report(temporal: TemporalHarness) -> None:
    """total_workflow_time, per-agent execution times, parallel efficiency and the rest, with
    the values of the run's report."""
    captured = Captured()
    report, _ = run_traced(temporal, captured, small_plan("metered"))
    points = captured.metric_points()
    (total,) = points["total_workflow_time"]
    assert (1, report["makespan_s"]) == (total.count, pytest.approx(total.sum))
    assert {"plan": "metered", "status": "completed"} == dict(total.attributes)
    per_agent = {p.attributes["agent"]: p.sum for p in points["individual_agent_execution_time"]}
    assert {a: pytest.approx(report["agents"][a]["duration_s"]) for a in "abc"} == per_agent
    (efficiency,) = points["parallel_efficiency_ratio"]
    assert report["parallel_efficiency"] == pytest.approx(efficiency.value)
    (retries,) = points["retry_rate"]
    assert 0.0 == retries.value
    assert "cache_hit_ratios" not in points  # the plan does not use the output cache


def test_cache_status_and_attempts_reach_spans_and_metrics(temporal: TemporalHarness) -> None:
    """A cached rerun: agent spans say cache_status hit (miss on the first run), and
    cache_hit_ratios follows; an agent that failed once has pee.attempt 2 and retry_rate counts
    it."""
    plan = small_plan(f"cached-{uuid.uuid4().hex[:6]}")
    plan.agents[0].settings["fail_times"] = 1
    with_sections(plan, caching={"cache_levels": {"agent_output_cache": {"ttl": 3600}}})
    first, second = Captured(), Captured()
    run_traced(temporal, first, plan)
    run_traced(temporal, second, plan)

    def agent_attributes(captured: Captured, agent: str) -> dict[str, Any]:
        return dict(by_name(captured.finished(), f"Agent:{agent}").attributes or {})

    assert ("miss", 2) == (
        agent_attributes(first, "a")["pee.cache_status"],
        agent_attributes(first, "a")["pee.attempt"],
    )
    assert ["hit"] * 3 == [agent_attributes(second, a)["pee.cache_status"] for a in "abc"]
    assert [0.0] == [p.value for p in first.metric_points()["cache_hit_ratios"]]
    assert [1.0] == [p.value for p in second.metric_points()["cache_hit_ratios"]]
    # a: 2 attempts, b and c: 1 each -> 1 retry of 4 attempts
    assert [0.25] == [p.value for p in first.metric_points()["retry_rate"]]


def test_telemetry_adds_no_command_and_replays_record_nothing(temporal: TemporalHarness) -> None:
    """A traced run's history replays on a worker without telemetry (same commands), and a
    replay with the observer records no second set of spans or metrics."""
    captured = Captured()
    _, history = run_traced(temporal, captured, small_plan("replayed"))
    plain = Replayer(workflows=[PlanWorkflow], data_converter=data_converter())
    assert temporal.run(plain.replay_workflow(history)).replay_failure is None
    before = len(captured.finished())
    observer = RunObserver(
        captured.telemetry.tracer_provider.get_tracer("t"),  # type: ignore[union-attr]
        captured.telemetry.meter_provider.get_meter("t"),
    )  # type: ignore[union-attr]
    observed = Replayer(
        workflows=[PlanWorkflow], data_converter=data_converter(), interceptors=[observer]
    )
    assert temporal.run(observed.replay_workflow(history)).replay_failure is None
    assert before == len(captured.finished())
    (total,) = captured.metric_points()["total_workflow_time"]
    assert 1 == total.count


def test_a_run_that_continued_as_new_is_recorded_once_as_one_run(temporal: TemporalHarness) -> None:
    """Continue-as-new is not an end: nothing is recorded for the first run; the last records
    the whole run (every agent of every run) once, in the starting client's trace."""
    captured = Captured()
    report, _ = run_traced(temporal, captured, small_plan("continued"), continue_as_new_after=5)
    assert report["earlier_runs"], "the run never continued as new"
    spans = captured.finished()
    (run,) = [s for s in spans if s.name.startswith("PlanRun:")]
    start = by_name(spans, "StartWorkflow:PlanWorkflow")
    assert start.context.trace_id == run.context.trace_id
    assert ["Agent:a", "Agent:b", "Agent:c"] == sorted(
        s.name for s in spans if s.name.startswith("Agent:")
    )
    (total,) = captured.metric_points()["total_workflow_time"]
    assert 1 == total.count


def test_a_failed_run_is_traced_with_an_error_status(temporal: TemporalHarness) -> None:
    """The report a failed run carries in its failure becomes its spans and metrics."""
    captured = Captured()
    plan = compiled_plan(
        [
            sim("a", "g", 0.1, retry=NO_RETRY, fail_times="always"),
            sim("b", "g", 0.1, retry=NO_RETRY, fail_times="always"),
        ],
        [group("g", ["a", "b"], timeout_s=10.0)],
        name="broken",
    )

    async def go() -> None:
        client = await connect(temporal.address, telemetry=captured.telemetry)
        task_queue = f"otel-{uuid.uuid4()}"
        async with build_worker(client, task_queue):
            handle = await client.start_workflow(
                PlanWorkflow.run,
                PlanRunInput(plan=plan),
                id=f"broken-{uuid.uuid4().hex[:8]}",
                task_queue=task_queue,
            )
            with pytest.raises(Exception):  # noqa: B017 - WorkflowFailureError
                await handle.result()

    temporal.run(go())
    run = by_name(captured.finished(), "PlanRun:broken")
    assert "ERROR" == run.status.status_code.name
    assert "failed" == dict(run.attributes or {})["pee.status"]
    (total,) = captured.metric_points()["total_workflow_time"]
    assert "failed" == total.attributes["status"]


def test_a_cancelled_run_is_recorded_as_cancelled(temporal: TemporalHarness) -> None:
    captured = Captured()

    async def cancel(handle: WorkflowHandle[Any, Any]) -> None:
        await until_status(handle, agent_running("c"), "c running", timeout_s=15)
        await handle.cancel()
        with pytest.raises(Exception):  # noqa: B017 - WorkflowFailureError (cancelled)
            await handle.result()

    async def go() -> None:
        client = await connect(temporal.address, telemetry=captured.telemetry)
        task_queue = f"otel-{uuid.uuid4()}"
        async with build_worker(client, task_queue):
            handle = await client.start_workflow(
                PlanWorkflow.run,
                PlanRunInput(plan=small_plan("cancelled", slow_s=30.0)),
                id=f"cancelled-{uuid.uuid4().hex[:8]}",
                task_queue=task_queue,
            )
            await cancel(handle)

    temporal.run(go())
    run = by_name(captured.finished(), "PlanRun:cancelled")
    assert "cancelled" == dict(run.attributes or {})["pee.status"]


def test_a_worker_leaving_mid_run_records_nothing_the_finishing_one_records_once(
    temporal: TemporalHarness,
) -> None:
    """Shutting a worker down evicts the running run from it: not a finished run, so no
    PlanRun span; the worker that completes the run records it, once."""
    captured = Captured()

    async def go() -> None:
        client = await connect(temporal.address, telemetry=captured.telemetry)
        task_queue = f"otel-{uuid.uuid4()}"
        async with build_worker(client, task_queue, graceful_shutdown_s=0.1):
            handle = await client.start_workflow(
                PlanWorkflow.run,
                PlanRunInput(plan=small_plan("handover", slow_s=2.0), heartbeat_timeout_s=1.0),
                id=f"handover-{uuid.uuid4().hex[:8]}",
                task_queue=task_queue,
            )
            await until_status(handle, agent_running("c"), "c running", timeout_s=15)
        assert [] == [s for s in captured.finished() if s.name.startswith("PlanRun")]
        async with build_worker(client, task_queue):
            assert "completed" == (await handle.result())["status"]

    temporal.run(go())
    assert 1 == len([s for s in captured.finished() if s.name == "PlanRun:handover"])


# --- search attributes -----------------------------------------------------------------------


async def listed(client: Client, query: str, workflow_id: str, timeout_s: float = 15.0) -> bool:
    """Whether `workflow_id` shows up for `query` (visibility is eventually consistent);
    AssertionError naming the query when it does not within `timeout_s`."""

    async def found() -> bool:
        return workflow_id in [w.id async for w in client.list_workflows(query)]

    return await async_eventually(
        found, what=f"{workflow_id} listed for {query}", timeout_s=timeout_s, interval_s=0.2
    )


def test_search_attributes_follow_the_run(temporal: TemporalHarness) -> None:
    """With search_attributes on, the run is found by PeePlan, by PeeGroup while a group runs,
    and by PeeStatus once it completed (PeeGroup then cleared)."""
    name = f"sa-{uuid.uuid4().hex[:6]}"
    seen: dict[str, bool] = {}

    async def watch(handle: WorkflowHandle[Any, Any]) -> None:
        client = temporal.client
        seen["plan"] = await listed(client, f'PeePlan="{name}"', handle.id)
        seen["pair"] = await listed(client, f'PeePlan="{name}" AND PeeGroup="pair"', handle.id)
        seen["running"] = await listed(
            client, f'PeePlan="{name}" AND PeeStatus="running"', handle.id
        )
        await handle.result()
        seen["completed"] = await listed(
            client, f'PeePlan="{name}" AND PeeStatus="completed"', handle.id
        )
        described = await handle.describe()
        seen["groups_cleared"] = search.GROUPS not in described.typed_search_attributes

    temporal.with_plan(small_plan(name, slow_s=4.0), watch, search_attributes=True)
    assert {
        "plan": True,
        "pair": True,
        "running": True,
        "completed": True,
        "groups_cleared": True,
    } == seen


def test_a_plain_run_sets_no_search_attribute(temporal: TemporalHarness) -> None:
    async def check(handle: WorkflowHandle[Any, Any]) -> Any:
        await handle.result()
        return (await handle.describe()).typed_search_attributes

    attributes = temporal.with_plan(small_plan("plain-sa"), check)
    assert all(key not in attributes for key in search.KEYS)


def test_the_dev_server_registers_the_search_attributes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The embedded server's command line registers exactly src/pee/workflows/search.py's
    attributes, and the server is started without our OTEL_* variables (it would read them
    itself)."""
    assert search.REGISTRATION == devserver.SEARCH_ATTRIBUTES
    cmd = devserver.server_command(tmp_path / "db", ip="127.0.0.1", port=1, ui_port=None)
    pairs = [cmd[i + 1] for i, arg in enumerate(cmd) if arg == "--search-attribute"]
    assert ["PeePlan=Keyword", "PeeStatus=Keyword", "PeeGroup=KeywordList"] == pairs
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "console")
    assert "OTEL_TRACES_EXPORTER" not in devserver.server_environment()


# --- configuration ---------------------------------------------------------------------------


def test_without_otel_variables_telemetry_is_off() -> None:
    """No provider, no interceptor: a plain client is exactly what it always was."""
    plain = telemetry.from_env({})
    assert (False, []) == (plain.enabled, plain.interceptors())


def test_otel_variables_choose_the_exporters() -> None:
    both = telemetry.from_env(
        {
            "OTEL_TRACES_EXPORTER": "console",
            "OTEL_METRICS_EXPORTER": "console",
            "OTEL_SERVICE_NAME": "svc",
        }
    )
    assert both.tracer_provider is not None and both.meter_provider is not None
    assert "svc" == both.tracer_provider.resource.attributes["service.name"]
    assert ["TracingInterceptor", "RunObserver"] == [type(i).__name__ for i in both.interceptors()]
    metrics_only = telemetry.from_env(
        {"OTEL_METRICS_EXPORTER": "console", "OTEL_TRACES_EXPORTER": "none"}
    )
    assert (None, ["RunObserver"]) == (
        metrics_only.tracer_provider,
        [type(i).__name__ for i in metrics_only.interceptors()],
    )
    assert not telemetry.from_env(
        {"OTEL_TRACES_EXPORTER": "console", "OTEL_SDK_DISABLED": "true"}
    ).enabled
    for started in (both, metrics_only):
        started.shutdown()


def test_bad_otel_variables_are_clear_errors() -> None:
    with pytest.raises(telemetry.TelemetryConfigError, match="unknown exporter 'jaeger'"):
        telemetry.from_env({"OTEL_TRACES_EXPORTER": "jaeger"})
    with pytest.raises(telemetry.TelemetryConfigError, match="expected http/protobuf or grpc"):
        telemetry.from_env({"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "x"})


def test_otlp_without_the_extra_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without opentelemetry-exporter-otlp (hidden here), asking for otlp is an error that
    names the extra to install, for either protocol."""
    for module in (
        "opentelemetry.exporter.otlp.proto.http.metric_exporter",
        "opentelemetry.exporter.otlp.proto.grpc.trace_exporter",
    ):
        monkeypatch.setitem(sys.modules, module, None)
    with pytest.raises(telemetry.TelemetryConfigError, match=r"pip install '\.\[otlp\]'"):
        telemetry.from_env({"OTEL_METRICS_EXPORTER": "otlp"})
    with pytest.raises(telemetry.TelemetryConfigError, match="OTEL_TRACES_EXPORTER=otlp"):
        telemetry.from_env({"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"})


def test_otlp_exports_spans_and_metrics_to_a_collector(
    temporal: TemporalHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the [otlp] extra, OTEL_*_EXPORTER=otlp sends a run's spans to /v1/traces and its
    metrics to /v1/metrics of OTEL_EXPORTER_OTLP_ENDPOINT (a local stand-in collector here)."""
    import http.server
    import threading

    received: list[tuple[str, bytes]] = []

    class Collector(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - the http.server API
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            received.append((self.path, body))
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Collector)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    endpoint = f"http://127.0.0.1:{server.server_address[1]}"
    env = {
        "OTEL_TRACES_EXPORTER": "otlp",
        "OTEL_METRICS_EXPORTER": "otlp",
        "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    try:
        exporting = telemetry.from_env(env)

        async def go() -> None:
            client = await connect(temporal.address, telemetry=exporting)
            task_queue = f"otel-{uuid.uuid4()}"
            async with build_worker(client, task_queue):
                await client.execute_workflow(
                    PlanWorkflow.run,
                    PlanRunInput(plan=small_plan("otlp")),
                    id=f"otlp-{uuid.uuid4().hex[:8]}",
                    task_queue=task_queue,
                )

        temporal.run(go())
        exporting.shutdown()  # flushes both
    finally:
        server.shutdown()
    paths = {path for path, _ in received}
    assert {"/v1/traces", "/v1/metrics"} <= paths
    traces = b"".join(body for path, body in received if path == "/v1/traces")
    assert b"PlanRun:otlp" in traces and b"Agent:c" in traces
    metrics = b"".join(body for path, body in received if path == "/v1/metrics")
    assert b"total_workflow_time" in metrics


# --- entry points ----------------------------------------------------------------------------


def fetch(url: str) -> str | None:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:  # noqa: S310
            return response.read().decode()
    except OSError:
        return None


def test_worker_serves_sdk_metrics_on_metrics_port(temporal: TemporalHarness) -> None:
    """`worker.py --metrics-port N` answers on http://127.0.0.1:N/metrics with Temporal's
    metrics, and still exits 0 on SIGTERM."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    worker = subprocess.Popen(
        [
            sys.executable,
            "worker.py",
            "--address",
            temporal.address,
            "--task-queue",
            f"prom-{uuid.uuid4()}",
            "--metrics-port",
            str(port),
        ],
        cwd=PROJECT_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        body = None
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not (body and "temporal_" in body):
            body = fetch(f"http://127.0.0.1:{port}/metrics")
            time.sleep(0.3)
        assert body is not None and "temporal_" in body, body
        # signal handlers are in place once the worker says it runs
        lines = []
        while not lines or "Ctrl-C stops" not in lines[-1]:
            line = worker.stdout.readline()  # type: ignore[union-attr]
            assert line, "".join(lines)
            lines.append(line)
    finally:
        worker.send_signal(signal.SIGTERM)
        out, _ = worker.communicate(timeout=30)
    assert 0 == worker.returncode, out
    assert f"http://127.0.0.1:{port}/metrics" in "".join(lines)


def test_run_with_a_busy_metrics_port_is_bad_input(cli_env: dict[str, str]) -> None:
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = starter(cli_env, "run", "plans/demo.yaml", "--metrics-port", str(port))
    assert 2 == done.returncode, done.stdout + done.stderr
    assert f"--metrics-port {port}" in done.stderr and "choose a free port" in done.stderr


def test_starter_run_with_console_exporters(cli_env: dict[str, str]) -> None:
    """OTEL_TRACES_EXPORTER=console and OTEL_METRICS_EXPORTER=console: spans and metrics on
    stderr (stdout keeps the progress), exit 0; the embedded server starts despite OTEL_*; the
    run gets PeePlan and a static summary."""
    env = {
        **cli_env,
        "OTEL_TRACES_EXPORTER": "console",
        "OTEL_METRICS_EXPORTER": "console",
        "OTEL_SERVICE_NAME": "pee-test",
    }
    workflow_id = f"demo-otel-{uuid.uuid4().hex[:6]}"
    done = starter(
        env, "run", "plans/demo.yaml", "--time-scale", "0.1", "--workflow-id", workflow_id
    )
    assert 0 == done.returncode, done.stdout + done.stderr
    for name in (
        "PlanRun:demo",
        "Group:design",
        "Agent:b",
        "Barrier:all_completed",
        "total_workflow_time",
        "individual_agent_execution_time",
        "pee-test",
    ):
        assert name in done.stderr
    assert "PlanRun:demo" not in done.stdout

    async def described() -> tuple[bool, str | None, str | None]:
        client = await Client.connect(f"127.0.0.1:{cli_env['PEE_DEV_PORT']}")
        found = await listed(client, 'PeePlan="demo" AND PeeStatus="completed"', workflow_id)
        description = await client.get_workflow_handle(workflow_id).describe()
        return found, await description.static_summary(), await description.static_details()

    found, summary, details = asyncio.run(described())
    assert found
    assert summary is not None and summary.startswith("plan demo: 4 agents in 3 groups")
    assert details is not None and "| `design` | b, c | a |" in details


def test_starter_run_serves_sdk_metrics_while_it_runs(cli_env: dict[str, str]) -> None:
    """`run --metrics-port N`: Temporal's metrics at :N/metrics while the run goes on (its
    in-process worker's activity latencies among them); exit 0."""
    port = free_port()
    run = subprocess.Popen(
        [
            sys.executable,
            "starter.py",
            "run",
            "plans/demo.yaml",
            "--time-scale",
            "1",
            "--metrics-port",
            str(port),
        ],
        cwd=PROJECT_ROOT,
        env=cli_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    body = None
    deadline = time.monotonic() + 60
    while run.poll() is None and time.monotonic() < deadline:
        body = fetch(f"http://127.0.0.1:{port}/metrics") or body
        if body and "temporal_activity_execution_latency" in body:
            break
        time.sleep(0.2)
    out, _ = run.communicate(timeout=90)
    assert 0 == run.returncode, out
    assert body is not None and "temporal_activity_execution_latency" in body, body


def test_compile_search_attributes_flag_reaches_the_input() -> None:
    """`compile --search-attributes` sets PlanRunInput.search_attributes; without it, false."""
    import json

    flags = []
    for extra in ([], ["--search-attributes"]):
        done = subprocess.run(
            [sys.executable, "starter.py", "compile", "plans/demo.yaml", *extra],
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert 0 == done.returncode, done.stderr
        flags.append(json.loads(done.stdout)["search_attributes"])
    assert [False, True] == flags
