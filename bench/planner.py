"""Planner benchmark: how long the analysis of a large random DAG plan takes.

Generates layered random DAG plans in native form (seeded, so every run sees the same plans),
then times ``build_plan`` (validation, reference resolution, grouping, checks) and
``compile_plan`` (topological order, critical path, estimates) separately.

The issue's goal is "analysis of 10,000 agents must stay under 2 seconds". Analysis is
everything after the YAML is read: build + compile, both reported, the goal judged on their sum.
With ``--yaml`` the plan is also written as YAML and parsed (``parse_yaml``, line tracking
included) to show what reading the file adds; that is not part of the goal.

    .venv/bin/python bench/planner.py --sizes 1000 10000 [--yaml] [--repeat 3]
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path
from typing import Any

# runnable as `python bench/planner.py` from the repository root
ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from pee.engine.compile.graph import compile_plan  # noqa: E402
from pee.engine.compile.load import build_plan  # noqa: E402
from pee.engine.language.yamlsrc import SourceMap, parse_yaml  # noqa: E402

GOAL_AGENTS = 10_000
GOAL_SECONDS = 2.0
DURATION_FORMS = ("{n}s", "{n}", "{m}m", "{m}-{m2}_minutes", "{m}_minutes")


def _duration(rng: random.Random) -> str | int:
    form = rng.choice(DURATION_FORMS)
    minutes = rng.randint(1, 5)
    text = form.format(n=rng.randint(5, 300), m=minutes, m2=minutes + rng.randint(1, 3))
    return int(text) if text.isdigit() else text


def generate_plan(
    agents: int, seed: int = 0, fan_in: int = 3, layer_width: int | None = None
) -> dict[str, Any]:
    """A native plan of ``agents`` agents on a layered random DAG.

    Agents come in clusters of 1-3 that read the same inputs and are read together, so the
    analyser's auto-grouping has parallel groups to find. Each agent reads ~``fan_in`` blocking
    ``inputs`` from earlier layers, sometimes a non-blocking ``optional_inputs`` reference, and a
    few agents validate another one. No explicit groups: grouping is derived.
    """
    rng = random.Random(seed)
    width = layer_width or max(4, int(agents**0.5))
    plan_agents: dict[str, dict[str, Any]] = {}
    # clusters of earlier layers: (agent ids, output name)
    earlier: list[tuple[list[str], str]] = []
    made = 0
    layer = 0
    while made < agents:
        layer_clusters: list[tuple[list[str], str]] = []
        in_layer = 0
        while in_layer < width and made < agents:
            size = min(rng.choice((1, 1, 1, 2, 3)), agents - made)
            output = f"out{layer}"
            inputs: list[str] = []
            if earlier:
                # pick whole clusters until about fan_in references, recent layers preferred
                picks = 0
                tried: set[int] = set()
                while len(inputs) < fan_in and picks < fan_in:
                    picks += 1
                    index = max(0, len(earlier) - 1 - int(rng.expovariate(1 / (2 * width))))
                    if index in tried:
                        continue
                    tried.add(index)
                    members, name = earlier[index]
                    inputs.extend(f"{m}.{name}" for m in members)
            optional: list[str] = []
            if earlier and rng.random() < 0.2:
                members, name = rng.choice(earlier)
                optional.append(f"{members[0]}.{name}")
            members = []
            for _ in range(size):
                agent_id = f"agent_{made:05d}"
                spec: dict[str, Any] = {
                    "kind": "simulate",
                    "duration": _duration(rng),
                    "outputs": [output],
                }
                if inputs:
                    spec["inputs"] = list(inputs)
                if optional:
                    spec["optional_inputs"] = [r for r in optional if r not in inputs]
                plan_agents[agent_id] = spec
                members.append(agent_id)
                made += 1
            in_layer += size
            layer_clusters.append((members, output))
        earlier.extend(layer_clusters)
        layer += 1
    # a few validators of an earlier agent (a validator runs after what it checks)
    ids = list(plan_agents)
    for position in sorted(rng.sample(range(1, len(ids)), k=len(ids) // 50)):
        plan_agents[ids[position]]["validates"] = [ids[rng.randrange(position)]]
    return {"name": f"bench-{agents}", "agents": plan_agents}


def yaml_seconds(data: dict[str, Any]) -> float:
    import yaml

    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    text = yaml.dump(data, Dumper=dumper, sort_keys=False)
    started = time.perf_counter()
    parse_yaml(text)
    return time.perf_counter() - started


def measure(agents: int, seed: int = 0, with_yaml: bool = False) -> dict[str, Any]:
    data = generate_plan(agents, seed)
    parse_s = yaml_seconds(data) if with_yaml else None
    started = time.perf_counter()
    plan = build_plan(data, SourceMap())
    built = time.perf_counter()
    compiled = compile_plan(plan)
    done = time.perf_counter()
    edges = sum(len(spec.get("inputs", [])) for spec in data["agents"].values())
    return {
        "agents": agents,
        "edges": edges,
        "yaml_s": parse_s,
        "build_s": built - started,
        "compile_s": done - built,
        "total_s": done - started,
        "groups": len(compiled.groups),
        "parallel_groups": sum(1 for g in compiled.groups if len(g.agents) > 1),
        "critical_path": len(compiled.critical_path),
        "makespan_s": compiled.estimated_makespan_s,
        "sequential_s": compiled.sequential_s,
        "ratio": compiled.estimated_makespan_s / compiled.sequential_s
        if compiled.sequential_s
        else 1.0,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--sizes",
        type=int,
        nargs="+",
        default=[1000, GOAL_AGENTS],
        help="plan sizes in agents (default: 1000 10000)",
    )
    parser.add_argument("--seed", type=int, default=0, help="RNG seed of the generated plans")
    parser.add_argument(
        "--repeat", type=int, default=1, help="runs per size; the fastest is reported (default: 1)"
    )
    parser.add_argument(
        "--yaml",
        action="store_true",
        help="also time parsing the plan from YAML text (not part of the goal)",
    )
    args = parser.parse_args(argv)

    for size in args.sizes:
        runs = [measure(size, args.seed, args.yaml) for _ in range(max(1, args.repeat))]
        best = min(runs, key=lambda r: r["total_s"])
        parsed = f"yaml_parse={best['yaml_s']:.3f}s " if best["yaml_s"] is not None else ""
        print(
            f"agents={best['agents']} edges={best['edges']} {parsed}"
            f"build={best['build_s']:.3f}s compile={best['compile_s']:.3f}s "
            f"total={best['total_s']:.3f}s groups={best['groups']} "
            f"parallel_groups={best['parallel_groups']} "
            f"critical_path={best['critical_path']} "
            f"makespan={best['makespan_s']:g}s sequential={best['sequential_s']:g}s "
            f"makespan/sequential={best['ratio']:.4f} "
            f"speedup={1 / best['ratio'] if best['ratio'] else 0:.1f}x"
        )
        if size == GOAL_AGENTS:
            verdict = "PASS" if best["total_s"] < GOAL_SECONDS else "FAIL"
            print(
                f"goal: {GOAL_AGENTS} agents analysed (build + compile) in "
                f"{best['total_s']:.3f}s (build {best['build_s']:.3f}s, compile "
                f"{best['compile_s']:.3f}s) < {GOAL_SECONDS:g}s: {verdict}"
            )
    if GOAL_AGENTS not in args.sizes:
        print(f"goal: not measured (the goal is for {GOAL_AGENTS} agents; add it to --sizes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
