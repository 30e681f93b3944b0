"""The HTML run report in a real browser: headless Debian Chromium renders the page of a real
run (a straggler, a barrier cutting a group short), its DOM has the Gantt rows, the group graph
with the critical path, the metrics and the bottlenecks, and its screenshot shows them.

The report's Mermaid gantt is rendered there too, by mermaid.js from the npm registry
(.ci/install-mermaid puts it in .cache/mermaid/).

The pages and screenshots stay in test-artifacts/ (git-ignored; PEE_TEST_ARTIFACTS moves it),
and the tests print their paths, so a person can look at them after `make test`.
"""

from __future__ import annotations

import re
from html import unescape
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from pee.engine.compiled import CompiledPlan
from pee.engine.dag import agent_dependencies
from pee.runtime.report_html import STATUS_COLOURS, render_html
from pee.runtime.report_mermaid import render_mermaid
from tests.chromium import (
    ARTIFACTS,
    dump_dom,
    dump_dom_after_scripts,
    mermaid_page,
    screenshot,
    screenshot_after_scripts,
)
from tests.helpers import TemporalHarness, compiled_plan, group, sim
from tests.test_report_html import Page, hand_report, parse


def chromium_plan() -> CompiledPlan:
    """quick ‖ slow (cut at the 1 s deadline, defaulted) ‖ bare (cancelled) -> after; then a
    straggler group: tiny ‖ long, and a reader of tiny only."""
    return compiled_plan(
        [
            sim("quick", "design", 0.1),
            # silent (no heartbeat): at the deadline the barrier has no sign they progress,
            # so it goes on without them; heartbeating agents would earn an extension
            sim("slow", "design", 30.0, defaults={"out": "fallback"}, heartbeat=False),
            sim("bare", "design", 30.0, heartbeat=False),
            sim("after", "build", 0.1, inputs=["quick.out", "slow.out"]),
            sim("tiny", "fan", 0.1, inputs=["after.out"]),
            sim("long", "fan", 1.5, inputs=["after.out"]),
            sim("reader", "read", 0.1, inputs=["tiny.out"]),
        ],
        [
            group("design", ["quick", "slow", "bare"], timeout_s=1.0),
            group("build", ["after"], ["design"]),
            group("fan", ["tiny", "long"], ["build"]),
            group("read", ["reader"], ["fan"]),
        ],
        name="chromium-report",
    )


@pytest.fixture(scope="module")
def report(temporal: TemporalHarness) -> dict[str, Any]:
    return temporal.execute(chromium_plan(), heartbeat_timeout_s=1.0)


def plan_edges() -> dict[str, list[str]]:
    plan = chromium_plan()
    return agent_dependencies(plan.agents, plan.groups)


@pytest.fixture(scope="module")
def page_file(report: dict[str, Any]) -> Path:
    path = ARTIFACTS / "report-chromium.html"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_html(report, agent_deps=plan_edges()), encoding="utf-8")
    print(f"\nHTML report: {path}")
    return path


def test_chromium_builds_the_expected_elements(report: dict[str, Any], page_file: Path) -> None:
    """The DOM after Chromium parsed the page: a Gantt bar per agent with its status, a row per
    group, the critical path on bars, graph nodes and edges, the metrics and bottlenecks."""
    dom: Page = parse(dump_dom(page_file))
    bars = {a["data-agent"]: a["class"].split() for a in dom.with_class("bar")}
    assert set(report["agents"]) == set(bars)
    assert {
        "quick": "status-succeeded",
        "slow": "status-defaulted",
        "bare": "status-cancelled",
    } == {a: next(c for c in bars[a] if c.startswith("status-")) for a in ("quick", "slow", "bare")}
    assert set(report["critical_path"]) == {a for a, c in bars.items() if "crit" in c}
    assert 4 == len(dom.with_class("grouprow"))
    nodes = {n["data-group"]: n["class"].split() for n in dom.with_class("node")}
    assert {"design", "build", "fan", "read"} == set(nodes)
    critical_groups = {g for g, c in nodes.items() if "crit" in c}
    assert {report["agents"][a]["group"] for a in report["critical_path"]} == critical_groups
    assert [e for e in dom.with_class("edge") if "crit" in e["class"]]
    # the agent graph: a node per agent, the critical ones and the edges between them marked
    agent_nodes = {n["data-agent"]: n["class"].split() for n in dom.with_class("anode")}
    assert set(report["agents"]) == set(agent_nodes)
    assert set(report["critical_path"]) == {a for a, c in agent_nodes.items() if "crit" in c}
    path = report["critical_path"]
    assert set(zip(path, path[1:], strict=False)) == {
        (e["data-from"], e["data-to"]) for e in dom.with_class("aedge") if "crit" in e["class"]
    }
    assert {(d, a) for a, ds in plan_edges().items() for d in ds} == {
        (e["data-from"], e["data-to"]) for e in dom.with_class("aedge")
    }
    assert ["marker decision decision-continue_with_partial"] == [
        m["class"] for m in dom.with_class("marker") if "decision" in m["class"]
    ]
    text = " ".join(dom.text)
    for metric in ("makespan", "parallel efficiency", "peak concurrent agents", "Bottlenecks"):
        assert metric in text
    # the analysis found the straggler of group fan and suggests splitting it for reader
    assert ["fan"] == [s["data-group"] for s in dom.with_class("straggler")]
    assert ["fan"] == [s["data-group"] for s in dom.with_class("straggler-wait")]
    assert "split_group" in [s["data-action"] for s in dom.with_class("suggestion")]
    assert "raise_timeout" in [s["data-action"] for s in dom.with_class("suggestion")]


def _rgb(colour: str) -> tuple[int, int, int]:
    return int(colour[1:3], 16), int(colour[3:5], 16), int(colour[5:7], 16)


def test_chromium_screenshot_shows_the_timeline_and_graph(page_file: Path) -> None:
    """A PNG of the rendered page: the colours of succeeded, defaulted and cancelled bars and of
    the critical path in the group graph are painted, and the page is not blank."""
    png = screenshot(page_file, ARTIFACTS / "report-chromium.png")
    print(f"\nscreenshot: {png}")
    image = Image.open(png).convert("RGB")
    assert (1280, 2000) == image.size
    colours = {colour for _count, colour in image.getcolors(maxcolors=1 << 20) or []}
    for status in ("succeeded", "defaulted", "cancelled"):
        assert _rgb(STATUS_COLOURS[status]) in colours, status
    assert _rgb("#d9480f") in colours  # the critical path's stroke in the group graph
    # a real page: many colours (text anti-aliasing), and not one big white sheet
    assert len(colours) > 50
    white = sum(
        count
        for count, colour in image.getcolors(maxcolors=1 << 20) or []
        if colour == (255, 255, 255)
    )
    assert white < 0.97 * image.size[0] * image.size[1]


@pytest.mark.parametrize("which", ["real run", "hand-built report"])
def test_mermaid_gantt_renders_with_mermaid_js(report: dict[str, Any], which: str) -> None:
    """mermaid.js (npm) in Chromium accepts the gantt of a real run and of the hand-built
    report (every status, hostile names, three milestones): a task per agent, the milestones,
    the critical ones marked, and a screenshot."""
    source = report if which == "real run" else hand_report()
    name = "report-mermaid" if which == "real run" else "report-mermaid-hand"
    page = mermaid_page(render_mermaid(source), ARTIFACTS / f"{name}.html")
    dom = dump_dom_after_scripts(page)
    result = re.search(r'data-result="([^"]*)"', dom)
    assert result is not None and "ok" == unescape(result.group(1)), result and result.group(1)
    tasks = re.findall(r'<rect[^>]*class="([^"]*\btask\b[^"]*)"', dom)
    milestones = [t for t in tasks if "milestone" in t]
    notable = [
        d
        for g in source["groups"].values()
        for d in (x["decision"] for x in g["barrier"].get("history") or [])
        if d in ("extend_timeout", "continue_with_partial", "abort_and_fallback")
    ]
    assert len(source["agents"]) == len(tasks) - len(milestones)
    assert len(notable) == len(milestones)
    # mermaid classes critical tasks doneCrit<n> or crit<n>
    assert len(set(source["critical_path"])) == len([t for t in tasks if "crit" in t.lower()])
    png = screenshot_after_scripts(page, ARTIFACTS / f"{name}.png")
    print(f"\nmermaid screenshot: {png}")
    colours = Image.open(png).convert("RGB").getcolors(maxcolors=1 << 20) or []
    assert len(colours) > 20
