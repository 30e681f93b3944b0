"""The seed's human units: every duration form it uses, resource levels and sizes."""

from __future__ import annotations

import pytest

from pee.engine.language.errors import DurationError, ResourceLevelError, SizeError
from pee.engine.language.units import LEVEL_UNITS, Duration, parse_duration, parse_size, parse_units


@pytest.mark.parametrize(
    ("raw", "min_s", "max_s", "estimate_s"),
    [
        ("10_minutes", 600, 600, 600),  # barrier timeout
        ("3-5_minutes", 180, 300, 240),  # estimated_duration range: midpoint
        ("8-12_minutes", 480, 720, 600),
        ("5_minutes_maximum", 300, 300, 300),  # extend_timeout.extension
        ("1_hour", 3600, 3600, 3600),  # template cache ttl
        ("3_minutes", 180, 180, 180),
        ("30s", 30, 30, 30),
        ("1s", 1, 1, 1),
        ("500ms", 0.5, 0.5, 0.5),
        ("10m", 600, 600, 600),
        ("1h30m", 5400, 5400, 5400),
        ("2 minutes", 120, 120, 120),
        (120, 120, 120, 120),  # render_timeout: bare seconds
        (30, 30, 30, 30),  # lock_timeout
        (1.5, 1.5, 1.5, 1.5),
        ({"min": "1m", "max": "3m"}, 60, 180, 120),
    ],
)
def test_duration_forms(raw, min_s, max_s, estimate_s) -> None:
    """Each documented form parses to its min, max and midpoint estimate in seconds."""
    duration = parse_duration(raw)
    assert (min_s, max_s, estimate_s) == (duration.min_s, duration.max_s, duration.seconds)


@pytest.mark.parametrize(
    "raw", ["soon", "5-3_minutes", "10_fortnights", -1, True, None, [], "", float("inf"), "1e400s"]
)
def test_invalid_durations_name_the_accepted_forms(raw) -> None:
    """A bad duration raises DurationError that says what forms are accepted."""
    with pytest.raises(DurationError) as caught:
        parse_duration(raw)
    assert "3-5_minutes" in str(caught.value)


def test_duration_range_keeps_both_ends() -> None:
    """A range stays a range: is_range and its text form show both ends."""
    duration = parse_duration("3-5_minutes")
    assert duration.is_range and "3m-5m" == str(duration)
    assert Duration(60, 60) == parse_duration("1m")


@pytest.mark.parametrize(
    ("raw", "units"),
    [
        ("low", 10),
        ("medium", 25),
        ("high", 40),
        ("very_high", 60),
        ("Very High", 60),
        (30, 30),
        ("35", 35),
        (0, 0),
    ],
)
def test_resource_levels(raw, units) -> None:
    """Levels map to the documented units of a 100-unit pool; numbers pass through."""
    assert float(units) == parse_units(raw)


def test_level_table_is_documented_in_the_plan_language_reference() -> None:
    """docs/reference/plan-language.md lists the same level-to-unit table the code uses."""
    from pathlib import Path

    docs = (Path(__file__).parent.parent / "docs" / "reference" / "plan-language.md").read_text()
    for level, units in LEVEL_UNITS.items():
        assert f"`{level}` | {units:g}" in docs


@pytest.mark.parametrize("raw", ["huge", -5, True, None, "ten"])
def test_invalid_levels(raw) -> None:
    """An unknown level raises ResourceLevelError listing the levels."""
    with pytest.raises(ResourceLevelError, match="very_high"):
        parse_units(raw)


@pytest.mark.parametrize(
    ("raw", "size"),
    [
        ("50MB", 50 * 1024**2),
        ("100MB", 100 * 1024**2),
        ("200MB", 200 * 1024**2),
        ("10KB", 10 * 1024),
        ("1.5GB", int(1.5 * 1024**3)),
        (2048, 2048),
        ("512", 512),
    ],
)
def test_sizes(raw, size) -> None:
    """Sizes accept bytes or KB/MB/GB (multiples of 1024)."""
    assert size == parse_size(raw)


@pytest.mark.parametrize("raw", ["50 parsecs", -1, None, 1.5, "MB"])
def test_invalid_sizes(raw) -> None:
    """A bad size raises SizeError with an example of the right form."""
    with pytest.raises(SizeError, match="50MB"):
        parse_size(raw)
