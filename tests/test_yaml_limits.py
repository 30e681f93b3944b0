"""YAML aliases are bounded: a few hundred bytes of anchors cannot stand for a billion values.

Issue 19 found a 552-byte file that made `validate` run for minutes and reach 6 GB, and a
456-byte one whose run never ended. The rule (src/pee/engine/language/yamlsrc.py): at most
MAX_COLLECTION_ALIASES aliases of mappings or lists, no alias inside its own anchor, and all
aliases expanded at most max(EXPANSION_FLOOR, EXPANSION_RATIO x the values written).
"""

from __future__ import annotations

import resource
import subprocess
import sys
from pathlib import Path

import pytest

from pee.engine.compile.graph import compile_plan
from pee.engine.compile.load import load_plan, loads_plan
from pee.engine.language import errors
from pee.engine.language.yamlsrc import EXPANSION_FLOOR, MAX_COLLECTION_ALIASES, expansion_limit
from tests.helpers import PROJECT_ROOT

# a hang guard for the subprocess, not a speed assertion (bench/ measures speed)
HANG_GUARD_S = 300
MEMORY_LIMIT = 1536 * 1024**2


def laughs(width: int, depth: int, merge: bool = False) -> str:
    """The 'billion laughs': each level aliases the one before ``width`` times, so the last
    stands for width**depth values. ``merge``: the same through merge keys (`<<:`)."""
    lines = ["name: laughs", "agents:"]
    if merge:
        lines.append("  l0: {kind: simulate, settings: {v: &m0 {k0: 1, k1: 2, k2: 3}}}")
        for level in range(1, depth + 1):
            refs = ", ".join([f"*m{level - 1}"] * width)
            lines.append(
                f"  l{level}: {{kind: simulate, settings: {{v: &m{level} {{<<: [{refs}]}}}}}}"
            )
    else:
        lines.append(
            f"  l0: {{kind: simulate, settings: {{v: &a0 [{', '.join(['lol'] * width)}]}}}}"
        )
        for level in range(1, depth + 1):
            refs = ", ".join([f"*a{level - 1}"] * width)
            lines.append(f"  l{level}: {{kind: simulate, settings: {{v: &a{level} [{refs}]}}}}")
    return "\n".join(lines) + "\n"


def validate_in_a_box(path: Path) -> subprocess.CompletedProcess[str]:
    """`starter.py validate` with its address space capped: an unbounded expansion fails with a
    MemoryError (exit 1, a traceback) instead of the plan error this file expects."""

    def cap() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))

    return subprocess.run(
        [sys.executable, "starter.py", "validate", str(path)],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=HANG_GUARD_S,
        preexec_fn=cap,
    )


@pytest.mark.parametrize("merge", [False, True], ids=["aliases", "merge-keys"])
def test_billion_laughs_is_refused_at_the_line_that_multiplies(merge: bool, tmp_path: Path) -> None:
    """9 aliases of 9 aliases, 9 levels deep (about 560 bytes, 9**9 values): validate refuses
    it in bounded memory, naming the first line whose value stands for too many values."""
    text = laughs(9, 9, merge=merge)
    assert len(text) < 1000
    path = tmp_path / "laughs.yaml"
    path.write_text(text)
    result = validate_in_a_box(path)
    assert 2 == result.returncode, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    # level 5 (line 8) is the first to pass 100,000 values, merged or not: 9**5 leaves
    output = result.stdout + result.stderr
    assert "laughs.yaml:8: aliases make this value stand for" in output
    assert "billion laughs" in output


def test_the_expansion_error_carries_its_numbers() -> None:
    with pytest.raises(errors.YamlAliasError) as caught:
        loads_plan(laughs(10, 6), file="laughs.yaml")
    problem = caught.value
    # level 4 (line 7) stands for 111,111 values, more than the floor (the file holds 71)
    assert problem.location.line == 7
    assert problem.value > EXPANSION_FLOOR
    assert f"at most {EXPANSION_FLOOR:,} values" in problem.render()


def test_a_recursive_alias_is_refused() -> None:
    """An alias inside its own anchor would be an endless value (PyYAML builds a cyclic list)."""
    with pytest.raises(errors.YamlAliasError, match="contains it") as caught:
        loads_plan(
            "name: r\nagents:\n  a:\n    kind: simulate\n    settings: &s {me: *s}\n", file="r.yaml"
        )
    assert caught.value.location.line == 5


def test_too_many_aliases_are_refused() -> None:
    """Past MAX_COLLECTION_ALIASES aliases of lists or mappings, even small ones, the plan is
    refused at the line of the value holding the alias that crossed the count."""
    items = "\n".join(["      - *one"] * (MAX_COLLECTION_ALIASES + 1))
    text = (
        "name: n\nagents:\n  a:\n    kind: simulate\n    settings:\n"
        f"      one: &one [1]\n      v:\n{items}\n"
    )
    with pytest.raises(
        errors.YamlAliasError, match=f"more than {MAX_COLLECTION_ALIASES:,}"
    ) as caught:
        loads_plan(text, file="n.yaml")
    assert caught.value.location.line == 8


def test_aliases_of_plain_values_are_free() -> None:
    """Aliases of a scalar cost nothing to expand, so the count does not apply to them."""
    items = "\n".join(["      - *one"] * (MAX_COLLECTION_ALIASES + 1))
    plan = loads_plan(
        f"name: n\nagents:\n  a:\n    kind: simulate\n    duration: &one 1s\n"
        f"    settings:\n      v:\n{items}\n"
    )
    assert plan.agents["a"].settings["v"] == ["1s"] * (MAX_COLLECTION_ALIASES + 1)


def test_legitimate_aliases_and_merge_keys_work() -> None:
    """Anchors shared among agents, and merge keys with an override, load as copies."""
    plan = loads_plan(
        """
name: shared
agents:
  a:
    kind: simulate
    duration: &quick 2s
    retry: &retry {max_attempts: 2, initial_interval: 1s}
    settings: &base {colour: blue, size: 3}
    outputs: [x]
  b:
    kind: simulate
    duration: *quick
    retry: *retry
    settings:
      <<: *base
      size: 4
    inputs: [a.x]
""",
        file="shared.yaml",
    )
    b = plan.agents["b"]
    assert 2.0 == b.duration.seconds and 2 == b.retry.max_attempts
    assert {"colour": "blue", "size": 4} == b.settings
    compiled = compile_plan(plan)
    assert ["a"] == next(agent for agent in compiled.agents if agent.id == "b").depends_on
    # a merged key has the line of the mapping it is merged into (`settings:`)
    assert plan.source.line(("agents", "b", "settings", "colour")) == 14


def test_a_large_plan_sharing_defaults_validates(tmp_path: Path) -> None:
    """3,000 agents each merging one block of defaults: 3,000 aliases and an expansion well
    inside the bound, so the plan loads and compiles."""
    lines = [
        "name: wide",
        "agents:",
        "  a0: &defaults {kind: simulate, duration: 1s, retry: {max_attempts: 2}, "
        "description: shared}",
    ]
    lines += [f"  a{i}: {{<<: *defaults, outputs: [o]}}" for i in range(1, 3000)]
    path = tmp_path / "wide.yaml"
    path.write_text("\n".join(lines) + "\n")
    plan = load_plan(path)
    assert 3000 == len(plan.agents)
    assert all(2 == agent.retry.max_attempts for agent in plan.agents.values())


def test_a_plan_near_one_megabyte_validates_in_bounded_memory(tmp_path: Path) -> None:
    """A 1 MB plan (a large list, also aliased three times: within the ratio) validates in a
    subprocess capped at 1.5 GB, without aliasing in its way."""
    values = 150_000
    text = (
        "name: big\nagents:\n"
        f"  a: {{kind: simulate, duration: 1s, settings: {{v: &b [{','.join(['7'] * values)}]}}}}\n"
        "  b: {kind: simulate, duration: 1s, settings: {v: [*b, *b, *b]}}\n"
        f"  c: {{kind: simulate, duration: 1s, settings: {{w: [{','.join(['8'] * values)}]}}}}\n"
    )
    assert 500_000 < len(text) < 1024**2
    assert 4 * values < expansion_limit(2 * values)
    path = tmp_path / "big.yaml"
    path.write_text(text)
    result = validate_in_a_box(path)
    assert 0 == result.returncode, result.stdout + result.stderr
    assert "valid plan 'big': 3 agents" in result.stdout + result.stderr
