"""PlanWorkflow's collaborators read what a continue-as-new restores after they were built.

A continuation builds the collaborators first, then restores the adaptive rules in place on the
Adaptation and assigns the carried output cache keys (PlanWorkflow.__init__). A collaborator that
copied either at construction would replay tests/histories/continued/ with a different admission
order or different cache keys; these tests pin the live reads without a server."""

from __future__ import annotations

from dataclasses import replace
from types import SimpleNamespace
from typing import Any, cast

from pee.engine.rules.cache_key import cache_key
from pee.workflows.agent_cache import AgentCache
from pee.workflows.agent_runner import AgentRunner
from tests.helpers import compiled_plan, group, sim


def two_agents() -> Any:
    first = sim("a", "g1", 1.0)
    second = replace(sim("b", "g2", 1.0, inputs=["a.out"]), depends_on=["a"])
    return compiled_plan([first, second], [group("g1", ["a"]), group("g2", ["b"], ["g1"])])


def test_the_cache_uses_keys_and_rules_set_after_it_was_built() -> None:
    plan = two_agents()
    adapt = SimpleNamespace(looks_up_cache=False, cache_store_ttl_s=lambda: None)
    cache = AgentCache(cast(Any, SimpleNamespace(plan=plan)), cast(Any, adapt))
    second = plan.agent("b")
    assert cache.key(second, {}) is None

    # what a continuation does after construction: rules restored in place, keys carried
    adapt.looks_up_cache = True
    cache.cache_keys = {"a": "carried-key-of-a"}

    assert cache_key(second, {}, ["carried-key-of-a"]) == cache.key(second, {})
    assert cache_key(second, {}, []) != cache.cache_keys["b"]


class Throttle:
    def __init__(self) -> None:
        self.applied = 0

    def apply(self, *args: Any) -> None:
        self.applied += 1


def test_the_runner_applies_a_throttle_restored_after_it_was_built() -> None:
    plan = two_agents()
    admission = SimpleNamespace(
        admit=lambda now: [],
        cpu_in_use=0.0,
        memory_in_use=0.0,
        pool=SimpleNamespace(cpu=1.0, memory=1.0),
        waiting=[],
    )
    scope = SimpleNamespace(
        plan=plan,
        agents={},
        elapsed=lambda: 0.0,
        run=SimpleNamespace(admission=admission, monitor=SimpleNamespace(observe=lambda s: [])),
    )
    adapt = SimpleNamespace(throttle=None)
    none = cast(Any, None)
    runner = AgentRunner(cast(Any, scope), none, none, none, none, none, cast(Any, adapt), None)
    runner.admit()

    throttle = Throttle()
    adapt.throttle = cast(Any, throttle)
    runner.admit()

    assert 1 == throttle.applied
