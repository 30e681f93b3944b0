"""`plan PLAN --history`: the plan's estimates next to what earlier runs measured, and what the
next run will do with them (critical path, priorities, adaptive barrier deadlines)."""

from __future__ import annotations

import json
import sys
from typing import Any

from pee.engine.compile.graph import compile_plan
from pee.engine.compile.learning import mode_of
from pee.engine.compiled import CompiledPlan
from pee.runtime.duration_store import STORE_ERRORS, DurationStore


def history(plan: Any, compiled: CompiledPlan, simulate: bool) -> dict[str, Any]:
    store = DurationStore()
    mode = mode_of(simulate)
    learned = store.learned(compiled.name, mode)
    adapted = compile_plan(plan, learned) if learned else compiled
    agents = []
    for before in compiled.agents:
        after = adapted.agent(before.id)
        seen = learned.get(before.id)
        agents.append(
            {
                "agent": before.id,
                "group": before.group,
                "estimated_s": before.estimated_s,
                "n": seen.n if seen else 0,
                "mean_s": seen.mean_s if seen else None,
                "p95_s": seen.p95_s if seen else None,
                "priority": before.priority,
                "learned_priority": after.priority,
            }
        )
    groups = [
        {
            "group": g.id,
            "timeout_s": g.planned_timeout_s or g.timeout_s,
            "learned_timeout_s": g.timeout_s,
        }
        for g in adapted.groups
    ]
    return {
        "plan": compiled.name,
        "mode": mode,
        "store": str(store.path),
        "adaptive_margin": compiled.adaptive_margin,
        "agents": agents,
        "critical_path": compiled.critical_path,
        "learned_critical_path": adapted.critical_path,
        "estimated_makespan_s": compiled.estimated_makespan_s,
        "learned_makespan_s": adapted.estimated_makespan_s,
        "groups": groups,
        # the two kinds never mix: say when the other kind has samples, so nobody concludes
        # from an empty table that nothing was recorded
        "other_mode_agents": len(store.learned(compiled.name, mode_of(not simulate))),
    }


def _s(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def show_history(plan: Any, compiled: CompiledPlan, simulate: bool, as_json: bool) -> int:
    try:
        found = history(plan, compiled, simulate)
    except STORE_ERRORS as err:
        print(
            f"error: cannot read learned durations: {err}; "
            "move the file away (or set PEE_DURATIONS_PATH) to start afresh",
            file=sys.stderr,
        )
        return 2
    if as_json:
        print(json.dumps(found, indent=2))
        return 0
    rows = [("agent", "group", "estimated s", "n", "mean s", "p95 s", "priority")]
    for a in found["agents"]:
        priority = (
            str(a["priority"])
            if a["priority"] == a["learned_priority"]
            else (f"{a['priority']} -> {a['learned_priority']}")
        )
        rows.append(
            (
                a["agent"],
                a["group"],
                _s(a["estimated_s"]),
                str(a["n"]),
                _s(a["mean_s"]),
                _s(a["p95_s"]),
                priority,
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = [f"{found['plan']}: durations of {found['mode']} runs in {found['store']}"]
    for index, row in enumerate(rows):
        lines.append("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
        if index == 0:
            lines.append("-" * len(lines[-1]))
    lines.append("")
    lines.append(
        f"critical path: {' -> '.join(found['critical_path'])} (estimated "
        f"{found['estimated_makespan_s']:g}s)"
    )
    lines.append(
        f"learned:       {' -> '.join(found['learned_critical_path'])} (estimated "
        f"{found['learned_makespan_s']:g}s)"
    )
    if found["adaptive_margin"] is None:
        lines.append("barrier deadlines: as planned (the plan does not say adaptive: true)")
    else:
        lines.append(f"barrier deadlines (adaptive, p95 x {found['adaptive_margin']:g}):")
        for g in found["groups"]:
            if g["timeout_s"] is not None:
                lines.append(f"  {g['group']}: {g['timeout_s']:g}s -> {g['learned_timeout_s']:g}s")
    if not any(a["n"] for a in found["agents"]):
        other = found["other_mode_agents"]
        if other:
            flag = "without --simulate" if simulate else "with --simulate"
            lines.append(
                f"no {found['mode']} runs recorded yet; {other} agent(s) have samples "
                f"of {mode_of(not simulate)} runs: see them {flag}"
            )
        else:
            lines.append("no runs recorded yet: `pee run PLAN` records each finished run")
    print("\n".join(lines))
    return 0
