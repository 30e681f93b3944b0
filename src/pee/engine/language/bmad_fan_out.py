"""BMAD's `repeats: for_each_epic` as a fan-out (issue 16; design-notes/fan-out.md, section 5).

A step that repeats per epic (greenfield `sm create_story`; brownfield
`for_each_epic_or_enhancement`) and the later steps that need what it makes (dev implements the
story, qa reviews the implementation) form BMAD's story cycle. With `--set bmad_repeats=for_each`
they become one group with `for_each` over the epics the earlier steps produced: the sharded
documents (`po shard_documents` creates `sharded_docs`, one shard per epic), else the PM's epic
list (`pm.epics`). Each epic's chain then runs as its own sub-pipeline, in parallel with the
others (an epic's cycle reads only the list and the earlier documents). Without it the cycle
runs once, as before; the interpretation says which.

Why opt-in: BMAD's PRD templates ask for "logically sequential" epics, each building on the
ones before (epic 1 sets up the project). Only the workflow's author knows that their epics are
independent; fanning out by default would write epic 2's story before epic 1's code exists.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pee.engine.language.bmad_interpretation import Link, LinkKind
from pee.engine.language.fan_out import INDEX, ITEM

# --set bmad_repeats=for_each | once (default)
VARIABLE = "bmad_repeats"
FOR_EACH = "for_each"
ONCE = "once"
GROUP = "story_cycle"
SHARDS = "sharded_docs"
EPICS = "epics"


@dataclass(frozen=True)
class StoryCycle:
    group: dict[str, Any]
    note: str


def wanted(variables: Mapping[str, Any]) -> bool:
    return str(variables.get(VARIABLE, ONCE)).strip().lower() == FOR_EACH


def story_cycle(
    agents: dict[str, dict[str, Any]],
    links: Sequence[Link],
    repeating: Sequence[tuple[str, str]],
) -> StoryCycle | None:
    """The story-cycle group for the first per-epic step of `repeating` ((agent id, repeats)),
    or None when nothing repeats per epic or no step makes the epics. Gives the PM an `epics`
    output when the list is its, and the repeating agent `item`/`index` (the epic it works on)."""
    first = next(((a, r) for a, r in repeating if r.startswith("for_each_epic")), None)
    if first is None:
        return None
    head, repeats = first
    order = list(agents)
    members = [head]
    for agent_id in order[order.index(head) + 1 :]:
        if any(
            k.agent == agent_id
            and k.after in members
            and k.kind in (LinkKind.REQUIRES, LinkKind.UPDATES)
            for k in links
        ):
            members.append(agent_id)
    before = order[: order.index(head)]
    shards = [a for a in before if SHARDS in (agents[a].get("outputs") or [])]
    pms = [a for a in before if str(agents[a].get("role") or "").lower() == "pm"]
    if shards:
        source = f"{shards[-1]}.{SHARDS}"
    elif pms:
        outputs = agents[pms[-1]].setdefault("outputs", [])
        if EPICS not in outputs:
            outputs.append(EPICS)
        source = f"{pms[-1]}.{EPICS}"
    else:
        return None
    optional = agents[head].setdefault("optional_inputs", [])
    optional += [name for name in (ITEM, INDEX) if name not in optional]
    chain = ", ".join(members[1:]) or "nothing else"
    note = (
        f"{head} repeats {repeats}: runs once per epic of {source} (group '{GROUP}', "
        f"for_each), with {chain} as its per-epic chain; --set {VARIABLE}={ONCE} runs it once"
    )
    return StoryCycle({"agents": members, "for_each": source}, note)
