"""One exception class per way a plan can be wrong.

Every error carries the offending value and where it was found, and its message says what was
expected, what was found and how to fix it, e.g.
``plan.yaml:12: agent 'qa' reads 'developer.code', but no agent writes it;
writers: ['developer.plan']``.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Location:
    """Where in a plan file a problem sits: the file, the YAML path and, when known, the line."""

    file: str | None = None
    path: str = ""
    line: int | None = None

    def __str__(self) -> str:
        where = self.file or "<plan>"
        if self.line is not None:
            where += f":{self.line}"
        if self.path:
            where += f" ({self.path})"
        return where


class PlanError(ValueError):
    """Base class: the plan cannot be run as written."""

    def __init__(
        self,
        message: str,
        *,
        value: Any = None,
        location: Location | None = None,
        expected: str | None = None,
        found: str | None = None,
        fix: str | None = None,
    ) -> None:
        self.message = message
        self.value = value
        self.location = location or Location()
        self.expected = expected
        self.found = found
        self.fix = fix
        super().__init__(self.render())

    def render(self) -> str:
        parts = [f"{self.location}: {self.message}"]
        if self.expected:
            parts.append(f"expected {self.expected}")
        if self.found:
            parts.append(f"found {self.found}")
        text = "; ".join(parts)
        if self.fix:
            text += f". Fix: {self.fix}"
        return text

    def at(self, location: Location) -> PlanError:
        """Re-anchor this error (used when a problem is found before its location is known)."""
        self.location = location
        self.args = (self.render(),)
        return self

    def to_dict(self) -> dict[str, Any]:
        return {
            "error": type(self).__name__,
            "message": self.message,
            "file": self.location.file,
            "path": self.location.path,
            "line": self.location.line,
            "expected": self.expected,
            "found": self.found,
            "fix": self.fix,
        }


class PlanSyntaxError(PlanError):
    """The file is not readable YAML (or not a mapping at the top)."""


class YamlAliasError(PlanSyntaxError):
    """Aliases that expand a small file into a huge (or endless, recursive) plan."""


class PlanFileNotFoundError(PlanError, FileNotFoundError):
    """The plan path does not exist."""


class UnknownKeyError(PlanError):
    """A key the plan language does not know, usually a typo."""


class InvalidValueError(PlanError):
    """A value of the wrong type or outside its allowed set."""


class DurationError(InvalidValueError):
    """A duration that is neither seconds nor one of the documented forms."""


class SizeError(InvalidValueError):
    """A size that is neither bytes nor a number with KB/MB/GB."""


class ResourceLevelError(InvalidValueError):
    """A resource level that is neither a number of units nor low/medium/high/very_high."""


class UnknownAgentError(PlanError):
    """A reference to an agent the plan does not define."""


class DuplicateAgentError(PlanError):
    """Two definitions of the same agent id."""


class MissingProducerError(PlanError):
    """An input that no agent produces and the run does not supply."""


class CycleError(PlanError):
    """Blocking dependencies that loop; carries the cycle as a list of node ids."""

    def __init__(self, cycle: Sequence[str], *, kind: str = "agents", **kwargs: Any) -> None:
        self.cycle = list(cycle)
        loop = " -> ".join([*self.cycle, self.cycle[0]]) if self.cycle else "?"
        super().__init__(
            f"dependency cycle between {kind}: {loop}",
            value=self.cycle,
            expected="blocking dependencies that form a DAG",
            fix=kwargs.pop("fix", None)
            or (
                "remove one of these groups' depends_on entries"
                if kind == "groups"
                else "make one of these dependencies optional_inputs (context, never waits) "
                "or remove it"
            ),
            **kwargs,
        )


class GroupError(PlanError):
    """An execution group that cannot be honoured (unknown member, agent in two groups...)."""


class OwnershipClashError(PlanError):
    """A context key owned by two agents, or written by an agent that does not own it."""


class SandboxError(PlanError):
    """A plan reaching outside the folder its templates may come from, or choosing that folder."""


class ResourceFitError(PlanError):
    """An agent that needs more CPU or memory than the whole pool: it could never start."""


class FanOutError(PlanError):
    """A ``for_each`` that cannot work as written: a source that is not an earlier agent's output,
    a fan-out nested in another, shared writes from instances, a group rule broken."""


class FanOutUnavailableError(PlanError):
    """A plan with ``for_each`` given to `run`/`compile` before the workflow can execute one."""


class UnresolvedInputError(MissingProducerError):
    """A BMAD requirement that no step creates and that was not supplied with --set."""


class UnknownVariableError(UnknownKeyError):
    """A --set name the plan does not use (usually a typo of a BMAD condition)."""


class BmadFolderError(PlanError):
    """A --bmad-dir that is not a BMAD install (no templates/ folder) or an unreadable file."""


class BmadTemplateError(BmadFolderError):
    """A BMAD template a step needs that is missing or not a valid template YAML."""


class PlanValidationError(PlanError):
    """Every problem found in a plan, reported together so a user can fix them in one pass."""

    def __init__(self, problems: Iterable[PlanError], file: str | None = None) -> None:
        self.problems = list(problems)
        count = len(self.problems)
        super().__init__(
            f"{count} problem{'s' if count != 1 else ''} in the plan",
            value=self.problems,
            location=Location(file=file),
        )

    def render(self) -> str:
        lines = [f"{self.location}: {self.message}"]
        lines.extend(f"  - {problem.render()}" for problem in self.problems)
        return "\n".join(lines)


def suggest(name: Any, candidates: Any) -> str | None:
    """The candidate closest to a misspelt name, for a "did you mean" fix; None if none is."""
    if not isinstance(name, str):
        return None
    matches = difflib.get_close_matches(name, [str(c) for c in candidates], n=1, cutoff=0.6)
    return matches[0] if matches else None
