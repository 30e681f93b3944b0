"""What a BMAD install folder (``--bmad-dir``) offers a workflow step: its template.

A BMAD v4 install holds ``agents/<id>.md`` (a persona with a fenced YAML block whose
``dependencies`` list the agent's ``tasks`` and ``templates``), ``templates/*.yaml``, ``tasks/``
and ``checklists/``. A step names its template in one of three places, tried in this order:
``uses: prd-tmpl``, its notes ("Create PRD from project brief using prd-tmpl"), or its agent's
definition (``agents/pm.md`` lists ``prd-tmpl.yaml`` beside its ``create-doc.md`` task). Every
template chosen is read and checked here, so a broken one fails ``validate``, not the run.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from pee.engine.language.errors import BmadFolderError, BmadTemplateError, Location, suggest

TEMPLATE_SUFFIX = "-tmpl"
# "using prd-tmpl", "Use fullstack-architecture-tmpl.yaml": BMAD names templates <name>-tmpl
_TEMPLATE_IN_TEXT = re.compile(
    r"(?<![\w-])([a-z0-9][a-z0-9-]*-tmpl)(?:\.ya?ml)?(?![\w-])", re.IGNORECASE
)
_YAML_BLOCK = re.compile(r"```ya?ml\s*\n(.*?)```", re.DOTALL)
_VARIABLE = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")


class Source:
    """Where a step's template was named (shown in the interpretation section)."""

    USES = "uses"
    NOTES = "notes"
    AGENT_FILE = "agent file"


@dataclass(frozen=True)
class AgentDefinition:
    path: Path
    templates: tuple[str, ...]  # stems: "prd-tmpl"
    tasks: tuple[str, ...]  # stems: "create-doc"


@dataclass(frozen=True)
class TemplateChoice:
    name: str  # "prd-tmpl"
    relative: str  # "templates/prd-tmpl.yaml", relative to the folder
    source: str  # Source.*
    detail: str  # why, in words
    variables: tuple[str, ...] = ()  # the {{placeholders}} it fills


@dataclass(frozen=True)
class Candidate:
    """The template a step names (``name`` None: none), and a remark about a ``uses`` that
    names a task or checklist instead."""

    name: str | None = None
    source: str = ""
    detail: str = ""
    remark: str = ""


@dataclass
class BmadFolder:
    root: Path
    templates: dict[str, Path] = field(default_factory=dict)
    _agents: dict[str, AgentDefinition | None] = field(default_factory=dict)
    # agent definitions that could not be read
    problems: list[BmadFolderError] = field(default_factory=list)

    @classmethod
    def open(cls, root: str | Path) -> BmadFolder:
        """The folder's templates; raise BmadFolderError when it has no templates/ folder."""
        path = Path(root).resolve()
        folder = path / "templates"
        if not folder.is_dir():
            # the folder meant: BMAD's own names first, then any folder right inside
            nearby = (path / "bmad-core", path / ".bmad-core", *sorted(_subfolders(path)))
            inner = [p for p in dict.fromkeys(nearby) if (p / "templates").is_dir()]
            raise BmadFolderError(
                f"--bmad-dir {path} is not a BMAD install: it has no templates/ folder",
                value=str(path),
                location=Location(file=str(folder)),
                expected="a bmad-core folder holding agents/, tasks/ and templates/",
                found="no templates/"
                + (" (and no agents/)" if not (path / "agents").is_dir() else ""),
                fix=f"did you mean --bmad-dir {inner[0]}?"
                if inner
                else "point --bmad-dir at the bmad-core folder itself (the one with templates/)",
            )
        templates = {p.stem: p for p in sorted(folder.glob("*.yaml")) if p.is_file()}
        return cls(root=path, templates=templates)

    def has(self, kind: str, name: str) -> bool:
        """True when DIR/<kind>/<name>.md exists (tasks, checklists)."""
        return (self.root / kind / f"{name}.md").is_file()

    def agent(self, agent: str) -> AgentDefinition | None:
        """agents/<agent>.md's dependencies, or None without such a file (or with a broken one,
        recorded once in ``problems``)."""
        if agent not in self._agents:
            try:
                self._agents[agent] = self._read_agent(agent)
            except BmadFolderError as problem:
                self.problems.append(problem)
                self._agents[agent] = None
        return self._agents[agent]

    def _read_agent(self, agent: str) -> AgentDefinition | None:
        path = self.root / "agents" / f"{agent}.md"
        if not path.is_file():
            return None
        text = path.read_text(encoding="utf-8", errors="replace")
        match = _YAML_BLOCK.search(text)
        try:
            data = yaml.safe_load(match.group(1)) if match else None
        except yaml.YAMLError as exc:
            raise BmadFolderError(
                f"the agent definition {path} has a YAML block that does not parse",
                value=str(path),
                location=Location(file=str(path), line=_line_in_file(exc, text, match)),
                expected="a ```yaml block with agent, persona and dependencies",
                found=_first_line(exc),
                fix="repair the YAML block",
            ) from None
        dependencies = data.get("dependencies") if isinstance(data, dict) else None
        if not isinstance(dependencies, dict):
            dependencies = {}
        return AgentDefinition(
            path=path,
            templates=_stems(dependencies.get("templates")),
            tasks=_stems(dependencies.get("tasks")),
        )

    def check_template(self, name: str, step_label: str, detail: str) -> tuple[str, ...]:
        """Read templates/<name>.yaml; its {{variables}}, or raise BmadTemplateError."""
        path = self.root / "templates" / f"{name}.yaml"
        if name not in self.templates:
            close = [t for t in self.templates if name.split("-")[0] in t][:3]
            raise BmadTemplateError(
                f"{step_label} needs template {path}, which does not exist ({detail})",
                value=str(path),
                location=Location(file=str(path)),
                expected=f"the file {path}",
                found="templates/ holds " + (", ".join(sorted(self.templates)) or "no .yaml"),
                fix=("did you mean " + " or ".join(close) + "? " if close else "")
                + "add the template, or point --bmad-dir at the install that has it",
            )
        text = path.read_text(encoding="utf-8", errors="replace")
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise BmadTemplateError(
                f"template {path} ({step_label}) is not valid YAML",
                value=str(path),
                location=Location(file=str(path), line=_line_of(exc)),
                expected="a BMAD template: template: {id, name, output}, sections: [...]",
                found=_first_line(exc),
                fix="repair the YAML (indentation, quotes, colons)",
            ) from None
        if not isinstance(data, dict) or not isinstance(data.get("sections"), list):
            raise BmadTemplateError(
                f"template {path} ({step_label}) is not a BMAD template",
                value=str(path),
                location=Location(file=str(path)),
                expected="a mapping with 'template' and a 'sections' list",
                found=_shape(data),
                fix="check that the file is a BMAD v4 template",
            )
        return tuple(dict.fromkeys(_VARIABLE.findall(text)))

    def candidate(
        self, agent: str, fields: Mapping[str, Any], creates: list[str], workflow_type: str | None
    ) -> Candidate:
        """Which template a step names: its ``uses``, a ``*-tmpl`` in its notes, or the one in
        its agent's file named after the document it creates."""
        remark = ""
        uses = fields.get("uses")
        if isinstance(uses, str) and uses:
            if uses in self.templates or uses.endswith(TEMPLATE_SUFFIX):
                return Candidate(uses, Source.USES, f"uses: {uses}")
            kind = next((k for k in ("tasks", "checklists") if self.has(k, uses)), None)
            close = None if kind else suggest(uses, self.templates)
            found = (
                f"{kind}/{uses}.md"
                if kind
                else f"no template, task or checklist {uses}"
                + (f"; did you mean uses: {close}?" if close else "")
            )
            remark = f"uses {uses} ({found}), not a template"
        named = templates_named_in(fields.get("notes"))
        if named:
            return Candidate(named[0], Source.NOTES, f"its notes name {named[0]}", remark)
        definition = self.agent(agent) if _one_agent(agent) else None
        if definition is None or not creates:
            return Candidate(remark=remark)
        documents = {_same(document_stem(a)) for a in creates}
        matching = [
            t
            for t in definition.templates
            if t in self.templates
            and (_same(template_stem(t)) in documents or self.output_name(t) in creates)
        ]
        # agents/pm.md lists prd-tmpl and brownfield-prd-tmpl: the workflow's kind decides
        brownfield = (workflow_type or "").lower() == "brownfield"
        matching.sort(key=lambda t: t.startswith("brownfield-") != brownfield)
        if not matching:
            return Candidate(remark=remark)
        task = " and its create-doc task" if "create-doc" in definition.tasks else ""
        return Candidate(
            matching[0],
            Source.AGENT_FILE,
            f"agents/{agent}.md lists {matching[0]}.yaml{task}",
            remark,
        )

    def why_none(self, agent: str, fields: Mapping[str, Any], creates: list[str]) -> str:
        """Why ``candidate`` found no template, in words for the interpretation section."""
        if not creates:
            return "it creates no new document"
        uses = fields.get("uses")
        reasons = [
            f"uses {uses} is not a template" if uses else "no uses:",
            "its notes name no *-tmpl",
        ]
        definition = self.agent(agent) if _one_agent(agent) else None
        if definition is None:
            reasons.append(f"no agents/{agent}.md")
        elif not definition.templates:
            reasons.append(f"agents/{agent}.md lists no templates")
        else:
            reasons.append(f"agents/{agent}.md lists none in templates/ for " + ", ".join(creates))
        return "; ".join(reasons)

    def output_name(self, name: str) -> str | None:
        """The document a template writes (template.output.filename's base name)."""
        try:
            data = yaml.safe_load(self.templates[name].read_text(encoding="utf-8"))
        except (KeyError, OSError, yaml.YAMLError):
            return None
        output = (data.get("template") or {}).get("output") if isinstance(data, dict) else None
        filename = output.get("filename") if isinstance(output, dict) else None
        return Path(filename).name.lower() if isinstance(filename, str) else None


def templates_named_in(text: Any) -> list[str]:
    """Template names (``prd-tmpl``) written in free text, in order."""
    if not isinstance(text, str):
        return []
    return list(dict.fromkeys(m.lower() for m in _TEMPLATE_IN_TEXT.findall(text)))


def document_stem(artifact: str) -> str:
    """``fullstack-architecture.md`` -> ``fullstack-architecture``; ``prd.md`` -> ``prd``."""
    return re.sub(r"\.[a-z0-9]+$", "", artifact).replace("_", "-")


def template_stem(name: str) -> str:
    """``brownfield-prd-tmpl`` -> ``prd``: the document a template is named after."""
    stem = name[: -len(TEMPLATE_SUFFIX)] if name.endswith(TEMPLATE_SUFFIX) else name
    return stem.removeprefix("brownfield-")


def _subfolders(path: Path) -> list[Path]:
    try:
        return [p for p in path.iterdir() if p.is_dir()]
    except OSError:
        return []


def _one_agent(agent: str) -> bool:
    """`various` and `analyst/pm` name no agent file."""
    return bool(agent) and agent != "various" and "/" not in agent


def _same(name: str) -> str:
    """How document and template names compare: case and punctuation aside."""
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


def _stems(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list):
        return ()
    return tuple(Path(str(item)).stem for item in value if isinstance(item, str) and item)


def _line_of(exc: yaml.YAMLError) -> int | None:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    return mark.line + 1 if mark is not None else None


def _line_in_file(exc: yaml.YAMLError, text: str, block: re.Match[str] | None) -> int | None:
    """The file line of a YAML error inside a markdown file's fenced block."""
    line = _line_of(exc)
    if line is None or block is None:
        return line
    return line + text[: block.start(1)].count("\n")


def _first_line(exc: yaml.YAMLError) -> str:
    problem = getattr(exc, "problem", None)
    return str(problem or exc).splitlines()[0]


def _shape(data: Any) -> str:
    if isinstance(data, dict):
        return "a mapping with keys " + ", ".join(str(k) for k in list(data)[:6])
    return type(data).__name__
