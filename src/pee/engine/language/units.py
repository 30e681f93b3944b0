"""Parsing of the seed's human units: durations, resource levels and sizes.

Durations: a number of seconds (``120``), a suffixed number (``30s``, ``500ms``, ``10m``, ``1h``,
``1h30m``), or the seed's words (``10_minutes``, ``1_hour``, ``5_minutes_maximum``), optionally as a
range (``3-5_minutes``: min 3, max 5, estimate 4 minutes).

Resource levels map to units of a 100-unit pool (see ``LEVEL_UNITS``); sizes accept ``50MB``-style
strings with decimal multiples of 1024.
"""

from __future__ import annotations

import functools
import math
import re
from dataclasses import dataclass
from typing import Any

from pee.engine.language.errors import DurationError, ResourceLevelError, SizeError

# Chosen so the seed's own numbers line up: the enhanced step gives ux_expert cpu 30/memory 25
# ("medium"-ish) and architect cpu 40/memory 35 ("high"); three "medium" agents fit the default
# pool of 100 units, two "very_high" ones do not fit with a third.
LEVEL_UNITS: dict[str, float] = {"low": 10.0, "medium": 25.0, "high": 40.0, "very_high": 60.0}
# what an agent needs of each resource when its resource_requirements do not say
DEFAULT_UNITS = LEVEL_UNITS["medium"]

_UNIT_SECONDS: dict[str, float] = {
    "ms": 0.001,
    "millisecond": 0.001,
    "milliseconds": 0.001,
    "s": 1.0,
    "sec": 1.0,
    "secs": 1.0,
    "second": 1.0,
    "seconds": 1.0,
    "m": 60.0,
    "min": 60.0,
    "mins": 60.0,
    "minute": 60.0,
    "minutes": 60.0,
    "h": 3600.0,
    "hr": 3600.0,
    "hour": 3600.0,
    "hours": 3600.0,
    "d": 86400.0,
    "day": 86400.0,
    "days": 86400.0,
}

_NUMBER = r"\d+(?:\.\d+)?"
# "3-5_minutes", "10_minutes_maximum", "10 minutes", "30s", "1.5 h"
_WORDY = re.compile(
    rf"^(?P<lo>{_NUMBER})(?:\s*-\s*(?P<hi>{_NUMBER}))?[\s_]*(?P<unit>[a-z]+)?"
    r"(?:[\s_]+(?:maximum|max|minimum|min|approx|approximately))?$"
)
# "1h30m", "2m30s"
_COMPOUND = re.compile(rf"^(?:{_NUMBER}(?:h|m|s|ms))+$")
_COMPOUND_PART = re.compile(rf"({_NUMBER})(ms|h|m|s)")

# The longest duration a plan may write: 100 years (3,153,600,000 s). Temporal carries timeouts
# and timers as protobuf Durations (at most 315,576,000,000 s) and its server as Go durations
# (int64 nanoseconds: about 292 years); the workflow adds deadlines to workflow.now() (a datetime
# that ends in the year 9999), doubles an estimate into a default timeout and adds up to ten
# extensions. A century keeps every such sum and product far inside all of these limits, and
# is longer than any run needs; `run --time-scale F` must keep every scaled duration under it too.
MAX_DURATION_S = 100 * 365 * 86400.0
MAX_DURATION_TEXT = "100 years (3,153,600,000 s)"

DURATION_FORMS = (
    "seconds (120), '30s', '500ms', '10m', '1h30m', '10_minutes' or a range '3-5_minutes'"
)


@dataclass(frozen=True)
class Duration:
    """A duration estimate in seconds; a range keeps both ends and estimates their midpoint."""

    min_s: float
    max_s: float

    @property
    def seconds(self) -> float:
        return (self.min_s + self.max_s) / 2

    @property
    def is_range(self) -> bool:
        return self.min_s != self.max_s

    def __str__(self) -> str:
        if self.is_range:
            return f"{format_seconds(self.min_s)}-{format_seconds(self.max_s)}"
        return format_seconds(self.min_s)


def format_seconds(seconds: float) -> str:
    if seconds >= 3600 and seconds % 3600 == 0:
        return f"{int(seconds // 3600)}h"
    if seconds >= 60 and seconds % 60 == 0:
        return f"{int(seconds // 60)}m"
    if seconds == int(seconds):
        return f"{int(seconds)}s"
    return f"{seconds:g}s"


def _as_float(number: int | float) -> float:
    # YAML reads a 400-digit integer exactly; it overflows a float, so it counts as infinite
    # (and is then rejected like any other infinite amount)
    try:
        return float(number)
    except OverflowError:
        return math.inf if number > 0 else -math.inf


def _finite_non_negative(number: float, raw: Any) -> float:
    if not math.isfinite(number) or number < 0:
        raise DurationError(
            "invalid duration",
            value=raw,
            expected="a finite, non-negative duration",
            found=repr(raw),
            fix="write it like 90s, 10m or 3-5_minutes",
        )
    if number > MAX_DURATION_S:
        raise DurationError(
            f"duration longer than {MAX_DURATION_TEXT}, the most a plan may give (Temporal's "
            "timers and timeouts, and the deadlines the workflow adds to the current time, "
            "must stay representable)",
            value=raw,
            expected=f"at most {MAX_DURATION_TEXT}",
            found=repr(raw),
            fix="give a shorter duration; leave a timeout out for the default",
        )
    return number


def parse_duration(raw: Any) -> Duration:
    """Parse any documented duration form; raises DurationError naming the accepted forms."""
    if isinstance(raw, Duration):
        return raw
    if isinstance(raw, bool) or raw is None:
        raise DurationError(
            "invalid duration",
            value=raw,
            expected=DURATION_FORMS,
            found=repr(raw),
            fix="write it like 90s, 10m or 3-5_minutes",
        )
    if isinstance(raw, int | float):
        seconds = _finite_non_negative(_as_float(raw), raw)
        return Duration(seconds, seconds)
    if isinstance(raw, dict) and set(raw) <= {"min", "max"} and raw:
        low = parse_duration(raw.get("min", raw.get("max")))
        high = parse_duration(raw.get("max", raw.get("min")))
        return _ordered(low.min_s, high.max_s, raw)
    if not isinstance(raw, str):
        raise DurationError(
            "invalid duration",
            value=raw,
            expected=DURATION_FORMS,
            found=f"a {type(raw).__name__}",
            fix="write it like 90s, 10m or 3-5_minutes",
        )
    return _parse_text(raw)


# a large plan writes the same few durations thousands of times (Duration is frozen; an error
# is raised again each time, never cached)
@functools.lru_cache(maxsize=4096)
def _parse_text(raw: str) -> Duration:
    text = raw.strip().lower()
    if _COMPOUND.match(text) and len(_COMPOUND_PART.findall(text)) > 1:
        total = sum(float(n) * _UNIT_SECONDS[u] for n, u in _COMPOUND_PART.findall(text))
        return _ordered(total, total, raw)
    match = _WORDY.match(text)
    if match:
        unit = match.group("unit") or "s"
        if unit in _UNIT_SECONDS:
            scale = _UNIT_SECONDS[unit]
            low_s = float(match.group("lo")) * scale
            high_s = float(match.group("hi")) * scale if match.group("hi") else low_s
            return _ordered(low_s, high_s, raw)
    raise DurationError(
        "invalid duration",
        value=raw,
        expected=DURATION_FORMS,
        found=repr(raw),
        fix="write it like 90s, 10m or 3-5_minutes",
    )


def _ordered(low: float, high: float, raw: Any) -> Duration:
    _finite_non_negative(low, raw)
    _finite_non_negative(high, raw)
    if high < low:
        raise DurationError(
            "duration range runs backwards",
            value=raw,
            expected="min <= max",
            found=repr(raw),
            fix="write the smaller number first, e.g. '3-5_minutes'",
        )
    return Duration(low, high)


def parse_units(raw: Any) -> float:
    """A resource amount: a non-negative number of units or a level name from LEVEL_UNITS."""
    if isinstance(raw, bool) or raw is None:
        pass
    elif isinstance(raw, int | float):
        number = _as_float(raw)
        if math.isfinite(number) and number >= 0:
            return number
    elif isinstance(raw, str):
        level = raw.strip().lower().replace("-", "_").replace(" ", "_")
        if level in LEVEL_UNITS:
            return LEVEL_UNITS[level]
        try:
            return parse_units(float(level))
        except ValueError:
            pass
    levels = ", ".join(f"{k}={v:g}" for k, v in LEVEL_UNITS.items())
    raise ResourceLevelError(
        "invalid resource amount",
        value=raw,
        expected=f"a non-negative number of units or a level ({levels})",
        found=repr(raw),
        fix="use a number such as 30 or one of the level names",
    )


_SIZE = re.compile(r"^(?P<n>\d+(?:\.\d+)?)\s*(?P<unit>b|kb|kib|mb|mib|gb|gib|k|m|g)?$")
_SIZE_SCALE = {
    None: 1,
    "b": 1,
    "k": 1024,
    "kb": 1024,
    "kib": 1024,
    "m": 1024**2,
    "mb": 1024**2,
    "mib": 1024**2,
    "g": 1024**3,
    "gb": 1024**3,
    "gib": 1024**3,
}


def parse_size(raw: Any) -> int:
    """A size in bytes from 1234, '10KB', '50MB', '1.5GB' (multiples of 1024)."""
    if isinstance(raw, int) and not isinstance(raw, bool) and raw >= 0:
        return raw
    if isinstance(raw, str):
        match = _SIZE.match(raw.strip().lower())
        size = float(match.group("n")) * _SIZE_SCALE[match.group("unit")] if match else None
        # a 400-digit number overflows to infinity, which no byte count is
        if size is not None and math.isfinite(size):
            return int(size)
    raise SizeError(
        "invalid size",
        value=raw,
        expected="bytes or a number with KB/MB/GB such as '50MB'",
        found=repr(raw),
        fix="write it like '50MB'",
    )
