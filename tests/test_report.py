"""Run-report arithmetic (pee.engine.dag): dependencies, actual critical path, efficiency."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from pee.engine.dag import (
    actual_critical_path,
    agent_dependencies,
    iso_at,
    longest_path,
    parallel_efficiency,
    topological_order,
)
from tests.helpers import group, sim


def test_dependencies_come_from_the_analyser_inputs_validations_and_sequential_order() -> None:
    """The compiled depends_on (here: the writer of a shared key), blocking inputs, validated
    agents and sequential order are edges; plan inputs and optional inputs are not."""
    agents = [
        sim("a", "g1", 1.0),
        sim("w", "g1", 1.0),
        sim("b", "g2", 1.0, inputs=["a.out", "topic", "notes"], optional_inputs=["w.out"]),
        sim("v", "g3", 1.0),
        sim("s1", "seq", 1.0),
        sim("s2", "seq", 1.0),
    ]
    agents[1].writes = ["notes"]
    agents[2].depends_on = ["w"]
    agents[3].validates = ["b"]
    groups = [
        group("g1", ["a", "w"]),
        group("g2", ["b"]),
        group("g3", ["v"]),
        group("seq", ["s1", "s2"], parallel=False),
    ]
    assert agent_dependencies(agents, groups) == {
        "a": [],
        "w": [],
        "b": ["a", "w"],
        "v": ["b"],
        "s1": [],
        "s2": ["s1"],
    }


def test_declared_group_dependency_without_data_orders_every_member() -> None:
    """A group dependency with no data edge behind it (declared by the author, as in the seed)
    makes each member wait for every member of the other group; a derived one adds nothing."""
    agents = [
        sim("a", "g1", 1.0),
        sim("b", "g1", 1.0),
        sim("c", "g2", 1.0),
        sim("d", "g3", 1.0, inputs=["a.out"]),
    ]
    groups = [group("g1", ["a", "b"]), group("g2", ["c"], ["g1"]), group("g3", ["d"], ["g1"])]
    deps = agent_dependencies(agents, groups)
    assert (deps["c"], deps["d"]) == (["a", "b"], ["a"])


def test_longest_path_follows_actual_durations() -> None:
    """In a diamond, the path goes through whichever middle agent actually took longer."""
    deps = {"a": [], "b": ["a"], "c": ["a"], "d": ["b", "c"]}
    assert longest_path(["a", "b", "c", "d"], deps, {"a": 1, "b": 2, "c": 5, "d": 1}) == (
        7.0,
        ["a", "c", "d"],
    )
    assert longest_path(["a", "b", "c", "d"], deps, {"a": 1, "b": 6, "c": 5, "d": 1}) == (
        8.0,
        ["a", "b", "d"],
    )


def test_longest_path_ties_go_to_plan_order() -> None:
    """Equal paths: the one earlier in plan order wins, so reports are stable."""
    deps = {"a": [], "b": [], "c": []}
    assert longest_path(["a", "b", "c"], deps, {"a": 2, "b": 2, "c": 1}) == (2.0, ["a"])


def test_topological_order_keeps_plan_order_and_drops_cycles() -> None:
    """Dependencies first, plan order otherwise; agents on a cycle are left out."""
    deps = {"x": ["z"], "y": [], "z": [], "p": ["q"], "q": ["p"]}
    assert topological_order(["x", "y", "z", "p", "q"], deps) == ["y", "z", "x"]


def test_actual_critical_path_of_a_plan() -> None:
    """A plan's actual critical path uses the agents' recorded durations."""
    agents = [
        sim("a", "g1", 1.0),
        sim("fast", "g2", 1.0, inputs=["a.out"]),
        sim("slow", "g2", 1.0, inputs=["a.out"]),
    ]
    groups = [group("g1", ["a"]), group("g2", ["fast", "slow"], ["g1"])]
    assert actual_critical_path(agents, groups, {"a": 1.0, "fast": 0.5, "slow": 3.0}) == (
        4.0,
        ["a", "slow"],
    )


@pytest.mark.parametrize(
    ("bound", "makespan", "expected"),
    [(4.0, 5.0, 0.8), (5.0, 5.0, 1.0), (6.0, 5.0, 1.0), (0.0, 0.0, 1.0), (1.0, 3.0, 0.333)],
)
def test_parallel_efficiency(bound: float, makespan: float, expected: float) -> None:
    """Efficiency is bound / makespan, rounded, within [0, 1]; an empty run is 1.0."""
    assert parallel_efficiency(bound, makespan) == expected


def test_iso_at() -> None:
    """Offsets become ISO 8601 timestamps with milliseconds; None stays None."""
    start = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert iso_at(start, 1.5) == "2025-01-02T03:04:06.500+00:00"
    assert iso_at(start, None) is None
