"""A worker process collects its youngest generation less often (pee.runtime.collector), unless
someone set the thresholds already."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from pee.runtime import collector
from pee.runtime.worker import build_worker
from tests.helpers import TemporalHarness


@pytest.fixture
def thresholds() -> Iterator[None]:
    before = gc.get_threshold()
    try:
        yield
    finally:
        gc.set_threshold(*before)


@pytest.mark.usefixtures("thresholds")
def test_a_worker_with_the_default_thresholds_collects_its_young_generation_less_often() -> None:
    gc.set_threshold(*collector.DEFAULT_THRESHOLDS)
    collector.pace_for_worker()
    assert gc.get_threshold() == collector.WORKER_THRESHOLDS
    collector.pace_for_worker()
    assert gc.get_threshold() == collector.WORKER_THRESHOLDS


@pytest.mark.usefixtures("thresholds")
def test_thresholds_set_by_someone_else_are_kept() -> None:
    gc.set_threshold(1234, 5, 6)
    collector.pace_for_worker()
    assert gc.get_threshold() == (1234, 5, 6)


@pytest.mark.usefixtures("thresholds")
def test_building_a_worker_sets_the_pace(temporal: TemporalHarness) -> None:
    gc.set_threshold(*collector.DEFAULT_THRESHOLDS)

    async def build() -> None:
        # built only (on the loop, as a worker is), never run
        build_worker(temporal.client, "collector-pace")

    temporal.run(build())
    assert gc.get_threshold() == collector.WORKER_THRESHOLDS
