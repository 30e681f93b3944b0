"""YAML loading that remembers where every value came from, so errors can name a line.

``load_yaml`` returns the plain data plus a ``SourceMap`` from YAML paths (tuples of keys and list
indexes) to 1-based line numbers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from engine.errors import Location, PlanFileNotFoundError, PlanSyntaxError

PathKey = tuple[Any, ...]


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
        None, None, f"{node.tag.replace('tag:yaml.org,2002:', '!!')} values are not plan data; "
        "use text, numbers, lists or mappings", node.start_mark,
    )


# libyaml parses large plans about three times faster; its error messages are terser, so a
# file it rejects is parsed again by the pure-Python loader to explain what is wrong
_FastLoader: type = type("_FastLoader", (getattr(yaml, "CSafeLoader", _Loader),), {})

for _cls in {_Loader, _FastLoader}:
    _cls.add_constructor("tag:yaml.org,2002:timestamp", _timestamp_as_text)
    for _tag in ("binary", "set", "omap", "pairs"):
        _cls.add_constructor(f"tag:yaml.org,2002:{_tag}", _not_plan_data)


def _hashable(value: Any) -> bool:
    try:
        hash(value)
    except TypeError:
        return False
    return True


def _walk(node: yaml.Node, path: PathKey, source: SourceMap, loader: yaml.SafeLoader) -> None:
    lines = source.lines
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                continue
            key = loader.construct_object(key_node, deep=True)
            if not _hashable(key):
                continue
            child = (*path, key)
            if child in lines and key != "<<" and not isinstance(key, bool | int) and not any(
                    child[:len(seen)] == seen for seen, _, _ in source.duplicates):
                source.duplicates.append((child, key_node.start_mark.line + 1, lines[child]))
            lines[child] = key_node.start_mark.line + 1
            _walk(value_node, child, source, loader)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _walk(item, (*path, index), source, loader)


def parse_yaml(text: str, file: str | None = None) -> tuple[Any, SourceMap]:
    """Parse YAML text; a syntax error becomes PlanSyntaxError with the line it happened on."""
    if _FastLoader is not _Loader:
        try:
            return _parse_with(_FastLoader, text, file)
        except (yaml.YAMLError, ValueError, TypeError, RecursionError):
            pass
    try:
        return _parse_with(_Loader, text, file)
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
    except (yaml.YAMLError, ValueError, TypeError, RecursionError) as exc:
        # pyyaml raises plain ValueError/TypeError for some constructs (e.g. unhashable keys)
        raise PlanSyntaxError(
            f"not valid YAML: {exc}", value=text, location=Location(file=file),
            expected="a YAML document", fix="check the file's syntax",
        ) from None


def _parse_with(loader_class: type, text: str, file: str | None) -> tuple[Any, SourceMap]:
    source = SourceMap(file=file)
    loader = loader_class(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None, source
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
            "plan file not found", value=file, location=Location(file=file),
            fix="check the path; example plans live in plans/",
        ) from None
    except (IsADirectoryError, UnicodeDecodeError, PermissionError) as exc:
        raise PlanSyntaxError(
            f"cannot read the plan: {exc}", value=file, location=Location(file=file),
            expected="a readable UTF-8 YAML file",
        ) from None
    return parse_yaml(text, file)
