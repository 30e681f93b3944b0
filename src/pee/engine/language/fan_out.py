"""Fan-out in the plan language: which agents run once per item of a run-time list, and on whose
``for_each``.

``for_each: agent.output`` on an agent makes that agent run once per item; on a group it makes the
group's agents one sub-pipeline per item. References, grouping and the whole-plan checks
(pee.engine.compile.fan_out) read the scopes that
pee.engine.compile.fan_out_scopes finds with these names, so each rule is stated once. The design
and its reasons: design-notes/fan-out.md.
"""

from __future__ import annotations

from dataclasses import dataclass

from pee.engine.states import StrEnum

# what every instance receives besides its declared inputs; a fan-out agent may list them in
# inputs/optional_inputs (no edge), any other agent reading them is an error
ITEM = "item"
INDEX = "index"
ITEM_INPUTS = (ITEM, INDEX)
# the item count `plan` assumes for a fan-out that declares no items_estimate
DEFAULT_ITEMS_ESTIMATE = 10


class FanOutLevel(StrEnum):
    # one agent, one instance per item (activities of the parent run, batched when many)
    AGENT = "agent"
    # a group's agents as a per-item sub-pipeline (one child workflow per item)
    GROUP = "group"


@dataclass(frozen=True)
class FanOutScope:
    """The for_each an agent runs under."""

    # the agent (agent level) or the group (group level) that declares for_each
    owner: str
    level: FanOutLevel
    # as written in the plan ("sm.stories", or an alias prefix)
    source: str
    # the agents that run once per item, in plan order
    members: tuple[str, ...]


def fan_out_owners(scopes: dict[str, FanOutScope]) -> list[FanOutScope]:
    """Each fan-out once, in the order its first member appears."""
    seen: list[FanOutScope] = []
    for scope in scopes.values():
        if scope not in seen:
            seen.append(scope)
    return seen
