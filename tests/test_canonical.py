"""The canonical JSON's digests are pinned: output-cache keys, snapshot keys, render cache keys
and artifact addresses persist across releases, so these bytes must never change. The digests
below were computed with the five helpers pee.engine.canonical replaced (issue 18)."""

from __future__ import annotations

import math
from datetime import date
from typing import Any

import pytest

from pee.activities import artifacts, render_cache, roles, simulate
from pee.engine.canonical import canonical_bytes, canonical_json, digest
from pee.engine.rules.merge import value_hash

PINNED: list[tuple[str, Any, str]] = [
    ("null", None, "74234e98afe7498fb5daf1f36ac2d78acc339464f950703b8c019892f982b90b"),
    ("true", True, "b5bea41b6c623f7c09f1bf24dcae58ebab3c0cdd90ad966bc43a45b44867e12b"),
    ("zero", 0, "5feceb66ffc86f38d952786c6d696c79c2dbc239dd4e91b46729d73a27fb57e9"),
    ("int", 42, "73475cb40a568e8da8a045ced110137e159f890ac4da883b6b17dc651b3a8049"),
    ("big int", 2**70, "acd0f1dd559f310ffd1ff6001f395e05cb29cbc008a5b9930d28e6decd29a4bd"),
    ("float", 0.1, "14be4b45f18e0d8c67b4f719b5144eee88497e413709d11d85b096d8e2346310"),
    ("one point zero", 1.0, "d0ff5974b6aa52cf562bea5921840c032a860a91a3512f7fe8f768f6bbe005f6"),
    ("exponent", 1e100, "33d5997bb6b66e3ae3b8e79fff5fe0954bc7b2a38a9d95d83f437d0e57b68f82"),
    ("negative zero", -0.0, "c26617c7ccbcaa6631b45d851b8cf56e21d2ca624bdb1193afdbd4b560702cec"),
    ("nan", math.nan, "d5b592c05dc25b5032553f1b27f4139be95e881f73db33b02b05ab20c3f9981e"),
    ("infinity", math.inf, "d0067cad9a63e0813759a2bb841051ca73570c0da2e08e840a8eb45db6a7a010"),
    ("ascii text", "hello", "5aa762ae383fbb727af3c7a36d4940a5b8c40a989452d2304fc958ff3f354e7a"),
    (
        "unicode text",
        "naïve – 日本 \u2028",
        "845150dc562d9576f028423327541a919c42a93cb4a5ea24f86fb6af67866fc6",
    ),
    ("empty dict", {}, "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"),
    ("empty list", [], "4f53cda18c2baa0c0354bb5f9a3ecbe5ed12ab4d8e11ba873c2f11161202b945"),
    (
        "unsorted keys",
        {"b": 1, "a": [1, 2, {"d": None, "c": "x"}]},
        "3c96a5686bce3a4cd09a224d3cf78fa2fa032ebb31970e3a6f4942100a90faf5",
    ),
    (
        "int keys",
        {2: "b", 1: "a"},
        "a71fc868af5e004c2efbfdf16bb2b679c348f2e25065b30b06df846eb32074a5",
    ),
    ("tuple", (1, "two"), "2b62e26ccd8788747af18b7fd253ff298db1b5173be973a73fa22721905468d5"),
    (
        "nested",
        {"outputs": {"prd": {"title": "PRD", "items": [1.5, True, None]}}},
        "5ad6c1e7870ed24027e8e13db6ad54b558ef26a4e42b458f10a40d10c2c27704",
    ),
]


@pytest.mark.parametrize(("name", "value", "expected"), PINNED, ids=[row[0] for row in PINNED])
def test_digests_are_pinned(name: str, value: Any, expected: str) -> None:
    assert expected == digest(value)
    # every user of the bytes gets the same digest
    assert expected == value_hash(value)
    assert expected == simulate.digest(value)
    assert expected == roles.digest(value)
    assert f"t#{expected}" == render_cache.cache_key("t", value)


@pytest.mark.parametrize(("name", "value", "expected"), PINNED, ids=[row[0] for row in PINNED])
def test_the_artifact_store_hashes_the_same_bytes(name: str, value: Any, expected: str) -> None:
    data = artifacts.encode(value)
    assert data == canonical_bytes(value, strict=True) == canonical_json(value).encode()
    assert expected == digest(value, strict=True)


def test_key_order_does_not_change_the_text() -> None:
    assert '{"a":[1,{"c":"x","d":null}],"b":"é"}' == canonical_json(
        {"b": "é", "a": [1, {"d": None, "c": "x"}]}
    )


def test_non_json_values_hash_by_their_text_unless_strict() -> None:
    # hashing: a date stands for its str(); pinned like the rest
    assert "5dfe28dc540201810deee4b2457f71fcdc1c15dc9c9b5542824f16c675e203ba" == digest(
        date(2026, 1, 2)
    )
    assert '"2026-01-02"' == canonical_json(date(2026, 1, 2))
    # the artifact store refuses what it could not give back as it was
    with pytest.raises(TypeError):
        canonical_json({1, 2}, strict=True)
    with pytest.raises(TypeError):
        artifacts.encode(date(2026, 1, 2))
