"""A simulate agent whose settings give only its duration skips the full settings walk
(pee.activities.simulate.parse_settings): the same settings as the walk, the same errors."""

from __future__ import annotations

from typing import Any

import pytest
from temporalio.exceptions import ApplicationError

from pee.activities.simulate import parse_settings
from tests.helpers import sim


@pytest.mark.parametrize(
    "settings", [{}, {"duration": 0}, {"duration": 1.5}, {"duration_s": 2}], ids=repr
)
def test_a_duration_alone_parses_as_the_full_walk_does(settings: dict[str, Any]) -> None:
    agent = sim("a", "g", 0.25)
    agent.settings = dict(settings)
    walked = sim("a", "g", 0.25)
    # an explicit default sends it through the full walk
    walked.settings = {**settings, "fail_times": 0}
    assert parse_settings(agent) == parse_settings(walked)


@pytest.mark.parametrize("duration", [-1, True, "3s", None])
def test_a_bad_duration_alone_is_refused_as_before(duration: Any) -> None:
    agent = sim("a", "g", 0.25)
    agent.settings = {"duration": duration}
    if duration is None:
        # absent: the agent's estimate
        assert parse_settings(agent).duration_s == 0.25
        return
    with pytest.raises(ApplicationError, match="'duration' must be a number of seconds >= 0"):
        parse_settings(agent)
    agent.settings = {"duration": duration, "critical": False}
    with pytest.raises(ApplicationError, match="'duration' must be a number of seconds >= 0"):
        parse_settings(agent)


def test_default_values_hash_the_input_snapshot_once_and_alike() -> None:
    """The digest in a default value is the canonical sha256 of the input snapshot, whether
    the agent has inputs or none (a constant then), and the same in every name's value."""
    from pee.activities.simulate import default_value, inputs_digest
    from pee.activities.types import AgentTask
    from pee.engine.canonical import digest
    from pee.engine.compiled import CompiledAgent

    agent = CompiledAgent(id="a", role="a", kind="simulate", group="g", outputs=["x", "y"])
    assert inputs_digest({}) == digest({})
    given = {"b.out": {"v": 1}, "plan_input": "text"}
    assert inputs_digest(given) == digest(given)
    for inputs in ({}, given):
        task = AgentTask(agent=agent, inputs=inputs)
        x, y = default_value(task, "x"), default_value(task, "y", echo_inputs=True)
        assert x == {
            "agent": "a",
            "output": "x",
            "inputs": sorted(inputs),
            "digest": digest(inputs),
        }
        assert y["digest"] == x["digest"] and y["inputs"] == inputs
