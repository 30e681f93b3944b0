"""The embedded Web UI in real headless Chromium (Playwright driving the system's Chromium, no
browser download), as a user meets it after `server start` and `run`:

- a finished run's page shows its result decoded, the codec server answers the UI's
  `/decode?preserveStorageRefs=true` calls, and the "Codec Server could not connect" banner
  never shows;
- the same for a run whose input is over the compression threshold (binary/lz4 in the history);
- a conflict is resolved from the run's page: More Actions → Send a Signal → resolve_conflict
  with the conflict guide's JSON, encoded by the codec server, and the run completes;
- a fan-out (issue 16): the timeline and the event history name each instance `dev[i]` (an
  agent-level fan-out) or each item's child run `per_epic[i] of <plan>` (a group-level one),
  and the agent after the fan-out was given the collected list in item order.

One private embedded server (own state dir and ports) for the module.
"""

from __future__ import annotations

import base64
import json
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from playwright.sync_api import expect, sync_playwright

from pee.runtime.codec import ENCODING
from tests.chromium import ARTIFACTS, FLAGS, chromium
from tests.conftest import cli_env  # noqa: F401  (the module's server)
from tests.helpers import PROJECT_ROOT, eventually, shown_events, starter

PLAN = """\
name: webui-{name}
agents:
  {first}:
    kind: simulate
    duration: 1s
    outputs: [notes]
  second:
    kind: simulate
    duration: 1s
    inputs: [{first}.notes]
"""
# a person waits at most this long for the UI; every wait below is Playwright's, not a sleep
UI_TIMEOUT_MS = 20_000
DEMO = PROJECT_ROOT / "plans" / "conflict-demo.yaml"
FAN_OUT = PROJECT_ROOT / "plans" / "fan-out.yaml"
# a per-item sub-pipeline: story -> review for each epic, one child run per epic; each agent
# echoes its inputs, so the list `summary` reads shows which epic each entry came from
GROUP_FAN_OUT = """\
name: webui-fan-out-group
agents:
  po: {kind: simulate, duration: 1s, outputs: [epics], values: {epics: [alpha, beta, gamma]}}
  story: {kind: simulate, duration: 1s, inputs: [item, index], outputs: [text],
          settings: {echo_inputs: true}}
  review: {kind: simulate, duration: 1s, inputs: [story.text], outputs: [verdict],
           settings: {echo_inputs: true}}
  summary: {kind: simulate, duration: 1s, inputs: [review.verdict], outputs: [out]}
groups:
  per_epic: {agents: [story, review], for_each: po.epics, max_parallel: 2}
"""
EPICS = ["alpha", "beta", "gamma"]


@pytest.fixture(scope="module")
def server(cli_env: dict[str, str]) -> dict[str, Any]:  # noqa: F811
    started = starter(cli_env, "server", "start")
    assert 0 == started.returncode, started.stdout + started.stderr
    return json.loads((Path(cli_env["PEE_STATE_DIR"]) / "server.json").read_text())


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium(), args=list(FLAGS))
        try:
            yield launched
        finally:
            launched.close()


def run_plan(
    env: dict[str, str], tmp: Path, name: str, first: str, threshold: int | None = None
) -> str:
    """`starter.py run` of a two-agent plan to the end; its workflow id."""
    plan = tmp / f"{name}.yaml"
    plan.write_text(PLAN.format(name=name, first=first))
    return run_file(env, tmp, name, plan, threshold=threshold)


def run_file(
    env: dict[str, str],
    tmp: Path,
    name: str,
    plan: Path,
    *flags: str,
    threshold: int | None = None,
) -> str:
    """`starter.py run PLAN FLAGS` to the end; its workflow id."""
    workflow_id = f"webui-{name}-{uuid.uuid4().hex[:6]}"
    run_env = dict(env, **({"PEE_COMPRESSION_THRESHOLD": str(threshold)} if threshold else {}))
    done = subprocess.run(
        [
            sys.executable,
            "starter.py",
            "run",
            str(plan),
            "--workflow-id",
            workflow_id,
            "--time-scale",
            "0.2",
            "--no-learn",
            "--output-dir",
            str(tmp / name),
            *flags,
        ],
        cwd=PROJECT_ROOT,
        env=run_env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert 0 == done.returncode, done.stdout + done.stderr
    return workflow_id


def stored_encodings(record: dict[str, Any], workflow_id: str) -> tuple[bytes, bytes]:
    """The input's and the result's encodings as stored in the history (no codec)."""
    events = shown_events(f"127.0.0.1:{record['port']}", workflow_id)
    started = events[0]["workflowExecutionStartedEventAttributes"]["input"]
    completed = events[-1]["workflowExecutionCompletedEventAttributes"]["result"]
    return tuple(
        base64.b64decode(payloads["payloads"][0]["metadata"]["encoding"])
        for payloads in (started, completed)
    )  # type: ignore[return-value]


class CodecCalls:
    """The codec server calls a page made, with their statuses."""

    def __init__(self, page: Any, codec_port: int) -> None:
        self.calls: list[tuple[str, str, int | None]] = []
        prefix = f"http://127.0.0.1:{codec_port}/"

        def seen(response: Any) -> None:
            if response.url.startswith(prefix) and response.request.method == "POST":
                self.calls.append(
                    (response.url.split("/")[-1], response.request.method, response.status)
                )

        page.on("response", seen)

    def of(self, action: str) -> list[int | None]:
        return [status for url, _, status in self.calls if url.startswith(action)]


def open_run(browser: Any, record: dict[str, Any], workflow_id: str) -> tuple[Any, CodecCalls]:
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    calls = CodecCalls(page, record["codec_port"])
    page.goto(
        f"http://127.0.0.1:{record['ui_port']}/namespaces/default/workflows/{workflow_id}",
        timeout=UI_TIMEOUT_MS,
    )
    return page, calls


def assert_decoded(page: Any, calls: CodecCalls, text: str, artifact: str) -> None:
    """`text` shows on the page, the UI says the codec server converted its payloads, every
    decode call it made was answered 200 (with the query string the UI adds), and the
    could-not-connect banner is nowhere."""
    expect(page.get_by_text(text).first).to_be_visible(timeout=UI_TIMEOUT_MS)
    expect(page.get_by_test_id("data-encoder-status-success").first).to_be_attached(
        timeout=UI_TIMEOUT_MS
    )
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / artifact), full_page=True)
    decodes = calls.of("decode")
    assert decodes and all(status == 200 for status in decodes), calls.calls
    assert any("preserveStorageRefs" in url for url, _, _ in calls.calls), calls.calls
    assert 0 == page.get_by_test_id("data-encoder-status-error").count()
    assert "Codec Server could not connect" not in page.content()


def test_a_finished_runs_page_shows_its_result_decoded(
    browser: Any,
    server: dict[str, Any],
    cli_env: dict[str, str],  # noqa: F811
    tmp_path: Path,
) -> None:
    """The result (the run's report, keyed by agent id) reads as JSON on the run's page."""
    workflow_id = run_plan(cli_env, tmp_path, "plain", "plain_probe_agent")
    page, calls = open_run(browser, server, workflow_id)
    try:
        page.get_by_text("Result", exact=True).first.wait_for(timeout=UI_TIMEOUT_MS)
        assert_decoded(page, calls, '"plain_probe_agent"', "web-ui-plain.png")
    finally:
        page.close()


def test_a_compressed_input_shows_decoded(
    browser: Any,
    server: dict[str, Any],
    cli_env: dict[str, str],  # noqa: F811
    tmp_path: Path,
) -> None:
    """A run whose input and result are over the compression threshold: binary/lz4 in the
    history, and the page shows both as JSON text (the compiled plan's fields in the input,
    the agent's id in the result), never the lz4 blob."""
    workflow_id = run_plan(cli_env, tmp_path, "lz4", "lz4_probe_agent", threshold=500)
    assert (ENCODING, ENCODING) == stored_encodings(server, workflow_id)
    page, calls = open_run(browser, server, workflow_id)
    try:
        assert_decoded(page, calls, '"agent_level_s"', "web-ui-lz4.png")
        expect(page.get_by_text('"lz4_probe_agent": {').first).to_be_visible()
        # base64 of lz4's frame magic: what the UI showed before it could decode
        assert "BCJNGG" not in page.content()
    finally:
        page.close()


def docs_signal_json() -> str:
    """The JSON the conflict guide (docs/guides/conflicts.md) tells a person to paste into Send
    a Signal."""
    text = (PROJECT_ROOT / "docs" / "guides" / "conflicts.md").read_text()
    section = text[text.index("**From the Web UI**") :]
    found = re.search(r"```json\n(.+?)\n```", section, re.DOTALL)
    assert found, "docs/guides/conflicts.md: no ```json block after **From the Web UI**"
    return found.group(1).strip()


def report(env: dict[str, str], workflow_id: str) -> dict[str, Any]:
    done = starter(env, "report", workflow_id, "--format", "json")
    assert 0 == done.returncode, done.stdout + done.stderr
    return dict(json.loads(done.stdout))


def test_a_conflict_is_resolved_from_the_web_ui(
    browser: Any,
    server: dict[str, Any],
    cli_env: dict[str, str],  # noqa: F811
) -> None:
    """conflict-demo paused on c1; on its page: More Actions → Send a Signal →
    resolve_conflict, the conflict guide's JSON as Data, Submit. The UI encodes it through the codec
    server, and the run resolves c1 with the incoming value and completes."""
    task_queue = f"webui-{uuid.uuid4().hex[:8]}"
    worker = subprocess.Popen(
        [sys.executable, "worker.py", "--task-queue", task_queue],
        cwd=PROJECT_ROOT,
        env=cli_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    workflow_id = f"conflict-demo-webui-{uuid.uuid4().hex[:6]}"
    try:
        done = starter(
            cli_env,
            "run",
            str(DEMO),
            "--workflow-id",
            workflow_id,
            "--task-queue",
            task_queue,
            "--detach",
        )
        assert 0 == done.returncode, done.stdout + done.stderr

        def c1_open() -> bool:
            listed = starter(cli_env, "conflicts", workflow_id, "--format", "json")
            return listed.returncode == 0 and any(
                c["id"] == "c1" and c["status"] == "open" for c in json.loads(listed.stdout)
            )

        eventually(c1_open, what="conflict c1 to open", timeout_s=60, interval_s=0.3)
        page, calls = open_run(browser, server, workflow_id)
        try:
            page.get_by_role("button", name="More Actions").click(timeout=UI_TIMEOUT_MS)
            page.get_by_role("menuitem", name="Send a Signal").click()
            dialog = page.get_by_role("dialog", name="Send a Signal")
            dialog.get_by_role("button", name="Select a signal").click()
            dialog.get_by_role("option", name="resolve_conflict").click()
            data = dialog.get_by_role("textbox", name="Data")
            data.fill(docs_signal_json())
            # the editor reformats the JSON when it loses focus, which moves the Submit button:
            # let that happen before clicking it
            data.blur()
            submit = dialog.get_by_role("button", name="Submit")
            expect(submit).to_be_enabled()
            with page.expect_response(
                lambda r: "/signal/resolve_conflict" in r.url, timeout=UI_TIMEOUT_MS
            ) as sent:
                submit.click()
            assert 200 == sent.value.status
            expect(dialog).to_be_hidden(timeout=UI_TIMEOUT_MS)
            assert [200] == calls.of("encode"), calls.calls
            page.screenshot(path=str(ARTIFACTS / "web-ui-signal.png"), full_page=True)
        finally:
            page.close()
        final = eventually(
            lambda: (lambda data: data if data["status"] != "running" else None)(
                report(cli_env, workflow_id)
            ),
            what="the run to complete",
            timeout_s=60,
            interval_s=0.3,
        )
        assert "completed" == final["status"]
        assert "succeeded" == final["agents"]["developer"]["status"]
        (conflict,) = final["conflicts"]
        assert ("c1", "resolved", "incoming") == (
            conflict["id"],
            conflict["status"],
            conflict["resolution"]["choice"],
        )
        assert {"target": "desktop_primary", "offline": False} == conflict["resolution"]["value"]
    finally:
        worker.terminate()
        worker.wait(timeout=30)


@pytest.fixture(scope="module")
def fan_out_run(
    server: dict[str, Any],
    cli_env: dict[str, str],  # noqa: F811
    tmp_path_factory: pytest.TempPathFactory,
) -> str:
    """plans/fan-out.yaml run to the end with --simulate: sm -> dev[0..4] -> qa."""
    return run_file(cli_env, tmp_path_factory.mktemp("fan-out"), "fan-out", FAN_OUT, "--simulate")


def open_copying(
    browser: Any, record: dict[str, Any], workflow_id: str
) -> tuple[Any, Any, CodecCalls]:
    """A run's page in a context whose clipboard the page may write and the test read: the
    code blocks show only the lines in view, so a long payload is read as a person takes it
    away, by its copy button."""
    context = browser.new_context(
        viewport={"width": 1400, "height": 1000},
        permissions=["clipboard-read", "clipboard-write"],
    )
    page = context.new_page()
    calls = CodecCalls(page, record["codec_port"])
    page.goto(
        f"http://127.0.0.1:{record['ui_port']}/namespaces/default/workflows/{workflow_id}",
        timeout=UI_TIMEOUT_MS,
    )
    return context, page, calls


def expect_on_timeline(page: Any, labels: list[str]) -> None:
    """Each label shows on the run's timeline (the page opens on it)."""
    for label in labels:
        expect(page.get_by_text(label).first).to_be_visible(timeout=UI_TIMEOUT_MS)


def history_summaries(page: Any, event_type: str, count: int) -> list[str]:
    """Event History tab: the summaries of the `count` events of one type, oldest first."""
    page.get_by_role("tab", name="Event History").click(timeout=UI_TIMEOUT_MS)
    rows = page.get_by_test_id("event-summary-row").filter(has_text=event_type)
    # the table may still be filling in: wait for every row
    expect(rows).to_have_count(count, timeout=UI_TIMEOUT_MS)

    def summaries() -> list[str] | None:
        # a row can be listed before its summary is drawn (seen on a loaded machine): wait for
        # every row's summary; the table lists the newest event first
        found = [re.search(r"Summary\s+(.+)", row.inner_text()) for row in rows.all()]
        texts = [match.group(1).strip() for match in reversed(found) if match]
        return texts if len(texts) == count else None

    return eventually(summaries, what=f"{count} {event_type} summaries", timeout_s=30)


def copied_input(page: Any, event_type: str, summary: str, agent: str) -> Any:
    """Expand the event of `event_type` with `summary` and copy its decoded Input (an
    AgentTask of `agent`)."""
    page.get_by_test_id("event-summary-row").filter(has_text=event_type).filter(
        has_text=summary
    ).click()
    copy = page.get_by_role("button", name="Click to copy content")
    card = (
        page.locator("div")
        .filter(has_text=event_type)
        .filter(has_text=summary)
        .filter(has=copy)
        # the innermost match: the expanded event, not the page around it
        .last
    )
    # the browser's clipboard outlives a page: empty it, then wait for this copy to land
    page.evaluate("navigator.clipboard.writeText('')")
    card.get_by_role("button", name="Click to copy content").first.click(timeout=UI_TIMEOUT_MS)

    def copied() -> Any:
        task = json.loads(page.evaluate("navigator.clipboard.readText()") or "null")
        return task if task and task["agent"]["id"] == agent else None

    return eventually(copied, what=f"{agent}'s input on the clipboard", timeout_s=20)


def test_an_agent_fan_out_names_each_instance_in_the_web_ui(
    browser: Any,
    server: dict[str, Any],
    fan_out_run: str,
) -> None:
    """plans/fan-out.yaml: the timeline and the event history show dev's instances as
    `agent dev[i] (dev), group dev`, in item order between sm and qa, and qa's input, decoded
    by the codec server, holds dev.code as the list of dev[0..4]'s outputs in item order."""
    instances = [f"agent dev[{i}] (dev), group dev" for i in range(5)]
    context, page, calls = open_copying(browser, server, fan_out_run)
    try:
        expect_on_timeline(page, instances)
        expected = ["agent sm (sm), group sm", *instances, "agent qa (qa), group qa"]
        assert expected == history_summaries(page, "Activity Task Scheduled", len(expected))
        task = copied_input(page, "Activity Task Scheduled", "agent qa (qa), group qa", "qa")
        code = task["inputs"]["dev.code"]
        assert [f"dev[{i}]" for i in range(5)] == [entry["agent"] for entry in code]
        assert_decoded(page, calls, "agent qa (qa), group qa", "web-ui-fan-out.png")
    finally:
        context.close()


def test_a_group_fan_out_names_each_items_child_run_in_the_web_ui(
    browser: Any,
    server: dict[str, Any],
    cli_env: dict[str, str],  # noqa: F811
    tmp_path: Path,
) -> None:
    """story -> review per epic: the timeline and the event history show one child run per
    epic named `per_epic[i] of webui-fan-out-group`, summary's input holds review.verdict in
    epic order (each entry echoes the story it reviewed, which echoes its epic), and an item's
    own run names its activities `story[i]`, `review[i]` of group per_epic, as the report
    does."""
    plan = tmp_path / "group.yaml"
    plan.write_text(GROUP_FAN_OUT)
    workflow_id = run_file(cli_env, tmp_path, "fan-out-group", plan, "--simulate")
    children = [f"per_epic[{i}] of webui-fan-out-group" for i in range(len(EPICS))]
    context, page, calls = open_copying(browser, server, workflow_id)
    try:
        expect_on_timeline(page, children)
        initiated = "Start Child Workflow Execution Initiated"
        assert children == history_summaries(page, initiated, len(children))
        summary = "agent summary (summary), group summary"
        task = copied_input(page, "Activity Task Scheduled", summary, "summary")
        verdicts = task["inputs"]["review.verdict"]
        assert EPICS == [v["inputs"]["story.text"]["inputs"]["item"] for v in verdicts]
        assert_decoded(page, calls, summary, "web-ui-fan-out-group.png")
        # the last item's child run: its activities carry the item's index too
        last = len(EPICS) - 1
        page.goto(
            f"http://127.0.0.1:{server['ui_port']}/namespaces/default/workflows/"
            + quote(f"{workflow_id}/per_epic[{last}]", safe=""),
            timeout=UI_TIMEOUT_MS,
        )
        expect_on_timeline(
            page,
            [f"agent {a}[{last}] ({a}), group per_epic" for a in ("story", "review")],
        )
    finally:
        context.close()


def test_a_large_group_fan_out_names_its_batch_child_in_the_web_ui(
    browser: Any,
    server: dict[str, Any],
    cli_env: dict[str, str],  # noqa: F811
    tmp_path: Path,
) -> None:
    """25 epics (over the 20 a group-level fan-out runs as a child per item): one batch child
    runs them all, named `per_epic[0..24] of <plan> (25 items)` on the parent's timeline; in
    it, each activity names its item's instance and the fan-out group, as the report does
    (`agent review[i] (review), group per_epic`)."""
    epics = [f"epic-{i}" for i in range(25)]
    plan = tmp_path / "batch.yaml"
    plan.write_text(
        GROUP_FAN_OUT.replace("webui-fan-out-group", "webui-fan-out-batch")
        .replace("[alpha, beta, gamma]", json.dumps(epics))
        .replace(", max_parallel: 2", "")
    )
    workflow_id = run_file(cli_env, tmp_path, "fan-out-batch", plan, "--simulate")
    context, page, _calls = open_copying(browser, server, workflow_id)
    try:
        child = "per_epic[0..24] of webui-fan-out-batch (25 items)"
        expect_on_timeline(page, [child])
        initiated = "Start Child Workflow Execution Initiated"
        assert [child] == history_summaries(page, initiated, 1)
        page.goto(
            f"http://127.0.0.1:{server['ui_port']}/namespaces/default/workflows/"
            + quote(f"{workflow_id}/per_epic[0..24]", safe=""),
            timeout=UI_TIMEOUT_MS,
        )
        # its history, newest first: the last reviews scheduled name their item and the group
        page.get_by_role("tab", name="Event History").click(timeout=UI_TIMEOUT_MS)
        scheduled = page.get_by_test_id("event-summary-row").filter(
            has_text="Activity Task Scheduled"
        )
        named = re.compile(r"agent review\[\d+\] \(review\), group per_epic")
        expect(scheduled.filter(has_text=named).first).to_be_visible(timeout=UI_TIMEOUT_MS)
    finally:
        context.close()


def test_status_and_the_text_report_of_a_finished_fan_out_name_each_instance(
    fan_out_run: str,
    cli_env: dict[str, str],  # noqa: F811
) -> None:
    """`status RUN` and `report RUN --format text` of the same finished run: a row per
    instance dev[0..4] in item order, and the dev group's line counts the 5 items."""
    for args in (("status", fan_out_run), ("report", fan_out_run, "--format", "text")):
        done = starter(cli_env, *args)
        assert 0 == done.returncode, done.stdout + done.stderr
        rows = [line.split()[0] for line in done.stdout.splitlines() if line.startswith("dev[")]
        assert [f"dev[{i}]" for i in range(5)] == rows, done.stdout
        assert "for each sm.stories: 5 items, 5 succeeded" in done.stdout, done.stdout
