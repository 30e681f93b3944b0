"""The workflow sandbox with the SDK's per-call overhead cut, its protection unchanged.

temporalio 1.35's sandbox runs every call into a workflow instance as `exec` of a source
string inside its restricting importer. Two kinds of calls are frequent:

- one per activation (the workflow's code runs): the string is compiled again each time;
- one or two per payload per pass (codec, External Storage, references; three passes each way)
  asking the instance for the payload's serialization context: a lookup of the pending
  command in the instance's own tables, compiled and run inside the importer each time (about
  95 us of CPU per call on this machine, 2,200 calls for a 200-agent plan run).

This runner keeps the SDK's sandbox for everything the workflow's code does (same
restrictions, same per-run module re-imports, the activation still runs inside the importer)
and changes only how the calls are made: each source string is compiled once per process, and
the context lookups, which are SDK code that imports nothing and touches no restricted module,
call the sandboxed instance directly instead of going through `exec` and the importer.
Decision: docs/adr/0016-lean-workflow-sandbox-runner.md; measurement: bench/README.md
("overhead").

It reaches into `temporalio.worker.workflow_sandbox._runner._Instance` (private): pyproject pins
temporalio's minor version, and tests/test_sandbox_runner.py fails if the class changes shape.
"""

from __future__ import annotations

from types import CodeType
from typing import Any

import temporalio.converter
from temporalio.converter._extstore import StorageDriverStoreContext
from temporalio.worker import _command_aware_visitor
from temporalio.worker._workflow_instance import WorkflowInstance, WorkflowInstanceDetails
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner
from temporalio.worker.workflow_sandbox._runner import _Instance

from pee.engine import gc_pause
from pee.engine.gc_pause import paused_gc
from pee.runtime.sandbox_code_cache import cached_imports

# the SDK passes a handful of constant strings; compiled once, they are shared by all runs
_COMPILED: dict[str, CodeType] = {}


def _compiled(code: str) -> CodeType:
    found = _COMPILED.get(code)
    if found is None:
        found = _COMPILED[code] = compile(code, "<string>", "exec")
    return found


class _LeanInstance(_Instance):
    def _create_instance(self) -> None:
        # the per-run re-import of the workflow's module runs its body again but need not
        # compile it again (pee.runtime.sandbox_code_cache)
        with cached_imports():
            super()._create_instance()

    def activate(self, act: Any) -> Any:
        if any(job.HasField("remove_from_cache") for job in act.jobs):
            # evicted: its objects need not stay frozen for it (pee.engine.gc_pause.hold)
            try:
                return super().activate(act)
            finally:
                gc_pause.release(self)
        if not any(job.HasField("initialize_workflow") for job in act.jobs):
            return super().activate(act)
        # a run's (or continuation's) first activation, timed by the SDK's 2 s deadlock
        # detector like any other, decodes the input and builds per-agent state: a 20,000-agent
        # plan allocates about a million objects, and with the collector on it walked that
        # growing heap again and again (a third of the task). Later activations keep the
        # collector's usual rhythm: paused in all of them, its put-off work would pile up.
        gc_pause.take_hold_request()
        with paused_gc():
            completion = super().activate(act)
        if gc_pause.take_hold_request():
            # a large run's objects live as long as it does: out of the full collections'
            # walks, which otherwise land inside its later activations (gc_pause.hold)
            gc_pause.hold(self)
        return completion

    def _run_code(self, code: str, **extra_globals: Any) -> None:
        # exec accepts the code object as it accepts the string
        super()._run_code(_compiled(code), **extra_globals)  # type: ignore[arg-type]

    def _in_sandbox(self) -> Any:
        return self.globals_and_locals["__temporal_in_sandbox"]

    def get_serialization_context(
        self, command_info: _command_aware_visitor.CommandInfo | None
    ) -> temporalio.converter.SerializationContext | None:
        self.importer.restriction_context.is_runtime = True
        try:
            return self._in_sandbox().get_serialization_context(command_info)
        finally:
            self.importer.restriction_context.is_runtime = False

    def get_external_store_context(
        self, command_info: _command_aware_visitor.CommandInfo | None
    ) -> StorageDriverStoreContext:
        self.importer.restriction_context.is_runtime = True
        try:
            return self._in_sandbox().get_external_store_context(command_info)
        finally:
            self.importer.restriction_context.is_runtime = False


class LeanSandboxedWorkflowRunner(SandboxedWorkflowRunner):
    """SandboxedWorkflowRunner (same restrictions) whose instances make their calls cheaply."""

    def create_instance(self, det: WorkflowInstanceDetails) -> WorkflowInstance:
        return _LeanInstance(det, self.runner_class, self.restrictions)
