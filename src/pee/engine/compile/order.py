"""Topological order of agents or groups, each in its declaration order among the ready ones.

A plan's graphs are large (a 10,000-agent plan has ~45,000 waits) and the analyser needs only
their orders and generations, so they stay plain mappings of predecessors: building networkx
graphs for them cost a tenth of the analysis. networkx still finds and shows the cycles of a
plan that has one (pee.engine.compile.checks).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

from pee.engine.dag import ranked_order


def topological_order(
    predecessors: Mapping[str, Collection[str]], rank: Mapping[str, int]
) -> list[str] | None:
    """Every node after its predecessors, the lowest ``rank`` first among the ready ones; None
    when there is a cycle. Linear in nodes and edges (plus a heap of the ready ones)."""
    order = ranked_order(predecessors, rank)
    return order if len(order) == len(predecessors) else None


def generations(order: list[str], predecessors: Mapping[str, Collection[str]]) -> list[list[str]]:
    """Nodes by longest distance from a source (``order`` topological): each generation can
    start once the ones before it are done."""
    level: dict[str, int] = {}
    result: list[list[str]] = []
    for node in order:
        depth = max((level[p] + 1 for p in predecessors[node]), default=0)
        level[node] = depth
        if depth == len(result):
            result.append([])
        result[depth].append(node)
    return result
