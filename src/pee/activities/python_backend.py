"""The `python` backend: calls ``callable: package.module:function`` with the agent's inputs.

- The module is imported on the worker (it must be importable there: installed, or on
  PYTHONPATH). The part after ":" may be dotted (``module:Class.method``). A module that cannot be
  imported or a name that is missing or not callable fails non-retryably (``CallableNotFound``).
- Inputs become keyword arguments named after the output part of the input reference (after
  its first dot, as the plan language splits "agent.output"), with ".", "-" and spaces as "_":
  "pm.user_stories" -> ``user_stories``, "pm.prd.md" -> ``prd_md``, a plan input "topic" ->
  ``topic``. Two inputs with the same keyword name (e.g. "pm.notes" and "qa.notes") are a plan
  mistake (``CallableSignatureError``): rename one output or wrap the function. Only inputs
  present in the snapshot are passed, so an optional input that was not ready, or a blocking one
  missing after a partial barrier, leaves its parameter at its default. A function that cannot
  take the keywords it is given (checked before the call) fails non-retryably too.
- ``async def`` functions are awaited (and cancelled with the agent); plain functions run in a
  worker thread so heartbeats keep flowing. A thread cannot be interrupted: a cancelled sync
  function runs to its end in the background and its result is dropped.
- The function returns a mapping with every declared output and shared write
  (pee.activities.backend_contract). An exception it raises fails the attempt retryably, with its
  class name as the error type (so RetrySpec.non_retryable can name it), unless it raises a
  temporalio ApplicationError itself.
"""

from __future__ import annotations

import asyncio
import functools
import importlib
import inspect
import re
from collections.abc import Callable
from typing import Any

from temporalio.exceptions import ApplicationError

from pee.activities.backend_contract import build_result, invalid_settings, text_setting
from pee.activities.progress import Progress
from pee.activities.types import AgentResult, AgentTask

SPEC = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")


def keyword(reference: str) -> str:
    """The keyword argument an input reference is passed as."""
    name = reference.split(".", 1)[-1].strip()
    return re.sub(r"[.\- ]", "_", name)


def keyword_arguments(task: AgentTask) -> dict[str, Any]:
    names: dict[str, str] = {}
    declared = [*task.agent.inputs, *task.agent.optional_inputs]
    for reference in declared:
        name = keyword(reference)
        if not name.isidentifier():
            raise _signature_error(
                task,
                f"input '{reference}' gives the keyword '{name}', which is not a Python identifier",
            )
        if name in names and names[name] != reference:
            raise _signature_error(
                task,
                f"inputs '{names[name]}' and '{reference}' would both be passed as "
                f"keyword '{name}'; rename one of the outputs or wrap the function",
            )
        names[name] = reference
    # inputs in the snapshot that are not declared (should not happen) go by the same rule
    for reference in task.inputs:
        names.setdefault(keyword(reference), reference)
    return {name: task.inputs[ref] for name, ref in names.items() if ref in task.inputs}


def _signature_error(task: AgentTask, message: str) -> ApplicationError:
    return ApplicationError(
        f"agent '{task.agent.id}': {message}", type="CallableSignatureError", non_retryable=True
    )


def _not_found(task: AgentTask, spec: str, why: str) -> ApplicationError:
    return ApplicationError(
        f"agent '{task.agent.id}': cannot load callable '{spec}': {why}; it must be importable "
        "on the worker (installed, or on PYTHONPATH) as 'package.module:function'",
        type="CallableNotFound",
        non_retryable=True,
    )


def load(task: AgentTask) -> Callable[..., Any]:
    spec = text_setting(task, "callable", required=True) or ""
    if not SPEC.match(spec.strip()):
        raise invalid_settings(
            task, f"'callable' must look like 'package.module:function', found {spec!r}"
        )
    module_name, _, attribute = spec.strip().partition(":")
    try:
        target: Any = importlib.import_module(module_name)
    except Exception as err:  # ImportError, or the module itself failing at import
        raise _not_found(
            task, spec, f"importing '{module_name}' failed: {type(err).__name__}: {err}"
        ) from None
    for part in attribute.split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            raise _not_found(
                task, spec, f"'{module_name}' has no attribute '{attribute}'"
            ) from None
    if not callable(target):
        raise _not_found(task, spec, f"'{attribute}' is a {type(target).__name__}, not a function")
    return target


def _is_async(function: Callable[..., Any]) -> bool:
    while isinstance(function, functools.partial):
        function = function.func
    return inspect.iscoroutinefunction(function) or inspect.iscoroutinefunction(
        getattr(function, "__call__", None)  # noqa: B004 - an object with an async __call__
    )


async def run(task: AgentTask, progress: Progress, scale: float) -> AgentResult:
    function = load(task)
    kwargs = keyword_arguments(task)
    try:
        inspect.signature(function).bind(**kwargs)
    except TypeError as err:
        raise _signature_error(
            task,
            f"'{task.agent.settings.get('callable')}' cannot be called with keywords "
            f"{sorted(kwargs)}: {err}",
        ) from None
    except ValueError:
        pass  # no signature to check (some builtins): let the call decide
    progress.report(message=f"calling {task.agent.settings.get('callable')}")
    if _is_async(function):
        produced = await function(**kwargs)
    else:
        produced = await asyncio.to_thread(function, **kwargs)
        if inspect.isawaitable(produced):
            produced = await produced
    return build_result(
        task, produced, source=f"the result of {task.agent.settings.get('callable')}"
    )
