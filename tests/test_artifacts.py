"""Legacy `$artifact` references (the former claim check): still read, from a folder or an S3
bucket (content-addressed, lz4 above 10 KB, hash-checked), and resolved in run_agent's inputs;
never written any more: run_agent returns large outputs as they are and External Storage keeps
them out of the history (tests/test_external_storage.py)."""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path

import lz4.frame
import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from pee.activities.agents import run_agent
from pee.activities.artifacts import (
    COMPRESS_ABOVE,
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


def test_legacy_artifacts_read_from_an_s3_bucket(s3_env: dict[str, str], tmp_path: Path) -> None:
    """`aws s3 sync .temporal/artifacts s3://BUCKET/` moves a host's artifacts: the same keys in
    the bucket of PEE_ARTIFACT_URL resolve like the local files."""
    import os

    from pee.stores.blobs import S3BlobStore, s3_settings

    local = ArtifactStore(tmp_path)
    reference = local.put(BIG_TEXT)
    saved = {k: os.environ.get(k) for k in s3_env}
    os.environ.update(s3_env)
    try:
        settings = s3_settings()
        assert settings is not None
        bucket = S3BlobStore(settings)
        for path in stored_files(tmp_path):
            bucket.put(path.relative_to(tmp_path).as_posix(), path.read_bytes())
        assert BIG_TEXT == ArtifactStore.default().get(reference)
        with pytest.raises(ArtifactError, match=r"not found in s3://pee-"):
            ArtifactStore.default().get({"$artifact": "sha256:" + "0" * 64})
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def test_resolve_replaces_references_at_any_depth(tmp_path: Path) -> None:
    """Inputs may nest references (a merged mapping, a list): all are replaced by values."""
    store = ArtifactStore(tmp_path)
    reference = store.put(BIG_TEXT)
    snapshot = {"a.doc": reference, "merged": {"x": [1, reference]}, "plain": {"$artifact": 3}}
    assert {"a.doc": BIG_TEXT, "merged": {"x": [1, BIG_TEXT]}, "plain": {"$artifact": 3}} == (
        store.resolve(snapshot)
    )


def test_a_missing_artifact_says_where_it_looked(tmp_path: Path) -> None:
    """Another host's folder (or a deleted file): an error naming the hash, the folder and
    what to configure."""
    reference = ArtifactStore(tmp_path / "elsewhere").put("v" * 100)
    with pytest.raises(ArtifactError, match=r"not found in .*mine: .*PEE_ARTIFACT_URL=s3://"):
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


def test_run_agent_returns_a_large_output_as_it_is_and_writes_no_artifact(
    store_dir: Path,
) -> None:
    """A 320 KB output leaves run_agent as the value itself, whatever the task's (legacy)
    large_value_threshold: nothing is written to the artifact folder."""
    agent = simulate_agent("writer", values={"doc": BIG_TEXT})
    produced = run(AgentTask(agent=agent, large_value_threshold=1024))
    assert BIG_TEXT == produced.outputs["doc"]
    assert [] == stored_files(store_dir)


def test_a_legacy_reference_in_the_inputs_is_given_to_the_agent_as_its_value(
    store_dir: Path,
) -> None:
    """An input that is a `$artifact` reference (a history or cache from before External
    Storage) reaches the backend as the value."""
    reference = ArtifactStore(store_dir).put(BIG_TEXT)
    read = run(AgentTask(agent=simulate_agent("reader"), inputs={"writer.doc": reference}))
    assert digest({"writer.doc": BIG_TEXT}) == read.outputs["doc"]["digest"]


def test_a_missing_artifact_fails_the_attempt_retryably(store_dir: Path, tmp_path: Path) -> None:
    """A reference this worker cannot read fails the attempt (another worker may have it)."""
    reference = ArtifactStore(tmp_path / "other").put("q" * 100)
    with pytest.raises(ApplicationError) as caught:
        run(AgentTask(agent=simulate_agent("reader"), inputs={"x": reference}))
    assert ("ArtifactError", False) == (caught.value.type, caught.value.non_retryable)
    assert "PEE_ARTIFACT_URL" in caught.value.message
