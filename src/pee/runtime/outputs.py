"""`run --output-dir DIR`: every agent's outputs as files, an index, and the run report.

``write_outputs`` takes the final context (the `context` query: "agent.output" keys, plan inputs
and shared keys), who produced each key (``producers``, from the compiled plan) and the report,
and writes

- ``DIR/docs/<name>``: every document that names its file (a mapping with a ``markdown`` text and
  a ``filename``: built-in role agents, BMAD templates); the last part of the filename, ``.md``
  added when it has none;
- ``DIR/outputs/<agent>/<output>.md``: every other text or markdown output;
  ``DIR/outputs/<agent>/<output>.json``: anything else (lists, mappings, numbers);
- ``DIR/shared/<key>.md|.json``: shared keys the agents wrote;
- ``DIR/index.json`` and ``DIR/index.md``: one row per output (agent, output, file, format) and,
  for documents rendered from a template, the sections skipped, the conditions left to the
  reader, the variables left empty and the ``elicit`` prompts;
- ``DIR/report.json``: the run report, with ``output_files`` (the index rows) added.

File names are always unique in their folder (compared without case, as macOS and Windows do):
a name taken already gets the agent id in front, then a number. A name too long for a file
system keeps its start and gets a hash of the whole name, so two long ids never meet.

A file that cannot be written does not stop the others: ``Written.failed`` says what was not
written and why, and the command turns that into a non-zero exit.

Values in the artifact store (references) are fetched first when the store can be read here.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")
# bytes of a file name we allow (255 is the usual limit; room for suffixes and numbering)
MAX_NAME_BYTES = 120
HASH_CHARS = 12
SHARED = "shared"


class OutputFormat(str, Enum):
    MARKDOWN = "markdown"  # a document mapping: its markdown text is the file
    TEXT = "text"
    JSON = "json"


@dataclass(frozen=True)
class Producer:
    """Who produced a context key: an agent's output, or a shared key (output None)."""

    agent: str
    output: str | None


@dataclass
class OutputEntry:
    key: str
    agent: str
    output: str
    file: str
    format: OutputFormat
    bytes: int = 0
    title: str | None = None
    # template notes (documents rendered from a BMAD template), empty otherwise
    skipped: list[str] = field(default_factory=list)
    conditions: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    elicit: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["format"] = self.format.value
        return {k: v for k, v in data.items() if v not in ([], None)}


@dataclass
class Written:
    """What `write_outputs` did: the files written (in order), the index rows, and every file
    that could not be written with the reason."""

    paths: list[Path] = field(default_factory=list)
    entries: list[OutputEntry] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)

    @property
    def documents(self) -> int:
        return sum(1 for e in self.entries if e.format is not OutputFormat.JSON)


def producers_of(agents: Iterable[Any]) -> dict[str, Producer]:
    """Context key -> producer for the agents of a compiled plan (anything with id, outputs and
    writes). A shared key written by several agents is attributed to the first."""
    found: dict[str, Producer] = {}
    for agent in agents:
        for output in agent.outputs:
            found[f"{agent.id}.{output}"] = Producer(agent.id, output)
        for key in agent.writes:
            found.setdefault(key, Producer(agent.id, None))
    return found


def resolve_references(value: Any) -> Any:
    from pee.activities.artifacts import ArtifactError, ArtifactStore, contains_reference

    if not contains_reference(value):
        return value
    try:
        return ArtifactStore.default().resolve(value)
    except (ArtifactError, OSError):
        return value


def safe_name(name: str, suffix: str = "") -> str:
    """A file name from free text: unsafe characters become "-", and a name longer than
    MAX_NAME_BYTES keeps its start plus a hash of the whole (so it stays unique)."""
    base = UNSAFE.sub("-", name).strip("-.") or "output"
    if len((base + suffix).encode()) > MAX_NAME_BYTES:
        digest = hashlib.sha256(name.encode()).hexdigest()[:HASH_CHARS]
        keep = MAX_NAME_BYTES - len(suffix.encode()) - HASH_CHARS - 1
        base = f"{base[:keep].rstrip('-.')}-{digest}"
    return base + suffix


def format_of(value: Any) -> OutputFormat:
    if isinstance(value, Mapping) and isinstance(value.get("markdown"), str):
        return OutputFormat.MARKDOWN
    if isinstance(value, str):
        return OutputFormat.TEXT
    return OutputFormat.JSON


def document_filename(value: Any) -> str | None:
    """The file name a document asks for (last part of its `filename`), or None."""
    if format_of(value) is not OutputFormat.MARKDOWN:
        return None
    filename = value.get("filename")
    if not isinstance(filename, str) or not filename.strip():
        return None
    name = Path(filename.strip()).name
    suffix = Path(name).suffix or ".md"
    return safe_name(Path(name).stem if Path(name).suffix else name, suffix)


def file_text(value: Any) -> str:
    """What goes into the file: a document's markdown, text as is, anything else as JSON."""
    kind = format_of(value)
    if kind is OutputFormat.MARKDOWN:
        text = value["markdown"]
    elif kind is OutputFormat.TEXT:
        text = value
    else:
        text = json.dumps(value, indent=2, ensure_ascii=False, default=str)
    return text if text.endswith("\n") else text + "\n"


class _Names:
    """Unique file names per folder, compared without case."""

    def __init__(self) -> None:
        self.used: set[str] = set()

    def claim(self, folder: str, name: str, owner: str) -> str:
        stem, suffix = _split(name)
        candidates = [name, safe_name(f"{owner}-{stem}", suffix)]
        for candidate in candidates:
            if self._free(folder, candidate):
                return candidate
        number = 2
        while True:
            candidate = safe_name(f"{owner}-{stem}-{number}", suffix)
            if self._free(folder, candidate):
                return candidate
            number += 1

    def _free(self, folder: str, name: str) -> bool:
        key = f"{folder}/{name}".lower()
        if key in self.used:
            return False
        self.used.add(key)
        return True


def _file_name(name: str, suffix: str) -> str:
    """ "prd.md" stays "prd.md" (not "prd.md.md"); "stories" becomes "stories.json"."""
    if name.lower().endswith(suffix):
        return safe_name(name[: -len(suffix)], suffix)
    return safe_name(name, suffix)


def _split(name: str) -> tuple[str, str]:
    suffix = Path(name).suffix
    return (name[: -len(suffix)], suffix) if suffix else (name, "")


def plan_entries(
    context: Mapping[str, Any],
    producers: Mapping[str, Producer] | None,
    resolve: Callable[[Any], Any] = resolve_references,
) -> list[tuple[OutputEntry, Any]]:
    """(index row, value) for every agent output and shared key in the context, files named.

    A key "<agent>.<name>" the plan does not declare is still that agent's output; a key
    without a producer (a plan input) is left out."""
    names = _Names()
    rows: list[tuple[OutputEntry, Any]] = []
    agents = {p.agent for p in producers.values()} if producers is not None else None
    for key in sorted(context):
        producer = producers.get(key) if producers is not None else None
        owner, _, output = key.partition(".")
        if producer is None and output and (agents is None or owner in agents):
            # an output the agent adds beside its declared ones (a BMAD developer's plan)
            producer = Producer(owner, output)
        if producer is None:
            continue  # a plan input: the user's own value
        value = resolve(context[key])
        kind = format_of(value)
        suffix = ".json" if kind is OutputFormat.JSON else ".md"
        agent_dir = safe_name(producer.agent)
        wanted = document_filename(value)
        if wanted is not None:
            folder, name = "docs", names.claim("docs", wanted, agent_dir)
        elif producer.output is None:
            folder = SHARED
            name = names.claim(SHARED, _file_name(key, suffix), agent_dir)
        else:
            folder = f"outputs/{agent_dir}"
            name = names.claim(folder, _file_name(producer.output, suffix), agent_dir)
        entry = OutputEntry(
            key=key,
            agent=producer.agent,
            output=producer.output or key,
            file=f"{folder}/{name}",
            format=kind,
        )
        if kind is OutputFormat.MARKDOWN:
            _document_notes(entry, value)
        rows.append((entry, value))
    return rows


def _document_notes(entry: OutputEntry, value: Mapping[str, Any]) -> None:
    if isinstance(value.get("title"), str):
        entry.title = value["title"]
    for name in ("skipped", "conditions", "missing"):
        items = value.get(name)
        if isinstance(items, list):
            setattr(entry, name, [str(item) for item in items])
    if isinstance(value.get("elicit"), list):
        entry.elicit = [dict(item) for item in value["elicit"] if isinstance(item, Mapping)]


def write_outputs(
    directory: Path,
    context: Mapping[str, Any],
    report: Mapping[str, Any] | None,
    producers: Mapping[str, Producer] | None = None,
    resolve: Callable[[Any], Any] = resolve_references,
) -> Written:
    """Write every output, the index and the report under ``directory``; never raises OSError:
    what could not be written is in the result's ``failed``."""
    done = Written()

    def write(relative: str, text: str) -> bool:
        path = directory / relative
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        except OSError as err:
            done.failed.append((str(path), err.strerror or str(err)))
            return False
        done.paths.append(path)
        return True

    for entry, value in plan_entries(context, producers, resolve):
        text = file_text(value)
        entry.bytes = len(text.encode())
        if write(entry.file, text):
            done.entries.append(entry)
    write(
        "index.json",
        json.dumps(
            {
                "outputs": [e.to_dict() for e in done.entries],
                "not_written": [{"file": f, "error": e} for f, e in done.failed],
            },
            indent=2,
            ensure_ascii=False,
        )
        + "\n",
    )
    write("index.md", index_markdown(done.entries))
    if report is not None:
        write(
            "report.json", json.dumps(with_output_files(report, done), indent=2, default=str) + "\n"
        )
    return done


def with_output_files(report: Mapping[str, Any], done: Written) -> dict[str, Any]:
    """The report plus ``output_files``: the index rows (file, format, template notes)."""
    return {**report, "output_files": [e.to_dict() for e in done.entries]}


def notes_lines(entries: list[OutputEntry]) -> list[str]:
    """One line per document with template notes, for the console."""
    lines = []
    for e in entries:
        counts = [
            (len(e.conditions), "condition(s) left to the reader"),
            (len(e.skipped), "section(s) skipped"),
            (len(e.missing), "empty variable(s)"),
            (len(e.elicit), "elicit prompt(s)"),
        ]
        said = [f"{n} {what}" for n, what in counts if n]
        if said:
            lines.append(f"  {e.file}: {', '.join(said)}")
    return lines


def index_markdown(entries: list[OutputEntry]) -> str:
    lines = ["# Outputs", "", "| Agent | Output | File | Format |", "|---|---|---|---|"]
    for e in entries:
        cell = e.output.replace("|", "\\|")
        lines.append(f"| {e.agent} | {cell} | [{e.file}]({e.file}) | {e.format.value} |")
    noted = [e for e in entries if e.skipped or e.conditions or e.missing or e.elicit]
    if noted:
        lines += ["", "## Template notes"]
    for e in noted:
        lines += ["", f"### {e.file}"]
        lines += [f"- skipped: {s}" for s in e.skipped]
        lines += [f"- applies only if: {c}" for c in e.conditions]
        if e.missing:
            lines.append(f"- empty variables: {', '.join(e.missing)}")
        lines += [
            f"- elicit ({item.get('title') or item.get('section')}): "
            f"{item.get('instruction') or 'ask the user'}"
            for item in e.elicit
        ]
    return "\n".join(lines) + "\n"
