"""The CLI reference page, generated from the argument parsers themselves.

`pee` (pee.cli.main.build_parser) and `pee-worker` (pee.cli.worker_command.parser) are walked
subcommand by subcommand and each parser's own `--help` text becomes a section, so the page
cannot drift from the code. mkdocs runs this file as a hook (mkdocs.yml `hooks:`): the page is
added to the build as `reference/cli.md` and never committed. `python docs/gen_cli.py` prints the
same markdown.
"""

from __future__ import annotations

import argparse
import functools
from collections.abc import Iterator
from typing import Any

# a fixed width: argparse otherwise wraps to the terminal it runs in
WIDTH = 100
PAGE = "reference/cli.md"

INTRO = """\
# CLI reference

Generated from the argument parsers at docs build time (`docs/gen_cli.py`), so every option
below is one the commands accept. The guides say what the options are for; `pee COMMAND --help`
prints the same text.

`pee` is `python starter.py` in a checkout, `pee-worker` is `python worker.py`; after `make
install` both are in `.venv/bin`.
"""


def subcommands(parser: argparse.ArgumentParser) -> list[tuple[str, argparse.ArgumentParser]]:
    """(name, parser) of each subcommand, in the order they were registered (aliases once)."""
    found: list[tuple[str, argparse.ArgumentParser]] = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            seen: set[int] = set()
            for name, sub in action.choices.items():
                if id(sub) not in seen:
                    seen.add(id(sub))
                    found.append((name, sub))
    return found


def walk(
    parser: argparse.ArgumentParser, path: tuple[str, ...]
) -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    """The parser and every subcommand's, depth first, each with its command words."""
    yield path, parser
    for name, sub in subcommands(parser):
        yield from walk(sub, (*path, name))


def help_text(parser: argparse.ArgumentParser) -> str:
    formatter_class = parser.formatter_class
    parser.formatter_class = functools.partial(formatter_class, width=WIDTH)
    try:
        return parser.format_help().rstrip()
    finally:
        parser.formatter_class = formatter_class


def parsers() -> list[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    """Every command of both console scripts, `pee` first."""
    from pee.cli.main import build_parser
    from pee.cli.worker_command import parser as worker_parser

    return [*walk(build_parser(), ("pee",)), *walk(worker_parser(), ("pee-worker",))]


def markdown() -> str:
    sections = [INTRO]
    for path, parser in parsers():
        level = "#" * min(len(path) + 1, 4)
        sections.append(f"{level} `{' '.join(path)}`\n\n```text\n{help_text(parser)}\n```\n")
    return "\n".join(sections)


def on_files(files: Any, config: Any) -> Any:
    """mkdocs hook: add the generated page to the build."""
    from mkdocs.structure.files import File

    files.append(File.generated(config, PAGE, content=markdown()))
    return files


if __name__ == "__main__":
    print(markdown(), end="")
