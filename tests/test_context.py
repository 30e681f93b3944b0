"""Versioned context: versions, snapshots, optimistic concurrency, ownership, resolution."""

from __future__ import annotations

import pytest

from pee.engine.rules import context as ctx
from pee.engine.rules.context import (
    ContextPolicy,
    ResolutionError,
    VersionedContext,
    owners_from_rules,
)


def test_every_write_is_a_version_and_nothing_is_overwritten() -> None:
    """Two writes give two versions with hashes, writers and base versions."""
    store = VersionedContext()
    store.commit("pm", "requirements", {"a": 1}, 0, "t1")
    store.commit("pm", "requirements", {"a": 2}, 1, "t2")
    history = store.history("requirements")
    assert [1, 2] == [v.version for v in history]
    assert [0, 1] == [v.base_version for v in history]
    assert [{"a": 1}, {"a": 2}] == [v.value for v in history]
    assert history[0].value_hash != history[1].value_hash


def test_snapshot_isolation() -> None:
    """A snapshot keeps the values and versions as of when it was taken."""
    store = VersionedContext()
    store.commit("analyst", "brief", "v1", 0, "t1")
    seen = store.snapshot(["brief", "later"])
    store.commit("analyst", "brief", "v2", 1, "t2")
    assert {"brief": "v1"} == seen.values
    assert {"brief": 1, "later": 0} == seen.versions
    assert "v2" == store.value("brief")


def test_identical_content_is_not_a_conflict() -> None:
    """A stale write with the same content as current changes nothing."""
    store = VersionedContext()
    store.commit("ux", "platform", {"p": "web"}, 0, "t1")
    outcome = store.commit("architect", "platform", {"p": "web"}, 0, "t2")
    assert (ctx.UNCHANGED, 1) == (outcome.outcome, store.current_version("platform"))


def test_stale_mergeable_write_is_merged() -> None:
    """Two writers starting from the same version, editing different keys, merge cleanly."""
    store = VersionedContext()
    store.commit("pm", "spec", {"ui": "tbd", "api": "tbd"}, 0, "t0")
    store.commit("ux", "spec", {"ui": "cards", "api": "tbd"}, 1, "t1")
    outcome = store.commit("architect", "spec", {"ui": "tbd", "api": "rest"}, 1, "t2")
    assert ctx.MERGED == outcome.outcome
    assert {"ui": "cards", "api": "rest"} == store.value("spec")
    assert "merge" == store.history("spec")[-1].origin


def test_unmergeable_write_opens_a_conflict_and_keeps_the_first_writer() -> None:
    """first_writer_wins_with_merge_opportunity: current stays, a conflict object opens."""
    store = VersionedContext()
    store.commit("pm", "platform", "web", 0, "t0")
    store.commit("ux", "platform", "mobile_first", 1, "t1")
    outcome = store.commit("architect", "platform", "desktop_primary", 1, "t2")
    assert ctx.CONFLICT == outcome.outcome
    conflict = outcome.conflict
    assert ("c1", "platform", "open") == (conflict.id, conflict.key, conflict.status)
    assert ("web", "mobile_first", "desktop_primary") == (
        conflict.base,
        conflict.current,
        conflict.incoming,
    )
    assert ["ux", "architect"] == conflict.writers
    assert "mobile_first" == store.value("platform")
    assert [conflict] == store.open_conflicts(["platform"])
    assert [] == store.open_conflicts(["other"])


def make_conflict() -> VersionedContext:
    store = VersionedContext()
    store.commit("ux", "platform", "mobile_first", 0, "t1")
    store.commit("architect", "platform", "desktop_primary", 0, "t2")
    return store


@pytest.mark.parametrize(
    ("choice", "value", "expected"),
    [
        ("current", None, "mobile_first"),
        ("incoming", None, "desktop_primary"),
        ("value", "responsive", "responsive"),
    ],
)
def test_resolution_choices(choice, value, expected) -> None:
    """Resolving writes the chosen value (current keeps it) and records who chose what."""
    store = make_conflict()
    kwargs = {"value": value} if choice == "value" else {}
    conflict = store.resolve("c1", choice, "alice", "t3", expected_version=1, **kwargs)
    assert expected == store.value("platform")
    assert ("resolved", choice, "alice") == (
        conflict.status,
        conflict.resolution["choice"],
        conflict.resolution["by"],
    )
    assert [] == store.open_conflicts()


@pytest.mark.parametrize(
    ("conflict_id", "choice", "expected_version", "message"),
    [
        ("c9", "current", 1, "unknown conflict 'c9'"),
        ("c1", "theirs", 1, "choice must be one of"),
        (
            "c1",
            "current",
            0,
            "stale resolution: 'platform' is at version 1, you expected 0 "
            r"\(an older version\)",
        ),
        (
            "c1",
            "current",
            7,
            "expected_version 7 is newer than the current version 1 of 'platform'",
        ),
        ("c1", "value", 1, "needs a value"),
    ],
)
def test_invalid_resolutions_are_rejected_with_a_reason(
    conflict_id, choice, expected_version, message
) -> None:
    """Unknown ids, bad choices, stale (older) or newer versions and missing values are refused,
    each saying which it is; nothing changes."""
    store = make_conflict()
    with pytest.raises(ResolutionError, match=message):
        store.resolve(conflict_id, choice, "bob", "t3", expected_version=expected_version)
    assert ("open", 1) == (store.conflicts[0].status, store.current_version("platform"))


def test_a_resolved_conflict_cannot_be_resolved_again() -> None:
    """The second resolution of one conflict is refused."""
    store = make_conflict()
    store.resolve("c1", "current", "alice", "t3")
    with pytest.raises(ResolutionError, match="already resolved"):
        store.resolve("c1", "incoming", "bob", "t4")


@pytest.mark.parametrize(
    ("policy", "expected"), [("keep_current", "mobile_first"), ("keep_incoming", "desktop_primary")]
)
def test_conflict_timeout_policy(policy, expected) -> None:
    """At the conflict timeout, keep_current or keep_incoming applies and is recorded."""
    store = make_conflict()
    conflict = store.time_out("c1", policy, "t9")
    assert (expected, "timed_out") == (store.value("platform"), conflict.status)


def test_ownership_violation_rejected_by_default() -> None:
    """Writing a key another agent owns is rejected; the value is unchanged."""
    store = VersionedContext(ContextPolicy(owners={"requirements": "pm"}))
    outcome = store.commit("ux_expert", "requirements", ["x"], 0, "t1")
    assert ctx.REJECTED == outcome.outcome
    assert "'pm' owns it" in outcome.message and not store.has("requirements")
    assert ctx.CREATED == store.commit("pm", "requirements", ["x"], 0, "t2").outcome


def test_an_agents_own_keys_are_its_own_as_the_agent_list_changes() -> None:
    """`pm.out` belongs to the agent pm (looked up in a set of the ids, not the list): another
    writer is rejected; an agent the list gains afterwards owns its keys too."""
    store = VersionedContext(ContextPolicy(agents=["pm", "dev"]))
    assert ctx.REJECTED == store.commit("dev", "pm.out", 1, 0, "t1").outcome
    assert ctx.CREATED == store.commit("pm", "pm.out", 1, 0, "t2").outcome
    assert ctx.CREATED == store.commit("dev", "qa.out", 1, 0, "t3").outcome
    store.policy.agents.append("qa")
    assert ctx.REJECTED == store.commit("dev", "qa.out", 2, 1, "t4").outcome


def test_ownership_violation_as_conflict() -> None:
    """With ownership_violation: conflict, the write becomes an ownership conflict instead."""
    store = VersionedContext(
        ContextPolicy(owners={"requirements": "pm"}, ownership_violation="conflict")
    )
    store.commit("pm", "requirements", ["a"], 0, "t1")
    outcome = store.commit("ux_expert", "requirements", ["b"], 1, "t2")
    assert (ctx.CONFLICT, "ownership") == (outcome.outcome, outcome.conflict.kind)
    store.resolve(outcome.conflict.id, "incoming", "alice", "t3")
    assert ["b"] == store.value("requirements")


def test_own_outputs_never_violate_ownership() -> None:
    """An agent's own outputs are its own, whatever the rules say."""
    store = VersionedContext(ContextPolicy(owners={"ux_expert.ui_spec": "pm"}))
    outcome = store.commit("ux_expert", "ux_expert.ui_spec", {}, 0, "t1", own_key=True)
    assert ctx.CREATED == outcome.outcome


def test_owners_from_rules_map_roles_to_agent_ids() -> None:
    """Seed rules name roles; they resolve to the agents playing them."""
    owners = owners_from_rules(
        {"ux_expert": ["design_system"], "pm": ["requirements"]},
        {"ux_expert_parallel": "ux_expert", "pm": "pm"},
    )
    assert {"design_system": "ux_expert_parallel", "requirements": "pm"} == owners


def test_consistency_conflict() -> None:
    """A post-completion rule violation is a conflict listing both keys and writers."""
    store = VersionedContext()
    store.commit("ux_expert", "ux_expert.platform", "mobile_first", 0, "t1", own_key=True)
    store.commit("architect", "architect.platform", "desktop_primary", 0, "t2", own_key=True)
    conflict = store.open_consistency_conflict(
        ["ux_expert.platform", "architect.platform"], "platforms differ", "t3"
    )
    assert ("consistency", ["ux_expert", "architect"]) == (conflict.kind, conflict.writers)
    assert {"architect.platform": "desktop_primary"} == conflict.incoming


def test_report_helpers() -> None:
    """Version counts and history rows (without values by default) for the run report."""
    store = make_conflict()
    assert {"platform": 1} == store.version_counts()
    assert "value" not in store.history_dicts("platform")[0]
    assert "c1" == store.conflicts[0].id


def make_consistency_conflict() -> VersionedContext:
    store = VersionedContext()
    store.commit("ux_expert", "ux_expert.platform", "mobile_first", 0, "t1", own_key=True)
    store.commit("architect", "architect.platform", "desktop_primary", 0, "t2", own_key=True)
    store.open_consistency_conflict(["ux_expert.platform", "architect.platform"], "differ", "t3")
    return store


@pytest.mark.parametrize(
    ("choice", "value", "expected"),
    [
        ("current", None, "mobile_first"),
        ("incoming", None, "desktop_primary"),
        ("value", "responsive", "responsive"),
    ],
)
def test_resolving_a_consistency_conflict_makes_the_keys_equal(choice, value, expected) -> None:
    """current = the rule's first key's value, incoming = the second's, value = the one sent;
    every key of the rule ends up with it, keys already holding it get no new version."""
    store = make_consistency_conflict()
    kwargs = {"value": value} if choice == "value" else {}
    conflict = store.resolve("c1", choice, "alice", "t4", **kwargs)
    assert [expected, expected] == [
        store.value("ux_expert.platform"),
        store.value("architect.platform"),
    ]
    assert expected == conflict.resolution["value"]
    versions = [
        store.current_version("ux_expert.platform"),
        store.current_version("architect.platform"),
    ]
    assert {"current": [1, 2], "incoming": [2, 1], "value": [2, 2]}[choice] == versions


def test_a_consistency_conflict_blocks_readers_of_every_rule_key() -> None:
    """open_conflicts(keys) finds a consistency conflict by any of its rule's keys."""
    store = make_consistency_conflict()
    assert ["c1"] == [c.id for c in store.open_conflicts(["architect.platform"])]
    assert ["ux_expert.platform", "architect.platform"] == store.conflicts[0].covered_keys()


def test_timeout_keep_current_on_a_consistency_conflict_aligns_the_keys() -> None:
    """keep_current at the conflict timeout gives every rule key the first key's value."""
    store = make_consistency_conflict()
    conflict = store.time_out("c1", "keep_current", "t9")
    assert ("timed_out", "mobile_first") == (conflict.status, store.value("architect.platform"))
    assert ("keep_current", "conflict_timeout", "mobile_first") == (
        conflict.resolution["choice"],
        conflict.resolution["by"],
        conflict.resolution["value"],
    )


def test_timeout_fail_records_the_policy_and_writes_nothing() -> None:
    """fail is the caller's to raise: the conflict is closed as timed out, values untouched."""
    store = make_conflict()
    conflict = store.time_out("c1", "fail", "t9")
    assert ("timed_out", "fail", 1) == (
        conflict.status,
        conflict.resolution["choice"],
        store.current_version("platform"),
    )


def test_agents_own_their_prefixed_keys() -> None:
    """With the plan's agent ids in the policy, 'pm.anything' belongs to pm."""
    store = VersionedContext(ContextPolicy(agents=["pm", "ux"]))
    assert ("pm", None) == (store.owner_of("pm.notes"), store.owner_of("platform"))
    assert ctx.REJECTED == store.commit("ux", "pm.notes", "x", 0, "t1").outcome
