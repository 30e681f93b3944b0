"""for_each in the plan language (issue 16, phase 1): what validate accepts and refuses, what
compile records, how `plan` estimates and shows a fan-out, and that `compile` accepts it.

Fixture plans (each test's header says the shape):
- AGENT_PLAN: sm -> dev[i] (for each sm.stories, 5 at a time) -> qa
- GROUP_PLAN: po -> per_epic[i] = story -> implement -> review (for each po.epics, ~4) -> summary
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pee.engine.compile.graph import compile_plan
from pee.engine.compile.load import loads_plan
from pee.engine.compile.render import as_dot, as_json_dict, as_mermaid, as_text, summary
from pee.engine.compiled import CompiledPlan, FanOut
from pee.engine.language.errors import (
    CycleError,
    FanOutError,
    InvalidValueError,
    MissingProducerError,
    PlanValidationError,
    UnknownAgentError,
    UnknownKeyError,
)
from pee.engine.language.fan_out import DEFAULT_ITEMS_ESTIMATE, FanOutLevel

ROOT = Path(__file__).parent.parent

AGENT_PLAN = """\
name: agent_fan_out
agents:
  sm: {kind: simulate, duration: 1s, outputs: [stories]}
  dev:
    {kind: simulate, duration: 2s, for_each: sm.stories, max_parallel: 5, inputs: [item],
     outputs: [code]}
  qa: {kind: simulate, duration: 1s, inputs: [dev.code]}
"""

GROUP_PLAN = """\
name: group_fan_out
agents:
  po: {kind: simulate, duration: 1s, outputs: [epics]}
  story: {kind: simulate, duration: 1s, inputs: [item, index], outputs: [text]}
  implement: {kind: simulate, duration: 3s, inputs: [story.text], outputs: [code]}
  review: {kind: simulate, duration: 2s, inputs: [implement.code], outputs: [verdict]}
  summary: {kind: simulate, duration: 1s, inputs: [review.verdict]}
groups:
  per_epic:
    agents: [story, implement, review]
    for_each: po.epics
    items_estimate: 4
    success_criteria: {at_least: 3}
"""


def compiled(text: str) -> CompiledPlan:
    return compile_plan(loads_plan(text, file="plan.yaml"))


def problems(text: str) -> list[tuple[str, int | None, str]]:
    with pytest.raises(PlanValidationError) as caught:
        loads_plan(text, file="plan.yaml")
    return [(type(p).__name__, p.location.line, p.message) for p in caught.value.problems]


def test_agent_fan_out_compiles_to_a_typed_fan_out_on_agent_and_group() -> None:
    """dev fans out over sm.stories: its FanOut names the source, the bound and the default
    item count; its group holds only dev and carries the same FanOut; dev waits for sm."""
    plan = compiled(AGENT_PLAN)
    dev = plan.agent("dev")
    expected = FanOut(
        owner="dev",
        level=FanOutLevel.AGENT,
        source="sm.stories",
        members=("dev",),
        max_parallel=5,
        items_estimate=DEFAULT_ITEMS_ESTIMATE,
        items_estimate_declared=False,
    )
    assert expected == dev.fan_out
    assert ["sm"] == dev.depends_on
    assert ["dev"] == plan.group(dev.group).agents
    assert expected == plan.group(dev.group).fan_out
    assert None is plan.agent("sm").fan_out and None is plan.agent("qa").fan_out
    assert "sm.stories" == expected.source and "sm" == expected.source_agent
    assert "dev[3]" == FanOut.instance_id("dev", 3)


def test_group_fan_out_is_a_per_item_chain() -> None:
    """A parallel fan-out group may chain its agents (story -> implement -> review per item);
    every member carries the group's FanOut and the group has no default barrier deadline."""
    plan = compiled(GROUP_PLAN)
    group = plan.group("per_epic")
    assert group.fan_out is not None
    assert FanOutLevel.GROUP == group.fan_out.level
    assert ("story", "implement", "review") == group.fan_out.members
    assert (4, True) == (group.fan_out.items_estimate, group.fan_out.items_estimate_declared)
    assert all(plan.agent(a).fan_out == group.fan_out for a in group.agents)
    assert ["po"] == plan.agent("story").depends_on
    assert ["po", "story"] == plan.agent("implement").depends_on
    assert None is group.timeout_s
    assert ("at_least", 3) == (group.success_criteria.kind, group.success_criteria.count)


POOL_OF_3 = "resource_manager: {resource_pool: {computational: {concurrent_agent_limit: 3}}}\n"


@pytest.mark.parametrize(
    ("settings", "pool", "expected_s"),
    [
        # 10 default items, 5 at a time: two rounds of 2 s
        ("max_parallel: 5", "", 4.0),
        # no bound: every item at once
        ("items_estimate: 100", "", 2.0),
        ("items_estimate: 7, max_parallel: 2", "", 8.0),
        # an empty list: nothing runs
        ("items_estimate: 0", "", 0.0),
        # a resource pool's concurrent_agent_limit also bounds the items at once: 9 / 3
        ("items_estimate: 9", POOL_OF_3, 6.0),
    ],
)
def test_plan_estimates_a_fan_out_in_rounds_of_items(
    settings: str, pool: str, expected_s: float
) -> None:
    """An agent fan-out is estimated as ceil(items / at a time) rounds of its duration, at a
    time being max_parallel and the pool's agent limit."""
    text = f"""\
{pool}agents:
  sm: {{kind: simulate, duration: 1s, outputs: [stories]}}
  dev: {{kind: simulate, duration: 2s, for_each: sm.stories, {settings}}}
"""
    plan = compiled(text)
    assert expected_s == plan.group("dev").estimated_s
    assert 1.0 + expected_s == plan.estimated_makespan_s


def test_group_fan_out_estimate_is_the_chain_times_rounds() -> None:
    """per_epic's chain is 1 + 3 + 2 s; 4 items at once make one round; sequential counts
    every instance: 1 + 4 x 6 + 1; the critical path runs through the whole chain."""
    plan = compiled(GROUP_PLAN)
    assert 6.0 == plan.group("per_epic").estimated_s
    assert 8.0 == plan.estimated_makespan_s
    assert 26.0 == plan.sequential_s
    assert ["po", "story", "implement", "review", "summary"] == plan.critical_path


BAD_CASES = [
    (
        "not agent.output",
        "  b: {for_each: stories}\n",
        InvalidValueError,
        "'agent.output'",
    ),
    ("typo of the key", "  b: {foreach: a.list}\n", UnknownKeyError, "unknown key 'foreach'"),
    ("unknown source agent", "  b: {for_each: ghost.list}\n", UnknownAgentError, "'ghost'"),
    (
        "undeclared output",
        "  b: {for_each: a.lst}\n",
        MissingProducerError,
        "declares no output 'lst'",
    ),
    ("completion", "  b: {for_each: a.completion}\n", FanOutError, "carries no list"),
    ("its own output", "  b: {for_each: b.x, outputs: [x]}\n", FanOutError, "it outputs itself"),
    ("bound without for_each", "  b: {max_parallel: 2}\n", FanOutError, "has no for_each"),
    ("zero bound", "  b: {for_each: a.list, max_parallel: 0}\n", InvalidValueError, "max_parallel"),
    (
        "shared writes",
        "  b: {for_each: a.list, writes: [notes]}\n",
        FanOutError,
        "every item would write the same key",
    ),
    (
        "item outside a fan-out",
        "  b: {inputs: [item]}\n",
        FanOutError,
        "only the instances of a fan-out receive",
    ),
]


@pytest.mark.parametrize(
    ("agent_b", "error", "fragment"),
    [case[1:] for case in BAD_CASES],
    ids=[case[0] for case in BAD_CASES],
)
def test_bad_for_each_is_reported_at_its_line(
    agent_b: str, error: type[Exception], fragment: str
) -> None:
    """Each mistake gives its own error class at agent b's line (line 4)."""
    text = "name: bad\nagents:\n  a: {kind: simulate, outputs: [list]}\n" + agent_b
    found = problems(text)
    assert [(error.__name__, 4)] == [(name, line) for name, line, _ in found], found
    assert fragment in found[0][2]


def test_did_you_mean_for_a_misspelt_source_output() -> None:
    """A near miss of the source output suggests the declared one."""
    with pytest.raises(PlanValidationError) as caught:
        loads_plan("agents:\n  a: {outputs: [stories]}\n  b: {for_each: a.storys}\n")
    assert "did you mean 'a.stories'?" == caught.value.problems[0].fix


def test_cycle_through_a_fan_out_is_reported_at_for_each() -> None:
    """a fans out over b's list while b reads a's output: a cycle, located at a's for_each."""
    text = (
        "agents:\n"
        "  a: {kind: simulate, for_each: b.list, outputs: [x]}\n"
        "  b: {kind: simulate, inputs: [a.x], outputs: [list]}\n"
    )
    found = problems(text)
    assert [("CycleError", 2)] == [(name, line) for name, line, _ in found]
    assert CycleError.__name__ == found[0][0]


GROUP_BASE = """\
agents:
  src: {kind: simulate, outputs: [list]}
  one: {kind: simulate, outputs: [x]}
  two: {kind: simulate, inputs: [one.x]}
"""


@pytest.mark.parametrize(
    ("extra", "line", "fragment"),
    [
        # the source inside the group: the list would not exist when the first item starts
        (
            "groups:\n  g: {agents: [src, one], for_each: src.list}\n",
            6,
            "one of its own agents outputs",
        ),
        # for_each on a member of a fan-out group
        (
            "  three: {kind: simulate, for_each: src.list}\n"
            "groups:\n  g: {agents: [one, three], for_each: src.list}\n",
            5,
            "a fan-out inside a fan-out",
        ),
        # a fan-out agent sharing an explicit group with another agent
        (
            "  three: {kind: simulate, for_each: src.list}\ngroups:\n  g: {agents: [one, three]}\n",
            5,
            "shares group 'g'",
        ),
        (
            "groups:\n  g: {agents: [one, two], for_each: src.list, cross_validation: {}}\n",
            6,
            "cross_validation",
        ),
        ("inputs: {item: 1}\ngroups:\n  g: {agents: [one], for_each: src.list}\n", 5, "item"),
    ],
    ids=["source inside", "nested", "shared group", "cross validation", "plan input item"],
)
def test_group_fan_out_rules(extra: str, line: int, fragment: str) -> None:
    """Each group rule is a FanOutError at the line that breaks it."""
    found = problems(GROUP_BASE + extra)
    assert [("FanOutError", line)] == [(name, at) for name, at, _ in found], found
    assert fragment in found[0][2]


def test_chain_inside_a_plain_parallel_group_is_still_refused() -> None:
    """Without for_each, a parallel group whose agents read each other stays an error."""
    found = problems(GROUP_BASE + "groups:\n  g: {agents: [one, two]}\n")
    assert ["GroupError"] == [name for name, _, _ in found]


def test_at_least_counts_items_not_agents() -> None:
    """A fan-out group of one agent may ask for at least 5 successes: they are items."""
    text = GROUP_BASE + "groups:\n  g: {agents: [one], for_each: src.list, success_criteria: 5}\n"
    assert ("at_least", 5) == (
        compiled(text).group("g").success_criteria.kind,
        compiled(text).group("g").success_criteria.count,
    )


def test_open_seed_agent_gets_the_fan_out_output() -> None:
    """A seed agent without outputs gains the output a for_each names (as inputs do)."""
    text = """\
execution_groups:
  planning: {agents: [pm]}
agents:
  dev: {kind: simulate, for_each: pm.epics}
"""
    plan = compiled(text)
    assert "epics" in plan.agent("pm").outputs
    assert ["pm"] == plan.agent("dev").depends_on


def test_compiled_fan_out_round_trips_through_json() -> None:
    """to_json/from_dict keep FanOut on agents and groups; a plan from before fan-out (no
    fan_out key) loads with none."""
    plan = compiled(GROUP_PLAN)
    again = CompiledPlan.from_dict(json.loads(plan.to_json()))
    assert plan.group("per_epic").fan_out == again.group("per_epic").fan_out
    assert plan.agent("review").fan_out == again.agent("review").fan_out
    old = json.loads(compiled("agents:\n  a: {kind: simulate}\n").to_json())
    for entry in [*old["agents"], *old["groups"]]:
        del entry["fan_out"]
    assert None is CompiledPlan.from_dict(old).agent("a").fan_out


def test_plan_views_name_instances() -> None:
    """Text, JSON, Mermaid and dot show dev as dev[i] with its source and item estimate."""
    plan = compiled(AGENT_PLAN)
    text = as_text(plan)
    assert "dev[i]" in text
    assert "fan-out for each sm.stories (~10 items, default; 5 at a time)" in text
    assert "cannot execute" not in text + as_text(compiled(GROUP_PLAN))
    assert "1 fan-out" in summary(plan)
    entry = next(a for a in as_json_dict(plan)["agents"] if a["id"] == "dev")
    assert {"level": "agent", "source": "sm.stories", "items_estimate": 10} == {
        k: entry["fan_out"][k] for k in ("level", "source", "items_estimate")
    }
    source = loads_plan(AGENT_PLAN)
    assert "n_sm ==>|for each| n_dev" in as_mermaid(source, plan)
    assert 'label="dev[i]' in as_dot(source, plan)


def test_plans_without_for_each_compile_as_before() -> None:
    """No for_each: no FanOut anywhere."""
    plan = compile_plan(loads_plan((ROOT / "plans" / "seed.yaml").read_text()))
    assert all(a.fan_out is None for a in plan.agents)
    assert all(g.fan_out is None for g in plan.groups)
    assert "fan-out" not in as_text(plan)


@pytest.mark.parametrize("text", [AGENT_PLAN, GROUP_PLAN], ids=["agent", "group"])
def test_cli_compiles_a_fan_out(tmp_path: Path, text: str) -> None:
    """`pee compile` writes the workflow input with the FanOut (the phase-1 refusal is gone);
    `pee validate` accepts the plan."""
    plan = tmp_path / "fan.yaml"
    plan.write_text(text)
    env = {**os.environ, "PEE_STATE_DIR": str(tmp_path / "state")}
    out = tmp_path / "input.json"
    result = subprocess.run(
        [sys.executable, str(ROOT / "starter.py"), "compile", str(plan), "--simulate", "-o", out],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert 0 == result.returncode, result.stderr
    written = json.loads(out.read_text())
    fan_outs = [g["fan_out"] for g in written["plan"]["groups"] if g.get("fan_out")]
    assert 1 == len(fan_outs)
    validate = subprocess.run(
        [sys.executable, str(ROOT / "starter.py"), "validate", str(plan)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert 0 == validate.returncode, validate.stderr
    assert "1 fan-out" in validate.stdout
