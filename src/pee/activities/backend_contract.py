"""What every real backend (command, python, http) shares: reading settings, and turning what the
agent produced into an AgentResult.

The output contract is the same for all three: a JSON object (a mapping) whose keys name the
agent's declared outputs and shared writes. Every declared output and write must be there (a
name that is both gets the same value in both); other keys are ignored. Values must be plain
JSON. Breaking the contract is a plan/program mistake, so it is non-retryable by default.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from temporalio import activity
from temporalio.exceptions import ApplicationError

from pee.activities.types import AgentResult, AgentTask
from pee.engine.language.json_values import json_problem


def invalid_settings(task: AgentTask, message: str) -> ApplicationError:
    # a plan mistake: retrying cannot help
    return ApplicationError(
        f"agent '{task.agent.id}': invalid {task.agent.kind} setting: {message}",
        type="InvalidAgentSettings",
        non_retryable=True,
    )


def text_setting(task: AgentTask, name: str, *, required: bool = False) -> str | None:
    value = task.agent.settings.get(name)
    if value is None:
        if required:
            raise invalid_settings(task, f"'{name}' is required for kind '{task.agent.kind}'")
        return None
    if not isinstance(value, str) or (required and not value.strip()):
        raise invalid_settings(task, f"'{name}' must be text, found {value!r}")
    return value


def number_setting(task: AgentTask, name: str, default: float, *, minimum: float = 0.0) -> float:
    value = task.agent.settings.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or value < minimum:
        raise invalid_settings(task, f"'{name}' must be a number >= {minimum}, found {value!r}")
    return float(value)


def contract_error(
    task: AgentTask, message: str, *, kind: str = "AgentContractError", retryable: bool = False
) -> ApplicationError:
    return ApplicationError(
        f"agent '{task.agent.id}': {message}", type=kind, non_retryable=not retryable
    )


def build_result(
    task: AgentTask, produced: Any, *, source: str, suffix: str = "", retryable: bool = False
) -> AgentResult:
    """`produced` (what the backend returned) checked against the agent's declarations.

    `source` says where it came from ("stdout of ['prog']"), `suffix` is appended to every error
    (the command backend adds the tail of stderr there).
    """
    agent = task.agent
    if not isinstance(produced, Mapping):
        raise contract_error(
            task,
            f"{source} must be a JSON object of outputs {agent.outputs}"
            f"{' and writes ' + str(agent.writes) if agent.writes else ''}, "
            f"found {type(produced).__name__}{suffix}",
            retryable=retryable,
        )
    declared = [*agent.outputs, *[key for key in agent.writes if key not in agent.outputs]]
    missing = [name for name in declared if name not in produced]
    if missing:
        raise contract_error(
            task,
            f"{source} lacks declared outputs {missing}; it gave {sorted(map(str, produced))}"
            f"{suffix}",
            kind="MissingOutputs",
            retryable=retryable,
        )
    for name in declared:
        problem = json_problem(produced[name])
        if problem:
            raise contract_error(
                task,
                f"{source}: output '{name}' is not plain JSON: {problem}{suffix}",
                retryable=retryable,
            )
    extra = [str(name) for name in produced if name not in declared]
    if extra:
        activity.logger.debug("agent '%s': ignoring undeclared outputs %s", agent.id, extra)
    return AgentResult(
        agent_id=agent.id,
        outputs={name: produced[name] for name in agent.outputs},
        writes={key: produced[key] for key in agent.writes},
        attempt=activity.info().attempt,
    )
