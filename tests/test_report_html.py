"""The visual run report: pee.runtime.report_html (one self-contained HTML page) and
pee.runtime.report_mermaid (a Mermaid gantt), on a hand-built report, a real run with a partial
barrier, and through `starter.py report --format html|mermaid`.

The checks here are structural (html.parser, balanced tags, the expected elements and classes);
tests/test_report_chromium.py renders the page in headless Chromium and looks at a screenshot.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from pee.runtime.report_agent_dag import critical_edges, depths
from pee.runtime.report_html import CHART_W, render_html
from pee.runtime.report_mermaid import render_mermaid
from tests.helpers import TemporalHarness, compiled_plan, group, sim, starter

VOID = {"meta", "br", "hr", "img", "input", "link", "col", "area", "base", "source", "wbr"}
EVIL = "<script>alert(1)</script>"
T0 = "2026-01-01T10:00:00+00:00"


def at(seconds: float) -> str:
    return f"2026-01-01T10:00:{seconds:06.3f}+00:00"


class Page(HTMLParser):
    """Parses the page, checking every element is closed in order; keeps each element's tag and
    attributes, and the text."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.elements: list[tuple[str, dict[str, str]]] = []
        self.errors: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, {k: v or "" for k, v in attrs}))
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, {k: v or "" for k, v in attrs}))

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1:]}")
            return
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    def with_class(self, name: str) -> list[dict[str, str]]:
        return [a for _t, a in self.elements if name in a.get("class", "").split()]


def parse(page: str) -> Page:
    parser = Page()
    parser.feed(page)
    parser.close()
    assert parser.errors == [] and parser.stack == [], (parser.errors, parser.stack)
    return parser


def agent(
    group_id: str, status: str, start: float | None, end: float | None, **extra: Any
) -> dict[str, Any]:
    return {
        "group": group_id,
        "status": status,
        "attempts": 1,
        "cached": False,
        "defaulted_outputs": [],
        "error": None,
        "queue_wait_s": 0.0,
        "started_at": None if start is None else at(start),
        "finished_at": None if end is None else at(end),
        "duration_s": None if start is None or end is None else end - start,
        **extra,
    }


def hand_report() -> dict[str, Any]:
    """g1 (a, `<script>` agent) -> g2 (partial: slow defaulted, bare cancelled, cached c,
    never-run skipped s, failed f, timed out t) -> g3 (z)."""
    agents = {
        "a": agent("g1", "succeeded", 0, 1),
        EVIL: agent("g1", "succeeded", 0, 0.5),
        "slow": agent("g2", "defaulted", 1, 3, defaulted_outputs=["out"]),
        "bare": agent("g2", "cancelled", 1, 3),
        "c": agent("g2", "succeeded", 1, 1.01, cached=True),
        "s": agent("g2", "skipped", None, None),
        "f": agent("g2", "failed", 1, 1.5, error="boom <b>"),
        "t": agent("g2", "timed_out", 1, 2.5),
        "z": agent("g3", "succeeded", 3, 4),
    }

    def grp(
        members: list[str],
        deps: list[str],
        start: float,
        end: float,
        history: list[tuple[str, float]],
    ) -> dict[str, Any]:
        return {
            "agents": members,
            "depends_on": deps,
            "started_at": at(start),
            "finished_at": at(end),
            "status": "partial" if len(history) > 1 else "succeeded",
            "barrier": {
                "decision": history[-1][0],
                "extensions": 0,
                "history": [
                    {"decision": d, "at": at(s), "reason": f"{d} <why>"} for d, s in history
                ],
            },
        }

    return {
        "workflow_id": f"plan-{EVIL}",
        "run_id": "r1",
        "plan": EVIL,
        "status": "completed",
        "started_at": T0,
        "finished_at": at(4),
        "makespan_s": 4.0,
        "estimated_makespan_s": 5.0,
        "sequential_s": 9.0,
        "parallel_efficiency": 0.75,
        "time_scale": 1.0,
        "critical_path": ["a", "slow", "z"],
        "error": None,
        "context_lock_wait_s": 0.0,
        "events": [
            {"event": "group_started", "id": "g1"},
            {"event": "group_started", "id": "g2"},
            {"event": "group_started", "id": "g3"},
        ],
        "agents": agents,
        "groups": {
            "g1": grp(["a", EVIL], [], 0, 1, [("all_completed", 1)]),
            "g2": grp(
                ["slow", "bare", "c", "s", "f", "t"],
                ["g1"],
                1,
                3,
                [("extend_timeout", 2), ("continue_with_partial", 3)],
            ),
            "g3": grp(["z"], ["g2", "g1"], 3, 4, [("abort_and_fallback", 4)]),
        },
        "alerts": [
            {"at": at(2.5), "group": "g2", "level": "warning", "message": f"slow agent {EVIL}"}
        ],
        "conflicts": [
            {
                "id": "c1",
                "key": "k",
                "kind": "write_write",
                "status": "resolved",
                "writers": ["slow", "bare"],
                "opened_at": at(2.0),
            }
        ],
        "cache": {"agent_output": {"hits": 1, "misses": 8, "hit_ratio": 0.111}},
        "output_quality_scores": {"g2": 0.8},
        "resources": {
            "peak_agents": 6,
            "peak_cpu": 70.0,
            "peak_memory": 60.0,
            "utilisation_percentage": 40.6,
        },
    }


def bars(page: Page) -> dict[str, dict[str, str]]:
    found = {attrs["data-agent"]: attrs for attrs in page.with_class("bar")}
    assert len(found) == len(page.with_class("bar")), "one bar per agent"
    return found


def status_of(attrs: dict[str, str]) -> str:
    (status,) = [c[len("status-") :] for c in attrs["class"].split() if c.startswith("status-")]
    return status


def test_html_has_a_bar_per_agent_with_its_status_and_the_critical_path_marked() -> None:
    report = hand_report()
    page = parse(render_html(report))
    found = bars(page)
    assert set(found) == set(report["agents"])
    assert {a: status_of(attrs) for a, attrs in found.items()} == {
        "a": "succeeded",
        EVIL: "succeeded",
        "slow": "defaulted",
        "bare": "cancelled",
        "c": "cached",
        "s": "skipped",
        "f": "failed",
        "t": "timed_out",
        "z": "succeeded",
    }
    assert {a for a, attrs in found.items() if "crit" in attrs["class"].split()} == {
        "a",
        "slow",
        "z",
    }
    # bars are proportional: z runs 3..4 s of a 4 s run
    z = found["z"]
    assert float(z["width"]) == float(found["a"]["width"]) > 0
    assert float(z["x"]) > float(found["slow"]["x"]) > float(found["a"]["x"])
    # the DAG: every group a node, the critical groups and the edges between them highlighted
    nodes = {n["data-group"]: n for n in page.with_class("node")}
    assert set(nodes) == {"g1", "g2", "g3"}
    assert all("crit" in n["class"] for n in nodes.values())
    edges = {(e["data-from"], e["data-to"]): e["class"] for e in page.with_class("edge")}
    assert edges == {("g1", "g2"): "edge crit", ("g2", "g3"): "edge crit", ("g1", "g3"): "edge"}


# the hand report's agent edges: a -> slow, bare, c, f, t; slow -> z; EVIL -> s
HAND_DEPS = {
    "a": [],
    EVIL: [],
    "slow": ["a"],
    "bare": ["a"],
    "c": ["a"],
    "s": [EVIL],
    "f": ["a"],
    "t": ["a"],
    "z": ["slow"],
}


def agent_nodes(page: Page) -> dict[str, dict[str, str]]:
    return {n["data-agent"]: n for n in page.with_class("anode")}


def test_html_draws_the_agent_graph_with_the_critical_path_highlighted() -> None:
    """Every agent a node in the column of its dependency depth, an edge per dependency; the
    critical agents (a, slow, z) and the edges between them are marked crit, nothing else."""
    page = parse(render_html(hand_report(), agent_deps=HAND_DEPS))
    nodes = agent_nodes(page)
    assert set(nodes) == set(hand_report()["agents"])
    assert {a for a, n in nodes.items() if "crit" in n["class"].split()} == {"a", "slow", "z"}
    assert "status-defaulted" in nodes["slow"]["class"].split()
    edges = {(e["data-from"], e["data-to"]): e["class"] for e in page.with_class("aedge")}
    assert set(edges) == {(d, a) for a, ds in HAND_DEPS.items() for d in ds}
    assert {pair for pair, cls in edges.items() if "crit" in cls.split()} == {
        ("a", "slow"),
        ("slow", "z"),
    }
    # columns by depth: a and EVIL at 0, their dependants at 1, z at 2 (x of each node's rect)
    rects = rect_x(page)
    assert rects["a"] == rects[EVIL] < rects["slow"] == rects["s"] < rects["z"]
    # the critical edges are drawn after (over) the others
    order = [(e["data-from"], e["data-to"]) for e in page.with_class("aedge")]
    assert order[-2:] == [("a", "slow"), ("slow", "z")]
    assert "★ a" in page.text and "★ slow" in page.text


def rect_x(page: Page) -> dict[str, float]:
    """The x of each agent node's first rect (its box)."""
    found: dict[str, float] = {}
    current: str | None = None
    for tag, attrs in page.elements:
        if "anode" in attrs.get("class", "").split():
            current = attrs["data-agent"]
        elif tag == "rect" and current is not None and current not in found:
            found[current] = float(attrs["x"])
    return found


def test_agent_columns_follow_the_deepest_dependency_and_survive_a_cycle() -> None:
    order = ["a", "b", "c", "d"]
    assert {"a": 0, "b": 1, "c": 2, "d": 1} == depths(
        order, {"b": ["a"], "c": ["a", "b"], "d": ["a", "gone"]}
    )
    # a cycle (never in a compiled plan) is cut where it closes instead of recursing forever
    assert {"a": 1, "b": 0} == depths(["a", "b"], {"a": ["b"], "b": ["a"]})
    assert {("a", "b")} == critical_edges(["a", "b", "d"], {"b": ["a"], "d": ["a"]})


def test_a_deadline_moved_by_adaptive_allocation_is_marked_on_the_timeline() -> None:
    report = hand_report()
    report["groups"]["g2"]["barrier"]["history"].insert(
        0, {"decision": "timeout_adapted", "at": at(1.5), "reason": "moved 1 s later"}
    )
    page = parse(render_html(report))
    assert 1 == len([m for m in page.with_class("decision-timeout_adapted")])
    assert "timeout_adapted :milestone" in render_mermaid(report)


def test_html_leaves_the_agent_graph_out_above_the_limit_or_without_edges() -> None:
    """Over 60 agents only the group graph, with a note saying why; no edges given (a report
    alone): a note too. The group graph is there in both."""
    report = hand_report()
    for n in range(60):
        report["agents"][f"x{n}"] = agent("g2", "succeeded", 1, 2)
        report["groups"]["g2"]["agents"].append(f"x{n}")
    deps = {**HAND_DEPS, **{f"x{n}": ["a"] for n in range(60)}}
    page = parse(render_html(report, agent_deps=deps))
    assert [] == page.with_class("anode") and [] == page.with_class("aedge")
    (note,) = page.with_class("agent-dag-note")
    assert "69 agents: the agent graph is drawn for up to 60" in "".join(page.text)
    assert 3 == len(page.with_class("node")) and note
    page = parse(render_html(hand_report()))
    assert [] == page.with_class("anode")
    assert "without the plan's agent dependencies" in "".join(page.text)
    # exactly 60 still drawn
    report = hand_report()
    for n in range(51):
        report["agents"][f"x{n}"] = agent("g2", "succeeded", 1, 2)
    assert 60 == len(agent_nodes(parse(render_html(report, agent_deps=HAND_DEPS))))


def test_html_marks_barrier_decisions_alerts_and_conflicts() -> None:
    page = parse(render_html(hand_report()))
    markers = [m["class"] for m in page.with_class("marker")]
    assert sorted(markers) == sorted(
        [
            "marker decision decision-extend_timeout",
            "marker decision decision-continue_with_partial",
            "marker decision decision-abort_and_fallback",
            "marker alert",
            "marker conflict",
        ]
    )
    text = "".join(page.text)
    for metric in (
        "makespan",
        "parallel efficiency",
        "peak cpu",
        "resource utilisation",
        "cache agent_output",
        "output quality g2",
        "conflicts",
    ):
        assert metric in text
    assert "0.750" in text and "40.6 %" in text


def test_html_is_self_contained_and_escapes_report_text() -> None:
    html = render_html(hand_report())
    page = parse(html)
    assert not [
        (tag, attrs)
        for tag, attrs in page.elements
        if tag == "script"
        or any(re.match(r"\s*(https?:)?//", attrs.get(k, "")) for k in ("src", "href"))
    ]
    assert "<script" not in html and "http://" not in html and "https://" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    # the parsed text carries the names back unharmed
    assert EVIL in "".join(page.text)
    assert "boom <b>" in "".join(page.text)


def test_html_copes_with_a_running_report_and_an_empty_one() -> None:
    report = hand_report()
    report["status"] = "running"
    report["agents"]["z"].update(status="running", finished_at=None)
    page = parse(render_html(report))
    assert status_of(bars(page)["z"]) == "running"
    parse(render_html({"status": "running", "agents": {}, "groups": {}}))


def test_html_size_stays_reasonable_for_hundreds_of_agents() -> None:
    report = hand_report()
    for n in range(300):
        report["agents"][f"x{n}"] = agent("g2", "succeeded", 1 + n / 300, 2 + n / 300)
        report["groups"]["g2"]["agents"].append(f"x{n}")
    html = render_html(report)
    assert len(bars(parse(html))) == 309
    assert len(html) < 400_000


def test_mermaid_has_a_section_per_group_and_a_task_per_agent() -> None:
    text = render_mermaid(hand_report())
    lines = text.splitlines()
    assert lines[0] == "gantt"
    # whole milliseconds: mermaid.js rejects fractional timestamps (test_report_chromium)
    assert "    dateFormat x" in lines and "    axisFormat %S.%L" in lines
    sections = [
        line.strip()[len("section ") :] for line in lines if line.strip().startswith("section ")
    ]
    assert sections == ["g1", "g2", "g3"]
    tasks = [line for line in lines if re.search(r":.*\ba\d+, ", line)]
    assert len(tasks) == 9
    assert "    a :crit, done, a1, 0, 1000" in lines
    assert "    z :crit, done, a9, 3000, 4000" in lines
    assert any(line.startswith("    slow (defaulted) :crit, done,") for line in lines)
    # ':' ';' '#' would break the syntax; names keep the rest
    assert "    <script>alert(1)</script> :done, a2, 0, 500" in lines
    assert sum("milestone" in line for line in lines) == 3


def test_a_real_partial_run_renders(temporal: TemporalHarness) -> None:
    """A run whose barrier cuts a group short: defaulted and cancelled bars, the decision
    marked, the DAG edge on the critical path."""
    plan = compiled_plan(
        [
            sim("quick", "design", 0.1),
            # silent (no heartbeat): at the deadline the barrier has no sign they progress,
            # so it goes on without them; heartbeating agents would earn an extension
            sim("slow", "design", 30.0, defaults={"out": "fallback"}, heartbeat=False),
            sim("bare", "design", 30.0, heartbeat=False),
            sim("after", "build", 0.1, inputs=["quick.out", "slow.out"]),
        ],
        [
            group("design", ["quick", "slow", "bare"], timeout_s=1.0),
            group("build", ["after"], ["design"]),
        ],
        name="partial-report",
    )
    report = temporal.execute(plan, heartbeat_timeout_s=1.0)
    page = parse(render_html(report))
    found = bars(page)
    assert {a: status_of(v) for a, v in found.items()} == {
        "quick": "succeeded",
        "slow": "defaulted",
        "bare": "cancelled",
        "after": "succeeded",
    }
    assert [m["class"] for m in page.with_class("marker") if "decision" in m["class"]] == [
        "marker decision decision-continue_with_partial"
    ]
    critical = set(report["critical_path"])
    assert critical and {a for a, v in found.items() if "crit" in v["class"]} == critical
    text = render_mermaid(report)
    assert text.startswith("gantt\n")
    assert "section design" in text and "section build" in text
    assert "continue_with_partial :milestone" in text


SMALL = """\
name: small
agents:
  a: {kind: simulate, duration: 100ms, outputs: [x]}
  b: {kind: simulate, duration: 200ms, inputs: [a.x], outputs: [y]}
"""


def test_report_command_writes_html_and_mermaid(cli_env: dict[str, str], tmp_path: Path) -> None:
    plan = tmp_path / "small.yaml"
    plan.write_text(SMALL)
    done = starter(cli_env, "run", plan, "--workflow-id", "visual-1", "--time-scale", "0.2")
    assert 0 == done.returncode, done.stdout + done.stderr
    out = tmp_path / "report.html"
    html = starter(cli_env, "report", "visual-1", "--format", "html", "--output", out)
    assert 0 == html.returncode, html.stdout + html.stderr
    page = parse(out.read_text(encoding="utf-8"))
    assert set(bars(page)) == {"a", "b"}
    # the agent graph, its edge read from the run's plan, both agents critical
    assert {"a", "b"} == {
        n["data-agent"] for n in page.with_class("anode") if "crit" in n["class"].split()
    }
    assert [("a", "b", "aedge crit")] == [
        (e["data-from"], e["data-to"], e["class"]) for e in page.with_class("aedge")
    ]
    mermaid = starter(cli_env, "report", "visual-1", "--format", "mermaid")
    assert 0 == mermaid.returncode, mermaid.stderr
    assert mermaid.stdout.startswith("gantt\n") and "section " in mermaid.stdout
    # json and text unchanged
    assert starter(cli_env, "report", "visual-1").stdout.lstrip().startswith("{")


def test_html_shows_queue_waits_and_straggler_waits_on_the_timeline() -> None:
    """An agent that queued for resources gets a thin bar ending where its own bar starts; a
    straggler found by the bottleneck analysis gets the barrier's lone wait on its group's row;
    the Bottlenecks section lists it and the suggestions."""
    report = hand_report()
    report["agents"]["z"]["queue_wait_s"] = 0.5
    report["bottlenecks"] = {
        "makespan_s": 4.0,
        "lower_bound_s": 3.0,
        "overhead_s": 1.0,
        "critical": [{"agent": "slow", "group": "g2", "duration_s": 2.0, "share": 0.5}],
        "slack_s": {"a": 0.0, "slow": 0.0, "z": 0.0},
        "queue_waits": [],
        "stragglers": [
            {
                "group": "g2",
                "agent": "slow",
                "waited_s": 0.5,
                "duration_s": 2.0,
                "others_median_s": 1.0,
                "unblocked": [],
            }
        ],
        "suggestions": [{"action": "cache_agent", "agent": "slow", "message": f"cache {EVIL}"}],
    }
    page = parse(render_html(report))
    (queued,) = page.with_class("queued")
    z = bars(page)["z"]
    assert "z" == queued["data-agent"]
    assert float(queued["x"]) + float(queued["width"]) == pytest.approx(float(z["x"]), abs=0.2)
    # 0.5 s of a 4 s chart is an eighth of its width
    assert float(queued["width"]) == pytest.approx(CHART_W / 8, abs=0.2)
    (wait,) = page.with_class("straggler-wait")
    slow = bars(page)["slow"]
    assert "g2" == wait["data-group"]
    assert float(wait["x"]) + float(wait["width"]) == pytest.approx(
        float(slow["x"]) + float(slow["width"]), abs=0.2
    )
    assert ["g2"] == [row["data-group"] for row in page.with_class("straggler")]
    assert ["cache_agent"] == [s["data-action"] for s in page.with_class("suggestion")]
    assert f"cache {EVIL}" in "".join(page.text)


def test_cache_levels_without_lookups_say_so_instead_of_a_zero_hit_ratio() -> None:
    report = hand_report()
    report["cache"] = {
        "agent_output": {"hits": 1, "misses": 3, "hit_ratio": 0.25},
        "context_snapshot": {"hits": 0, "misses": 0, "hit_ratio": 0.0, "stored": 5},
    }
    rows = dict(
        re.findall(r'<tr><th>([^<]*)</th><td class="num">([^<]*)</td></tr>', render_html(report))
    )
    assert "1 hits, 3 misses, hit ratio 0.25" == rows["cache agent_output"]
    assert "no lookups, 5 stored" == rows["cache context_snapshot"]
