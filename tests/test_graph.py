"""Dependency analysis, table-driven over fixture plans whose header comments give the answer."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pee.engine.compile.graph import compile_plan
from pee.engine.compile.load import load_plan

FIXTURES = sorted((Path(__file__).parent / "plans" / "graph").glob("*.yaml"))


def expectations(path: Path) -> dict[str, str]:
    found = {}
    for line in path.read_text().splitlines():
        match = re.match(r"#\s*expect-([a-z-]+):\s*(.*)$", line)
        if match:
            found[match.group(1)] = match.group(2).strip()
    return found


def group_labels(compiled) -> list[str]:
    """Explicit groups by id, derived ones by their agents (as written in the fixture header)."""
    return [g.id if g.explicit else " ".join(g.agents) for g in compiled.groups]


@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: p.stem)
def test_fixture_groups_and_critical_path(path: Path) -> None:
    """Groups come out in the fixture's execution order with its critical path and estimates."""
    expected = expectations(path)
    compiled = compile_plan(load_plan(path))
    assert [g.strip() for g in expected["groups"].split(";")] == group_labels(compiled)
    assert expected["critical"].split() == compiled.critical_path
    assert float(expected["makespan"]) == compiled.estimated_makespan_s
    assert float(expected["sequential"]) == compiled.sequential_s


@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: p.stem)
def test_fixture_parallel_opportunities(path: Path) -> None:
    """Explicit groups that serialise independent work are reported with the time they cost."""
    expected = expectations(path).get("opportunities", "")
    compiled = compile_plan(load_plan(path))
    actual = [f"{o.kind}:{o.group}:{o.saving_s:g}" for o in compiled.parallel_opportunities]
    assert expected.split() == actual


def test_groups_come_in_dependency_order() -> None:
    """Every group appears after all the groups it depends on."""
    for path in FIXTURES:
        compiled = compile_plan(load_plan(path))
        seen: list[str] = []
        for group in compiled.groups:
            assert all(d in seen for d in group.depends_on), (path.name, group.id)
            seen.append(group.id)


def test_auto_grouping_never_lengthens_the_critical_path() -> None:
    """Derived groups cost nothing against agent-level scheduling (DESIGN.md's rule)."""
    for path in FIXTURES:
        compiled = compile_plan(load_plan(path))
        if not any(g.explicit for g in compiled.groups):
            assert compiled.agent_level_s == compiled.estimated_makespan_s, path.name


def test_estimates_are_ordered() -> None:
    """The lower bound <= eager DAG <= group by group <= sequential, for every fixture."""
    for path in FIXTURES:
        c = compile_plan(load_plan(path))
        assert c.agent_level_s <= c.estimated_makespan_s <= c.group_by_group_s <= c.sequential_s


def test_priorities_follow_the_seed() -> None:
    """Critical-path agents get 10, validation-only agents 5, the rest 7; explicit ones win."""
    from pee.engine.compile.load import loads_plan

    plan = loads_plan("""
agents:
  a: {duration: 5s, outputs: [x]}
  side: {duration: 1s, inputs: [a.x], outputs: [s]}
  b: {duration: 5s, inputs: [a.x]}
  checker: {duration: 1s, validates: [side]}
  pinned: {duration: 1s, priority: 3}
""")
    priorities = {a.id: a.priority for a in compile_plan(plan).agents}
    assert {"a": 10, "b": 10, "side": 7, "checker": 5, "pinned": 3} == priorities


def test_validator_runs_after_what_it_validates() -> None:
    """A validates edge orders the validator after its target without holding back readers."""
    from pee.engine.compile.load import loads_plan

    compiled = compile_plan(
        loads_plan("""
agents:
  writer: {duration: 2s, outputs: [doc]}
  reader: {duration: 2s, inputs: [writer.doc]}
  reviewer: {duration: 5s, validates: [writer]}
""")
    )
    groups = {a.id: a.group for a in compiled.agents}
    reviewer_group = compiled.group(groups["reviewer"])
    reader_group = compiled.group(groups["reader"])
    assert [groups["writer"]] == reviewer_group.depends_on
    assert [groups["writer"]] == reader_group.depends_on


def test_blocking_validation_holds_back_readers() -> None:
    """validation_blocking: true makes the target's readers wait for the validator too."""
    from pee.engine.compile.load import loads_plan

    compiled = compile_plan(
        loads_plan("""
agents:
  writer: {duration: 2s, outputs: [doc]}
  reader: {duration: 2s, inputs: [writer.doc]}
  reviewer: {duration: 5s, validates: [writer], validation_blocking: true}
""")
    )
    groups = {a.id: a.group for a in compiled.agents}
    assert groups["reviewer"] in compiled.group(groups["reader"]).depends_on
    assert ["writer", "reviewer", "reader"] == compiled.critical_path


def test_compiled_plan_round_trips_through_json() -> None:
    """The workflow input survives JSON: from_dict(to_dict()) gives the same plan."""
    import json

    from pee.engine.compiled import CompiledPlan

    compiled = compile_plan(load_plan(Path("plans/seed.yaml")))
    again = CompiledPlan.from_dict(json.loads(compiled.to_json()))
    assert compiled == again


@pytest.mark.parametrize(
    ("spec", "kind", "role"),
    [
        ("{}", "simulate", "worker"),  # not a role name: simulated
        ("{role: analyst}", "role", "analyst"),
        ("{role: ux-expert}", "role", "ux_expert"),  # BMAD spelling
        ("{role: dev}", "role", "developer"),
        ("{role: pm, duration: 2s}", "simulate", "pm"),  # a simulate setting asks for simulate
        ("{role: qa, kind: command, command: [echo]}", "command", "qa"),
    ],
)
def test_kind_resolution(spec: str, kind: str, role: str) -> None:
    """An agent without a kind runs as a built-in role agent when its role is one."""
    from pee.engine.compile.load import loads_plan

    agent = compile_plan(loads_plan(f"agents:\n  worker: {spec}\n")).agent("worker")
    assert (kind, role) == (agent.kind, agent.role)


def test_read_modify_write_waits_for_creators_only() -> None:
    """Modifiers of a shared key run side by side after its creator; readers wait for all."""
    from pee.engine.compile.load import loads_plan

    compiled = compile_plan(
        loads_plan("""
agents:
  pm: {duration: 1s, writes: [platform]}
  ux: {duration: 2s, inputs: [platform], writes: [platform]}
  architect: {duration: 3s, inputs: [platform], writes: [platform]}
  developer: {duration: 1s, inputs: [platform]}
""")
    )
    assert [["pm"], ["ux", "architect"], ["developer"]] == [g.agents for g in compiled.groups]
    assert {
        "pm": [],
        "ux": ["pm"],
        "architect": ["pm"],
        "developer": ["pm", "ux", "architect"],
    } == {a.id: a.depends_on for a in compiled.agents}


def test_a_plan_without_a_pool_is_not_admission_controlled() -> None:
    """No resource_manager.resource_pool: no pool in the compiled plan (the workflow runs
    agents as soon as their dependencies allow); with one, the pool is passed on."""
    from pee.engine.compile.load import loads_plan

    free = compile_plan(loads_plan("agents: {a: {duration: 1s}}\n"))
    pooled = compile_plan(
        loads_plan(
            "agents: {a: {duration: 1s}}\n"
            "resource_manager: {resource_pool: {computational: {concurrent_agent_limit: 2}}}\n"
        )
    )
    assert free.resources.pool is None
    assert pooled.resources.pool is not None
    assert 2 == pooled.resources.pool.concurrent_agent_limit


def test_command_agents_run_in_the_plans_folder(tmp_path) -> None:
    """A command agent's working directory is resolved against the plan file's folder."""
    plan_file = tmp_path / "plan.yaml"
    plan_file.write_text("agents:\n  tool: {kind: command, command: [echo], cwd: scripts}\n")
    agent = compile_plan(load_plan(plan_file)).agent("tool")
    assert (str(tmp_path.resolve()), "scripts") == (
        agent.settings["plan_dir"],
        agent.settings["cwd"],
    )


def test_template_agents_get_the_plans_template_engine_limits(tmp_path) -> None:
    """concurrent_renders and render_timeout of the plan's pool reach template agents."""
    plan_file = tmp_path / "plan.yaml"
    plan_file.write_text(
        "agents:\n  doc: {kind: template, template: 'builtin:prd', outputs: [prd]}\n"
        "resource_manager:\n  resource_pool:\n    template_engine: "
        "{concurrent_renders: 2, render_timeout: 30}\n"
    )
    settings = compile_plan(load_plan(plan_file)).agent("doc").settings
    assert {"concurrent_renders": 2, "render_timeout": 30.0} == settings["template_engine"]
