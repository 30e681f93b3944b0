"""Pure pieces of the starter: time-scale choice, --set parsing, the summary table."""

from __future__ import annotations

import argparse

import pytest

from cli.run_commands import parse_assignment
from runtime.progress import format_summary
from runtime.runner import choose_time_scale
from tests.conftest import compiled_plan, group, sim


def test_time_scale_prefers_flag_then_env_then_auto(monkeypatch: pytest.MonkeyPatch) -> None:
    """--time-scale wins, then PEE_TIME_SCALE; a long plan is scaled to ~15 s; a short one not."""
    long_plan = compiled_plan([sim("a", "g", 1800.0)], [group("g", ["a"])])
    short_plan = compiled_plan([sim("a", "g", 5.0)], [group("g", ["a"])])
    monkeypatch.delenv("PEE_TIME_SCALE", raising=False)
    assert choose_time_scale(long_plan, 1.0) == (1.0, None)
    assert choose_time_scale(long_plan, 0.5)[0] == 0.5
    scale, note = choose_time_scale(long_plan, None)
    assert scale == pytest.approx(15 / 1800, rel=0.05)
    assert note and "scaled" in note
    assert choose_time_scale(short_plan, None) == (1.0, None)
    monkeypatch.setenv("PEE_TIME_SCALE", "0.1")
    assert choose_time_scale(long_plan, None)[0] == 0.1


def test_set_values_split_at_the_first_equals_sign() -> None:
    """KEY=VALUE keeps everything after the first '=' as a string; no '=' is an error."""
    assert parse_assignment("url=http://x?a=b") == ("url", "http://x?a=b")
    assert parse_assignment("flag=true") == ("flag", "true")
    with pytest.raises(argparse.ArgumentTypeError):
        parse_assignment("novalue")


def test_summary_lists_every_agent_and_group_decision() -> None:
    """The summary has a row per agent and a line per group with its barrier decision."""
    report = {
        "status": "succeeded", "makespan_s": 1.5, "estimated_makespan_s": 1.2,
        "sequential_s": 2.0, "time_scale": 0.01,
        "agents": [
            {"id": "a", "group": "g", "status": "succeeded", "attempts": 2,
             "started_s": 0.0, "ended_s": 1.0},
            {"id": "b", "group": "g", "status": "defaulted", "attempts": None,
             "started_s": 0.0, "ended_s": 1.5, "defaulted_outputs": ["out"]},
        ],
        "groups": [{"id": "g", "status": "partial", "decision": "continue_with_partial",
                    "reason": "deadline"}],
    }
    text = format_summary(report)
    assert "defaults: out" in text
    assert "group g: partial, barrier continue_with_partial (deadline)" in text
    assert "durations scaled by 0.01" in text
