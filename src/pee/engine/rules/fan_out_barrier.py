"""A fan-out's barrier over items, as pure functions: which run-time value is a list of items,
what the group's success criteria mean once the item count is known, how the per-item outputs
collect into one list, and the fan-out row of the report.

The barrier itself is pee.engine.rules.barrier's decision table, asked over the instances
(`dev[0]`, `dev[1]`, ...) instead of the group's agents, so every branch (wait, extend, partial,
fallback of the failed items one at a time, defaults, fail) works over items exactly as it does
over agents. What differs is decided here: an empty list passes at once, `all` means every item,
and `at_least: N` is capped at the item count. The design: design-notes/fan-out.md, section 4.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

# above this many items a fan-out fails naming the count (Airflow stops at 1,024): the report and
# the Web UI stay usable below it
MAX_ITEMS = 10_000


class FanOutSourceError(ValueError):
    """The value a for_each names is not a list of items (nor text that parses as one), or holds
    more than MAX_ITEMS."""

    def __init__(self, message: str, source: str, found: Any) -> None:
        super().__init__(message)
        self.message = message
        self.source = source
        self.found = found


def items_of(source: str, value: Any) -> list[Any]:
    """The items of the run-time value of `source` ("agent.output"): a list as it is, text that
    parses as a JSON list (LLM agents answer in text); anything else is refused, since a map over
    a mapping's keys or a scalar is a plan mistake far more often than a wish."""
    found = value
    if isinstance(value, str):
        try:
            found = json.loads(value)
        except ValueError:
            raise FanOutSourceError(
                f"for_each {source}: the value is text that is not a JSON list "
                f"({_preview(value)}); the agent must output a list, or text holding one",
                source,
                value,
            ) from None
    if not isinstance(found, list):
        raise FanOutSourceError(
            f"for_each {source}: expected a list of items, found {type(found).__name__} "
            f"{_preview(found)}; make '{source}' a list (a mapping's keys or values must be "
            "listed explicitly)",
            source,
            value,
        )
    if len(found) > MAX_ITEMS:
        raise FanOutSourceError(
            f"for_each {source}: {len(found)} items, more than the {MAX_ITEMS} a fan-out may "
            "have; split the list, or fan out over groups of items",
            source,
            len(found),
        )
    return found


def _preview(value: Any, limit: int = 80) -> str:
    text = json.dumps(value, default=str) if not isinstance(value, str) else repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


@dataclass(frozen=True)
class ItemCriteria:
    """The group's success criteria over a known number of items (barrier.BarrierView's
    criteria/count)."""

    kind: str
    count: int


def item_criteria(kind: str, count: int, items: int) -> ItemCriteria:
    """`all`: every item; `at_least: N`: min(N, items) items (a list shorter than N must not fail
    a fan-out whose every item succeeded); `at_least_one` stays as it is."""
    if kind == "at_least":
        return ItemCriteria("at_least", min(count, items))
    if kind == "all":
        return ItemCriteria("all", items)
    return ItemCriteria(kind, count)


def collect(items: int, values: Mapping[int, Any], default: Any = None) -> list[Any]:
    """One output of every instance as one list in item order: slot `index` holds that item's
    value whenever it ended, so retries and completion order never move or duplicate an item;
    an item without a value (failed, no declared default) holds `default`."""
    return [values.get(index, default) for index in range(items)]


@dataclass(frozen=True)
class FanOutSummary:
    """The fan-out row of the report: how the items ended and how long they took."""

    items: int
    succeeded: int
    failed: int
    defaulted: int
    p50_s: float | None
    p95_s: float | None
    max_s: float | None


# instance statuses counted as failed items (pee.engine.states.AgentStatus values)
FAILED_ITEM_STATUSES = ("failed", "timed_out", "cancelled", "skipped")


def summarise(statuses: Sequence[str], durations: Sequence[float | None]) -> FanOutSummary:
    """The row over every instance's status (AgentStatus value) and duration (None: never ran)."""
    taken = sorted(d for d in durations if d is not None)
    return FanOutSummary(
        items=len(statuses),
        succeeded=sum(s == "succeeded" for s in statuses),
        failed=sum(s in FAILED_ITEM_STATUSES for s in statuses),
        defaulted=sum(s == "defaulted" for s in statuses),
        p50_s=_percentile(taken, 0.5),
        p95_s=_percentile(taken, 0.95),
        max_s=taken[-1] if taken else None,
    )


def _percentile(ordered: Sequence[float], fraction: float) -> float | None:
    """Nearest-rank percentile of sorted values (None when there are none)."""
    if not ordered:
        return None
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]
