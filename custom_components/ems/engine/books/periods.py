"""Aggregation: cumulative energy counters into local-time hours, days and months, with
15-minute demand, peak power, cost and CO2 (MyEMS's aggregation step, done the utility's way).

Pure: plain data in, plain data out; nothing here imports Home Assistant or reads a clock.
Timestamps are epoch seconds (UTC by definition), energies kWh, powers kW on the way out,
CO2 kg, money in the tariff's currency. The caller passes HA's time zone as a `tzinfo`.

How the numbers are made, and why:

- Hours are the local wall-clock hours of the time zone (`local_hours`). A bucket never spans a
  change of UTC offset, so Europe/Berlin's spring-forward day has 23 buckets and its fall-back
  day 25 (two buckets start at 02:00, told apart by their UTC offset). Zones with 30- or
  45-minute offsets work the same way; offsets must be whole quarter hours (every zone today).
- A counter's energy in an interval is the counter, interpolated linearly between the samples
  around each end, at the end minus at the start. So the energy between two samples is shared
  among the hours they span in proportion to time: after an outage the counter's jump is spread
  evenly over the missing hours (never a zero hour and then a spike), and every hour the outage
  touches is flagged `estimated`. Hours telescope: their sum is the counter's total increase.
  A gap is two samples more than `gap_s` (15 min) apart; a sample flagged `estimated` marks the
  interval that ends at it (an upstream estimate). A counter that goes down was reset: the drop
  is no energy. The first and last hour count only what the samples cover (`complete` False).
- Demand is the largest average power of a wall-clock quarter hour (:00, :15, :30, :45), as
  utilities bill it, from the counter's energy in that quarter; a quarter the samples do not
  cover from start to end gives none. Peak is the largest power sample in the period, or,
  without power samples, the largest average power between two counter samples that are at
  most `gap_s` apart (at the cycle's sample rate that is the instantaneous power).
- Cost and CO2 are priced per quarter hour, at the quarter's start (so time-of-use periods may
  start on any quarter hour and 15-minute spot prices work), and summed per hour. Hourly costs
  stay unrounded floats (statistics add them up); bills round each charge to the cent once,
  half up. A quarter hour with energy but no price (a dynamic series with a hole and no
  fallback) makes the hour's cost None, and so the day's, month's and bill's: unknown, not free.
- The sign of money: a bucket's `cost` is what the channel costs the site. Imports cost
  (> 0); exports are paid, so their cost is negative (-kWh x export price), and positive when
  a dynamic export price is negative.
- Fees and the demand charge are not energy: they are in the bills, not in the hourly costs.
  A per-day fee is charged once for every local day (23- and 25-hour days alike); a per-month
  fee once for every month, in full, as on a utility bill. A daily bill shows the month fee's
  share (fee / days in the month); the demand charge is charged on the monthly bill only,
  on the month's demand.
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
