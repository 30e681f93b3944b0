"""Cross-validation (seed `cross_validation`): after a parallel group passes its barrier, each of
its validation agents checks the other validation agents' outputs.

`check` is the pure, deterministic core (unit-tested in tests/test_cross_validation.py); the
`cross_validate` activity only resolves artifact references and calls it. Findings:

- error `missing_output`: a declared output of the validated agent is absent or empty;
- error `inconsistent_field`: a shared key field (platform, target, ...) that both agents set has
  different values (the seed's "ux_expert specifies mobile_first while architect assumes
  desktop_primary");
- warning `uncovered_reference`: the validated agent refers to a story or requirement id
  (US-1, FR-2, NFR-3) that the validator's outputs never mention.

Score = 1 - 0.25 per error - 0.05 per warning, clamped to [0, 1]; passed = no error.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass, field
from typing import Any

from temporalio import activity

from pee.activities.artifacts import ArtifactStore, contains_reference

# field names whose values two parallel agents must agree on when both set them
KEY_FIELDS = ("platform", "target", "target_platform", "primary_platform", "form_factor", "project")
REFERENCE = re.compile(r"\b(?:US|FR|NFR)-\d+\b")
ERROR_WEIGHT = 0.25
WARNING_WEIGHT = 0.05


@dataclass
class CrossValidationTask:
    group: str
    validator: str
    # agent id -> {output name: value}: the validator's own outputs and those it checks
    outputs: dict[str, dict[str, Any]]
    # agent id -> its declared outputs (so an absent one is a finding)
    declared: dict[str, list[str]] = field(default_factory=dict)


@dataclass
class Validation:
    validator: str
    validated: str
    passed: bool
    score: float
    findings: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class CrossValidationResult:
    validator: str
    validations: list[Validation] = field(default_factory=list)


def _empty(value: Any) -> bool:
    return value is None or (isinstance(value, str | list | dict | tuple) and len(value) == 0)


def key_fields(value: Any) -> dict[str, str]:
    """The first value of each KEY_FIELDS name found anywhere in `value`, depth first."""
    found: dict[str, str] = {}

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for name in sorted(node):
                item = node[name]
                if (
                    name in KEY_FIELDS
                    and isinstance(item, str | int | float | bool)
                    and name not in found
                ):
                    found[name] = str(item)
                walk(item)
        elif isinstance(node, list | tuple):
            for item in node:
                walk(item)

    walk(value)
    return found


def references(value: Any) -> list[str]:
    """Story and requirement ids mentioned anywhere in `value`, sorted."""
    seen: dict[str, None] = {}

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for name in sorted(node):
                walk(name)
                walk(node[name])
        elif isinstance(node, list | tuple):
            for item in node:
                walk(item)
        elif isinstance(node, str):
            for ref in REFERENCE.findall(node):
                seen[ref] = None

    walk(value)
    return sorted(seen, key=lambda ref: (ref.split("-")[0], int(ref.split("-")[1])))


def score_of(findings: list[dict[str, Any]]) -> float:
    errors = sum(1 for f in findings if f["level"] == "error")
    warnings = sum(1 for f in findings if f["level"] == "warning")
    return round(max(0.0, min(1.0, 1.0 - ERROR_WEIGHT * errors - WARNING_WEIGHT * warnings)), 3)


def check(
    validator: str,
    own: dict[str, Any],
    validated: str,
    theirs: dict[str, Any],
    declared: list[str] | None = None,
) -> Validation:
    """What `validator` (with outputs `own`) finds in `validated`'s outputs `theirs`."""
    findings: list[dict[str, Any]] = []
    for name in declared if declared is not None else sorted(theirs):
        if _empty(theirs.get(name)):
            findings.append(
                {
                    "level": "error",
                    "code": "missing_output",
                    "output": name,
                    "message": f"'{validated}.{name}' is missing or empty",
                }
            )
    if (not theirs or all(_empty(v) for v in theirs.values())) and not findings:
        findings.append(
            {
                "level": "error",
                "code": "missing_output",
                "output": None,
                "message": f"'{validated}' produced no outputs",
            }
        )
    mine, others = key_fields(own), key_fields(theirs)
    for name in KEY_FIELDS:
        if name in mine and name in others and mine[name] != others[name]:
            findings.append(
                {
                    "level": "error",
                    "code": "inconsistent_field",
                    "field": name,
                    "message": f"{validator} has {name} {mine[name]!r} but {validated} has "
                    f"{others[name]!r}",
                }
            )
    covered = references(own)
    if covered:
        # only when the validator tracks ids at all: otherwise it has nothing to compare
        for ref in references(theirs):
            if ref not in covered:
                findings.append(
                    {
                        "level": "warning",
                        "code": "uncovered_reference",
                        "reference": ref,
                        "message": f"{validated} refers to {ref}, which {validator} does not cover",
                    }
                )
    return Validation(
        validator=validator,
        validated=validated,
        passed=not any(f["level"] == "error" for f in findings),
        score=score_of(findings),
        findings=findings,
    )


def check_all(task: CrossValidationTask) -> CrossValidationResult:
    own = task.outputs.get(task.validator, {})
    validations = [
        check(task.validator, own, other, task.outputs.get(other, {}), task.declared.get(other))
        for other in task.outputs
        if other != task.validator
    ]
    return CrossValidationResult(validator=task.validator, validations=validations)


@activity.defn
async def cross_validate(task: CrossValidationTask) -> CrossValidationResult:
    if contains_reference(task.outputs):
        resolved = await asyncio.to_thread(ArtifactStore.default().resolve, task.outputs)
        task = CrossValidationTask(task.group, task.validator, resolved, task.declared)
    return check_all(task)
