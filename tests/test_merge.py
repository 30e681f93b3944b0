"""Three-way merge of context values: tables of base/current/incoming and properties."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pee.engine.canonical import canonical_json
from pee.engine.rules.merge import three_way_merge, value_hash

CLEAN = [
    # (name, base, current, incoming, merged)
    ("identical sides", {"a": 1}, {"a": 2}, {"a": 2}, {"a": 2}),
    ("only incoming changed", {"a": 1}, {"a": 1}, {"a": 3}, {"a": 3}),
    ("only current changed", {"a": 1}, {"a": 4}, {"a": 1}, {"a": 4}),
    ("different keys", {"a": 1, "b": 1}, {"a": 2, "b": 1}, {"a": 1, "b": 3}, {"a": 2, "b": 3}),
    ("added keys", {}, {"x": 1}, {"y": 2}, {"x": 1, "y": 2}),
    (
        "nested keys",
        {"ui": {"theme": "light", "font": "serif"}},
        {"ui": {"theme": "dark", "font": "serif"}},
        {"ui": {"theme": "light", "font": "sans"}},
        {"ui": {"theme": "dark", "font": "sans"}},
    ),
    ("deleted on one side", {"a": 1, "b": 2}, {"a": 1}, {"a": 1, "b": 2, "c": 3}, {"a": 1, "c": 3}),
    (
        "set-like list union",
        ["login"],
        ["login", "signup"],
        ["login", "search"],
        ["login", "signup", "search"],
    ),
    (
        "list removal and addition",
        ["a", "b", "c"],
        ["a", "c"],
        ["a", "b", "c", "d"],
        ["a", "c", "d"],
    ),
    ("same element added twice", [], ["x"], ["x"], ["x"]),
    (
        "lists of mappings",
        [{"id": 1}],
        [{"id": 1}, {"id": 2}],
        [{"id": 1}, {"id": 3}],
        [{"id": 1}, {"id": 2}, {"id": 3}],
    ),
    (
        "text lines far apart",
        "one\ntwo\nthree\nfour\n",
        "ONE\ntwo\nthree\nfour\n",
        "one\ntwo\nthree\nFOUR\n",
        "ONE\ntwo\nthree\nFOUR\n",
    ),
    (
        "text insertions",
        "a\nb\nc\nd\n",
        "a\nnew1\nb\nc\nd\n",
        "a\nb\nc\nnew2\nd\n",
        "a\nnew1\nb\nc\nnew2\nd\n",
    ),
    ("both created mappings", None, {"web": True}, {"mobile": True}, {"web": True, "mobile": True}),
]

CONFLICTS = [
    # (name, base, current, incoming, conflicting paths)
    (
        "same scalar changed",
        {"platform": "web"},
        {"platform": "mobile_first"},
        {"platform": "desktop_primary"},
        ["$.platform"],
    ),
    ("nested scalar", {"a": {"b": 1}}, {"a": {"b": 2}}, {"a": {"b": 3}}, ["$.a.b"]),
    ("top-level numbers", 1, 2, 3, ["$"]),
    ("type changed", {"a": "x"}, {"a": ["x"]}, {"a": {"x": 1}}, ["$.a"]),
    ("reordered lists", ["a", "b", "c"], ["c", "b", "a"], ["a", "b", "c", "d"], ["$"]),
    ("lists with duplicates", ["a"], ["a", "a"], ["a", "b"], ["$"]),
    ("same text line", "title: A\nbody\n", "title: B\nbody\n", "title: C\nbody\n", ["$"]),
    ("adjacent text lines", "1\n2\n3\n", "1\nX\n3\n", "1\n2\nY\n", ["$"]),
    ("deleted vs changed", {"a": 1}, {}, {"a": 2}, ["$.a"]),
]


@pytest.mark.parametrize(
    ("name", "base", "current", "incoming", "merged"), CLEAN, ids=[c[0] for c in CLEAN]
)
def test_clean_merges(name, base, current, incoming, merged) -> None:
    """Edits that do not overlap merge into one value holding both."""
    result = three_way_merge(base, current, incoming)
    assert [] == result.conflicts
    assert merged == result.value


@pytest.mark.parametrize(
    ("name", "base", "current", "incoming", "paths"), CONFLICTS, ids=[c[0] for c in CONFLICTS]
)
def test_conflicts(name, base, current, incoming, paths) -> None:
    """Overlapping edits are conflicts naming the JSON paths; the current value is kept."""
    result = three_way_merge(base, current, incoming)
    assert paths == result.conflicts
    assert not result.clean


def test_hash_ignores_key_order() -> None:
    """value_hash is of canonical JSON: key order does not matter, content does."""
    assert value_hash({"a": 1, "b": 2}) == value_hash({"b": 2, "a": 1})
    assert value_hash({"a": 1}) != value_hash({"a": 2})
    assert '{"a":1,"b":[1,2]}' == canonical_json({"b": [1, 2], "a": 1})


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 5) | st.text("ab\n", max_size=6),
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(st.sampled_from("abcd"), children, max_size=3)
    ),
    max_leaves=10,
)


@settings(max_examples=300, deadline=None)
@given(json_values, json_values, json_values)
def test_merge_is_deterministic(base, current, incoming) -> None:
    """The same three values always merge to the same result."""
    first = three_way_merge(base, current, incoming)
    second = three_way_merge(base, current, incoming)
    assert canonical_json(first.value) == canonical_json(second.value)
    assert first.conflicts == second.conflicts


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from("abcdefgh"), json_values, max_size=6), st.data())
def test_non_overlapping_edits_keep_both(base, data) -> None:
    """Edits to disjoint keys always merge cleanly, and the result holds both sides' edits."""
    keys = sorted(base)
    mine = data.draw(st.sets(st.sampled_from("abcdefgh")), label="mine")
    theirs = data.draw(st.sets(st.sampled_from("abcdefgh")).map(lambda s: s - mine), label="theirs")
    current, incoming = dict(base), dict(base)
    for key in sorted(mine):
        current[key] = {"mine": key}
    for key in sorted(theirs):
        incoming[key] = ["theirs", key]
    result = three_way_merge(base, current, incoming)
    assert result.clean
    for key in mine:
        assert {"mine": key} == result.value[key]
    for key in theirs:
        assert ["theirs", key] == result.value[key]
    for key in keys:
        if key not in mine and key not in theirs:
            assert base[key] == result.value[key]


def test_artifact_references_merge_as_whole_values() -> None:
    """Two different stored large values conflict instead of mixing their reference fields."""
    base = {"$artifact": "sha256:aa", "size": 1, "preview": "x"}
    current = {"$artifact": "sha256:bb", "size": 2, "preview": "x"}
    incoming = {"$artifact": "sha256:cc", "size": 1, "preview": "y"}
    assert ["$"] == three_way_merge(base, current, incoming).conflicts
    assert current == three_way_merge(base, current, base).value
