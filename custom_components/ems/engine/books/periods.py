"""Local time for the books: the grid of local wall-clock hours (correct across DST and
half-hour offsets), and the spans of days and months.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass
from datetime import date, datetime, timedelta, tzinfo
from enum import StrEnum
import math
from typing import Final

from ..numbers import HOUR_S, QUARTER_HOUR_S

QUARTERS_PER_DAY: Final = 96


class Period(StrEnum):
    """The length of an aggregate, in local time."""

    HOUR = "hour"
    DAY = "day"
    MONTH = "month"


# ---------------------------------------------------------------------------------------------
# 1. Local hours
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HourGrid:
    """Consecutive local wall-clock hours: hour h runs from bounds[h] to bounds[h + 1] (epoch
    seconds); local_bounds holds the same instants in local time (aware, with the right fold on
    a fall-back day), so hour h starts at local_bounds[h]."""

    tz: tzinfo
    bounds: tuple[float, ...]
    local_bounds: tuple[datetime, ...]

    def hour_of(self, timestamp: float) -> int:
        """Index of the hour the instant falls in (-1 before the grid, len(bounds) - 1 after)."""
        return bisect_right(self.bounds, timestamp) - 1


def _hour_key(local: datetime) -> tuple[int, int, int, int, timedelta | None]:
    """Instants with equal keys share a bucket: same wall-clock hour at the same UTC offset."""
    return (local.year, local.month, local.day, local.hour, local.utcoffset())


def _local(timestamp: float, tz: tzinfo) -> datetime:
    return datetime.fromtimestamp(timestamp, tz)


def _hour_start(timestamp: float, tz: tzinfo) -> float:
    """Start of the bucket the instant falls in.

    Buckets change only on quarter-hour instants, so step back by quarters while the key holds.
    """
    start = math.floor(timestamp / QUARTER_HOUR_S) * QUARTER_HOUR_S
    key = _hour_key(_local(start, tz))
    while _hour_key(_local(start - QUARTER_HOUR_S, tz)) == key:
        start -= QUARTER_HOUR_S
    return float(start)


def _next_hour(start: float, local: datetime, tz: tzinfo) -> tuple[float, datetime]:
    """The bucket after the one starting at `start` (local time `local`)."""
    # Usually the next local :00 at the same offset (the bucket after a 30-minute shift
    # starts at :30, hence the minute).
    candidate = start + HOUR_S - 60 * local.minute
    after = _local(candidate, tz)
    if after.utcoffset() == local.utcoffset():
        return candidate, after
    # The offset changes within this hour: the bucket ends where the key first changes.
    key = _hour_key(local)
    boundary = start + QUARTER_HOUR_S
    while _hour_key(after := _local(boundary, tz)) == key:
        boundary += QUARTER_HOUR_S
    return boundary, after


def local_hours(start: float, end: float, tz: tzinfo) -> HourGrid:
    """The local hours that cover [start, end] (epoch seconds): bounds[0] <= start and
    bounds[-1] >= end, with at least one hour when start < end."""
    boundary = _hour_start(start, tz)
    local = _local(boundary, tz)
    bounds, local_bounds = [boundary], [local]
    while boundary < end:
        boundary, local = _next_hour(boundary, local, tz)
        if boundary % QUARTER_HOUR_S:
            raise ValueError(f"{tz}: UTC offsets must be whole quarter hours")
        bounds.append(boundary)
        local_bounds.append(local)
    return HourGrid(tz, tuple(bounds), tuple(local_bounds))


def epoch(moment: datetime | float) -> float:
    """Epoch seconds of an aware datetime (or of a number, as it is)."""
    if isinstance(moment, datetime):
        if moment.utcoffset() is None:
            raise ValueError("naive datetime: a time zone is required")
        return moment.timestamp()
    return float(moment)


def local_midnight(day: date, tz: tzinfo | None) -> datetime:
    """The first instant of a local day (01:00 where midnight does not exist)."""
    naive = datetime(day.year, day.month, day.day, tzinfo=tz)
    return datetime.fromtimestamp(naive.timestamp(), tz)


def _period_span(period: Period, moment: datetime) -> tuple[datetime, datetime]:
    """Start and end of the local day or month that contains `moment`."""
    first = moment.date()
    if period == Period.DAY:
        following = first + timedelta(days=1)
    else:
        first = first.replace(day=1)
        following = (first + timedelta(days=32)).replace(day=1)
    return local_midnight(first, moment.tzinfo), local_midnight(following, moment.tzinfo)
