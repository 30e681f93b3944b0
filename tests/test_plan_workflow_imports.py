"""The sandbox's per-run import of pee.workflows.plan_workflow: few passes through its importer,
and every module whose types the workflow decodes in the sandbox's sys.modules.

The sandbox imports the workflow's module afresh for every run; each module it passes through
from the host costs about a quarter of a millisecond (bench/overhead.py), so plan_workflow
imports its collaborators through one module (pee.workflows.plan_workflow_imports). But the
payload converter resolves a dataclass's type hints in the sandbox's sys.modules, where only
modules imported by name appear: a decoded type whose module is missing there fails the run's
workflow task with a NameError.
"""

from __future__ import annotations

import dataclasses
import enum
import typing
from types import ModuleType
from typing import Any

from temporalio.worker.workflow_sandbox import SandboxRestrictions
from temporalio.worker.workflow_sandbox._importer import Importer
from temporalio.worker.workflow_sandbox._restrictions import RestrictionContext
from temporalio.workflow import _Definition

from pee.activities.agents import ACTIVITIES, lookup_cached_output
from pee.activities.liveness import LIVENESS_ACTIVITIES
from pee.activities.run_rows import flush_run_rows
from pee.activities.snapshot_cache import store_context_snapshot
from pee.workflows.agent_batch import AgentBatchWorkflow
from pee.workflows.plan_workflow import PlanWorkflow

MODULE = PlanWorkflow.__module__
# about 40 before the collaborators were gathered into one module
MOST_PASSTHROUGHS = 20


def sandbox_import() -> tuple[dict[str, ModuleType], list[str], Importer]:
    """Import the workflow's module as the sandbox does for a run: its sys.modules afterwards,
    and the modules passed through from the host on the way."""
    importer = Importer(
        SandboxRestrictions.default, RestrictionContext(), workflow_module_name=MODULE
    )
    passed: list[str] = []
    look_up = importer._maybe_passthrough_module

    def counting(name: str) -> Any:
        found = look_up(name)
        if found is not None:
            passed.append(name)
        return found

    importer._maybe_passthrough_module = counting  # type: ignore[method-assign]
    with importer.applied():
        exec(f"from {MODULE} import PlanWorkflow", {})
    return importer.new_modules, passed, importer


def decoded_types() -> list[type]:
    """Every dataclass and enum the workflow decodes, nested ones too: the arguments of its run,
    signals, updates and queries, and what its activities and children return."""
    definition = _Definition.from_class(PlanWorkflow)
    assert definition is not None
    hints: list[Any] = []
    for handler in [
        definition.run_fn,
        *(each.fn for each in definition.signals.values()),
        *(each.fn for each in definition.updates.values()),
        *(each.fn for each in definition.queries.values()),
    ]:
        hints += [hint for name, hint in typing.get_type_hints(handler).items() if name != "return"]
    for started in [
        *ACTIVITIES,
        *LIVENESS_ACTIVITIES,
        lookup_cached_output,
        store_context_snapshot,
        flush_run_rows,
        AgentBatchWorkflow.run,
    ]:
        hints.append(typing.get_type_hints(started)["return"])
    found: list[type] = []

    def walk(hint: Any) -> None:
        if hint in found:
            return
        for argument in typing.get_args(hint):
            walk(argument)
        if isinstance(hint, type) and dataclasses.is_dataclass(hint):
            found.append(hint)
            for field_hint in typing.get_type_hints(hint).values():
                walk(field_hint)
        elif isinstance(hint, type) and issubclass(hint, enum.Enum):
            found.append(hint)

    for hint in hints:
        walk(hint)
    return found


def test_a_runs_import_passes_few_modules_through_the_sandbox() -> None:
    _, passed, _ = sandbox_import()
    assert "pee.workflows.plan_workflow_imports" in passed
    assert len(passed) <= MOST_PASSTHROUGHS, passed


def test_every_decoded_type_resolves_its_hints_in_the_sandbox() -> None:
    """As the payload converter does when it decodes one, inside the sandbox of a run."""
    importer = sandbox_import()[2]
    decoded = decoded_types()
    assert {"PlanRunInput", "AgentResult", "AgentOutcome", "PoolGrant"} <= {
        kind.__name__ for kind in decoded
    }
    unresolved: list[str] = []
    with importer.applied():
        for kind in decoded:
            try:
                typing.get_type_hints(kind)
            except NameError as err:
                unresolved.append(f"{kind.__module__}.{kind.__qualname__}: {err}")
    assert unresolved == []
