"""The artifact store: content-addressed files, references in place of large values, lz4 above
10 KB, and run_agent storing large outputs and resolving references in its inputs."""

from __future__ import annotations

import asyncio
import hashlib
import json
from pathlib import Path
from typing import Any

import lz4.frame
import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from pee.activities.agents import run_agent
from pee.activities.artifacts import (
    COMPRESS_ABOVE,
    DEFAULT_THRESHOLD,
    PREVIEW_CHARS,
    ArtifactError,
    ArtifactStore,
    artifact_dir,
    encode,
    is_reference,
)
from pee.activities.simulate import digest
from pee.activities.types import AgentResult, AgentTask
from pee.engine.compiled import CompiledAgent
from tests.helpers import with_sections

BIG_TEXT = "lorem ipsum dolor sit amet\n" * 12_000  # ~320 KB, above the 256 KiB default


def sha(value: object) -> str:
    return hashlib.sha256(encode(value)).hexdigest()


def stored_files(root: Path) -> list[Path]:
    return sorted(path for path in root.rglob("*") if path.is_file())


# --- the store --------------------------------------------------------------------------------


def test_put_returns_a_reference_with_hash_size_and_preview(tmp_path: Path) -> None:
    """The reference names the sha256 of the canonical JSON, its size and a 200-char preview."""
    reference = ArtifactStore(tmp_path).put(BIG_TEXT)
    assert {
        "$artifact": f"sha256:{sha(BIG_TEXT)}",
        "size": len(encode(BIG_TEXT)),
        "preview": BIG_TEXT[:PREVIEW_CHARS],
    } == reference
    assert is_reference(reference)


@pytest.mark.parametrize(
    "value",
    [
        "short text",
        {"b": [1, 2.5, None, True], "a": "ünïcode"},
        ["x" * 50_000],
        42,
    ],
)
def test_values_round_trip(tmp_path: Path, value: object) -> None:
    """Whatever goes in comes back equal, compressed or not."""
    store = ArtifactStore(tmp_path)
    assert value == store.get(store.put(value))


def test_only_values_above_10_kb_are_compressed_with_lz4(tmp_path: Path) -> None:
    """A small value is stored as plain JSON; a large one as an lz4 frame, much smaller here."""
    store = ArtifactStore(tmp_path)
    small, large = "s" * (COMPRESS_ABOVE // 2), "l" * (COMPRESS_ABOVE * 2)
    store.put(small)
    store.put(large)
    plain = tmp_path / "sha256" / sha(small)[:2] / f"{sha(small)}.json"
    packed = tmp_path / "sha256" / sha(large)[:2] / f"{sha(large)}.json.lz4"
    assert encode(small) == plain.read_bytes()
    assert encode(large) == lz4.frame.decompress(packed.read_bytes())
    assert packed.stat().st_size < len(encode(large)) // 10


def test_the_same_content_is_stored_once(tmp_path: Path) -> None:
    """Content addressing: equal values (keys in any order) share one file and one reference."""
    store = ArtifactStore(tmp_path)
    first = store.put({"a": 1, "b": "x" * 20_000})
    second = store.put({"b": "x" * 20_000, "a": 1})
    assert first == second
    assert 1 == len(stored_files(tmp_path))


def test_offload_replaces_only_values_above_the_threshold(tmp_path: Path) -> None:
    """Values whose JSON exceeds the threshold become references; the rest stay as they are."""
    store = ArtifactStore(tmp_path)
    values = {"small": "abc", "big": "x" * 1000, "ref": store.put("y" * 2000)}
    out = store.offload(values, threshold=500)
    assert "abc" == out["small"]
    assert f"sha256:{sha('x' * 1000)}" == out["big"]["$artifact"]
    assert values["ref"] == out["ref"]  # never a reference to a reference


def test_resolve_replaces_references_at_any_depth(tmp_path: Path) -> None:
    """Inputs may nest references (a merged mapping, a list): all are replaced by values."""
    store = ArtifactStore(tmp_path)
    reference = store.put(BIG_TEXT)
    snapshot = {"a.doc": reference, "merged": {"x": [1, reference]}, "plain": {"$artifact": 3}}
    assert {"a.doc": BIG_TEXT, "merged": {"x": [1, BIG_TEXT]}, "plain": {"$artifact": 3}} == (
        store.resolve(snapshot)
    )


def test_a_missing_artifact_says_where_it_looked(tmp_path: Path) -> None:
    """Another machine's store (or a deleted file): an error naming the hash and directory."""
    reference = ArtifactStore(tmp_path / "elsewhere").put("v" * 100)
    with pytest.raises(ArtifactError, match=r"not found in .*mine: every worker must share"):
        ArtifactStore(tmp_path / "mine").get(reference)


def test_a_corrupt_artifact_is_detected_by_its_hash(tmp_path: Path) -> None:
    """A file whose content no longer matches its name is an error, never a wrong value."""
    store = ArtifactStore(tmp_path)
    reference = store.put("v" * 100)
    (path,) = stored_files(tmp_path)
    path.write_bytes(encode("tampered"))
    with pytest.raises(ArtifactError, match="does not match its hash"):
        store.get(reference)


def test_the_directory_is_pee_artifact_dir_else_artifacts_in_the_state_dir(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """PEE_ARTIFACT_DIR wins; otherwise artifacts/ under PEE_STATE_DIR (the runtime's)."""
    monkeypatch.delenv("PEE_ARTIFACT_DIR", raising=False)
    monkeypatch.setenv("PEE_STATE_DIR", str(tmp_path / "state"))
    assert tmp_path / "state" / "artifacts" == artifact_dir()
    monkeypatch.setenv("PEE_ARTIFACT_DIR", str(tmp_path / "shared"))
    assert tmp_path / "shared" == artifact_dir()


# --- run_agent ----------------------------------------------------------------------------


def simulate_agent(agent_id: str, **settings: object) -> CompiledAgent:
    return CompiledAgent(
        id=agent_id,
        role=agent_id,
        kind="simulate",
        group="g",
        outputs=["doc"],
        estimated_s=0.0,
        settings={"duration": 0, **settings},
    )


def run(task: AgentTask) -> AgentResult:
    return asyncio.run(ActivityEnvironment().run(run_agent, task))


@pytest.fixture
def store_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.setenv("PEE_ARTIFACT_DIR", str(tmp_path / "artifacts"))
    return tmp_path / "artifacts"


def test_a_large_output_round_trips_through_run_agent(store_dir: Path) -> None:
    """A 320 KB output leaves run_agent as a reference; the next agent is given the value."""
    produced = run(AgentTask(agent=simulate_agent("writer", values={"doc": BIG_TEXT})))
    reference = produced.outputs["doc"]
    assert is_reference(reference) and DEFAULT_THRESHOLD < reference["size"]
    assert len(json.dumps(reference)) < 1000
    assert [f"{sha(BIG_TEXT)}.json.lz4"] == [path.name for path in stored_files(store_dir)]
    # the reader's default output carries the digest of the input values it was given
    read = run(AgentTask(agent=simulate_agent("reader"), inputs={"writer.doc": reference}))
    assert digest({"writer.doc": BIG_TEXT}) == read.outputs["doc"]["digest"]


def test_the_task_threshold_decides_what_is_large(store_dir: Path) -> None:
    """large_value_threshold from the plan: a 2 KB write is offloaded above 1 KB, not at 256 KiB."""
    value = "z" * 2000
    agent = CompiledAgent(
        id="w",
        role="w",
        kind="simulate",
        group="g",
        writes=["shared"],
        estimated_s=0.0,
        settings={"duration": 0, "values": {"shared": value}},
    )
    assert value == run(AgentTask(agent=agent)).writes["shared"]
    offloaded = run(AgentTask(agent=agent, large_value_threshold=1024)).writes["shared"]
    assert f"sha256:{sha(value)}" == offloaded["$artifact"]


def test_a_missing_artifact_fails_the_attempt_retryably(store_dir: Path, tmp_path: Path) -> None:
    """A reference this worker cannot read fails the attempt (another worker may have it)."""
    reference = ArtifactStore(tmp_path / "other").put("q" * 100)
    with pytest.raises(ApplicationError) as caught:
        run(AgentTask(agent=simulate_agent("reader"), inputs={"x": reference}))
    assert ("ArtifactError", False) == (caught.value.type, caught.value.non_retryable)
    assert "every worker must share" in caught.value.message


# --- through a workflow -----------------------------------------------------------------------


def test_a_run_keeps_references_in_its_context_and_readers_get_values(
    temporal: Any, store_dir: Path
) -> None:
    """With the plan's threshold at 1 KiB, a 2 KB output is a reference in the run's context
    (so in its history) and the agent reading it is given the value."""
    from tests.helpers import compiled_plan, group, sim

    value = {"text": "w" * 2000}
    plan = compiled_plan(
        [
            sim("writer", "g1", 0.0, outputs=["doc"], values={"doc": value}),
            sim("reader", "g2", 0.0, inputs=["writer.doc"], outputs=["seen"]),
        ],
        [group("g1", ["writer"]), group("g2", ["reader"], ["g1"])],
        name="artifacts",
    )
    with_sections(plan, context={"large_value_threshold": 1024})

    async def body(handle: Any) -> dict[str, Any]:
        await handle.result()
        return dict(await handle.query("context"))

    context = temporal.with_plan(plan, body)
    assert {
        "$artifact": f"sha256:{sha(value)}",
        "size": len(encode(value)),
        "preview": json.dumps(value, sort_keys=True)[:PREVIEW_CHARS],
    } == context["writer.doc"]
    assert digest({"writer.doc": value}) == context["reader.seen"]["digest"]
