"""Argument helpers shared by the commands."""

from __future__ import annotations

import argparse
from collections.abc import Iterable


def add_set_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE",
        help="supply a plan input or a BMAD condition (repeatable), e.g. "
        "--set user_wants_ai_generation=true",
    )


def parse_assignments(assignments: Iterable[str] | None) -> dict[str, str]:
    """`--set k=v` pairs as a mapping; a malformed pair is a usage error (exit 2)."""
    values: dict[str, str] = {}
    for item in assignments or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise SystemExit(f"error: --set expects KEY=VALUE, got {item!r}")
        values[key.strip()] = value
    return values
