"""How a BMAD workflow was read: each derived edge with its reason, and every reinterpretation.

``validate``, ``plan`` and ``run`` print it (the "interpretation" section; ``plan`` also prints
the edges), so nothing the importer decides is silent.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

COMPLETION = "completion"


class NoteKind(str, Enum):
    """What kind of reinterpretation a note reports."""

    SKIPPED = "skipped"
    INCLUDED = "included"
    GUIDANCE = "guidance"
    ROUTING = "routing"
    PSEUDO_AGENT = "pseudo-agent"
    REPEATS = "repeats"
    OPTIONAL_STEPS = "optional steps"
    OPTIONAL = "optional"
    INPUT = "input"
    TEMPLATE = "template"


@dataclass(frozen=True)
class Note:
    kind: NoteKind
    text: str

    def render(self) -> str:
        return f"{self.kind.value}: {self.text}"


class LinkKind(str, Enum):
    """Why a step waits for an earlier one."""

    REQUIRES = "requires"  # it reads what the earlier step made
    UPDATES = "updates"  # it edits the version the earlier step made
    PREVIOUS = "previous"  # the sequence's order: the step before it
    GATE = "gate"  # the PO's validation gate
    VALIDATES = "validates"  # it checks the earlier step's output (a validation edge)
    INPUT = "input"  # it reads a plan input (no earlier step)


@dataclass(frozen=True)
class Link:
    """A derived edge: ``agent`` waits for ``after`` (through reference ``ref``) because ..."""

    agent: str
    after: str
    ref: str
    reason: str
    kind: LinkKind = LinkKind.REQUIRES

    @property
    def reads(self) -> bool:
        """Whether the reference goes into the agent's inputs (a validation is an edge of its
        own, from ``validates``)."""
        return self.kind is not LinkKind.VALIDATES

    def render(self) -> str:
        if not self.after:
            return f"reads plan input {self.ref}: {self.reason}"
        target = self.after if self.ref.endswith(f".{COMPLETION}") else self.ref
        return f"after {target}: {self.reason}"


@dataclass
class Interpretation:
    """How the import read the workflow: each agent's edges with reasons, and the notes."""

    links: list[Link] = field(default_factory=list)
    notes: list[Note] = field(default_factory=list)

    def links_of(self, agent: str) -> list[Link]:
        return [link for link in self.links if link.agent == agent]

    def lines(self) -> list[str]:
        """The 'interpretation' section of validate, plan and run (without its heading)."""
        return [f"  - {note.render()}" for note in self.notes]

    def order_lines(self, agents: Collection[str]) -> list[str]:
        """Each agent's derived edges, one line per edge, in sequence order."""
        lines: list[str] = []
        for agent in agents:
            links = self.links_of(agent)
            if not links:
                lines.append(f"  {agent}: first step (waits for nothing)")
            for link in links:
                lines.append(f"  {agent} {link.render()}")
        return lines

    def to_dict(self) -> dict[str, Any]:
        return {
            "links": [
                {
                    "agent": k.agent,
                    "after": k.after,
                    "ref": k.ref,
                    "reason": k.reason,
                    "kind": k.kind.value,
                }
                for k in self.links
            ],
            "notes": [{"kind": n.kind.value, "text": n.text} for n in self.notes],
        }
