"""The template sandbox root is the engine's, never the plan's (src/pee/engine/language/sandbox.py).

Issue 19: a plan could set `settings: {plan_dir: /}` on a template agent, and compile kept it
(`setdefault`), so `template: /etc/passwd` rendered into the outputs and the history. Now a plan
that names plan_dir is refused, compile always writes the root itself, and template paths that
leave the root are refused at validate as they are by the worker.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from pee.activities.types import AgentTask
from pee.engine.compile.graph import compile_plan
from pee.engine.compile.load import load_plan
from pee.engine.language import errors
from tests.helpers import PROJECT_ROOT
from tests.test_activities import failure

TEMPLATE = "hello {{topic}}\n"


def plan_in(folder: Path, agents: str) -> Path:
    (folder / "templates").mkdir(exist_ok=True)
    (folder / "templates" / "t.md").write_text(TEMPLATE)
    path = folder / "plan.yaml"
    path.write_text(f"name: sandboxed\ninputs: {{topic: x}}\nagents:\n{agents}")
    return path


def problems(path: Path, **variables: object) -> list[errors.PlanError]:
    with pytest.raises(errors.PlanValidationError) as caught:
        load_plan(path, variables)
    return caught.value.problems


def test_a_plan_cannot_choose_the_sandbox_root(tmp_path: Path) -> None:
    """settings.plan_dir on any agent is refused at its own line, whatever the value."""
    path = plan_in(
        tmp_path,
        (
            "  a:\n    kind: template\n    template: /etc/passwd\n    inputs: [topic]\n"
            "    outputs: [doc]\n    settings: {plan_dir: /}\n"
            f"  b: {{kind: command, command: [cat], settings: {{plan_dir: '{tmp_path}'}}}}\n"
        ),
    )
    found = problems(path)
    roots = [p for p in found if "sets settings.plan_dir" in p.message]
    assert ["agents.a.settings.plan_dir", "agents.b.settings.plan_dir"] == [
        p.location.path for p in roots
    ]
    assert all(isinstance(p, errors.SandboxError) for p in roots)
    assert 9 == roots[0].location.line
    # and the template itself is still judged against the plan's folder
    assert any("'/etc/passwd', outside" in p.message for p in found)


def test_validate_refuses_it_on_the_command_line(tmp_path: Path) -> None:
    path = plan_in(
        tmp_path,
        "  a: {kind: template, template: templates/t.md, inputs: [topic], "
        "outputs: [doc], settings: {plan_dir: /}}\n",
    )
    done = subprocess.run(
        [sys.executable, "starter.py", "validate", str(path)],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert 2 == done.returncode
    assert "agent 'a' sets settings.plan_dir" in done.stderr + done.stdout


@pytest.mark.parametrize(
    "template", ["/etc/passwd", "../outside.md", "templates/../../outside.md", "templates/link.md"]
)
def test_template_paths_that_leave_the_plans_folder_are_refused(
    tmp_path: Path, template: str
) -> None:
    """Absolute paths, `..` and a symlink pointing out of the folder: refused at validate."""
    folder = tmp_path / "plan"
    folder.mkdir()
    (tmp_path / "outside.md").write_text("secret\n")
    path = plan_in(folder, f"  a: {{kind: template, template: '{template}', outputs: [doc]}}\n")
    (folder / "templates" / "link.md").symlink_to(tmp_path / "outside.md")
    [problem] = problems(path)
    assert isinstance(problem, errors.SandboxError)
    assert "agents.a.template" == problem.location.path
    assert str(folder.resolve()) in problem.message


@pytest.mark.parametrize(
    "template", ["templates/t.md", "./templates/../templates/t.md", "builtin:prd"]
)
def test_templates_inside_the_folder_or_built_in_are_fine(tmp_path: Path, template: str) -> None:
    path = plan_in(
        tmp_path,
        f"  a: {{kind: template, template: '{template}', inputs: [topic], outputs: [doc]}}\n",
    )
    agent = compile_plan(load_plan(path)).agent("a")
    assert str(tmp_path.resolve()) == agent.settings["plan_dir"]


def test_compile_writes_the_root_itself(tmp_path: Path) -> None:
    """Even a plan changed after validation gets the plan's folder as its root (compile
    overwrites; it used to keep the plan's value)."""
    path = plan_in(
        tmp_path,
        "  a: {kind: template, template: templates/t.md, inputs: [topic], outputs: [doc]}\n",
    )
    plan = load_plan(path)
    plan.agents["a"].settings["plan_dir"] = "/"
    assert str(tmp_path.resolve()) == compile_plan(plan).agent("a").settings["plan_dir"]


def test_the_workers_check_still_holds_for_the_compiled_root(tmp_path: Path) -> None:
    """The compiled root is what the worker enforces: /etc/passwd is refused when it runs."""
    path = plan_in(
        tmp_path,
        "  a: {kind: template, template: templates/t.md, inputs: [topic], outputs: [doc]}\n",
    )
    agent = compile_plan(load_plan(path)).agent("a")
    agent.settings["template"] = "/etc/passwd"
    error = failure(AgentTask(agent=agent, inputs={"topic": "x"}))
    assert ("TemplateAccessDenied", True) == (error.type, error.non_retryable)


def test_only_a_bmad_workflow_gets_the_bmad_dir_root(tmp_path: Path) -> None:
    """--bmad-dir roots the BMAD converter's template steps; a native plan naming the same
    folder as plan_dir is refused like any other."""
    bmad = tmp_path / "bmad"
    (bmad / "templates").mkdir(parents=True)
    (bmad / "templates" / "prd-tmpl.yaml").write_text(
        "template: {id: prd, name: PRD, version: 1, output: {format: markdown, "
        "filename: docs/prd.md}}\nsections:\n  - {id: goals, title: Goals}\n"
    )
    given = {"bmad_dir": str(bmad), "bmad_templates": ["prd-tmpl"]}
    pm = compile_plan(load_plan(PROJECT_ROOT / "plans" / "bmad-greenfield.yaml", given)).agent("pm")
    assert ("template", str(bmad.resolve())) == (pm.kind, pm.settings["plan_dir"])
    # the same folder spelled another way is the same root
    roundabout = {**given, "bmad_dir": str(bmad / ".." / "bmad")}
    pm = compile_plan(load_plan(PROJECT_ROOT / "plans" / "bmad-greenfield.yaml", roundabout))
    assert str(bmad.resolve()) == pm.agent("pm").settings["plan_dir"]
    native = plan_in(
        tmp_path,
        "  a: {kind: template, template: templates/prd-tmpl.yaml, "
        f"outputs: [doc], settings: {{plan_dir: '{bmad}'}}}}\n",
    )
    [problem] = problems(native, **given)
    assert "sets settings.plan_dir" in problem.message
