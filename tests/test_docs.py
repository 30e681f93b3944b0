"""The docs: the site builds strictly and offline, the CLI reference is the parsers' own help,
every `pee` command the README and docs/ show is one the parser accepts, and the README stays
short and links only to files that exist."""

from __future__ import annotations

import argparse
import importlib.util
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DOCS = PROJECT_ROOT / "docs"
README = PROJECT_ROOT / "README.md"


def gen_cli() -> ModuleType:
    """docs/gen_cli.py, the mkdocs hook that writes the CLI reference (not a package module)."""
    spec = importlib.util.spec_from_file_location("gen_cli", DOCS / "gen_cli.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`mkdocs build --strict` (what `make docs` runs) into a temporary folder."""
    out = tmp_path_factory.mktemp("site")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    log = done.stdout + done.stderr
    assert 0 == done.returncode, log
    assert [] == [line for line in log.splitlines() if "WARNING" in line], log
    return out


def test_the_strict_build_has_every_page(site: Path) -> None:
    """Every markdown page of docs/ (and the generated CLI reference) becomes a page of the site:
    none is left out of the nav, none is lost."""
    pages = sorted(p.relative_to(DOCS) for p in DOCS.rglob("*.md"))
    built = [
        site / page.parent / ("" if page.stem == "index" else page.stem) / "index.html"
        for page in pages
    ]
    assert [] == [str(page) for page in built if not page.is_file()]
    assert (site / "reference" / "cli" / "index.html").is_file()


def test_the_site_fetches_nothing_from_elsewhere(site: Path) -> None:
    """Stylesheets, scripts and fonts are the theme's own files in the site (font: false, no
    CDN), so the site builds and opens offline."""
    remote = re.compile(r"""<(?:link|script|img)\b[^>]*\b(?:href|src)=["'](?:https?:)?//""")
    offenders = [
        str(page.relative_to(site))
        for page in site.rglob("*.html")
        if remote.search(page.read_text()) or "fonts.googleapis" in page.read_text()
    ]
    assert [] == offenders
    index = (site / "index.html").read_text()
    local = re.findall(r"""<(?:link|script)\b[^>]*\b(?:href|src)="([^"]+\.(?:css|js))""", index)
    assert local, "no stylesheet or script found in index.html"
    assert [] == [asset for asset in local if not (site / asset).is_file()]


def test_the_cli_reference_holds_every_command_and_option(site: Path) -> None:
    """The generated page has a section per command of `pee` and `pee-worker` and names every
    option string the parsers define."""
    page = (site / "reference" / "cli" / "index.html").read_text()
    missing = []
    for path, parser in gen_cli().parsers():
        if " ".join(path) not in page:
            missing.append(" ".join(path))
        for action in parser._actions:
            missing.extend(
                f"{' '.join(path)} {option}"
                for option in action.option_strings
                if option not in page
            )
    assert [] == missing


def test_the_cli_reference_does_not_depend_on_the_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    """argparse wraps to the terminal's width; the reference pins it, so any machine writes the
    same page."""
    module = gen_cli()
    monkeypatch.setenv("COLUMNS", "40")
    narrow = module.markdown()
    monkeypatch.setenv("COLUMNS", "250")
    assert narrow == module.markdown()


def documented_commands() -> list[tuple[str, str]]:
    """(file, command line) of every `.venv/bin/pee` / `pee-worker` line in a fenced block of
    the README and docs/, continuations joined, leading VAR=value assignments dropped."""
    found = []
    for path in [README, *sorted(DOCS.rglob("*.md"))]:
        text = path.read_text().replace("\\\n", " ")
        for block in re.findall(r"^```(?:sh|bash|console)?\n(.*?)^```", text, re.S | re.M):
            for line in block.splitlines():
                line = line.strip().removeprefix("$ ")
                words = line.split()
                while words and re.fullmatch(r"[A-Z_][A-Z0-9_]*=\S*", words[0]):
                    words.pop(0)
                if words and words[0] in (".venv/bin/pee", ".venv/bin/pee-worker"):
                    found.append((str(path.relative_to(PROJECT_ROOT)), " ".join(words)))
    return found


def argv_of(command: str) -> list[str] | None:
    """The arguments a shell would pass, up to a comment, pipe, redirection or `&`; None for a
    synopsis line with placeholders (`[--port N]`, `<workflow id>`)."""
    words = []
    for word in shlex.split(command, comments=True):
        if word in ("|", "&", "&&", ">", "2>") or word.startswith((">", "2>")):
            break
        words.append(word)
    if any(word.startswith(("[", "<")) for word in words):
        return None
    return words[1:]


def untyped(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The parser with its value conversions off (they check that files and folders exist,
    which example paths do not), subcommands included; choices are still checked."""
    parser.exit_on_error = False
    for action in parser._actions:
        action.type = None
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                untyped(sub)
    return parser


def test_every_documented_pee_command_parses() -> None:
    """Each `pee ...` and `pee-worker ...` line the docs show is accepted by the real parser:
    a renamed command or option fails here, not in a reader's shell."""
    from pee.cli.main import build_parser
    from pee.cli.worker_command import parser as worker_parser

    commands = documented_commands()
    assert len(commands) > 50, commands
    rejected = []
    for where, command in commands:
        argv = argv_of(command)
        if argv is None:
            continue
        worker = command.startswith(".venv/bin/pee-worker")
        parser = untyped(worker_parser() if worker else build_parser())
        try:
            parser.parse_args(argv)
        except (argparse.ArgumentError, SystemExit) as err:
            rejected.append(f"{where}: {command}: {err}")
    assert [] == rejected


def test_the_readme_is_short_and_its_links_resolve() -> None:
    """The README stays under 12 KB and each relative link names a file in the repository."""
    text = README.read_text()
    assert len(text.encode()) < 12 * 1024
    targets = re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", text)
    local = [t for t in targets if not re.match(r"[a-z]+:", t)]
    assert local
    assert [] == [t for t in local if not (PROJECT_ROOT / t).exists()]
