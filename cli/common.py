"""Argument helpers shared by the commands."""

from __future__ import annotations

import argparse


def parse_assignment(text: str) -> tuple[str, str]:
    """One `KEY=VALUE`; a malformed pair is an argparse usage error (exit 2)."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, found {text!r}")
    return key.strip(), value


def add_set_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--set", dest="variables", action="append", default=[], type=parse_assignment,
        metavar="KEY=VALUE",
        help="plan variable, resolved when the plan is compiled: plan inputs, BMAD conditions "
        "such as user_wants_ai_generation=true, bmad_kind (repeatable)",
    )
