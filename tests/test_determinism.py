"""The analysis does not depend on PYTHONHASHSEED: processes with different hash seeds produce
byte-identical compiled plans and `plan --format json` output (CPython's graphlib test idea).

Set iteration order changes with the hash seed; a compiled plan built from one would differ
between the starter and the worker, or between a run and its replay."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
PLANS = [ROOT / "plans" / "seed.yaml", ROOT / "plans" / "demo.yaml"]
HASH_SEEDS = ("1", "2", "12345")

COMPILE = """
import sys
from pee.engine.compile.graph import compile_plan
from pee.engine.compile.load import load_plan

for path in sys.argv[1:]:
    print(compile_plan(load_plan(path)).to_json())
"""


def _generate_plan(agents: int, seed: int) -> dict:
    spec = importlib.util.spec_from_file_location("bench_planner", ROOT / "bench" / "planner.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.generate_plan(agents, seed=seed)


@pytest.fixture(scope="module")
def random_plan(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 300-agent random DAG without explicit groups (so grouping is derived), plus shared
    context keys with several writers."""
    data = _generate_plan(300, seed=20240131)
    agents = list(data["agents"])
    for index, agent_id in enumerate(agents[::37]):
        data["agents"][agent_id]["writes"] = [f"shared_{index % 3}"]
    for agent_id in agents[-5:]:
        data["agents"][agent_id].setdefault("optional_inputs", []).extend(["shared_0", "shared_1"])
    path = tmp_path_factory.mktemp("plans") / "random_dag.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def _run(args: list[str], hash_seed: str) -> str:
    env = {**os.environ, "PYTHONHASHSEED": hash_seed}
    done = subprocess.run(
        [sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_compiled_plans_are_identical_under_different_hash_seeds(random_plan: Path) -> None:
    """compile_plan(load_plan(p)).to_json() is the same bytes whatever PYTHONHASHSEED is."""
    paths = [str(p) for p in [*PLANS, random_plan]]
    outputs = [_run(["-c", COMPILE, *paths], seed) for seed in HASH_SEEDS]
    first = outputs[0].splitlines()
    assert len(first) == len(paths)
    for seed, output in zip(HASH_SEEDS[1:], outputs[1:], strict=True):
        for path, expected, actual in zip(paths, first, output.splitlines(), strict=True):
            assert expected == actual, f"{Path(path).name} differs with PYTHONHASHSEED={seed}"


def test_random_plan_has_derived_parallel_groups(random_plan: Path) -> None:
    """The random plan exercises auto-grouping: some derived groups hold several agents."""
    from pee.engine.compile.graph import compile_plan
    from pee.engine.compile.load import load_plan

    compiled = compile_plan(load_plan(random_plan))
    assert len(compiled.agents) == 300
    assert not any(g.explicit for g in compiled.groups)
    assert any(len(g.agents) > 1 for g in compiled.groups)


@pytest.mark.parametrize("plan", [*PLANS, "random"], ids=["seed", "demo", "random"])
def test_plan_command_json_is_identical_under_two_hash_seeds(
    plan: Path | str, random_plan: Path
) -> None:
    """`starter.py plan --format json` prints the same bytes under two hash seeds."""
    path = str(random_plan if plan == "random" else plan)
    command = ["starter.py", "plan", path, "--format", "json"]
    assert _run(command, "1") == _run(command, "2")
