"""Pure pieces of the starter: time-scale choice, KEY=VALUE parsing, addresses, progress lines and
the summary table (on the report shape the workflow returns)."""

from __future__ import annotations

import argparse
import io

import pytest

from pee.cli.common import parse_assignment, positive_float
from pee.runtime.connection_flags import is_local_default, split_address
from pee.runtime.progress import ProgressPrinter, format_event, format_summary
from pee.runtime.runner import choose_time_scale
from tests.helpers import compiled_plan, group, sim

REPORT = {
    "workflow_id": "w",
    "run_id": "r",
    "plan": "p",
    "status": "completed",
    "error": None,
    "time_scale": 0.01,
    "started_at": "2025-01-01T00:00:00+00:00",
    "finished_at": "2025-01-01T00:00:01.500000+00:00",
    "makespan_s": 1.5,
    "estimated_makespan_s": 1.2,
    "sequential_s": 2.0,
    "agents": {
        "a": {
            "status": "succeeded",
            "group": "g",
            "attempts": 2,
            "duration_s": 1.0,
            "started_at": "2025-01-01T00:00:00.250000+00:00",
            "defaulted_outputs": [],
            "missing_inputs": [],
            "error": None,
        },
        "b": {
            "status": "defaulted",
            "group": "g",
            "attempts": 1,
            "duration_s": 1.5,
            "started_at": "2025-01-01T00:00:00+00:00",
            "defaulted_outputs": ["out"],
            "missing_inputs": [],
            "error": None,
        },
    },
    "groups": {
        "g": {
            "status": "partial",
            "agents": ["a", "b"],
            "parallel": True,
            "barrier": {
                "decision": "continue_with_partial",
                "extensions": 1,
                "reason": "deadline",
                "quality_impact": "medium",
                "history": [],
            },
        },
    },
    "alerts": [
        {
            "at": "2025-01-01T00:00:01+00:00",
            "group": "g",
            "level": "warning",
            "message": "b cut short",
        }
    ],
    "critical_path": ["a"],
    "parallel_efficiency": 0.8,
    "events": [
        {"seq": 1, "at_s": 0.0, "event": "group_started", "id": "g"},
        {"seq": 2, "at_s": 0.25, "event": "agent_started", "id": "a"},
        {"seq": 3, "at_s": 1.25, "event": "agent_succeeded", "id": "a"},
    ],
}


def test_time_scale_prefers_flag_then_env_then_auto(monkeypatch: pytest.MonkeyPatch) -> None:
    """--time-scale wins, then PEE_TIME_SCALE; a long pretend plan runs in ~15 s; short: 1."""
    long_plan = compiled_plan([sim("a", "g", 1800.0)], [group("g", ["a"])])
    short_plan = compiled_plan([sim("a", "g", 5.0)], [group("g", ["a"])])
    monkeypatch.delenv("PEE_TIME_SCALE", raising=False)
    assert (1.0, None) == choose_time_scale(long_plan, 1.0)
    assert 0.5 == choose_time_scale(long_plan, 0.5)[0]
    scale, note = choose_time_scale(long_plan, None)
    assert scale == pytest.approx(15 / 1800, rel=0.05)
    assert note and "scaled" in note
    assert (1.0, None) == choose_time_scale(short_plan, None)
    monkeypatch.setenv("PEE_TIME_SCALE", "0.1")
    assert 0.1 == choose_time_scale(long_plan, None)[0]


def test_real_agents_keep_real_time_unless_simulated(monkeypatch: pytest.MonkeyPatch) -> None:
    """A long plan with a command agent is not auto-scaled (its timeouts are real) unless
    --simulate makes the durations pretend."""
    monkeypatch.delenv("PEE_TIME_SCALE", raising=False)
    plan = compiled_plan([sim("a", "g", 1800.0, kind="command")], [group("g", ["a"])])
    assert (1.0, None) == choose_time_scale(plan, None)
    assert choose_time_scale(plan, None, simulate=True)[0] < 0.05


def test_assignments_split_at_the_first_equals_sign() -> None:
    """KEY=VALUE keeps everything after the first '=' as a string; no '=' is a usage error."""
    assert ("url", "http://x?a=b") == parse_assignment("url=http://x?a=b")
    assert ("flag", "true") == parse_assignment("flag=true")
    with pytest.raises(argparse.ArgumentTypeError):
        parse_assignment("novalue")
    with pytest.raises(argparse.ArgumentTypeError):
        positive_float("0")


@pytest.mark.parametrize(
    ("address", "local"),
    [
        ("localhost:7233", True),
        ("127.0.0.1:7233", True),
        ("[::1]:7233", True),
        ("localhost:7234", False),
        ("temporal.example.com:7233", False),
        ("nonsense", False),
    ],
)
def test_only_this_machine_at_the_dev_port_is_the_local_default(
    address: str, local: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The embedded server may be started only for the local default address."""
    monkeypatch.delenv("PEE_DEV_PORT", raising=False)
    assert local == is_local_default(address)


def test_addresses_split_into_host_and_port() -> None:
    """HOST:PORT and [IPv6]:PORT parse; a missing port is an error."""
    assert ("::1", 7233) == split_address("[::1]:7233")
    with pytest.raises(ValueError):
        split_address("localhost")


def test_summary_lists_every_agent_group_decision_and_alert() -> None:
    """A row per agent (start offset from the run's start), a line per group, alerts, totals."""
    text = format_summary(REPORT)
    assert "defaults: out" in text
    assert (
        "group g: partial, barrier continue_with_partial after 1 extension(s) (deadline); "
        "quality impact medium" in text
    )
    assert "ALERT WARNING group g: b cut short" in text
    assert "durations scaled by 0.01" in text
    assert "critical path (actual): a; parallel efficiency 0.80" in text
    row = next(line for line in text.splitlines() if line.startswith("a "))
    assert row.split()[:6] == ["a", "g", "succeeded", "2", "0.25", "1.00"]
    assert "cache:" not in text


def test_summary_says_what_the_caches_did() -> None:
    """A cache line: hits out of lookups per level used, snapshots stored, bytes lz4 saved."""
    cache = {
        "agent_output": {"hits": 3, "misses": 1},
        "template_render": {"hits": 0, "misses": 0},
        "context_snapshot": {"hits": 0, "misses": 0, "stored": 2},
        "prefetch": {"hits": 2, "misses": 0},
        "bytes_saved_by_compression": 1234,
    }
    text = format_summary({**REPORT, "cache": cache})
    assert (
        "cache: agent_output 3/4 hits; context_snapshot 2 stored; prefetch 2/2 hits; "
        "1,234 bytes saved by lz4"
    ) in text


def test_progress_prints_each_event_and_alert_once() -> None:
    """Polling the same status twice prints its events and alerts once."""
    out = io.StringIO()
    printer = ProgressPrinter(out)
    printer.update(REPORT)
    printer.update(REPORT)
    lines = out.getvalue().splitlines()
    assert 4 == len(lines)
    assert "group g" in lines[0] and "parallel: a, b" in lines[0]
    assert "agent a" in lines[2] and "succeeded" in lines[2] and "attempt 2" in lines[2]


def test_a_quiet_run_says_what_is_still_running() -> None:
    """With no new event for a while, a line names the running agents and their progress."""
    out = io.StringIO()
    printer = ProgressPrinter(out, quiet_note_s=0.0)
    status = {
        "status": "running",
        "makespan_s": 3.0,
        "events": [],
        "agents": {"a": {"status": "running", "progress": 0.4}},
    }
    printer.update(status)
    assert "still running: a 40%" in out.getvalue()


def test_barrier_events_name_the_decision_and_reason() -> None:
    """A barrier event line carries the decision and its recorded reason."""
    groups = {
        "g": {
            "barrier": {
                "history": [
                    {"at": "x", "decision": "extend_timeout", "reason": "a is still heartbeating"}
                ]
            }
        }
    }
    line = format_event(
        {"seq": 1, "at_s": 2.0, "event": "barrier_extend_timeout", "id": "g"}, {}, groups
    )
    assert "extend_timeout (a is still heartbeating)" in line


def test_a_fan_out_group_starts_as_one_chain_per_item() -> None:
    """The group's agents are every item's instances: the start line says what runs per item
    instead of listing them all as one parallel group."""
    groups = {
        "per_epic": {
            "agents": ["story[0]", "review[0]", "story[1]", "review[1]"],
            "fan_out": {"level": "group", "source": "po.epics", "members": ["story", "review"]},
        },
        "g": {"agents": ["a", "b"]},
    }
    fan_out = {**groups["per_epic"]["fan_out"], "items": 2}
    started = {"seq": 1, "at_s": 1.0, "event": "group_started", "id": "per_epic"}
    line = format_event(
        started, {}, {**groups, "per_epic": {**groups["per_epic"], "fan_out": fan_out}}
    )
    assert line.endswith("started   fan-out over 2 item(s) of po.epics: story, review per item")
    unknown = format_event(started, {}, groups)
    assert unknown.endswith("fan-out over po.epics: story, review per item")
    assert format_event({**started, "id": "g"}, {}, groups).endswith("parallel: a, b")
