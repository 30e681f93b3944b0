"""Three-way merge of JSON-like values (base, current, incoming), the seed's
``three_way_merge_with_validation``.

- equal sides, or only one side changed → that side;
- mappings → per key, recursively (a key deleted on one side and untouched on the other goes);
- lists → set-like union: the current list, minus what incoming removed, plus what incoming added;
  clean only while neither side reorders the elements both kept (then order matters: conflict);
- text → line-based: both sides' edits applied when they touch different lines;
- anything else that changed on both sides differently → conflict, with the JSON path.

Pure and deterministic: the same three values always give the same result.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Any

from pee.engine.canonical import canonical_json, digest


class _Missing:
    """A key absent on one side (distinct from a JSON null)."""

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()


def value_hash(value: Any) -> str:
    """sha256 of the canonical JSON (pee.engine.canonical): equal content, equal hash, whatever
    the key order. The name the context's versions and reports use."""
    return digest(value)


@dataclass
class MergeResult:
    value: Any = None
    # JSON paths ("$.platform", "$.stories[2]") that both sides changed incompatibly
    conflicts: list[str] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not self.conflicts


def three_way_merge(base: Any, current: Any, incoming: Any) -> MergeResult:
    result = MergeResult()
    result.value = _merge(base, current, incoming, "$", result.conflicts)
    return result


def _same(left: Any, right: Any) -> bool:
    if left is MISSING or right is MISSING:
        return left is right
    return canonical_json(left) == canonical_json(right)


def _merge(base: Any, current: Any, incoming: Any, path: str, conflicts: list[str]) -> Any:
    if _same(current, incoming):
        return current
    if _same(base, current):
        return incoming
    if _same(base, incoming):
        return current
    if _is_reference(current) or _is_reference(incoming):
        pass  # a stored large value is one opaque value: no field-wise merge of two references
    elif isinstance(current, dict) and isinstance(incoming, dict):
        return _merge_mappings(
            base if isinstance(base, dict) else {}, current, incoming, path, conflicts
        )
    elif isinstance(current, list) and isinstance(incoming, list):
        merged = _merge_lists(base if isinstance(base, list) else [], current, incoming)
        if merged is not None:
            return merged
    elif isinstance(current, str) and isinstance(incoming, str):
        merged_text = _merge_text(base if isinstance(base, str) else "", current, incoming)
        if merged_text is not None:
            return merged_text
    conflicts.append(path)
    return current


def _is_reference(value: Any) -> bool:
    """A large value kept in the artifact store: {"$artifact": "sha256:...", "size", "preview"}."""
    return isinstance(value, dict) and "$artifact" in value


def _merge_mappings(
    base: dict[str, Any],
    current: dict[str, Any],
    incoming: dict[str, Any],
    path: str,
    conflicts: list[str],
) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    # current's key order first, then keys only incoming has: deterministic
    keys = list(current) + [k for k in incoming if k not in current]
    keys += [k for k in base if k not in current and k not in incoming]
    for key in keys:
        value = _merge(
            base.get(key, MISSING),
            current.get(key, MISSING),
            incoming.get(key, MISSING),
            f"{path}.{key}",
            conflicts,
        )
        if value is not MISSING:
            merged[key] = value
    return merged


def _merge_lists(base: list[Any], current: list[Any], incoming: list[Any]) -> list[Any] | None:
    keyed = {id(v): canonical_json(v) for v in (*base, *current, *incoming)}
    base_keys = [keyed[id(v)] for v in base]
    current_keys = [keyed[id(v)] for v in current]
    incoming_keys = [keyed[id(v)] for v in incoming]
    for keys in (base_keys, current_keys, incoming_keys):
        if len(set(keys)) != len(keys):
            return None  # duplicates: the list is not set-like
    kept_by_current = [k for k in current_keys if k in base_keys]
    kept_by_incoming = [k for k in incoming_keys if k in base_keys]
    both_kept = [k for k in kept_by_current if k in kept_by_incoming]
    if both_kept != [k for k in kept_by_incoming if k in kept_by_current]:
        return None  # the sides disagree on order: order matters here
    removed_by_incoming = {k for k in base_keys if k not in incoming_keys}
    merged = [v for v, k in zip(current, current_keys, strict=True) if k not in removed_by_incoming]
    present = {k for k in current_keys if k not in removed_by_incoming}
    for value, key in zip(incoming, incoming_keys, strict=True):
        if key not in base_keys and key not in present:
            merged.append(value)
            present.add(key)
    return merged


def _changes(base: list[str], side: list[str]) -> list[tuple[int, int, list[str]]]:
    matcher = difflib.SequenceMatcher(a=base, b=side, autojunk=False)
    return [
        (i1, i2, side[j1:j2]) for tag, i1, i2, j1, j2 in matcher.get_opcodes() if tag != "equal"
    ]


def _merge_text(base: str, current: str, incoming: str) -> str | None:
    base_lines = base.splitlines(keepends=True)
    ours = _changes(base_lines, current.splitlines(keepends=True))
    theirs = _changes(base_lines, incoming.splitlines(keepends=True))
    edits: list[tuple[int, int, list[str]]] = []
    for change in ours:
        for other in theirs:
            # touching or overlapping regions conflict unless they are the same edit
            if change[0] <= other[1] and other[0] <= change[1] and change != other:
                return None
        edits.append(change)
    edits += [c for c in theirs if c not in ours]
    edits.sort(key=lambda c: (c[0], c[1]))
    merged: list[str] = []
    position = 0
    for start, end, lines in edits:
        merged.extend(base_lines[position:start])
        merged.extend(lines)
        position = end
    merged.extend(base_lines[position:])
    return "".join(merged)
