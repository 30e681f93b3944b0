"""Whether a value can travel to the workflow as plain JSON.

Its own module, free of pydantic: the plan language's models check plan values with it, and
every agent backend checks the outputs an agent returns, in a worker that loads no models.
"""

from __future__ import annotations

from typing import Any


def json_problem(value: Any) -> str | None:
    """Why ``value`` cannot travel to the workflow as JSON, or None when it can.

    Free-form values (settings, defaults, output values, plan inputs) end up in the compiled plan,
    which must be plain JSON: text keys (YAML also allows numbers, booleans and null as keys) and
    no other types. Iterative, so a deeply nested value cannot exhaust the stack.
    """
    stack: list[tuple[str, Any]] = [("", value)]
    while stack:
        where, item = stack.pop()
        at = f" at '{where}'" if where else ""
        if isinstance(item, dict):
            for key, child in item.items():
                if not isinstance(key, str):
                    return f"mapping keys must be text, found {key!r}{at}; quote the key"
                stack.append((f"{where}.{key}" if where else key, child))
        elif isinstance(item, list | tuple):
            stack.extend((f"{where}[{index}]", child) for index, child in enumerate(item))
        elif item is not None and not isinstance(item, str | int | float):
            return f"a {type(item).__name__} value{at} cannot be passed on as JSON"
    return None
