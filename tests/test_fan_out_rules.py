"""The pure side of fan-out execution (issue 16, phase 2): which values are lists of items, the
success criteria over items, collection in item order, the report's fan-out row, and the instances
`agent[i]` an agent-level fan-out expands to. The barrier over items is barrier.decide over the
instances: its rows for items are here too."""

from __future__ import annotations

from typing import Any

import pytest

from pee.engine.compile.fan_out_slice import batch_plan, expand_agent, shown_inputs, template_of
from pee.engine.compile.graph import compile_plan
from pee.engine.compile.load import loads_plan
from pee.engine.compiled import CompiledPlan
from pee.engine.rules import barrier
from pee.engine.rules.fan_out_barrier import (
    MAX_ITEMS,
    FanOutSourceError,
    ItemCriteria,
    collect,
    item_criteria,
    items_of,
    summarise,
)
from pee.engine.rules.fan_out_batches import item_batches

AGENT_PLAN = """\
name: agent_fan_out
agents:
  sm: {kind: simulate, duration: 1s, outputs: [stories]}
  dev:
    {kind: simulate, duration: 2s, for_each: sm.stories, max_parallel: 2,
     inputs: [item, sm.stories], optional_inputs: [index], outputs: [code],
     defaults: {code: none}}
  qa: {kind: simulate, duration: 1s, inputs: [dev.code]}
"""


def compiled(text: str) -> CompiledPlan:
    return compile_plan(loads_plan(text, file="plan.yaml"))


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ([], []),
        ([1, "two", {"three": 3}], [1, "two", {"three": 3}]),
        ('["a", "b"]', ["a", "b"]),
        ("[]", []),
        ([[1], [2]], [[1], [2]]),
    ],
)
def test_lists_and_text_holding_one_are_items(value: Any, expected: list[Any]) -> None:
    """A list is taken as it is; text that parses as a JSON list is that list."""
    assert expected == items_of("sm.stories", value)


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ({"a": 1}, "expected a list of items, found dict"),
        ("not json", "text that is not a JSON list"),
        ('{"a": 1}', "found dict"),
        (3, "found int"),
        (None, "found NoneType"),
        ([0] * (MAX_ITEMS + 1), f"{MAX_ITEMS + 1} items, more than the {MAX_ITEMS}"),
    ],
)
def test_anything_else_is_refused_naming_the_source(value: Any, fragment: str) -> None:
    """A mapping, a scalar, non-list text or too many items: FanOutSourceError naming it."""
    with pytest.raises(FanOutSourceError) as caught:
        items_of("sm.stories", value)
    assert fragment in caught.value.message
    assert caught.value.message.startswith("for_each sm.stories: ")


@pytest.mark.parametrize(
    ("kind", "count", "items", "expected"),
    [
        ("all", 0, 5, ItemCriteria("all", 5)),
        ("at_least", 3, 5, ItemCriteria("at_least", 3)),
        ("at_least", 6, 2, ItemCriteria("at_least", 2)),
        ("at_least", 6, 0, ItemCriteria("at_least", 0)),
        ("at_least_one", 1, 4, ItemCriteria("at_least_one", 1)),
    ],
)
def test_criteria_over_items(kind: str, count: int, items: int, expected: ItemCriteria) -> None:
    """all = every item; at_least N is capped at the item count."""
    assert expected == item_criteria(kind, count, items)


def test_collect_puts_each_value_in_its_items_slot() -> None:
    """Values arrive in any order and land at their index; a missing one is the default."""
    assert ["a", None, "c"] == collect(3, {2: "c", 0: "a"})
    assert ["a", "-", "c"] == collect(3, {2: "c", 0: "a"}, default="-")
    assert [] == collect(0, {})


def test_summary_row() -> None:
    """Items, how they ended, and nearest-rank p50/p95/max over those that ran."""
    row = summarise(
        ["succeeded", "failed", "succeeded", "defaulted", "skipped"], [1.0, 3.0, 2.0, 4.0, None]
    )
    assert (5, 2, 2, 1) == (row.items, row.succeeded, row.failed, row.defaulted)
    assert (2.0, 4.0, 4.0) == (row.p50_s, row.p95_s, row.max_s)
    empty = summarise([], [])
    assert (0, None, None) == (empty.items, empty.p50_s, empty.max_s)


def test_compile_makes_items_all_succeed_by_default() -> None:
    """A fan-out group without success_criteria needs every item; a declared one stays."""
    assert "all" == compiled(AGENT_PLAN).group("dev").success_criteria.kind
    declared = AGENT_PLAN + "groups:\n  devs: {agents: [dev], success_criteria: {at_least: 2}}\n"
    criteria = compiled(declared).group("devs").success_criteria
    assert ("at_least", 2) == (criteria.kind, criteria.count)


def test_expansion_names_instances_and_gives_them_their_item() -> None:
    """dev over three stories: dev[0..2] without item/index as context inputs, the group running
    them with every item required, and each instance's item and index."""
    plan = compiled(AGENT_PLAN)
    expansion = expand_agent(plan.agent("dev"), plan.group("dev"), ["s0", "s1", "s2"])
    assert ["dev[0]", "dev[1]", "dev[2]"] == [a.id for a in expansion.instances]
    assert ["sm.stories"] == expansion.instances[1].inputs
    assert [] == expansion.instances[1].optional_inputs
    assert ["code"] == expansion.instances[2].outputs
    assert ["dev[0]", "dev[1]", "dev[2]"] == expansion.group.agents
    assert ("all", 3) == (
        expansion.group.success_criteria.kind,
        expansion.group.success_criteria.count,
    )
    assert {"item": "s1", "index": 1} == expansion.item_inputs["dev[1]"]
    # the template is untouched
    assert ["item", "sm.stories"] == plan.agent("dev").inputs
    assert ["dev"] == plan.group("dev").agents


def test_expansion_of_an_empty_list() -> None:
    """No items: no instances, and nothing required."""
    plan = compiled(AGENT_PLAN)
    expansion = expand_agent(plan.agent("dev"), plan.group("dev"), [])
    assert ((), []) == (expansion.instances, expansion.group.agents)


@pytest.mark.parametrize(
    ("ident", "expected"),
    [("dev[3]", ("dev", 3)), ("a[b][12]", ("a[b]", 12)), ("dev", None), ("dev[x]", None)],
)
def test_template_of_an_instance_id(ident: str, expected: tuple[str, int] | None) -> None:
    assert expected == template_of(ident)


def _items(statuses: list[barrier.BarrierStatus], kind: str, count: int) -> barrier.BarrierView:
    ids = [f"dev[{i}]" for i in range(len(statuses))]
    return barrier.BarrierView(
        group="dev",
        agents=ids,
        states={i: barrier.AgentView(s) for i, s in zip(ids, statuses, strict=True)},
        now_s=1.0,
        criteria=kind,
        count=count,
    )


S, F, R = barrier.SUCCEEDED, barrier.FAILED, barrier.RUNNING


@pytest.mark.parametrize(
    ("statuses", "kind", "count", "action"),
    [
        ([S, S, S], "all", 3, barrier.ALL_COMPLETED),
        ([S, R, S], "all", 3, barrier.WAIT),
        # a failed item under `all`: the failed items are re-run one at a time
        ([S, F, S], "all", 3, barrier.ABORT_AND_FALLBACK),
        # under at_least 2 the run goes on without it (its defaults fill its slot)
        ([S, F, S], "at_least", 2, barrier.CONTINUE_WITH_PARTIAL),
        ([F, F, S], "at_least", 2, barrier.ABORT_AND_FALLBACK),
    ],
)
def test_barrier_over_items(
    statuses: list[barrier.BarrierStatus], kind: str, count: int, action: barrier.BarrierAction
) -> None:
    """The barrier's table read over instances with the item criteria."""
    criteria = item_criteria(kind, count, len(statuses))
    decision = barrier.decide(_items(statuses, criteria.kind, criteria.count))
    assert action == decision.action
    if action == barrier.CONTINUE_WITH_PARTIAL:
        assert ["dev[1]"] == decision.fill_defaults
    if action == barrier.ABORT_AND_FALLBACK:
        expected = [f"dev[{i}]" for i, s in enumerate(statuses) if s != S]
        assert expected == decision.fallback


def test_learned_durations_of_a_fan_out_are_per_instance() -> None:
    """The next compile learns dev's duration from its instances (their mean), not from dev's own
    row, which spans the whole fan-out."""
    from pee.engine.compile.learning import samples_from_report

    row = {"status": "succeeded", "duration_s": 0.0}
    report = {
        "status": "completed",
        "time_scale": 0.5,
        "agents": {
            "sm": {**row, "duration_s": 1.0},
            "dev[0]": {**row, "duration_s": 1.0},
            "dev[1]": {**row, "duration_s": 3.0},
            "dev": {**row, "duration_s": 9.0},
        },
    }
    assert [("sm", 2.0), ("dev", 4.0)] == samples_from_report(report)


@pytest.mark.parametrize(
    ("items", "members", "lanes", "above", "at_once", "expected"),
    [
        # at or under the threshold: no batches (instances in the run, or a child per item)
        (20, 3, None, 20, 16, None),
        (0, 1, None, 0, 16, None),
        # 50 agents per child: 25 items of two members, the last batch shorter; 16 at once
        (60, 2, None, 20, 16, ([25, 25, 10], 16)),
        (60, 2, None, 20, None, ([25, 25, 10], None)),
        # max_parallel 10: batches of 10 items, one child at a time
        (30, 2, 10, 0, 16, ([10, 10, 10], 1)),
        # max_parallel 60 over batches of 25: two children at once, or fewer if so bounded
        (60, 2, 60, 0, 16, ([25, 25, 10], 2)),
        (60, 2, 60, 0, 1, ([25, 25, 10], 1)),
        # a chain longer than a child's share still gets one item per child
        (3, 80, None, 0, 2, ([1, 1, 1], 2)),
    ],
)
def test_item_batches(
    items: int,
    members: int,
    lanes: int | None,
    above: int,
    at_once: int | None,
    expected: tuple[list[int], int | None] | None,
) -> None:
    """Batch sizes (50 agents per child over agents per item, capped by the lanes), in item
    order with no index left out or repeated, and how many children run at once."""
    found = item_batches(items, members, lanes, above, 50, at_once)
    if expected is None:
        assert found is None
        return
    assert found is not None
    assert expected == ([len(b) for b in found.batches], found.window)
    assert list(range(items)) == [i for batch in found.batches for i in batch]


def test_a_batch_plan_runs_each_items_chain_on_its_own_data() -> None:
    """batch_plan over items 2 and 3 of a story -> review group: `review[3]` depends on and
    reads `story[3]` only, items come as `item[i]` plan inputs, and shown_inputs gives each
    instance its keys under their plain names."""
    plan = compile_plan(
        loads_plan(
            """\
name: sliced
agents:
  po: {kind: simulate, duration: 1s, outputs: [epics]}
  story: {kind: simulate, duration: 1s, inputs: [item, index, po.epics], outputs: [text]}
  review: {kind: simulate, duration: 1s, inputs: [story.text], outputs: [verdict]}
groups:
  per_epic: {agents: [story, review], for_each: po.epics}
""",
            file="sliced.yaml",
        )
    )
    sliced = batch_plan(plan, plan.group("per_epic"), [2, 3], ["a", "b", "c", "d"], {"po.epics": 4})
    assert ["story[2]", "review[2]", "story[3]", "review[3]"] == [a.id for a in sliced.agents]
    review = sliced.agent("review[3]")
    assert (["story[3]"], ["story[3].text"]) == (review.depends_on, review.inputs)
    assert ["story[3]"] == sliced.group("review[3]").depends_on
    assert {"po.epics": 4, "item[2]": "c", "index[2]": 2, "item[3]": "d", "index[3]": 3} == (
        sliced.inputs
    )
    assert ["item[3]", "index[3]", "po.epics"] == sliced.agent("story[3]").inputs
    shown = shown_inputs("story[3]", {"item[3]": "d", "index[3]": 3, "po.epics": 4})
    assert {"item": "d", "index": 3, "po.epics": 4} == shown
    assert {"story.text": "x"} == shown_inputs("review[3]", {"story[3].text": "x"})
