"""What makes a run easy to find and read in the Temporal Web UI: its search attributes (when
the server has them registered) and a static summary and details set when it starts."""

from __future__ import annotations

from typing import Any

from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import ListSearchAttributesRequest
from temporalio.client import Client
from temporalio.common import SearchAttributePair, TypedSearchAttributes
from temporalio.service import RPCError

from pee.engine.compiled import CompiledPlan
from pee.runtime.devserver import SEARCH_ATTRIBUTES
from pee.workflows import search

# the Web UI shows the summary on one line and the details as markdown
SUMMARY_CHARS = 200
DETAILS_GROUPS = 20
TYPES = {
    "Keyword": IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD,
    "KeywordList": IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD_LIST,
}


async def has_search_attributes(client: Client, namespace: str) -> bool:
    """Whether the namespace knows PeePlan, PeeStatus and PeeGroup with our types (the embedded
    dev server registers them; on another server, `temporal operator search-attribute create`).
    A server that will not say (no operator permission) counts as not having them."""
    try:
        response = await client.operator_service.list_search_attributes(
            ListSearchAttributesRequest(namespace=namespace)
        )
    except RPCError:
        return False
    custom = dict(response.custom_attributes)
    return all(custom.get(name) == TYPES[kind] for name, kind in SEARCH_ATTRIBUTES.items())


def initial_search_attributes(plan: CompiledPlan) -> TypedSearchAttributes:
    """Set at start, so the run is in the filtered list before its first workflow task."""
    return TypedSearchAttributes(
        [SearchAttributePair(search.PLAN, plan.name), SearchAttributePair(search.STATUS, "running")]
    )


def static_summary(plan: CompiledPlan, time_scale: float) -> str:
    scale = f", time scale {time_scale:g}" if time_scale != 1 else ""
    text = (
        f"plan {plan.name}: {len(plan.agents)} agents in {len(plan.groups)} groups, "
        f"estimated {plan.estimated_makespan_s * time_scale:.0f}s{scale}"
    )
    return text[:SUMMARY_CHARS]


def static_details(plan: CompiledPlan, inputs: dict[str, Any], time_scale: float) -> str:
    """Markdown: the plan's groups in order with their agents and dependencies, the critical
    path, estimates and the run inputs' names (never their values: they may be secrets)."""
    lines = [f"**Plan `{plan.name}`**", ""]
    lines.append(
        f"- estimated makespan {plan.estimated_makespan_s * time_scale:.1f}s, "
        f"sequential {plan.sequential_s * time_scale:.1f}s (time scale {time_scale:g})"
    )
    if plan.critical_path:
        lines.append(f"- critical path: {' → '.join(plan.critical_path)}")
    if inputs:
        lines.append(f"- run inputs: {', '.join(sorted(inputs))}")
    lines += ["", "| group | agents | after |", "|---|---|---|"]
    for group in plan.groups[:DETAILS_GROUPS]:
        mode = "" if group.parallel or len(group.agents) < 2 else " (one at a time)"
        lines.append(
            f"| `{group.id}` | {', '.join(group.agents)}{mode} | "
            f"{', '.join(group.depends_on) or '-'} |"
        )
    if len(plan.groups) > DETAILS_GROUPS:
        lines.append(f"| … | {len(plan.groups) - DETAILS_GROUPS} more groups | |")
    return "\n".join(lines)
