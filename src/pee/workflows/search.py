"""Custom search attributes, so runs can be filtered in the Web UI's list and with
`temporal workflow list --query 'PeePlan="seed" AND PeeStatus="running"'`.

- ``PeePlan`` (Keyword): the plan's name;
- ``PeeStatus`` (Keyword): running, waiting_for_person (running, but an agent is blocked on a
  conflict only a person or the conflict timeout can settle), completed, failed or cancelled;
- ``PeeGroup`` (KeywordList): the groups running now (groups run eagerly, so several at once;
  ``PeeGroup="design"`` matches a run while design is one of them); empty once the run ends.

A server must know an attribute before a workflow may set it (an unknown one fails the
workflow task, over and over), so the run sets them only when its input says so
(PlanRunInput.search_attributes): the starter asks the server whether they are registered, the
embedded dev server and the test servers register them at start (`--search-attribute`), and a
plain run without the flag issues exactly the commands it always did.
"""

from __future__ import annotations

from temporalio import workflow
from temporalio.common import SearchAttributeKey, SearchAttributeUpdate

with workflow.unsafe.imports_passed_through():
    from pee.engine.states import GROUP_CURRENT, RunStatus
    from pee.workflows import revision
    from pee.workflows.state import RunState

PLAN = SearchAttributeKey.for_keyword("PeePlan")
STATUS = SearchAttributeKey.for_keyword("PeeStatus")
GROUPS = SearchAttributeKey.for_keyword_list("PeeGroup")
KEYS = (PLAN, STATUS, GROUPS)
# name -> type, as `temporal server start-dev --search-attribute NAME=TYPE` spells it
REGISTRATION = {"PeePlan": "Keyword", "PeeStatus": "Keyword", "PeeGroup": "KeywordList"}
# group states during which a group is "current"
# PeeStatus while an agent is blocked on a conflict
WAITING_FOR_PERSON = "waiting_for_person"
# runs recorded before it kept PeeStatus "running" while blocked: their upserts must replay
WAITING_PATCH = "pee-status-waiting-for-person"
# runs of this revision and later sync once per activation (pee.workflows.run_scope's
# RunScope.details); runs recorded before upserted at each event, and their commands must replay
SEARCH_SYNC_PATCH = "engine-revision-3"


def values(run: RunState, waiting: list[str]) -> tuple[str, str, list[str]]:
    """(plan, status, current groups) of the run now; `waiting`: the agents waiting for a
    person (waiting_for_person), empty when PeeStatus must not say so."""
    groups = (
        []
        if run.status != RunStatus.RUNNING
        else [group.id for group in run.plan.groups if run.groups[group.id].status in GROUP_CURRENT]
    )
    status: str = run.status
    if waiting:
        status = WAITING_FOR_PERSON
    return run.plan.name, status, groups


class RunSearchAttributes:
    """Upserts the attributes whenever they change (each upsert is one command and event)."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self._last: tuple[str, str, list[str]] | None = None
        # asked (workflow.patched) the first time an agent is blocked: None until then
        self._waiting: bool | None = None

    def sync(self, run: RunState, waiting: list[str]) -> None:
        """`waiting`: waiting_for_person(run), found once by the caller (the details read it)."""
        if not self.enabled:
            return
        if self._waiting is None and waiting:
            self._waiting = revision.patched(WAITING_PATCH)
        now = values(run, waiting if self._waiting else [])
        last = self._last
        if now == last:
            return
        updates: list[SearchAttributeUpdate] = []
        if last is None or now[0] != last[0]:
            updates.append(PLAN.value_set(now[0]))
        if last is None or now[1] != last[1]:
            updates.append(STATUS.value_set(now[1]))
        if last is None or now[2] != last[2]:
            updates.append(GROUPS.value_set(now[2]) if now[2] else GROUPS.value_unset())
        self._last = now
        workflow.upsert_search_attributes(updates)
