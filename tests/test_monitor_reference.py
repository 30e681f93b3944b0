"""Monitor.observe reads each metric once and skips the alert pass when no threshold is set
(pee.engine.rules.monitoring): the same rows and alerts as reading them metric by metric."""

from __future__ import annotations

import math
import random
from typing import Any

import pytest

from pee.engine.rules.monitoring import (
    METRICS,
    MetricAlert,
    Monitor,
    Sample,
    Settings,
    Thresholds,
)


def reference(settings: Settings, samples: list[Sample]) -> tuple[list[dict[str, Any]], list[Any]]:
    """The rules written out metric by metric, as the docstring of the module states them."""
    rows: list[dict[str, Any]] = []
    alerts: list[MetricAlert] = []
    over: list[str] = []
    for sample in samples:
        interval = settings.interval_s
        start = round(math.floor(sample.at_s / interval + 1e-9) * interval, 3)
        if not rows or rows[-1]["at_s"] != start:
            rows.append({"at_s": start, "samples": 0, **{m: None for m in METRICS}})
        row = rows[-1]
        row["samples"] += 1
        for metric in METRICS:
            value = sample.value(metric)
            if value is not None and (row[metric] is None or value > row[metric]):
                row[metric] = int(value) if metric == "queue_depth" else value
        for metric in METRICS:
            value, threshold = sample.value(metric), settings.thresholds.of(metric)
            if value is None or threshold is None:
                continue
            if value > threshold:
                if metric not in over:
                    over.append(metric)
                    agent = sample.agent if metric == "response_time" else None
                    alerts.append(MetricAlert(sample.at_s, metric, value, threshold, agent))
            elif metric in over:
                over.remove(metric)
    return rows, alerts


def samples(seed: int) -> list[Sample]:
    rng = random.Random(seed)
    at = 0.0
    made = []
    for index in range(300):
        at += rng.choice([0.0, 0.01, 0.4, 1.3, 6.0])
        made.append(
            Sample(
                at_s=round(at, 3),
                cpu_usage=rng.choice([None, round(rng.uniform(0, 120), 1)]),
                memory_usage=rng.choice([None, round(rng.uniform(0, 120), 1)]),
                queue_depth=rng.randrange(0, 12),
                response_time=rng.choice([None, round(rng.uniform(0, 9), 3)]),
                agent=f"a{index}",
            )
        )
    return made


@pytest.mark.parametrize(
    "thresholds",
    [Thresholds(), Thresholds(80.0, 60.0, 4.0, 5.0), Thresholds(response_time=2.0)],
    ids=["none", "all", "one"],
)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_rows_and_alerts_are_those_of_the_metric_by_metric_rules(
    thresholds: Thresholds, seed: int
) -> None:
    settings = Settings(thresholds, interval_s=5.0)
    monitor = Monitor(settings, max_samples=10_000)
    observed = [sample for sample in samples(seed) if monitor.observe(sample) is not None]
    rows, alerts = reference(settings, observed)
    assert monitor.rows == rows
    assert monitor.alerts == alerts
    if thresholds == Thresholds():
        assert not alerts
    else:
        assert alerts, "the samples must cross a threshold for this to compare anything"
