"""Versioned context: the shared state of a run, kept in workflow state.

Every write makes a new version (key, version, value_hash, writer, base_version, at); nothing is
overwritten in place. Agents read a snapshot (values plus a version vector) taken when they start.
A write whose base version is stale is three-way merged against the current value; an unmergeable
one opens a conflict object that blocks only the readers of that key until it is resolved.

A consistency conflict (a plan rule such as "ux_expert.platform and architect.platform must be
equal") covers every key of its rule (``Conflict.covered_keys()``); resolving it makes those keys
equal: "current" gives them all the first key's value, "incoming" the second key's, "value" the
value sent. The same holds for the conflict timeout's keep_current / keep_incoming.

Pure and deterministic (no clock, no I/O): callers pass ``at`` timestamps from workflow.now().
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from pee.engine.rules.merge import MISSING, three_way_merge, value_hash

# commit outcomes
CREATED = "created"
UNCHANGED = "unchanged"
FAST_FORWARD = "fast_forward"
MERGED = "merged"
CONFLICT = "conflict"
REJECTED = "rejected"

OPEN = "open"
RESOLVED = "resolved"
TIMED_OUT = "timed_out"

CHOICES = ("current", "incoming", "value")


class ResolutionError(ValueError):
    """A conflict resolution that cannot be applied; the message says why and what to send."""


@dataclass
class Version:
    key: str
    version: int
    value_hash: str
    writer: str
    base_version: int
    at: str
    value: Any = None
    # how the version came to be: write, merge, resolution, default, input
    origin: str = "write"


@dataclass
class Conflict:
    id: str
    key: str
    # write_write, consistency or ownership
    kind: str
    base_version: int
    current_version: int
    base: Any
    current: Any
    incoming: Any
    writers: list[str]
    status: str = OPEN
    opened_at: str = ""
    paths: list[str] = field(default_factory=list)
    message: str = ""
    resolved_at: str | None = None
    resolution: dict[str, Any] | None = None

    def covered_keys(self) -> list[str]:
        """The keys whose readers this conflict blocks: its rule's keys for a consistency
        conflict, else its one key."""
        return list(self.paths) if self.kind == "consistency" else [self.key]


@dataclass
class CommitOutcome:
    outcome: str
    key: str
    version: int | None = None
    conflict: Conflict | None = None
    message: str = ""


@dataclass
class Snapshot:
    values: dict[str, Any]
    # key -> version seen; 0 = the key did not exist yet
    versions: dict[str, int]


@dataclass
class ContextPolicy:
    # shared key -> owning agent (the seed's ownership_rules, resolved to agent ids)
    owners: dict[str, str] = field(default_factory=dict)
    # "reject" the write and alert, or open an ownership "conflict"
    ownership_violation: str = "reject"
    # agent ids: each owns every "<id>.<name>" key (its outputs), whatever the rules say
    agents: list[str] = field(default_factory=list)

    def is_agent(self, agent_id: str) -> bool:
        # a set of the ids, built once (and again if the list changes size): scanning the list
        # on every commit made a run's commits O(agents²), a 20,000-agent plan's the slowest
        # part of its parent workflow's tasks
        cached = self.__dict__.get("_ids")
        if cached is None or cached[1] is not self.agents or cached[2] != len(self.agents):
            cached = (frozenset(self.agents), self.agents, len(self.agents))
            self.__dict__["_ids"] = cached
        return agent_id in cached[0]


@dataclass
class VersionedContext:
    policy: ContextPolicy = field(default_factory=ContextPolicy)
    versions: dict[str, list[Version]] = field(default_factory=dict)
    conflicts: list[Conflict] = field(default_factory=list)

    # ---- reading ---------------------------------------------------------------------------

    def has(self, key: str) -> bool:
        return bool(self.versions.get(key))

    def current_version(self, key: str) -> int:
        history = self.versions.get(key)
        return history[-1].version if history else 0

    def value(self, key: str, default: Any = None) -> Any:
        history = self.versions.get(key)
        return history[-1].value if history else default

    def values(self) -> dict[str, Any]:
        return {key: history[-1].value for key, history in self.versions.items() if history}

    def history(self, key: str) -> list[Version]:
        return list(self.versions.get(key, []))

    def value_at(self, key: str, version: int) -> Any:
        if version <= 0:
            return MISSING
        return self.versions[key][version - 1].value

    def snapshot(self, keys: Iterable[str]) -> Snapshot:
        """What an agent sees for its whole run: the values as of now and their versions."""
        values: dict[str, Any] = {}
        versions: dict[str, int] = {}
        for key in keys:
            versions[key] = self.current_version(key)
            if versions[key]:
                values[key] = self.value(key)
        return Snapshot(values, versions)

    def open_conflicts(self, keys: Iterable[str] | None = None) -> list[Conflict]:
        wanted = None if keys is None else list(keys)
        return [
            c
            for c in self.conflicts
            if c.status == OPEN and (wanted is None or any(k in wanted for k in c.covered_keys()))
        ]

    def conflict(self, conflict_id: str) -> Conflict | None:
        for conflict in self.conflicts:
            if conflict.id == conflict_id:
                return conflict
        return None

    # ---- writing ---------------------------------------------------------------------------

    def _append(
        self, key: str, value: Any, writer: str, base_version: int, at: str, origin: str
    ) -> Version:
        history = self.versions.setdefault(key, [])
        version = Version(
            key, len(history) + 1, value_hash(value), writer, base_version, at, value, origin
        )
        history.append(version)
        return version

    def put(self, key: str, value: Any, writer: str, at: str, origin: str = "input") -> Version:
        """An unconditional write (plan inputs, defaults): a new version on top of current."""
        return self._append(key, value, writer, self.current_version(key), at, origin)

    def owner_of(self, key: str) -> str | None:
        if key in self.policy.owners:
            return self.policy.owners[key]
        prefix = key.split(".", 1)[0]
        if "." in key and self.policy.is_agent(prefix):
            return prefix
        return None

    def commit(
        self,
        writer: str,
        key: str,
        value: Any,
        base_version: int,
        at: str,
        *,
        own_key: bool = False,
    ) -> CommitOutcome:
        """Write ``value`` that ``writer`` derived from ``base_version`` of ``key``.

        ``own_key``: the key is the writer's own output (``agent.output``), never a violation.
        """
        owner = self.owner_of(key)
        if not own_key and owner is not None and owner != writer:
            message = f"'{writer}' may not write '{key}': '{owner}' owns it"
            if self.policy.ownership_violation == "conflict":
                conflict = self._open(
                    key, "ownership", base_version, value, writer, at, [], message
                )
                return CommitOutcome(CONFLICT, key, self.current_version(key), conflict, message)
            return CommitOutcome(REJECTED, key, self.current_version(key), None, message)
        current = self.current_version(key)
        if current == 0:
            return CommitOutcome(
                CREATED, key, self._append(key, value, writer, 0, at, "write").version
            )
        head = self.versions[key][-1]
        if head.value_hash == value_hash(value):
            return CommitOutcome(UNCHANGED, key, current, None, "identical content")
        if base_version == current:
            return CommitOutcome(
                FAST_FORWARD,
                key,
                self._append(key, value, writer, base_version, at, "write").version,
            )
        result = three_way_merge(self.value_at(key, base_version), head.value, value)
        if result.clean:
            merged = self._append(key, result.value, writer, current, at, "merge")
            return CommitOutcome(
                MERGED, key, merged.version, None, f"merged with version {current} by {head.writer}"
            )
        where = "" if result.conflicts == ["$"] else f" at {', '.join(result.conflicts)}"
        message = f"'{head.writer}' and '{writer}' changed '{key}' incompatibly{where}"
        conflict = self._open(
            key, "write_write", base_version, value, writer, at, result.conflicts, message
        )
        return CommitOutcome(CONFLICT, key, current, conflict, message)

    def _open(
        self,
        key: str,
        kind: str,
        base_version: int,
        incoming: Any,
        writer: str,
        at: str,
        paths: list[str],
        message: str,
    ) -> Conflict:
        current = self.current_version(key)
        head = self.versions[key][-1] if current else None
        base = self.value_at(key, base_version) if key in self.versions else MISSING
        conflict = Conflict(
            id=f"c{len(self.conflicts) + 1}",
            key=key,
            kind=kind,
            base_version=base_version,
            current_version=current,
            base=None if base is MISSING else base,
            current=head.value if head else None,
            incoming=incoming,
            writers=[head.writer if head else "", writer],
            opened_at=at,
            paths=list(paths),
            message=message,
        )
        self.conflicts.append(conflict)
        return conflict

    def open_consistency_conflict(self, keys: list[str], message: str, at: str) -> Conflict:
        """A post-completion rule violation (e.g. platforms that must be equal)."""
        key = keys[0]
        conflict = Conflict(
            id=f"c{len(self.conflicts) + 1}",
            key=key,
            kind="consistency",
            base_version=self.current_version(key),
            current_version=self.current_version(key),
            base=None,
            current=self.value(key),
            incoming={k: self.value(k) for k in keys[1:]},
            writers=[self.versions[k][-1].writer for k in keys if self.has(k)],
            opened_at=at,
            paths=list(keys),
            message=message,
        )
        self.conflicts.append(conflict)
        return conflict

    # ---- resolving -------------------------------------------------------------------------

    def validate_resolution(
        self, conflict_id: str, choice: str, expected_version: int | None, has_value: bool
    ) -> Conflict:
        conflict = self.conflict(conflict_id)
        if conflict is None:
            known = [c.id for c in self.open_conflicts()]
            raise ResolutionError(f"unknown conflict '{conflict_id}'; open conflicts: {known}")
        if conflict.status != OPEN:
            raise ResolutionError(
                f"conflict '{conflict_id}' is already {conflict.status} "
                f"({(conflict.resolution or {}).get('choice', 'policy')}); nothing to do"
            )
        if choice not in CHOICES:
            raise ResolutionError(f"choice must be one of {list(CHOICES)}, got {choice!r}")
        if choice == "value" and not has_value:
            raise ResolutionError("choice 'value' needs a value (JSON)")
        current = self.current_version(conflict.key)
        if expected_version is not None and expected_version < current:
            raise ResolutionError(
                f"stale resolution: '{conflict.key}' is at version {current}, you expected "
                f"{expected_version} (an older version); list the conflicts again and resolve "
                "against the current version"
            )
        if expected_version is not None and expected_version > current:
            # not stale: a version that does not exist yet (a typo, or another run's number)
            raise ResolutionError(
                f"expected_version {expected_version} is newer than the current version "
                f"{current} of '{conflict.key}' (no such version exists yet); resolve against "
                f"version {current}"
            )
        return conflict

    def resolve(
        self,
        conflict_id: str,
        choice: str,
        by: str,
        at: str,
        *,
        value: Any = MISSING,
        expected_version: int | None = None,
    ) -> Conflict:
        conflict = self.validate_resolution(
            conflict_id, choice, expected_version, value is not MISSING
        )
        chosen = self._chosen(conflict, choice, value)
        self._apply(conflict, chosen, choice, by, at)
        conflict.status = RESOLVED
        conflict.resolved_at = at
        conflict.resolution = {
            "choice": choice,
            "by": by,
            "value_hash": value_hash(chosen),
            "value": chosen,
            "version": self.current_version(conflict.key),
        }
        return conflict

    def time_out(self, conflict_id: str, policy: str, at: str) -> Conflict:
        """Apply the plan's conflict_timeout policy: keep_current or keep_incoming ("fail" is the
        caller's to raise; it is recorded and changes nothing)."""
        conflict = self.conflict(conflict_id)
        if conflict is None or conflict.status != OPEN:
            raise ResolutionError(f"conflict '{conflict_id}' is not open")
        resolution: dict[str, Any] = {"choice": policy, "by": "conflict_timeout"}
        if policy in ("keep_current", "keep_incoming"):
            chosen = self._chosen(conflict, policy.removeprefix("keep_"), MISSING)
            self._apply(conflict, chosen, policy.removeprefix("keep_"), "conflict_timeout", at)
            resolution.update(value_hash=value_hash(chosen), value=chosen)
        conflict.status = TIMED_OUT
        conflict.resolved_at = at
        conflict.resolution = {**resolution, "version": self.current_version(conflict.key)}
        return conflict

    def _chosen(self, conflict: Conflict, choice: str, value: Any) -> Any:
        if choice == "value":
            return value
        if conflict.kind == "consistency":
            # the rule's first key is "current", the second "incoming": their values as of now
            keys = conflict.covered_keys()
            return self.value(keys[0] if choice == "current" else keys[min(1, len(keys) - 1)])
        if choice == "current":
            return self.value(conflict.key, conflict.current)
        return conflict.incoming

    def _apply(self, conflict: Conflict, chosen: Any, choice: str, by: str, at: str) -> None:
        if conflict.kind == "consistency":
            # every key of the rule takes the chosen value (keys that hold it already stay)
            for key in conflict.covered_keys():
                if not self.has(key) or self.versions[key][-1].value_hash != value_hash(chosen):
                    self._append(key, chosen, by, self.current_version(key), at, "resolution")
        elif choice != "current":
            # "current" keeps what is there: the first writer's value, nothing to write
            self._append(
                conflict.key, chosen, by, self.current_version(conflict.key), at, "resolution"
            )

    # ---- reporting -------------------------------------------------------------------------

    def version_counts(self) -> dict[str, int]:
        return {key: len(history) for key, history in self.versions.items()}

    def history_dicts(self, key: str, with_values: bool = False) -> list[dict[str, Any]]:
        rows = []
        for version in self.versions.get(key, []):
            row = asdict(version)
            if not with_values:
                row.pop("value")
            rows.append(row)
        return rows


def owners_from_rules(
    rules: Mapping[str, Sequence[str]], agents: Mapping[str, str]
) -> dict[str, str]:
    """The seed's ownership_rules (role or agent → keys) as key → agent id; ``agents`` maps each
    agent id to its role."""
    by_role = {role: agent_id for agent_id, role in agents.items()}
    owners: dict[str, str] = {}
    for owner, keys in rules.items():
        agent_id = owner if owner in agents else by_role.get(owner, owner)
        for key in keys:
            owners.setdefault(key, agent_id)
    return owners
