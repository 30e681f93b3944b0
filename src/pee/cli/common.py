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
                f"expected a whole number of {minimum} or more, found {text!r}"
            )
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
        "--set",
        dest="variables",
        action="append",
        default=[],
        type=parse_assignment,
        metavar="KEY=VALUE",
        help="plan variable, resolved when the plan is compiled: plan inputs, BMAD conditions "
        "such as user_wants_ai_generation=true, bmad_kind (repeatable)",
    )
    parser.add_argument(
        "--bmad-dir",
        metavar="DIR",
        type=existing_dir,
        help="a BMAD install folder (bmad-core, with templates/): each BMAD step renders the "
        "template named by its `uses`, its notes or its agent's file (agents/<agent>.md); "
        "other steps run as built-in role agents",
    )
    add_llm_options(parser)


def add_input_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--input",
        dest="inputs",
        action="append",
        default=[],
        type=parse_assignment,
        metavar="KEY=VALUE",
        help="run input, a plan input's value for this run (repeatable)",
    )


def set_names(args: argparse.Namespace) -> list[str]:
    """The names given with --set (a BMAD workflow refuses names it does not read)."""
    return [name for name, _ in getattr(args, "variables", [])]


def plan_variables(
    args: argparse.Namespace, base: list[tuple[str, str]] | None = None
) -> dict[str, Any]:
    """The loader's variables: --set pairs (after `base`, the run inputs), plus the --bmad-dir
    folder (`bmad_dir`), which the BMAD importer reads its templates and agents from; with --llm
    also `bmad_llm` and the folder's agent, task and template files (`bmad_files`) that the LLM
    agents' prompts are built from. Raises PlanError for --model or --api-key-env without
    --llm."""
    variables: dict[str, Any] = {**dict(base or []), **dict(args.variables)}
    bmad_dir = getattr(args, "bmad_dir", None)
    llm = llm_variable(args)
    if bmad_dir:
        variables["bmad_dir"] = str(Path(bmad_dir).resolve())
        if llm is not None:
            variables["bmad_files"] = bmad_files(Path(bmad_dir).resolve())
    if llm is not None:
        variables["bmad_llm"] = llm
    return variables


def add_llm_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("LLM agents (BMAD workflows)")
    group.add_argument(
        "--llm",
        metavar="BASE_URL",
        help="run every BMAD step as an OpenAI-compatible chat agent at BASE_URL (POST "
        "BASE_URL/chat/completions): persona from --bmad-dir's agents/<agent>.md, the step's "
        "task and template instructions and the upstream documents in the prompt",
    )
    group.add_argument(
        "--model",
        metavar="M",
        help="with --llm: the model name (default 'default', which local servers accept)",
    )
    group.add_argument(
        "--api-key-env",
        metavar="VAR",
        help="with --llm: the environment variable that holds the API key on the worker "
        "(only its name goes into the plan)",
    )


def llm_variable(args: argparse.Namespace) -> dict[str, Any] | None:
    from pee.engine.language.errors import InvalidValueError

    base_url = getattr(args, "llm", None)
    if base_url is None:
        given = [
            flag
            for flag, value in (
                ("--model", getattr(args, "model", None)),
                ("--api-key-env", getattr(args, "api_key_env", None)),
            )
            if value is not None
        ]
        if given:
            raise InvalidValueError(
                f"{' and '.join(given)} {'needs' if len(given) == 1 else 'need'} --llm BASE_URL",
                value=given,
                expected="--llm BASE_URL with --model and --api-key-env",
                found=" ".join(given),
                fix="add --llm http://127.0.0.1:8080/v1 (your server)",
            )
        return None
    return {
        "base_url": base_url,
        "model": getattr(args, "model", None),
        "api_key_env": getattr(args, "api_key_env", None),
    }


# the BMAD files an LLM agent's prompt may quote, and how much of each (an install's biggest
# template is ~30 KB)
BMAD_FILE_GLOBS = ("agents/*.md", "tasks/*.md", "templates/*.yaml")
MAX_BMAD_FILE_BYTES = 200_000


def bmad_files(root: Path) -> dict[str, str]:
    """relative path -> text of the files the prompts are built from; unreadable ones left out
    (validation names a missing template)."""
    found: dict[str, str] = {}
    for pattern in BMAD_FILE_GLOBS:
        for path in sorted(root.glob(pattern)):
            try:
                if path.is_file() and path.stat().st_size <= MAX_BMAD_FILE_BYTES:
                    found[path.relative_to(root).as_posix()] = path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError):
                continue
    return found
