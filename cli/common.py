"""Argument helpers shared by the commands."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any


def parse_assignment(text: str) -> tuple[str, str]:
    """One `KEY=VALUE`; a malformed pair is an argparse usage error (exit 2)."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, found {text!r}")
    return key.strip(), value


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, found {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a number above 0, found {text!r}")
    return value


def whole_number(minimum: int) -> Callable[[str], int]:
    """An argparse type: a whole number of at least `minimum`."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, found {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(
                f"expected a whole number of {minimum} or more, found {text!r}")
        return value

    return parse


positive_int = whole_number(1)
non_negative_int = whole_number(0)


def existing_dir(text: str) -> str:
    if not Path(text).is_dir():
        raise argparse.ArgumentTypeError(f"expected a folder, found {text!r}")
    return text


def add_set_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--set", dest="variables", action="append", default=[], type=parse_assignment,
        metavar="KEY=VALUE",
        help="plan variable, resolved when the plan is compiled: plan inputs, BMAD conditions "
        "such as user_wants_ai_generation=true, bmad_kind (repeatable)",
    )
    parser.add_argument(
        "--bmad-dir", metavar="DIR", type=existing_dir,
        help="a BMAD install folder (bmad-core, with templates/): each BMAD step renders the "
        "template named by its `uses`, its notes or its agent's file (agents/<agent>.md); "
        "other steps run as built-in role agents",
    )


def add_input_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--input", dest="inputs", action="append", default=[], type=parse_assignment,
        metavar="KEY=VALUE", help="run input, a plan input's value for this run (repeatable)",
    )


def set_names(args: argparse.Namespace) -> list[str]:
    """The names given with --set (a BMAD workflow refuses names it does not read)."""
    return [name for name, _ in getattr(args, "variables", [])]


def plan_variables(args: argparse.Namespace, base: list[tuple[str, str]] | None = None
                   ) -> dict[str, Any]:
    """The loader's variables: --set pairs (after `base`, the run inputs), plus the --bmad-dir
    folder (`bmad_dir`), which the BMAD importer reads its templates and agents from."""
    variables: dict[str, Any] = {**dict(base or []), **dict(args.variables)}
    bmad_dir = getattr(args, "bmad_dir", None)
    if bmad_dir:
        variables["bmad_dir"] = str(Path(bmad_dir).resolve())
    return variables
