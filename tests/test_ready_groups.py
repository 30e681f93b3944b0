"""ReadyGroups (src/pee/workflows/ready_groups.py) finds exactly the groups the old full walk of
every waiting group found, in the same order, on random DAGs with groups passing, failing and
being resumed in random orders: the commands PlanWorkflow issues stay the same."""

from __future__ import annotations

import random

from pee.engine.compiled import CompiledGroup
from pee.engine.states import GROUP_PASSED, GroupStatus
from pee.workflows.ready_groups import ReadyGroups
from pee.workflows.state import GroupState


def full_walk(waiting: list[CompiledGroup], states: dict[str, GroupState]) -> list[str]:
    found = []
    for group in list(waiting):
        if all(states[dep].status in GROUP_PASSED for dep in group.depends_on):
            waiting.remove(group)
            found.append(group.id)
    return found


def test_same_groups_in_the_same_order_as_the_full_walk() -> None:
    for seed in range(40):
        rng = random.Random(seed)
        n = rng.randint(1, 40)
        groups = [
            CompiledGroup(
                id=f"g{i}",
                agents=[],
                depends_on=[f"g{j}" for j in range(i) if rng.random() < 0.15],
            )
            for i in range(n)
        ]
        states = {g.id: GroupState() for g in groups}
        # some groups passed before the loop (resumed)
        for g in groups:
            if not g.depends_on and rng.random() < 0.2:
                states[g.id].status = GroupStatus.SUCCEEDED
        old = [g for g in groups if states[g.id].status == GroupStatus.PENDING]
        new = {g.id: g for g in old}
        ready = ReadyGroups(groups)
        running: list[str] = []
        while True:
            expected = full_walk(old, states)
            assert expected == [g.id for g in ready.take(new, states)], seed
            assert [g.id for g in old] == list(new)
            for group_id in expected:
                states[group_id].status = GroupStatus.RUNNING
            running += expected
            if not running:
                break
            ended = running.pop(rng.randrange(len(running)))
            states[ended].status = rng.choice(
                [GroupStatus.SUCCEEDED, GroupStatus.PARTIAL, GroupStatus.FAILED]
            )
