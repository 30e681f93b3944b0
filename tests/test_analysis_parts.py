"""Parts of the plan analysis made linear for large plans (issue 17, item 5): the one-walk YAML
builder of anchor-free documents, the topological order of predecessor maps, the GC pause."""

from __future__ import annotations

import gc

from pee.engine.compile.order import generations, topological_order
from pee.engine.gc_pause import paused_gc
from pee.engine.language.yamlsrc import parse_yaml

TREE = """\
name: demo
agents:
  a:
    outputs: [x, 'y']
    duration: 30s
    retry: {max_attempts: 2}
  b:
    inputs:
      - a.x
    estimated_duration: 1m
    fail_times: 1
    optional: true
    settings: {when: 2024-01-31, none: null, ratio: 0.5}
    prompt: |
      two
      lines
"""

# the same values with the agents' shared settings written once and aliased
ANCHORED = """\
name: demo
defaults: &retry {max_attempts: 2}
agents:
  a:
    outputs: [x, 'y']
    duration: 30s
    retry: *retry
  b:
    inputs:
      - a.x
    estimated_duration: 1m
    fail_times: 1
    optional: true
    settings: {when: 2024-01-31, none: null, ratio: 0.5}
    prompt: |
      two
      lines
"""


def test_an_anchor_free_document_reads_as_the_loader_reads_it() -> None:
    """Values (numbers, booleans, nulls, dates kept as text, block text) and lines match what the
    anchored path (PyYAML's constructor) gives for the same values."""
    tree, tree_lines = parse_yaml(TREE)
    anchored, anchored_lines = parse_yaml(ANCHORED)
    assert {**tree, "defaults": {"max_attempts": 2}} == anchored
    b = tree["agents"]["b"]
    assert (1, True, "2024-01-31", None, 0.5, "two\nlines\n") == (
        b["fail_times"],
        b["optional"],
        b["settings"]["when"],
        b["settings"]["none"],
        b["settings"]["ratio"],
        b["prompt"],
    )
    assert 6 == tree_lines.line(("agents", "a", "retry", "max_attempts"))
    assert 9 == tree_lines.line(("agents", "b", "inputs", 0))
    assert 9 == tree_lines.line(("agents", "b", "inputs", 0, "typo"))
    assert anchored_lines.line(("agents", "b", "inputs", 0)) == 10


def test_an_anchor_free_document_still_reports_duplicate_keys_and_merges() -> None:
    data, source = parse_yaml("a: 1\nb:\n  c: 2\n  c: 3\n  <<: {d: 4}\n")
    assert {"a": 1, "b": {"c": 3, "d": 4}} == data
    assert [(("b", "c"), 4, 3)] == source.duplicates


def test_order_puts_predecessors_first_and_the_lowest_rank_first_among_the_ready() -> None:
    predecessors = {"a": [], "b": [], "c": ["a"], "d": ["b", "c"]}
    rank = {"b": 0, "a": 1, "c": 2, "d": 3}
    order = topological_order(predecessors, rank)
    assert ["b", "a", "c", "d"] == order
    assert [["b", "a"], ["c"], ["d"]] == generations(order, predecessors)
    assert topological_order({"a": ["b"], "b": ["a"], "c": []}, {"a": 0, "b": 1, "c": 2}) is None


def test_the_gc_pause_nests_and_restores_the_collector() -> None:
    assert gc.isenabled()
    with paused_gc():
        assert not gc.isenabled()
        with paused_gc():
            assert not gc.isenabled()
        assert not gc.isenabled()
    assert gc.isenabled()
