"""Resource monitoring: usage percentages, threshold alerts once per crossing, samples summarised
per sampling_interval (pee.engine.rules.monitoring), and a queue building past queue_depth in a real
run raising a warning in the report."""

from __future__ import annotations

import math
from typing import Any

import pytest

from pee.engine.compiled import Resources
from pee.engine.rules.monitoring import (
    Monitor,
    Sample,
    Settings,
    Thresholds,
    take_sample,
    usage_percent,
)
from tests.helpers import TemporalHarness, compiled_plan, group, sim
from tests.test_workflow_resources import needing, pool, with_pool

SEED_THRESHOLDS = Thresholds(cpu_usage=90, memory_usage=85, response_time=180, queue_depth=3)


@pytest.mark.parametrize(
    ("in_use", "capacity", "percent"),
    [
        (0, 100, 0.0),
        (45, 120, 37.5),
        (120, 120, 100.0),
        (1, 3, 33.3),
        (5, math.inf, None),
        (5, 0, None),
    ],
)
def test_usage_percent(in_use: float, capacity: float, percent: float | None) -> None:
    """Units in use over capacity as a percentage; None for an unlimited or empty pool."""
    assert percent == usage_percent(in_use, capacity)


@pytest.mark.parametrize(
    ("sample", "alerted"),
    [
        (Sample(0, cpu_usage=90.0, memory_usage=85.0, queue_depth=3, response_time=180.0), []),
        (Sample(0, cpu_usage=90.1), ["cpu_usage"]),
        (Sample(0, memory_usage=86.0), ["memory_usage"]),
        (Sample(0, queue_depth=4), ["queue_depth"]),
        (Sample(0, response_time=181.0, agent="qa"), ["response_time"]),
        (
            Sample(0, cpu_usage=100.0, memory_usage=100.0, queue_depth=9, response_time=999.0),
            ["cpu_usage", "memory_usage", "response_time", "queue_depth"],
        ),
        (Sample(0, cpu_usage=None, memory_usage=None, queue_depth=0), []),
    ],
)
def test_seed_thresholds_alert_strictly_above(sample: Sample, alerted: list[str]) -> None:
    """With the seed's thresholds (90 %, 85 %, 180 s, 3) a metric alerts only above them."""
    monitor = Monitor(Settings(SEED_THRESHOLDS))
    assert alerted == [alert.metric for alert in monitor.observe(sample)]


def test_alerts_once_per_crossing() -> None:
    """Staying over the threshold alerts once; going back to it and over again alerts again."""
    monitor = Monitor(Settings(Thresholds(queue_depth=3)))
    depths = [1, 4, 5, 6, 3, 2, 4, 4]
    raised = [len(monitor.observe(Sample(float(at), queue_depth=d))) for at, d in enumerate(depths)]
    assert [0, 1, 0, 0, 0, 0, 1, 0] == raised
    assert [(1.0, 4), (6.0, 4)] == [(a.at_s, a.value) for a in monitor.alerts]


def test_no_thresholds_no_alerts() -> None:
    """A plan without alert_thresholds is sampled but never alerts."""
    monitor = Monitor()
    assert [] == monitor.observe(Sample(0, cpu_usage=100.0, queue_depth=50, response_time=1e6))
    assert 1 == len(monitor.rows)


def test_alert_message_names_metric_value_threshold_and_agent() -> None:
    monitor = Monitor(Settings(SEED_THRESHOLDS))
    [alert] = monitor.observe(Sample(2.5, response_time=200.0, agent="qa"))
    assert "response_time 200 s is over its alert threshold 180 s (agent 'qa')" == alert.message
    assert {
        "at_s": 2.5,
        "metric": "response_time",
        "value": 200.0,
        "threshold": 180.0,
        "agent": "qa",
        "message": alert.message,
    } == alert.to_dict()


def test_samples_keep_the_worst_value_per_interval_bucket() -> None:
    """Samples in one sampling_interval bucket merge into one row (worst of each metric);
    buckets without a change have no row."""
    monitor = Monitor(Settings(interval_s=10.0))
    for sample in [
        Sample(0.0, cpu_usage=10.0, queue_depth=2),
        Sample(4.0, cpu_usage=50.0, queue_depth=1, response_time=3.0),
        Sample(9.999, cpu_usage=20.0, queue_depth=0),
        Sample(35.0, cpu_usage=0.0, queue_depth=0),
    ]:
        monitor.observe(sample)
    assert [
        {
            "at_s": 0.0,
            "samples": 3,
            "cpu_usage": 50.0,
            "memory_usage": None,
            "response_time": 3.0,
            "queue_depth": 2,
        },
        {
            "at_s": 30.0,
            "samples": 1,
            "cpu_usage": 0.0,
            "memory_usage": None,
            "response_time": None,
            "queue_depth": 0,
        },
    ] == monitor.rows


def test_samples_are_bounded() -> None:
    """Only the last max_samples rows are kept."""
    monitor = Monitor(Settings(interval_s=1.0), max_samples=5)
    for at in range(12):
        monitor.observe(Sample(float(at)))
    assert [7.0, 8.0, 9.0, 10.0, 11.0] == [row["at_s"] for row in monitor.rows]


def test_settings_from_compiled_resources_scale_durations() -> None:
    """sampling_interval and the response_time threshold are durations: scaled by time_scale;
    percentages and queue depth are not."""
    resources: dict[str, Any] = {
        "load_balancing": {
            "resource_monitoring": {
                "sampling_interval": 10.0,
                "alert_thresholds": {
                    "cpu_usage": 90.0,
                    "memory_usage": 85.0,
                    "response_time": 180.0,
                    "queue_depth": 3,
                },
            }
        }
    }
    assert Settings(Thresholds(90.0, 85.0, 18.0, 3.0), 1.0) == Settings.from_resources(
        Resources.from_section(resources), time_scale=0.1
    )
    assert Settings() == Settings.from_resources(Resources())


def test_take_sample_computes_percentages() -> None:
    sample = take_sample(
        1.23456,
        cpu_in_use=108,
        cpu_capacity=120,
        memory_in_use=15,
        memory_capacity=100,
        queue_depth=2,
    )
    assert Sample(1.235, 90.0, 15.0, 2, None, None) == sample


def test_a_queue_past_queue_depth_alerts_in_the_report(temporal: TemporalHarness) -> None:
    """Six agents on a one-agent pool: five queue at once, over queue_depth 3, so the report
    gets one queue_depth warning (one crossing), in resources.alerts and the run alerts; every
    agent takes longer than response_time, which alerts once too, naming the first."""
    ids = [f"a{index}" for index in range(6)]
    resources = pool(agents=1)
    resources["load_balancing"] = {
        "resource_monitoring": {
            "sampling_interval": 0.5,
            "alert_thresholds": {"queue_depth": 3, "cpu_usage": 90, "response_time": 0.05},
        }
    }
    plan = with_pool(
        compiled_plan([needing(sim(a, "g", 0.1), cpu=10) for a in ids], [group("g", ids)]),
        resources,
    )
    report = temporal.execute(plan)
    assert report["status"] == "completed"
    monitoring = report["resources"]
    assert [("queue_depth", None), ("response_time", "a0")] == [
        (alert["metric"], alert["agent"]) for alert in monitoring["alerts"]
    ]
    queue, slow = monitoring["alerts"]
    assert (5.0, 3.0) == (queue["value"], queue["threshold"])
    assert "queue_depth 5 is over its alert threshold 3" == queue["message"]
    assert [("", "warning", queue["message"]), ("g", "warning", slow["message"])] == [
        (a["group"], a["level"], a["message"]) for a in report["alerts"]
    ]
    rows = monitoring["samples"]
    assert rows and rows[0]["queue_depth"] == 5 and rows[0]["cpu_usage"] == 10.0
    assert max(row["response_time"] or 0.0 for row in rows) > 0
    assert (0.5, {"queue_depth": 3.0, "cpu_usage": 90.0, "response_time": 0.05}) == (
        monitoring["sampling_interval_s"],
        monitoring["alert_thresholds"],
    )
