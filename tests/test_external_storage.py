"""Large payloads through the SDK's External Storage (pee.stores.payloads): the folder driver
(content-addressed, hash-checked, claims without the folder), the S3 driver on a real S3 API
server (moto, tests/s3_support.py), the errors that say what to configure, a run whose large
output leaves the history as a reference and replays, and the codec server resolving references
for the Web UI (or preserving them, as its history view asks)."""

from __future__ import annotations

import asyncio
import json
import random
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from google.protobuf import json_format
from temporalio.api.common.v1 import Payload, Payloads
from temporalio.converter import (
    StorageDriverClaim,
    StorageDriverRetrieveContext,
    StorageDriverStoreContext,
)

from pee.runtime.codec import PlanPayloadConverter, data_converter
from pee.runtime.codec_server import BackgroundCodecServer, CodecServerConfig, storage_reference
from pee.stores.blobs import FsBlobStore, S3BlobStore, s3_settings
from pee.stores.payloads import (
    BlobNotFound,
    MissingS3Driver,
    PeeFsDriver,
    external_storage,
    payload_key,
)

# ~400 KB of hex digits: lz4 cannot shrink it below the 256 KiB threshold
BIG = random.Random(20).randbytes(200_000).hex()


def payload(text: str) -> Payload:
    return Payload(metadata={"encoding": b"json/plain"}, data=json.dumps(text).encode())


def test_the_folder_driver_stores_by_content_and_checks_the_hash(tmp_path: Path) -> None:
    """Equal payloads share one file; the claim holds hash and size, not the folder (hosts
    mount it at different paths); a file whose content changed is refused."""
    driver = PeeFsDriver(FsBlobStore(tmp_path))
    stored = payload(BIG)
    first, second = asyncio.run(driver.store(StorageDriverStoreContext(), [stored, payload(BIG)]))
    assert first == second and str(tmp_path) not in json.dumps(dict(first.claim_data))
    assert {"hash_algorithm", "hash_value", "size"} == set(first.claim_data)
    (back,) = asyncio.run(driver.retrieve(StorageDriverRetrieveContext(), [first]))
    assert stored == back
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert [tmp_path / payload_key(first.claim_data["hash_value"])] == files
    files[0].write_bytes(payload("tampered").SerializeToString())
    with pytest.raises(BlobNotFound, match="corrupt"):
        asyncio.run(driver.retrieve(StorageDriverRetrieveContext(), [first]))


def test_a_blob_of_another_host_names_the_setting_to_configure(tmp_path: Path) -> None:
    """The folder of this host lacks the blob (another host stored it): the error says where
    it looked and that several hosts need PEE_ARTIFACT_URL=s3://."""
    mine = PeeFsDriver(FsBlobStore(tmp_path / "mine"))
    claim = StorageDriverClaim({"hash_algorithm": "sha256", "hash_value": "ab" * 32, "size": "1"})
    with pytest.raises(BlobNotFound) as error:
        asyncio.run(mine.retrieve(StorageDriverRetrieveContext(), [claim]))
    assert str(tmp_path / "mine") in str(error.value)
    assert "PEE_ARTIFACT_URL=s3://BUCKET on every worker" in str(error.value)


def test_a_reference_to_s3_where_s3_is_not_configured_says_so() -> None:
    claim = StorageDriverClaim({"bucket": "b", "key": "v0/d/sha256/x"})
    with pytest.raises(BlobNotFound, match=r"in S3 \(bucket b, key v0/d/sha256/x\).*PEE_ARTIFACT"):
        asyncio.run(MissingS3Driver().retrieve(StorageDriverRetrieveContext(), [claim]))


def test_only_payloads_large_after_lz4_leave_the_history(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A compressible 400 KB value stays inline (lz4 makes it small); random text of that size
    becomes a pee.fs reference; both decode to the value."""
    monkeypatch.delenv("PEE_ARTIFACT_URL", raising=False)
    monkeypatch.setenv("PEE_ARTIFACT_DIR", str(tmp_path))
    converter = data_converter()

    async def round_trip(value: str) -> tuple[Payload, str]:
        (encoded,) = await converter.encode([value])
        (decoded,) = await converter.decode([encoded], [str])
        return encoded, decoded

    inline, back = asyncio.run(round_trip("a" * 400_000))
    assert storage_reference(inline) is None and "a" * 400_000 == back
    stored, back = asyncio.run(round_trip(BIG))
    reference = storage_reference(stored)
    assert reference is not None and "pee.fs" == reference.driver_name and BIG == back
    assert stored.ByteSize() < 1000 and stored.external_payloads[0].size_bytes > 256 * 1024


def test_with_an_s3_bucket_payloads_go_to_the_bucket(
    s3_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """PEE_ARTIFACT_URL=s3://bucket: the SDK's S3 driver stores the payload in that bucket (a
    standard aws.s3driver reference); a process without the setting cannot read it and says
    which setting it lacks."""
    for key, value in s3_env.items():
        monkeypatch.setenv(key, value)
    converter = data_converter()
    (encoded,) = asyncio.run(converter.encode([BIG]))
    reference = storage_reference(encoded)
    assert reference is not None and "aws.s3driver" == reference.driver_name
    settings = s3_settings()
    assert settings is not None and reference.claim_data["bucket"] == settings.bucket
    assert S3BlobStore(settings).exists(reference.claim_data["key"])
    assert [BIG] == asyncio.run(converter.decode([encoded], [str]))
    monkeypatch.delenv("PEE_ARTIFACT_URL")
    with pytest.raises(BlobNotFound, match="PEE_ARTIFACT_URL is not set here"):
        asyncio.run(data_converter().decode([encoded], [str]))


def test_a_large_output_leaves_the_history_and_the_run_replays(temporal: Any) -> None:
    """The writer's 400 KB output reaches the reader as its value; the history holds references
    only (no payload of that size); with_plan replays the history (the blobs are read back)."""
    from tests.helpers import compiled_plan, group, sim

    plan = compiled_plan(
        [
            sim("writer", "g1", 0.0, outputs=["doc"], values={"doc": BIG}),
            sim("reader", "g2", 0.0, inputs=["writer.doc"], outputs=["seen"]),
        ],
        [group("g1", ["writer"]), group("g2", ["reader"], ["g1"])],
        name="external-storage",
    )

    async def body(handle: Any) -> tuple[dict[str, Any], list[Payload]]:
        from tests.histories.record_external import payloads_in

        report = await handle.result()
        history = await handle.fetch_history()
        return report, [p for event in history.events for p in payloads_in(event)]

    report, payloads = temporal.with_plan(plan, body)
    assert "completed" == report["status"]
    references = [p for p in payloads if storage_reference(p) is not None]
    assert references, "no payload was stored externally"
    assert max(p.ByteSize() for p in payloads) < 256 * 1024


def test_the_codec_server_resolves_references_unless_asked_to_preserve_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """/decode fetches what a reference stands for and lz4-decodes it; with
    preserveStorageRefs=true (the Web UI's history view) the reference comes back as it is;
    /download always fetches."""
    monkeypatch.delenv("PEE_ARTIFACT_URL", raising=False)
    monkeypatch.setenv("PEE_ARTIFACT_DIR", str(tmp_path))
    (encoded,) = asyncio.run(data_converter().encode([BIG]))
    assert storage_reference(encoded) is not None
    (plain,) = PlanPayloadConverter().to_payloads([BIG])
    server = BackgroundCodecServer(
        CodecServerConfig(token=None, storage=external_storage())
    ).start()
    body = json_format.MessageToJson(Payloads(payloads=[encoded])).encode()

    def call(path: str) -> Payload:
        request = urllib.request.Request(
            server.url + path, body, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=60) as answer:
            got = Payloads()
            json_format.Parse(answer.read(), got)
        (only,) = got.payloads
        return only

    try:
        assert plain == call("/decode")
        assert encoded == call("/decode?preserveStorageRefs=true")
        assert plain == call("/download")
    finally:
        server.stop()


EXTERNAL = Path(__file__).resolve().parent / "histories" / "external"


def test_a_recorded_history_with_references_replays_with_its_blobs(tmp_path: Path) -> None:
    """tests/histories/external/large_output.json (record_external.py) holds pee.fs references
    for the writer's result and the reader's task; it replays against today's PlanWorkflow with
    a copy of its committed blobs (replaying writes nothing there), and fails without them,
    saying which blob is missing and what to configure."""
    import shutil

    from temporalio.client import WorkflowHistory
    from temporalio.worker import Replayer

    from pee.workflows.plan_workflow import PlanWorkflow
    from tests.histories.record_external import references

    history = WorkflowHistory.from_json(
        "replay-external", (EXTERNAL / "large_output.json").read_text()
    )
    found = references(history)
    assert len(found) >= 2 and {"pee.fs"} == {ref.driver_name for ref in found}
    blobs = tmp_path / "blobs"
    shutil.copytree(EXTERNAL / "blobs", blobs)
    before = sorted(p.relative_to(blobs) for p in blobs.rglob("*"))

    def replay(root: Path) -> Any:
        converter = data_converter(storage=external_storage(root=root))
        replayer = Replayer(workflows=[PlanWorkflow], data_converter=converter)
        return asyncio.run(replayer.replay_workflow(history, raise_on_replay_failure=False))

    assert replay(blobs).replay_failure is None
    assert before == sorted(p.relative_to(blobs) for p in blobs.rglob("*"))
    (tmp_path / "empty").mkdir()
    failure = replay(tmp_path / "empty").replay_failure
    assert failure is not None
    assert "PEE_ARTIFACT_URL=s3://BUCKET" in f"{failure} {failure.__cause__}"


def test_the_codec_server_encodes_then_stores_a_large_payload(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """/encode compresses, then stores what is still over the threshold: the answer is a
    reference, and /decode gives the original payload back."""
    monkeypatch.delenv("PEE_ARTIFACT_URL", raising=False)
    monkeypatch.setenv("PEE_ARTIFACT_DIR", str(tmp_path))
    (plain,) = PlanPayloadConverter().to_payloads([BIG])
    server = BackgroundCodecServer(
        CodecServerConfig(token=None, storage=external_storage())
    ).start()

    def call(action: str, payloads: list[Payload]) -> Payload:
        body = json_format.MessageToJson(Payloads(payloads=payloads)).encode()
        request = urllib.request.Request(
            f"{server.url}/{action}", body, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=60) as answer:
            got = Payloads()
            json_format.Parse(answer.read(), got)
        (only,) = got.payloads
        return only

    try:
        encoded = call("encode", [plain])
        reference = storage_reference(encoded)
        assert reference is not None and "pee.fs" == reference.driver_name
        assert (tmp_path / payload_key(reference.claim_data["hash_value"])).is_file()
        assert plain == call("decode", [encoded])
    finally:
        server.stop()


def test_a_worker_with_an_unreachable_bucket_says_so_at_start(
    s3_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PEE_ARTIFACT_URL naming a bucket that does not exist: connecting fails at once (a
    ConnectionConfigError, exit 2 for pee-worker) naming the bucket, the endpoint and the fix,
    before any payload is lost."""
    from pee.runtime.connection import ConnectionConfigError, shared_stores_converter

    for key, value in s3_server.env("no-such-bucket").items():
        monkeypatch.setenv(key, value)
    with pytest.raises(ConnectionConfigError) as error:
        asyncio.run(shared_stores_converter())
    message = str(error.value)
    assert "s3://no-such-bucket" in message and s3_server.endpoint in message
    assert "create the bucket" in message
