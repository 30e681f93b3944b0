"""`run --output-dir DIR`: the documents a run produced, as files, plus its report.

``write_outputs`` takes the final context (the `context` query: "agent.output" keys, plan inputs
and shared keys) and the report, and writes

- ``DIR/docs/<name>.md`` for every value that looks like a document: a mapping with a
  ``markdown`` text (built-in role agents, BMAD templates) is named by its ``filename`` (the last
  path part, ``.md`` added when it has no suffix), else by its key (``pm-prd.md``); a plain string
  written by a template agent is named by its key. A name used twice gets the agent id in front.
- ``DIR/report.json``: the run report.

Values in the artifact store (references) are fetched first when the store can be read here.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


def _resolve_references(value: Any) -> Any:
    from activities.artifacts import ArtifactError, ArtifactStore, contains_reference

    if not contains_reference(value):
        return value
    try:
        return ArtifactStore.default().resolve(value)
    except (ArtifactError, OSError):
        return value


def _safe(name: str) -> str:
    return UNSAFE.sub("-", name).strip("-.") or "document"


def _key_name(key: str) -> str:
    # "analyst.brief.md" -> "analyst-brief.md", "pm.prd" -> "pm-prd.md"
    stem = key[:-3] if key.lower().endswith(".md") else key
    return f"{_safe(stem.replace('.', '-'))}.md"


def document_name(key: str, value: Any, template_agents: Iterable[str] = ()) -> str | None:
    """The file name (under docs/) for a context value, or None when it is not a document."""
    if isinstance(value, Mapping) and isinstance(value.get("markdown"), str):
        filename = value.get("filename")
        if isinstance(filename, str) and filename.strip():
            name = _safe(Path(filename.strip()).name)
            return name if Path(name).suffix else f"{name}.md"
        return _key_name(key)
    owner = key.split(".", 1)[0] if "." in key else None
    if isinstance(value, str) and owner is not None and owner in set(template_agents):
        return _key_name(key)
    return None


def write_outputs(directory: Path, context: Mapping[str, Any], report: Mapping[str, Any] | None,
                  template_agents: Iterable[str] = (),
                  resolve: Callable[[Any], Any] = _resolve_references) -> list[Path]:
    """Write the run's documents and report under ``directory``; the paths written, in order."""
    template_agents = list(template_agents)
    directory.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    used: set[str] = set()
    for key in sorted(context):
        value = resolve(context[key])
        name = document_name(key, value, template_agents)
        if name is None:
            continue
        if name in used:
            name = f"{_safe(key.split('.', 1)[0])}-{name}"
        used.add(name)
        text = value["markdown"] if isinstance(value, Mapping) else str(value)
        path = directory / "docs" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text if text.endswith("\n") else text + "\n", encoding="utf-8")
        written.append(path)
    if report is not None:
        path = directory / "report.json"
        path.write_text(json.dumps(report, indent=2, default=str) + "\n", encoding="utf-8")
        written.append(path)
    return written
