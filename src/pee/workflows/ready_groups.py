"""ReadyGroups: which waiting groups may start now (every group they depend on has passed), in
plan order, found in time proportional to what changed, not to the plan.

PlanWorkflow's loop used to walk every waiting group after each group ended and check all its
dependencies: O(groups²) over a run (~41 M checks at 6,400 groups), inside workflow tasks that
the SDK's deadlock detector stops at 2 s. Here the candidates are the dependents of groups seen
passed since the last call, and only groups started since (or, on the first call, every group)
are looked at. The result, and so the order the group tasks are created in (hence the
commands), is exactly the full walk's: a waiting group's readiness changes only when one of its
dependencies passes, and only a group that started can pass (resumed and carried groups passed
before the first call, which looks at every group).

Starting a group is work in the activation that starts it (its state, admission, batching of its
agents): when hundreds become ready at once (a 20,000-agent run), one activation starting them all
ran past the SDK's 2 s deadlock detector. So at most START_BATCH groups are taken per call; the
rest stay waiting, remembered as candidates, and are taken (in plan order) by the next calls, which
the run loop makes from the next activation (BOUNDED_STARTS_PATCH: older histories take all).
"""

from __future__ import annotations

from collections.abc import Mapping

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from pee.engine.compiled import CompiledGroup
    from pee.engine.states import GROUP_PASSED, GroupStatus
    from pee.workflows import revision
    from pee.workflows.state import GroupState

# a started group that ended like this never passes
_NEVER_PASSES = (GroupStatus.FAILED, GroupStatus.CANCELLED)

BOUNDED_STARTS_PATCH = "bounded-group-starts"
# groups one activation starts at most (~100 agents each in a batch plan); a count, not a time
# budget: what one activation does must not depend on the clock
START_BATCH = 100


class ReadyGroups:
    def __init__(self, groups: list[CompiledGroup]) -> None:
        self._index = {group.id: index for index, group in enumerate(groups)}
        self._dependents: dict[str, list[str]] = {}
        for group in groups:
            for dep in group.depends_on:
                self._dependents.setdefault(dep, []).append(group.id)
        # started by the caller and not seen passed (or failed) yet
        self._started: dict[str, None] = {}
        self._first = True
        # ready when last looked at, left waiting by the bound (plan order)
        self._deferred: list[str] = []

    @property
    def deferred(self) -> bool:
        """Whether groups found ready were left for a later call."""
        return bool(self._deferred)

    def take(
        self, waiting: dict[str, CompiledGroup], states: Mapping[str, GroupState]
    ) -> list[CompiledGroup]:
        """Remove the groups that may start from `waiting` (id -> group, plan order) and return
        them in the order a full walk of `waiting` would have found them; the caller starts
        them."""
        if self._first:
            self._first = False
            candidates = list(waiting)
        else:
            candidates = [d for d in self._deferred if d in waiting]
            for group_id in self._newly_passed(states):
                candidates += [d for d in self._dependents.get(group_id, ()) if d in waiting]
            candidates = sorted(set(candidates), key=self._index.__getitem__)
        found = [
            waiting[group_id]
            for group_id in candidates
            if all(states[dep].status in GROUP_PASSED for dep in waiting[group_id].depends_on)
        ]
        self._deferred = []
        # asked only when it changes what this activation starts: older histories replay as before
        if len(found) > START_BATCH and revision.patched(BOUNDED_STARTS_PATCH):
            self._deferred = [group.id for group in found[START_BATCH:]]
            found = found[:START_BATCH]
        for group in found:
            del waiting[group.id]
            self._started[group.id] = None
        return found

    def _newly_passed(self, states: Mapping[str, GroupState]) -> list[str]:
        newly = []
        for group_id in list(self._started):
            status = states[group_id].status
            if status in GROUP_PASSED:
                newly.append(group_id)
                del self._started[group_id]
            elif status in _NEVER_PASSES:
                del self._started[group_id]
        return newly
