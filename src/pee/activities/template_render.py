"""Rendering for the `template` backend: placeholders and BMAD v4 template YAML (pure: no I/O).

Variables: every input is usable by its full ref (``{{pm.user_stories}}``, also as a dotted path
into ``pm``) and by its output name alone (``{{user_stories}}``) when no other input has that name.
``{{a.b.c}}`` walks into mappings (and lists by index). A name found nowhere else is looked up as
a key of the upstream documents (a role agent's brief carries ``project``), and ``project_name``
falls back to ``project``/``product_name`` (``FRIENDS``). A variable without a value renders as
empty text and is recorded (``missing``).

BMAD v4 templates (``template: {id, name, version, output}`` and ``sections``). A section has
``id``, ``title``, ``instruction`` (guidance, not rendered), ``type`` (paragraphs, bullet-list,
numbered-list, table, code-block, mermaid...), ``template``, ``item_template``, ``items`` (a list
written in the template itself, or the name of a list variable), ``columns``, ``prefix``,
``repeatable``, ``condition``, nested ``sections`` and ``elicit``.

- ``condition``: BMAD writes them in plain English ("Project has UX/UI requirements"). A
  condition is decided by a variable named as written or as its slug
  (``project_has_ux_ui_requirements``; ``--set`` gives one), truthy spellings true/yes/y/1/on and
  false/no/n/0/off; ``not X`` inverts. An undecided plain-English condition keeps the section and
  states it under the heading ("> Applies if: ..."); an undecided one-word condition names a data
  variable (``condition: personas``) and skips the section. Both are recorded.
- ``repeatable``: once per item of the list named by ``repeat_over`` or the section id (``-`` and
  ``_`` alike), with ``item``, ``index`` and the item's keys in scope; without such a list, one
  stub that says it is a stub, its placeholders shown as ``[name]``.
- ``elicit``: recorded (with the section's instruction), never waited for.
- a leaf section left without content shows its ``instruction`` ("> To write: ...").

The document ends with "Template notes" when anything was skipped, stated, stubbed, empty or
elicited, and carries the same lists as ``skipped``, ``conditions``, ``stubs``, ``missing`` and
``elicit``.

Sandbox: text substitution only (no expression evaluation, no attribute access, no format specs).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pee.engine.language.booleans import FALSE_WORDS

# {{ name }} or {{ a.b.c }}: names only, nothing else is ever interpreted
PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_\-]*(?:\.[A-Za-z0-9_\-]+)*)\s*\}\}")
MISSING = object()
# spelled-out booleans: the words a BMAD step condition takes as false, and an empty value
FALSY = frozenset({*FALSE_WORDS, "none", ""})
FRIENDS: dict[str, tuple[str, ...]] = {
    "project_name": ("project", "product_name", "product"),
    "project": ("project_name", "product_name"),
}
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]*")
_NOT_SLUG = re.compile(r"[^a-z0-9]+")
# an item line that is nothing but punctuation once its placeholders were empty (": ", "- ")
_HOLLOW = re.compile(r"[\s:;,.\-|*_#()\[\]]*")
_LLM_NOTE = re.compile(r"\s*\[\[LLM:.*?\]\]", re.DOTALL)


class TemplateError(ValueError):
    """A template that cannot be rendered (bad YAML shape); the plan must change."""


# ---- variables and placeholders --------------------------------------------------------------


def variables(inputs: Mapping[str, Any]) -> dict[str, Any]:
    """The render scope: full refs, short output names (when unambiguous), and agent mappings."""
    scope: dict[str, Any] = dict(inputs)
    short: dict[str, list[str]] = {}
    for ref in inputs:
        if "." in ref:
            owner, name = ref.split(".", 1)
            short.setdefault(name, []).append(ref)
            nested = scope.setdefault(owner, {})
            if isinstance(nested, dict) and owner not in inputs:
                nested[name] = inputs[ref]
    for name, refs in short.items():
        if name not in inputs and len(refs) == 1:
            scope[name] = inputs[refs[0]]
    return scope


def lookup(scope: Mapping[str, Any], path: str) -> Any:
    """``path`` into the scope. Names may contain dots themselves (``analyst.project-brief.md``
    is one input), so the longest leading part that names a variable wins, then the rest walks
    into it: ``{{project-brief.md.title}}``."""
    parts = path.split(".")
    for cut in range(len(parts), 0, -1):
        head = ".".join(parts[:cut])
        if head in scope:
            value = _walk(scope[head], parts[cut:])
            if value is not MISSING:
                return value
    return MISSING


def find(scope: Mapping[str, Any], path: str) -> Any:
    """`lookup`, then the name's friends, then a top-level key of an upstream document."""
    value = lookup(scope, path)
    if value is not MISSING or "." in path:
        return value
    for friend in FRIENDS.get(path, ()):
        value = lookup(scope, friend)
        if value is not MISSING:
            return value
    for name in (path, *FRIENDS.get(path, ())):
        for key in sorted(scope):
            document = scope[key]
            if "." in key and isinstance(document, Mapping) and _usable(document.get(name)):
                return document[name]
    return MISSING


def _usable(value: Any) -> bool:
    return value is not None and value != "" and value != [] and value != {}


def _walk(value: Any, parts: list[str]) -> Any:
    for part in parts:
        if isinstance(value, Mapping) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return MISSING
    return value


def text_of(value: Any) -> str:
    if value is None or value is MISSING:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, str | int | float):
        return str(value)
    if isinstance(value, Mapping) and isinstance(value.get("markdown"), str):
        return value["markdown"]
    if isinstance(value, list) and all(isinstance(v, str | int | float) for v in value):
        return "\n".join(f"- {v}" for v in value)
    return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)


def substitute(text: str, scope: Mapping[str, Any], missing: list[str], stub: bool = False) -> str:
    """Placeholders filled from the scope; an empty one is recorded in `missing` and renders
    as "" (or as "[name]" inside a stub, so the reader sees what goes there)."""

    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        value = find(scope, name)
        if value is MISSING:
            if name not in missing:
                missing.append(name)
            return f"[{name}]" if stub else ""
        return text_of(value)

    return PLACEHOLDER.sub(replace, text)


# ---- BMAD v4 template YAML -------------------------------------------------------------------


@dataclass
class Rendering:
    missing: list[str] = field(default_factory=list)
    elicit: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    conditions: list[str] = field(default_factory=list)
    stubs: list[str] = field(default_factory=list)

    def noted(self) -> bool:
        return bool(self.missing or self.elicit or self.skipped or self.conditions or self.stubs)


def is_bmad(data: Any) -> bool:
    return (
        isinstance(data, Mapping)
        and isinstance(data.get("sections"), list)
        and (isinstance(data.get("template"), Mapping))
    )


def slug(text: str) -> str:
    return _NOT_SLUG.sub("_", text.lower()).strip("_")


def truth(value: Any) -> bool:
    """A variable's truth: spelled-out booleans count as such ("no" is false), data by content."""
    if isinstance(value, str):
        word = value.strip().lower()
        return word not in FALSY
    return bool(value)


def decide(condition: Any, scope: Mapping[str, Any]) -> bool | None:
    """True/False when the scope decides the condition, None when nothing does."""
    if isinstance(condition, bool):
        return condition
    text = " ".join(str(condition).split())
    negate = text.lower().startswith("not ")
    name = text[4:].strip() if negate else text
    for candidate in dict.fromkeys((name, slug(name))):
        value = find(scope, candidate)
        if value is not MISSING:
            return truth(value) != negate
    return None


def _list(scope: Mapping[str, Any], name: str) -> list[Any] | None:
    for candidate in dict.fromkeys((name, name.replace("-", "_"), name.replace("_", "-"))):
        value = find(scope, candidate)
        if isinstance(value, Mapping) and not isinstance(value.get("markdown"), str):
            # a mapping of items: one item per entry
            return [
                {"key": k, **(v if isinstance(v, Mapping) else {"value": v})}
                for k, v in value.items()
            ]
        if isinstance(value, list):
            return value
    return None


def _item_scope(scope: Mapping[str, Any], item: Any, index: int) -> dict[str, Any]:
    inner = {**scope, "item": item, "index": index + 1}
    if isinstance(item, Mapping):
        inner.update({str(k): v for k, v in item.items()})
    return inner


@dataclass
class _Context:
    """Where the renderer is: the scope, the heading level, whether inside a stub."""

    scope: Mapping[str, Any]
    level: int
    stub: bool = False


def _table(items: list[Any], columns: list[str], scope: Mapping[str, Any]) -> str:
    if not columns:
        first = next((i for i in items if isinstance(i, Mapping)), {})
        columns = [str(k) for k in first]
    if not columns:
        columns = ["item"]
    lines = [
        "| " + " | ".join(c.replace("_", " ").title() for c in columns) + " |",
        "|" + "---|" * len(columns),
    ]
    for index, item in enumerate(items):
        inner = _item_scope(scope, item, index)
        cells = [text_of(lookup(inner, c)).replace("|", "\\|").replace("\n", " ") for c in columns]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _inline_item(item: Any, ctx: _Context, rendering: Rendering) -> str:
    """One entry of an `items:` list written in the template: text, {template: text} (BMAD's
    own form, with an optional id), or {label: text}."""
    if isinstance(item, Mapping) and len(item) == 1 and "[[" in str(next(iter(item))):
        # "Notes [[LLM: tick it]]" unquoted is a YAML mapping: put the text back together
        key, value = next(iter(item.items()))
        item = f"{key}: {value}"
    if isinstance(item, Mapping) and isinstance(item.get("template"), str):
        return _clean(substitute(item["template"], ctx.scope, rendering.missing, ctx.stub))
    if isinstance(item, Mapping):
        parts = []
        for key, value in item.items():
            label = substitute(str(key), ctx.scope, rendering.missing, ctx.stub).strip()
            text = substitute(text_of(value), ctx.scope, rendering.missing, ctx.stub).strip()
            parts.append(f"**{label}**: {text}" if text else f"**{label}**")
        return "; ".join(parts)
    return _clean(substitute(text_of(item), ctx.scope, rendering.missing, ctx.stub))


def _clean(text: str) -> str:
    """Rendered text without BMAD's inline notes to the model ("[[LLM: ...]]")."""
    return _LLM_NOTE.sub("", text).strip()


def _lines(kind: str, texts: list[str], prefix: str) -> str:
    lines = []
    for index, text in enumerate(t for t in texts if not _HOLLOW.fullmatch(t)):
        if kind == "numbered-list" and prefix and re.match(rf"{re.escape(prefix)}\d", text):
            marker = "-"  # the item numbers itself ("CR1: ...")
        elif kind == "numbered-list":
            marker = f"{prefix}{index + 1}:" if prefix else f"{index + 1}."
        elif kind == "checklist":
            marker = "- [ ]"
        else:
            marker = "-"
        lines.append(f"{marker} {text}")
    return "\n".join(lines)


def _body(section: Mapping[str, Any], ctx: _Context, rendering: Rendering) -> str:
    kind = str(section.get("type") or "paragraphs")
    prefix = str(section.get("prefix") or "")
    parts: list[str] = []
    if isinstance(section.get("template"), str):
        text = _clean(substitute(section["template"], ctx.scope, rendering.missing, ctx.stub))
        if _HOLLOW.fullmatch(text):
            text = ""  # "{{requirement}}: {{description}}" without values: no lone ":"
        if kind in ("code-block", "mermaid") and text and not text.startswith("```"):
            text = f"```{'mermaid' if kind == 'mermaid' else ''}\n{text}\n```"
        parts.append(text)
    given = section.get("items")
    item_template = section.get("item_template")
    if isinstance(given, list):
        texts = [_inline_item(item, ctx, rendering) for item in given]
        parts.append(
            _lines(
                "bullet-list" if kind not in ("numbered-list", "checklist") else kind, texts, prefix
            )
        )
    elif item_template is not None or kind in (
        "bullet-list",
        "numbered-list",
        "table",
        "checklist",
    ):
        source = str(given or section.get("id") or "")
        items = _list(ctx.scope, source) if source else None
        if items is None:
            if (item_template is not None or not parts) and source not in rendering.missing:
                rendering.missing.append(source)
        elif kind == "table":
            parts.append(_table(items, [str(c) for c in section.get("columns") or []], ctx.scope))
        else:
            texts = [
                substitute(
                    str(item_template), _item_scope(ctx.scope, item, i), rendering.missing, ctx.stub
                ).strip()
                if item_template is not None
                else text_of(item).strip()
                for i, item in enumerate(items)
            ]
            parts.append(_lines(kind, texts, prefix))
    return "\n\n".join(p for p in parts if p)


def _section(section: Any, ctx: _Context, rendering: Rendering, where: str) -> str:
    if not isinstance(section, Mapping):
        raise TemplateError(f"a section must be a mapping, found {section!r}")
    sid = str(section.get("id") or section.get("title") or "section")
    path = f"{where}.{sid}" if where else sid
    stated: str | None = None
    if "condition" in section:
        condition = section["condition"]
        verdict = decide(condition, ctx.scope)
        text = " ".join(str(condition).split())
        if verdict is False:
            rendering.skipped.append(f"{path}: condition {text!r} is false")
            return ""
        if verdict is None:
            if _IDENTIFIER.fullmatch(text):
                rendering.skipped.append(f"{path}: condition {text!r} names no known variable")
                return ""
            # plain English nobody decided: keep the section and say when it applies
            stated = text
            rendering.conditions.append(f"{path}: {text} (--set {slug(text)}=yes|no)")
    if section.get("repeatable"):
        source = str(section.get("repeat_over") or sid)
        items = _list(ctx.scope, source)
        if items is None:
            rendering.stubs.append(
                f"{path}: no list '{source.replace('-', '_')}' was given; rendered once as a stub"
            )
            stub = _Context(ctx.scope, ctx.level, stub=True)
            return _one(section, stub, rendering, path, stated, stub_of=source)
        return "\n\n".join(
            filter(
                None,
                (
                    _one(
                        section,
                        _Context(_item_scope(ctx.scope, item, i), ctx.level, ctx.stub),
                        rendering,
                        f"{path}[{i + 1}]",
                        stated,
                    )
                    for i, item in enumerate(items)
                ),
            )
        )
    return _one(section, ctx, rendering, path, stated)


def _one(
    section: Mapping[str, Any],
    ctx: _Context,
    rendering: Rendering,
    path: str,
    stated: str | None,
    stub_of: str | None = None,
) -> str:
    title = substitute(
        str(section.get("title") or ""), ctx.scope, rendering.missing, ctx.stub
    ).strip()
    if section.get("elicit"):
        rendering.elicit.append(
            {
                "section": path,
                "title": title,
                "instruction": " ".join(str(section.get("instruction") or "").split()),
            }
        )
    parts = [f"{'#' * min(ctx.level, 6)} {title}"] if title else []
    if stated:
        parts.append(f"> Applies if: {stated}")
    if stub_of is not None:
        parts.append(
            f"> Stub: repeat this section once per item of "
            f"'{stub_of.replace('-', '_')}' (no such list was given)"
        )
    body = _body(section, ctx, rendering)
    instruction = " ".join(str(section.get("instruction") or "").split())
    if body:
        parts.append(body)
    elif instruction and not section.get("sections"):
        # nothing to fill it with: the reader gets the template's guidance instead of a bare
        # heading
        parts.append(f"> To write: {instruction}")
    children = section.get("sections") or []
    if not isinstance(children, list):
        raise TemplateError(f"section '{path}': 'sections' must be a list")
    inner = _Context(ctx.scope, ctx.level + 1, ctx.stub)
    for child in children:
        text = _section(child, inner, rendering, path)
        if text:
            parts.append(text)
    return "\n\n".join(parts)


def notes_markdown(rendering: Rendering) -> str:
    """The "Template notes" section that ends a document with anything to note."""
    lines = ["---", "", "## Template notes"]
    if rendering.conditions:
        lines += ["", "Sections kept with their condition stated (decide with --set):"]
        lines += [f"- {c}" for c in rendering.conditions]
    if rendering.skipped:
        lines += ["", "Sections skipped:"] + [f"- {s}" for s in rendering.skipped]
    if rendering.stubs:
        lines += ["", "Repeatable sections rendered as a stub:"]
        lines += [f"- {s}" for s in rendering.stubs]
    if rendering.missing:
        lines += ["", "Variables without a value (rendered empty): " + ", ".join(rendering.missing)]
    if rendering.elicit:
        lines += ["", "To elicit from the user:"]
        lines += [
            f"- {e['title'] or e['section']}: {e['instruction'] or 'ask the user'}"
            for e in rendering.elicit
        ]
    return "\n".join(lines)


def render_bmad(data: Mapping[str, Any], scope: Mapping[str, Any]) -> dict[str, Any]:
    meta = data["template"]
    output = meta.get("output") or {}
    if not isinstance(output, Mapping):
        raise TemplateError("'template.output' must be a mapping {format, filename, title}")
    rendering = Rendering()
    title = substitute(
        str(output.get("title") or meta.get("name") or ""), scope, rendering.missing
    ).strip()
    parts = [f"# {title}"] if title else []
    for section in data["sections"]:
        text = _section(section, _Context(scope, 2), rendering, "")
        if text:
            parts.append(text)
    filename = substitute(
        str(output.get("filename") or f"{meta.get('id', 'document')}.md"), scope, rendering.missing
    )
    if rendering.noted():
        parts.append(notes_markdown(rendering))
    return {
        "format": str(output.get("format") or "markdown"),
        "filename": filename,
        "title": title,
        "markdown": "\n\n".join(parts) + "\n",
        "elicit": rendering.elicit,
        "missing": rendering.missing,
        "skipped": rendering.skipped,
        "conditions": rendering.conditions,
        "stubs": rendering.stubs,
        "template": f"{meta.get('id', '')}@{meta.get('version', '')}",
    }


def render(source: Any, scope: Mapping[str, Any]) -> tuple[Any, list[str]]:
    """(rendered value, missing variable names) for a loaded template (text or BMAD mapping)."""
    if is_bmad(source):
        document = render_bmad(source, scope)
        return document, list(document["missing"])
    missing: list[str] = []
    return substitute(str(source), scope, missing), missing
