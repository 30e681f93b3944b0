"""YAML loading that remembers where every value came from, so errors can name a line.

``load_yaml`` returns the plain data plus a ``SourceMap`` from YAML paths (tuples of keys and list
indexes) to 1-based line numbers.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import yaml

from pee.engine.gc_pause import paused_gc
from pee.engine.language.errors import (
    Location,
    PlanError,
    PlanFileNotFoundError,
    PlanSyntaxError,
    YamlAliasError,
)

PathKey = tuple[Any, ...]

# Aliases are bounded as safe YAML loaders elsewhere bound them (SnakeYAML's
# maxAliasesForCollections, go-yaml's alias ratio). Every reader of a plan (the line map, the
# checks, the compiled plan, the workflow) sees an alias as a full copy of its anchor, so nine
# aliases of nine aliases of ... make a 500-byte file stand for a billion values. A plan may
# use at most MAX_COLLECTION_ALIASES aliases of mappings or lists (aliases of plain values
# cost nothing), and all aliases expanded it may stand for at most
# max(EXPANSION_FLOOR, EXPANSION_RATIO x the values written) values: sharing a block of
# defaults among many agents stays well inside, a bomb does not.
MAX_COLLECTION_ALIASES = 10_000
EXPANSION_FLOOR = 100_000
EXPANSION_RATIO = 4
# beyond this the counts stop growing (a bomb's true size can have hundreds of digits)
_COUNT_CAP = 10**12


@dataclass
class SourceMap:
    file: str | None = None
    lines: dict[PathKey, int] = field(default_factory=dict)
    # keys written twice in one mapping (YAML keeps the last silently): (path, line, first line)
    duplicates: list[tuple[PathKey, int, int]] = field(default_factory=list)

    def line(self, path: Sequence[Any]) -> int | None:
        """The line of the deepest known ancestor of ``path`` (a typo'd leaf still gets a line)."""
        key = tuple(path)
        while True:
            if key in self.lines:
                return self.lines[key]
            if not key:
                return None
            key = key[:-1]

    def locate(self, path: Sequence[Any]) -> Location:
        return Location(file=self.file, path=format_path(path), line=self.line(path))


def format_path(path: Sequence[Any]) -> str:
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text


class _Loader(yaml.SafeLoader):
    """SafeLoader whose constructor is used on nodes we already walked for line numbers.

    A plan is JSON-like data: it ends up in the compiled plan the workflow receives. So a
    timestamp such as ``2024-01-31`` stays the text it was written as (plans have no date type),
    and the tags that would build bytes, sets or pair lists are errors.
    """


def _timestamp_as_text(loader: _Loader, node: yaml.ScalarNode) -> str:
    return loader.construct_scalar(node)


def _not_plan_data(loader: _Loader, node: yaml.Node) -> Any:
    raise yaml.constructor.ConstructorError(
        None,
        None,
        f"{node.tag.replace('tag:yaml.org,2002:', '!!')} values are not plan data; "
        "use text, numbers, lists or mappings",
        node.start_mark,
    )


class _RememberedTags:
    """The resolver of a loader without path resolvers (the safe loaders have none), minus
    its per-value work: a plain scalar's tag depends on its text alone, and a plan repeats
    the same texts (keys, kinds, references) on every agent, so each is matched against the
    implicit resolvers' patterns once per document. libyaml calls these three methods for
    every node it composes."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)  # type: ignore[call-arg]
        self._tags: dict[str, str] = {}

    def descend_resolver(self, current_node: Any, current_index: Any) -> None:
        return None

    def ascend_resolver(self) -> None:
        return None

    def resolve(self, kind: type, value: Any, implicit: tuple[bool, bool]) -> str:
        if kind is yaml.ScalarNode and implicit[0]:
            tag = self._tags.get(value)
            if tag is None:
                tag = self._tags[value] = super().resolve(kind, value, implicit)  # type: ignore[misc]
            return tag
        return super().resolve(kind, value, implicit)  # type: ignore[misc]


# libyaml parses large plans about three times faster; its error messages are terser, so a
# file it rejects is parsed again by the pure-Python loader to explain what is wrong
_FastLoader = cast(
    "type[yaml.SafeLoader] | type[yaml.CSafeLoader]",
    type("_FastLoader", (_RememberedTags, getattr(yaml, "CSafeLoader", _Loader)), {}),
)
# what _RememberedTags relies on
assert not _FastLoader.yaml_path_resolvers

for _cls in {_Loader, _FastLoader}:
    _cls.add_constructor("tag:yaml.org,2002:timestamp", _timestamp_as_text)
    for _tag in ("binary", "set", "omap", "pairs"):
        _cls.add_constructor(f"tag:yaml.org,2002:{_tag}", _not_plan_data)


_MERGE_TAG = "tag:yaml.org,2002:merge"


def _hashable(value: Any) -> bool:
    try:
        hash(value)
    except TypeError:
        return False
    return True


_STR_TAG = "tag:yaml.org,2002:str"
_MAP_TAG = "tag:yaml.org,2002:map"
_SEQ_TAG = "tag:yaml.org,2002:seq"
_VALUE_TAG = "tag:yaml.org,2002:value"


class _TreeBuilder:
    """Builds a composed document without aliases (a tree) and its line map in one walk.

    Plain mappings, lists and text are built here (the loader's generic constructor costs
    several calls per value); anything else (numbers, booleans, merge keys, explicit tags) goes
    to the loader, so values and errors stay PyYAML's own.
    """

    def __init__(self, loader: yaml.SafeLoader, source: SourceMap) -> None:
        self.loader = loader
        self.source = source

    def build(self, node: yaml.Node, path: PathKey) -> Any:
        lines = self.source.lines
        if path not in lines:
            lines[path] = node.start_mark.line + 1
        tag = node.tag
        if isinstance(node, yaml.ScalarNode):
            return node.value if tag == _STR_TAG else self.loader.construct_object(node)
        if isinstance(node, yaml.SequenceNode) and tag == _SEQ_TAG:
            return [self.build(item, (*path, index)) for index, item in enumerate(node.value)]
        if isinstance(node, yaml.MappingNode) and tag == _MAP_TAG and _plain_keys(node):
            return self._mapping(node, path)
        _walk(node, path, self.source, self.loader)
        return self.loader.construct_object(node, deep=True)

    def _mapping(self, node: yaml.MappingNode, path: PathKey) -> dict[Any, Any]:
        lines = self.source.lines
        duplicates = self.source.duplicates
        value: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = (
                key_node.value
                if key_node.tag == _STR_TAG
                else self.loader.construct_object(key_node, deep=True)
            )
            child = (*path, key)
            line = key_node.start_mark.line + 1
            if (
                child in lines
                and key != "<<"
                and not isinstance(key, bool | int)
                and not any(child[: len(seen)] == seen for seen, _, _ in duplicates)
            ):
                duplicates.append((child, line, lines[child]))
            lines[child] = line
            value[key] = self.build(value_node, child)
        return value


def _plain_keys(node: yaml.MappingNode) -> bool:
    """Every key is a scalar the mapping's own constructor would take as written (no merge
    key, no ``=`` value key)."""
    return all(
        isinstance(key_node, yaml.ScalarNode) and key_node.tag not in (_MERGE_TAG, _VALUE_TAG)
        for key_node, _ in node.value
    )


def _walk(node: yaml.Node, path: PathKey, source: SourceMap, loader: yaml.SafeLoader) -> None:
    lines = source.lines
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == _MERGE_TAG:
                # a merge key (`<<: *defaults`) is no key of its own: the loader folds the
                # merged values into this mapping, whose line they keep
                continue
            key = loader.construct_object(key_node, deep=True)
            if not _hashable(key):
                continue
            child = (*path, key)
            if (
                child in lines
                and key != "<<"
                and not isinstance(key, bool | int)
                and not any(child[: len(seen)] == seen for seen, _, _ in source.duplicates)
            ):
                source.duplicates.append((child, key_node.start_mark.line + 1, lines[child]))
            lines[child] = key_node.start_mark.line + 1
            _walk(value_node, child, source, loader)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _walk(item, (*path, index), source, loader)


def _children(node: yaml.Node) -> Iterator[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            yield key_node
            yield value_node
    elif isinstance(node, yaml.SequenceNode):
        yield from node.value


def expansion_limit(written: int) -> int:
    """How many values a document of ``written`` values may stand for once aliases expand."""
    return max(EXPANSION_FLOOR, EXPANSION_RATIO * written)


def check_aliases(root: yaml.Node, file: str | None = None) -> None:
    """Refuse a composed document whose aliases recurse, are too many, or expand too far.

    The composed node graph shares an anchor's node wherever it is aliased, so this walk visits
    each written node once (linear in the file) and sizes the expansion bottom-up instead of
    performing it. The first visit of a node is where it was written (anchors come before their
    aliases); every later reference is an alias.
    """
    sizes: dict[int, int] = {}
    post_order: list[yaml.Node] = []
    seen = {id(root)}
    on_path = {id(root)}
    aliases = 0
    stack: list[tuple[yaml.Node, Iterator[yaml.Node]]] = [(root, _children(root))]

    def line(node: yaml.Node) -> Location:
        return Location(file=file, line=node.start_mark.line + 1)

    while stack:
        node, pending = stack[-1]
        for child in pending:
            key = id(child)
            if key in on_path:
                raise YamlAliasError(
                    "an alias refers to a mapping or list that contains it: the value would "
                    "be endless",
                    value=None,
                    location=line(node),
                    expected="aliases of values written before them, outside them",
                    found=f"a recursive anchor (written at line {child.start_mark.line + 1})",
                    fix="copy the values instead of aliasing the enclosing anchor",
                )
            if key in seen:
                if not isinstance(child, yaml.ScalarNode):
                    aliases += 1
                    if aliases > MAX_COLLECTION_ALIASES:
                        raise YamlAliasError(
                            f"more than {MAX_COLLECTION_ALIASES:,} aliases of mappings or lists",
                            value=aliases,
                            location=line(node),
                            expected=f"at most {MAX_COLLECTION_ALIASES:,} such aliases",
                            found=f"alias number {aliases:,} here",
                            fix="write the values out, or share fewer blocks",
                        )
                continue
            seen.add(key)
            if isinstance(child, yaml.ScalarNode):
                sizes[key] = 1
                continue
            on_path.add(key)
            stack.append((child, _children(child)))
            break
        else:
            stack.pop()
            on_path.discard(id(node))
            sizes[id(node)] = min(_COUNT_CAP, 1 + sum(sizes[id(c)] for c in _children(node)))
            post_order.append(node)
    limit = expansion_limit(len(seen))
    if sizes.get(id(root), 1) <= limit:
        return
    # the innermost value that crosses the limit is where the aliases multiply
    node = next(n for n in post_order if sizes[id(n)] > limit)
    size = sizes[id(node)]
    raise YamlAliasError(
        "aliases make this value stand for "
        f"{'more than ' if size >= _COUNT_CAP else ''}{size:,} values",
        value=size,
        location=line(node),
        expected=f"at most {limit:,} values once aliases are expanded (the larger of "
        f"{EXPANSION_FLOOR:,} and {EXPANSION_RATIO} x the {len(seen):,} values written)",
        found="aliases of aliases multiplying the plan (a YAML 'billion laughs')",
        fix="write the shared values out or alias them fewer times",
    )


def parse_yaml(text: str, file: str | None = None) -> tuple[Any, SourceMap]:
    """Parse YAML text; a syntax error becomes PlanSyntaxError with the line it happened on."""
    if _FastLoader is not _Loader:
        try:
            return _parse_with(_FastLoader, text, file)
        except PlanError:
            raise
        except (yaml.YAMLError, ValueError, TypeError, RecursionError):
            pass
    try:
        return _parse_with(_Loader, text, file)
    except PlanError:
        raise
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        raise PlanSyntaxError(
            f"not valid YAML: {exc.problem or exc}",
            value=text,
            location=Location(file=file, line=line),
            expected="a YAML document",
            fix="check indentation and quoting around this line",
        ) from None
    except RecursionError:
        raise PlanSyntaxError(
            "not valid YAML: mappings and lists nested too deeply to read",
            value=None,
            location=Location(file=file),
            expected="a plan nested a few dozen levels at most",
            fix="flatten the nesting",
        ) from None
    except (yaml.YAMLError, ValueError, TypeError) as exc:
        # pyyaml raises plain ValueError/TypeError for some constructs (e.g. unhashable keys)
        raise PlanSyntaxError(
            f"not valid YAML: {exc}",
            value=text,
            location=Location(file=file),
            expected="a YAML document",
            fix="check the file's syntax",
        ) from None


def _parse_with(loader_class: type, text: str, file: str | None) -> tuple[Any, SourceMap]:
    source = SourceMap(file=file)
    # the parse allocates a few values per line and frees none of them, so the cyclic
    # collector's passes over the growing heap would cost more than the parse itself
    with paused_gc():
        loader = loader_class(text)
        try:
            node = loader.get_single_node()
            if node is None:
                return None, source
            if "&" not in text:
                # every alias names an anchor, written with '&': without one the document is
                # a tree, built in one walk
                return _TreeBuilder(loader, source).build(node, ()), source
            check_aliases(node, file)
            # walked before anything is constructed: constructing a merge key (`<<: *base`)
            # rewrites its mapping node, which an alias would then show again
            _walk(node, (), source, loader)
            return loader.construct_document(node), source
        finally:
            loader.dispose()


def load_yaml(path: str | Path) -> tuple[Any, SourceMap]:
    file = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PlanFileNotFoundError(
            "plan file not found",
            value=file,
            location=Location(file=file),
            fix="check the path; example plans live in plans/",
        ) from None
    except (IsADirectoryError, UnicodeDecodeError, PermissionError) as exc:
        raise PlanSyntaxError(
            f"cannot read the plan: {exc}",
            value=file,
            location=Location(file=file),
            expected="a readable UTF-8 YAML file",
        ) from None
    return parse_yaml(text, file)
