"""Planner benchmark: how long the analysis of a large random DAG plan takes.

Generates layered random DAG plans in native form (seeded, so every run sees the same plans),
then times ``build_plan`` (validation, reference resolution, grouping, checks) and
``compile_plan`` (topological order, critical path, estimates) separately.

The goal (issue 17, item 5) is what `pee validate` of 10,000 agents does in under 2 seconds:
parse the YAML (``parse_yaml``, line tracking included), build and compile. Each size prints
the three times, their sum in wall-clock seconds and in CPU seconds of this process (the machine
is shared: CPU time shows the work when other jobs slow the wall clock down), and with 10,000
and 20,000 both measured, the ratio of their sums: linear analysis doubles, quadratic would
quadruple.

    .venv/bin/python bench/planner.py [--sizes 1000 5000 10000 20000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import gc
import os
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
from pee.engine.gc_pause import paused_gc  # noqa: E402
from pee.engine.language.yamlsrc import parse_yaml  # noqa: E402

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


def yaml_text(data: dict[str, Any]) -> str:
    import yaml

    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    return yaml.dump(data, Dumper=dumper, sort_keys=False)


def measure(agents: int, seed: int = 0) -> dict[str, Any]:
    text = yaml_text(generate_plan(agents, seed))
    gc.collect()  # the generator's garbage is not the analysis's to collect
    cpu_started = time.process_time()
    started = time.perf_counter()
    # one collector pause around the three stages, as `pee validate` and `pee run` take
    with paused_gc():
        data, source = parse_yaml(text)
        parsed = time.perf_counter()
        plan = build_plan(data, source)
        built = time.perf_counter()
        compiled = compile_plan(plan)
        done = time.perf_counter()
    # the collection the pause put off, counted: everything allocated under it is in the
    # youngest generation, which the first allocation after the pause collects (`validate`
    # exits before that; a command that goes on pays it once)
    gc.collect(0)
    collected = time.perf_counter()
    cpu_s = time.process_time() - cpu_started
    edges = sum(len(spec.get("inputs", [])) for spec in data["agents"].values())
    return {
        "agents": agents,
        "edges": edges,
        "yaml_s": parsed - started,
        "build_s": built - parsed,
        "compile_s": done - built,
        "gc_s": collected - done,
        "total_s": collected - started,
        "cpu_s": cpu_s,
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
        default=[1000, 5000, GOAL_AGENTS, 2 * GOAL_AGENTS],
        help="plan sizes in agents (default: 1000 5000 10000 20000)",
    )
    parser.add_argument("--seed", type=int, default=0, help="RNG seed of the generated plans")
    parser.add_argument(
        "--repeat", type=int, default=1, help="runs per size; the fastest is reported (default: 1)"
    )
    parser.add_argument(
        "--yaml", action="store_true", help="no effect: parsing is always timed (kept for scripts)"
    )
    args = parser.parse_args(argv)

    totals: dict[int, dict[str, Any]] = {}
    for size in args.sizes:
        runs = [measure(size, args.seed) for _ in range(max(1, args.repeat))]
        best = min(runs, key=lambda r: r["total_s"])
        totals[size] = best
        print(
            f"agents={best['agents']} edges={best['edges']} yaml_parse={best['yaml_s']:.3f}s "
            f"build={best['build_s']:.3f}s compile={best['compile_s']:.3f}s "
            f"gc={best['gc_s']:.3f}s total={best['total_s']:.3f}s cpu={best['cpu_s']:.3f}s "
            f"groups={best['groups']} "
            f"parallel_groups={best['parallel_groups']} "
            f"critical_path={best['critical_path']} "
            f"makespan={best['makespan_s']:g}s sequential={best['sequential_s']:g}s "
            f"makespan/sequential={best['ratio']:.4f} "
            f"speedup={1 / best['ratio'] if best['ratio'] else 0:.1f}x"
        )
    if GOAL_AGENTS in totals and 2 * GOAL_AGENTS in totals:
        small, large = totals[GOAL_AGENTS], totals[2 * GOAL_AGENTS]
        print(
            f"scaling: {2 * GOAL_AGENTS} / {GOAL_AGENTS} agents: wall "
            f"{large['total_s'] / small['total_s']:.2f}x, "
            f"cpu {large['cpu_s'] / small['cpu_s']:.2f}x "
            "(linear = 2x, quadratic = 4x)"
        )
    if GOAL_AGENTS in totals:
        best = totals[GOAL_AGENTS]
        verdict = "PASS" if best["total_s"] < GOAL_SECONDS else "FAIL"
        print(
            f"goal: {GOAL_AGENTS} agents parsed and analysed in {best['total_s']:.3f}s "
            f"(yaml {best['yaml_s']:.3f}s, build {best['build_s']:.3f}s, compile "
            f"{best['compile_s']:.3f}s, gc {best['gc_s']:.3f}s; cpu {best['cpu_s']:.3f}s) "
            f"< {GOAL_SECONDS:g}s: {verdict} "
            f"(load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cpus)"
        )
    else:
        print(f"goal: not measured (the goal is for {GOAL_AGENTS} agents; add it to --sizes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
