"""Bad plans are reported precisely: every problem, its line, what was expected and the fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from pee.engine.compile.graph import compile_plan
from pee.engine.compile.load import load_plan, loads_plan
from pee.engine.compiled import SharedPool
from pee.engine.language import errors


def problems_of(text: str, **variables: str) -> list[errors.PlanError]:
    with pytest.raises(errors.PlanValidationError) as caught:
        loads_plan(text, variables, file="plan.yaml")
    return caught.value.problems


def only_problem(text: str) -> errors.PlanError:
    problems = problems_of(text)
    assert 1 == len(problems), [p.render() for p in problems]
    return problems[0]


def test_cycle_is_named() -> None:
    """A blocking cycle raises CycleError carrying the agents of the loop in order."""
    problem = only_problem("""
agents:
  a: {inputs: [c.z], outputs: [x]}
  b: {inputs: [a.x], outputs: [y]}
  c: {inputs: [b.y], outputs: [z]}
""")
    assert isinstance(problem, errors.CycleError)
    assert ["a", "b", "c"] == problem.cycle
    assert "a -> b -> c -> a" in problem.render()


def test_optional_input_breaks_a_cycle() -> None:
    """The same loop through an optional input is fine: context dependencies never wait."""
    plan = loads_plan("""
agents:
  a: {optional_inputs: [c.z], outputs: [x]}
  b: {inputs: [a.x], outputs: [y]}
  c: {inputs: [b.y], outputs: [z]}
""")
    assert ["a", "b", "c"] == list(plan.agents)


def test_group_level_cycle_is_named() -> None:
    """Groups that wait for each other form a cycle even when agents do not."""
    problem = only_problem("""
agents:
  a: {outputs: [x]}
  b: {inputs: [a.x], outputs: [y]}
  c: {inputs: [b.y]}
groups:
  first: {agents: [a, c]}
""")
    assert isinstance(problem, errors.CycleError)
    assert "groups" in problem.message and "first" in problem.cycle


def test_missing_producer_lists_the_writers() -> None:
    """Reading an output nobody declares names the agent's real outputs and the line."""
    problem = only_problem("""
agents:
  developer: {outputs: [plan]}
  qa: {inputs: [developer.code]}
""")
    assert isinstance(problem, errors.MissingProducerError)
    assert (
        "agent 'qa' reads 'developer.code', but no agent writes it; writers: "
        "['developer.plan']" in problem.message
    )
    assert 4 == problem.location.line and "plan.yaml" == problem.location.file


def test_unknown_agent_suggests_the_closest_name() -> None:
    """A typo in an agent name gets a 'did you mean' fix."""
    problem = only_problem("""
agents:
  architect: {outputs: [design]}
  dev: {inputs: [archtect.design]}
""")
    assert isinstance(problem, errors.UnknownAgentError)
    assert "archtect" == problem.value and "did you mean 'architect'?" in problem.fix


def test_bare_input_must_be_supplied() -> None:
    """A bare input name must come from inputs: or --set; supplying it makes the plan valid."""
    text = "agents:\n  a: {inputs: [topic]}\n"
    problem = only_problem(text)
    assert isinstance(problem, errors.MissingProducerError)
    assert "--set topic=VALUE" in problem.fix
    assert {"topic": "AI"} == loads_plan(text, {"topic": "AI"}).inputs


def test_every_problem_is_reported_not_just_the_first() -> None:
    """Problems in different agents, groups and sections all come back together."""
    problems = problems_of("""
name: many
agents:
  a: {duration: 1 fortnight, outputs: [x], tmeout: 3s}
  b: {inputs: [a.y, zz.q], outputs: [y], priority: high}
  c: {inputs: [d.w], outputs: [v]}
  d: {inputs: [c.v], outputs: [w]}
groups:
  g: {agents: [a, nope]}
resource_manager:
  resource_pool: {computational: {total_cpu_units: -1}}
""")
    kinds = sorted(type(p).__name__ for p in problems)
    assert [
        "CycleError",
        "DurationError",
        "InvalidValueError",
        "InvalidValueError",
        "MissingProducerError",
        "UnknownAgentError",
        "UnknownAgentError",
        "UnknownKeyError",
    ] == kinds
    assert all(p.location.line is not None for p in problems)


def test_unknown_key_suggests_the_right_one() -> None:
    """A misspelt key names the line and the key it probably meant."""
    problem = only_problem("agents:\n  a:\n    duration: 1s\n    optional_input: [b.x]\n")
    assert isinstance(problem, errors.UnknownKeyError)
    assert 4 == problem.location.line and "optional_inputs" in problem.fix


def test_unknown_key_without_a_close_one_lists_the_known_keys() -> None:
    """No near miss: the fix says to remove it, then (a new sentence) which keys there are."""
    problem = only_problem(
        "resource_manager:\n  resource_pool:\n    shared: {name: farm, zzz: 5s}\nagents: {a: {}}\n"
    )
    assert isinstance(problem, errors.UnknownKeyError)
    assert "remove it. Known keys: name, holder_check_interval" == problem.fix


def test_unknown_top_level_key() -> None:
    """An unknown section is reported with the closest known one."""
    problem = only_problem("agents: {a: {}}\nresource_manger: {}\n")
    assert isinstance(problem, errors.UnknownKeyError) and "resource_manager" in problem.fix


def test_yaml_syntax_error_has_a_line() -> None:
    """Broken YAML raises PlanSyntaxError pointing at the line."""
    with pytest.raises(errors.PlanSyntaxError) as caught:
        loads_plan("agents:\n  a: {outputs: [x]\n  b: {}\n", file="broken.yaml")
    assert caught.value.location.line is not None and "broken.yaml" in str(caught.value)


@pytest.mark.parametrize("text", ["", "- a\n- b\n", "42\n", "just text\n"])
def test_a_plan_must_be_a_mapping(text: str) -> None:
    """Empty files, lists and scalars are rejected with the expected top-level shape."""
    with pytest.raises(errors.PlanSyntaxError, match="mapping"):
        loads_plan(text)


def test_missing_file() -> None:
    """A path that does not exist says so and where examples live."""
    with pytest.raises(errors.PlanFileNotFoundError, match="plans/"):
        load_plan(Path("no/such/plan.yaml"))


def test_no_agents() -> None:
    """A plan without agents says how to add one."""
    problem = only_problem("name: empty\n")
    assert "defines no agents" in problem.message


def test_agent_in_two_groups() -> None:
    """An agent may belong to one group only."""
    problem = only_problem("""
agents: {a: {}, b: {}}
groups:
  one: {agents: [a, b]}
  two: {agents: [b]}
""")
    assert isinstance(problem, errors.GroupError) and "'b' is in two groups" in problem.message


def test_parallel_group_cannot_hold_a_data_dependency() -> None:
    """Agents of a parallel group start together, so one cannot need another's output."""
    problem = only_problem("""
agents:
  a: {outputs: [x]}
  b: {inputs: [a.x]}
groups:
  g: {agents: [a, b]}
""")
    assert isinstance(problem, errors.GroupError) and "parallel: false" in problem.fix


def test_sequential_group_may_hold_a_data_dependency_in_order() -> None:
    """parallel: false runs members in list order, so a forward dependency is fine."""
    plan = loads_plan("""
agents:
  a: {outputs: [x]}
  b: {inputs: [a.x]}
groups:
  g: {agents: [a, b], parallel: false}
""")
    assert ["a", "b"] == plan.groups["g"].agents


def test_ownership_clash_between_rules() -> None:
    """One key owned by two agents is an OwnershipClashError."""
    problem = only_problem("""
agents: {pm: {}, architect: {}}
context_conflicts:
  resolution_mechanisms:
    conflict_prevention:
      ownership_rules: {pm: [requirements], architect: [requirements]}
""")
    assert isinstance(problem, errors.OwnershipClashError)


def test_write_to_a_key_owned_by_another_agent() -> None:
    """Declaring a write to another agent's key is caught before the run."""
    problem = only_problem("""
agents:
  pm: {}
  ux_expert: {writes: [requirements]}
context_conflicts:
  resolution_mechanisms:
    conflict_prevention:
      ownership_rules: {pm: [requirements]}
""")
    assert isinstance(problem, errors.OwnershipClashError)
    assert "'ux_expert' writes 'requirements', which 'pm' owns" in problem.message


def test_setting_of_another_kind() -> None:
    """A command setting on a simulate agent says which kind it belongs to."""
    problem = only_problem("agents:\n  a: {kind: simulate, command: [ls]}\n")
    assert "set kind: command" in problem.fix


def test_default_for_an_unknown_output() -> None:
    """Defaults must name the agent's own outputs."""
    problem = only_problem("agents:\n  a: {outputs: [summary], defaults: {sumary: ''}}\n")
    assert "did you mean 'summary'?" in problem.fix


def test_extension_is_at_most_five_minutes() -> None:
    """The seed caps a barrier extension at 5 minutes."""
    problem = only_problem("""
agents: {a: {}}
barrier_synchronization:
  timeout_handling:
    timeout_strategies:
      extend_timeout: {extension: 10_minutes}
""")
    assert "at most 5 minutes" in problem.message


def test_error_classes_carry_their_value() -> None:
    """Every error keeps the offending value and renders expected/found/fix."""
    error = errors.MissingProducerError("m", value="qa.code", expected="e", found="f", fix="x")
    assert "qa.code" == error.value
    assert "expected e; found f. Fix: x" in str(error)
    assert issubclass(errors.PlanError, ValueError)


def test_agent_defined_twice() -> None:
    """YAML would keep the second silently; the plan reports both lines instead."""
    problem = only_problem("agents:\n  a: {outputs: [x]}\n  b: {}\n  a: {outputs: [y]}\n")
    assert isinstance(problem, errors.DuplicateAgentError)
    assert 4 == problem.location.line and "line 2" in problem.found


def test_agent_ids_are_ascii() -> None:
    """Ids travel into activity ids and file names, so only ASCII letters, digits, _ and -."""
    problem = only_problem("agents:\n  agent.one: {}\n  ok: {}\n")
    assert "invalid agent id 'agent.one'" in problem.message
    assert "invalid agent id 'grün'" in only_problem("agents:\n  grün: {}\n").message


def test_agent_larger_than_the_pool() -> None:
    """An agent that could never fit the resource pool is rejected at validation."""
    problem = only_problem("""
agents:
  huge: {resource_requirements: {cpu: 150, memory: low}}
resource_manager:
  resource_pool: {computational: {total_cpu_units: 100}}
  allocation_strategy: {resource_sharing: {cpu_oversubscription: 1.2}}
""")
    assert isinstance(problem, errors.ResourceFitError)
    assert "needs cpu 150 units but the pool has 120" in problem.message


def test_an_agent_without_requirements_needs_the_default_which_the_pool_must_hold() -> None:
    """An agent that sets no resource_requirements needs the default (25 units, "medium"): a
    pool smaller than that is a validation error naming the default and the fix, not a crash
    of compile's admission planning (found by tests/test_plan_fuzz.py)."""
    problem = only_problem("""
agents:
  a: {outputs: [x]}
resource_manager:
  resource_pool: {computational: {total_cpu_units: 1}}
""")
    assert isinstance(problem, errors.ResourceFitError)
    assert (
        "agent 'a' needs cpu 25 units (the default: it sets no resource_requirements) but the "
        "pool has 1" in problem.message
    )
    assert "set its resource_requirements.cpu to at most 1" in str(problem)


def test_consistency_rule_on_an_unknown_key() -> None:
    """A consistency rule must compare keys the run produces."""
    problem = only_problem("""
agents:
  ux_expert: {outputs: [platform]}
  architect: {outputs: [platform]}
context_conflicts:
  consistency_rules:
    - {keys: [ux_expert.platform, architect.platfrom], must: equal}
""")
    assert isinstance(problem, errors.MissingProducerError)
    assert "did you mean 'architect.platform'?" in problem.fix and 7 == problem.location.line


@pytest.mark.parametrize(
    ("shared", "says"),
    [
        ("'build farm'", "a shared pool name is 1-80 ASCII letters, digits"),
        ("{holder_check_interval: 5s}", "the key 'name' is required here; add it"),
        ("{name: farm, holder_check_interval: 0.1s}", "holder_check_interval must be between"),
        ("[farm]", "valid dictionary"),
    ],
)
def test_invalid_shared_pool(shared: str, says: str) -> None:
    """A shared pool spec that cannot name a pool workflow is a plan error at its line."""
    problem = only_problem(f"""
agents:
  a: {{}}
resource_manager:
  resource_pool:
    shared: {shared}
""")
    assert "resource_manager.resource_pool.shared" in problem.location.path
    assert 1 == problem.render().count("found"), problem.render()
    assert 6 == problem.location.line
    assert says in problem.message


def test_a_cache_path_in_the_plan_says_where_the_cache_file_is_set() -> None:
    """caching_system.path would be ignored (the file is each worker's): a plan error at its
    line that names PEE_CACHE_PATH."""
    problem = only_problem("""
agents:
  a: {}
caching_system:
  path: /tmp/cache.db
""")
    assert "caching_system.path" in problem.location.path
    assert 5 == problem.location.line
    assert "PEE_CACHE_PATH" in problem.message


def test_shared_pool_reaches_the_compiled_plan() -> None:
    """`shared: NAME` is short for {name: NAME}; the compiled plan's resources carry it."""
    plan = compile_plan(
        loads_plan(
            """
agents:
  a: {}
resource_manager:
  resource_pool:
    shared: build-farm
""",
            file="plan.yaml",
        )
    )
    assert plan.resources.shared == SharedPool("build-farm", holder_check_interval_s=30.0)


def test_group_depends_on_cycle_is_reported_at_the_depends_on_line() -> None:
    """Groups whose depends_on entries loop are a cycle between groups, reported at the first
    group's depends_on entry (issue 19: it was an agent's `inputs` line, which had none)."""
    problem = only_problem("""
agents:
  a: {outputs: [x]}
  b: {outputs: [y]}
groups:
  first:
    agents: [a]
    depends_on: [second]
  second:
    agents: [b]
    depends_on:
      - first
""")
    assert isinstance(problem, errors.CycleError)
    assert ["first", "second"] == problem.cycle
    assert "between groups: first -> second -> first" in problem.message
    assert 8 == problem.location.line and "groups.first.depends_on[0]" == problem.location.path
    assert "depends_on" in (problem.fix or "")


def test_cycle_through_data_and_a_depends_on_is_reported_at_the_depends_on() -> None:
    """A loop of one data input and one group depends_on is reported at the depends_on entry,
    the only place in it a group's order is written."""
    problem = only_problem("""
agents:
  a: {outputs: [x]}
  b: {inputs: [a.x], outputs: [y]}
groups:
  early:
    agents: [a]
    depends_on: [late]
  late: {agents: [b]}
""")
    assert isinstance(problem, errors.CycleError)
    assert ["a", "b"] == problem.cycle
    assert 8 == problem.location.line and "groups.early.depends_on[0]" == problem.location.path
    assert "early" in (problem.fix or "") and "late" in (problem.fix or "")


def test_data_cycle_is_reported_at_the_input_that_closes_it() -> None:
    """A loop of data inputs is reported at the reference in the first agent's inputs."""
    problem = only_problem("""
agents:
  a:
    outputs: [x]
    inputs:
      - b.y
  b: {inputs: [a.x], outputs: [y]}
""")
    assert isinstance(problem, errors.CycleError)
    assert ["a", "b"] == problem.cycle
    assert 6 == problem.location.line and "agents.a.inputs[0]" == problem.location.path
