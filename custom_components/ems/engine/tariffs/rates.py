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
from collections.abc import Callable
from dataclasses import dataclass
from datetime import tzinfo
import math
from typing import Final

from ..books.counters import HourBucket
from ..books.periods import QUARTERS_PER_DAY, _local, epoch
from ..numbers import QUARTER_HOUR_S
from .model import (
    ALL_MONTHS,
    Co2Factor,
    Co2Intensity,
    Emissions,
    FlatPrice,
    PriceModel,
    Tariff,
    TimeOfUse,
    TimeSeries,
)
from .validation import _cells

_KG_PER_G: Final = 1e-3


# ---------------------------------------------------------------------------------------------
# 5. Rates per quarter hour
# ---------------------------------------------------------------------------------------------

# A rate source gives the rate (price per kWh, or kg CO2 per kWh) of each quarter of a bucket.
RateSource = Callable[[HourBucket], list[float | None]]


class _Steps:
    """A step function over time: each value holds from its start until the next start, for
    at most `max_hold_s`."""

    __slots__ = ("_max_hold_s", "_starts", "_values")

    def __init__(self, points: TimeSeries, max_hold_s: float) -> None:
        items = sorted((epoch(key), float(value)) for key, value in points.items())
        self._starts = [start for start, _ in items]
        self._values = [value for _, value in items]
        self._max_hold_s = max_hold_s

    def at(self, moment: float) -> float | None:
        index = bisect_right(self._starts, moment) - 1
        if index < 0 or moment - self._starts[index] >= self._max_hold_s:
            return None
        return self._values[index]


def _stepped(steps: _Steps, fallback: float | None, scale: float = 1.0) -> RateSource:
    def rates(bucket: HourBucket) -> list[float | None]:
        result: list[float | None] = []
        for index in range(len(bucket.quarter_kwh)):
            value = steps.at(bucket.start_ts + QUARTER_HOUR_S * index)
            value = fallback if value is None else value
            result.append(None if value is None else value * scale)
        return result

    return rates


def _constant(value: float) -> RateSource:
    def rates(bucket: HourBucket) -> list[float | None]:
        return [value] * len(bucket.quarter_kwh)

    return rates


def _tou_table(model: TimeOfUse) -> dict[tuple[int, bool], list[float | None]]:
    """(month, weekend) -> the price of each quarter hour of the day."""
    table: dict[tuple[int, bool], list[float | None]] = {
        (month, weekend): [None] * QUARTERS_PER_DAY
        for month in ALL_MONTHS
        for weekend in (False, True)
    }
    for period in reversed(model.periods):  # the first period listed wins
        for month, weekend, quarter in _cells(period):
            table[month, weekend][quarter] = period.price
    for row in table.values():
        row[:] = [model.default_price if price is None else price for price in row]
    return table


def _time_of_use(model: TimeOfUse) -> RateSource:
    table = _tou_table(model)

    def rates(bucket: HourBucket) -> list[float | None]:
        local = bucket.start
        weekend = local.weekday() >= 5 or local.date() in model.holidays
        first = (local.hour * 60 + local.minute) // 15
        return table[local.month, weekend][first : first + len(bucket.quarter_kwh)]

    return rates


def price_source(model: PriceModel) -> RateSource:
    """Price per kWh of each quarter of a bucket, from a price model."""
    if isinstance(model, FlatPrice):
        return _constant(model.price)
    if isinstance(model, TimeOfUse):
        return _time_of_use(model)
    return _stepped(_Steps(model.prices, model.max_hold_s), model.fallback)


def co2_source(source: Co2Factor | Co2Intensity) -> RateSource:
    """kg CO2 per kWh of each quarter of a bucket."""
    if isinstance(source, Co2Factor):
        return _constant(source.kg_per_kwh)
    return _stepped(
        _Steps(source.g_per_kwh, source.max_hold_s), source.fallback_g_per_kwh, _KG_PER_G
    )


def charge(bucket: HourBucket, rates: RateSource) -> float | None:
    """Energy x rate over the bucket's quarters; None if a quarter with energy has no rate."""
    total = 0.0
    for energy, rate in zip(bucket.quarter_kwh, rates(bucket), strict=False):
        if energy:
            if rate is None:
                return None
            total += energy * rate
    return total


def rate_at(rates: RateSource, moment: float, tz: tzinfo) -> float | None:
    """The rate a source applies to the quarter hour `moment` falls in: the price or factor
    the books use for energy now, read through the same source (None: no rate holds)."""
    start = math.floor(moment / QUARTER_HOUR_S) * QUARTER_HOUR_S
    quarter = HourBucket(
        start=_local(start, tz),
        end=_local(start + QUARTER_HOUR_S, tz),
        start_ts=start,
        end_ts=start + QUARTER_HOUR_S,
        energy_kwh=0.0,
        quarter_kwh=(0.0,),
        demand_kw=None,
        peak_kw=None,
        estimated=False,
        complete=False,
    )
    return rates(quarter)[0]


@dataclass(frozen=True, kw_only=True, slots=True)
class CurrentRates:
    """What the books apply to energy right now: prices per kWh in the tariff's currency and
    the grid's CO2 intensity in g/kWh (None: not configured, or no value holds)."""

    import_price: float | None = None
    export_price: float | None = None
    co2_g_per_kwh: float | None = None


def current_rates(
    tariff: Tariff | None, emissions: Emissions | None, moment: float, tz: tzinfo
) -> CurrentRates:
    """The rates of the quarter hour `moment` falls in, as the books price it."""
    import_price = export_price = co2 = None
    if tariff is not None:
        import_price = rate_at(price_source(tariff.import_price), moment, tz)
        if tariff.export_price is not None:
            export_price = rate_at(price_source(tariff.export_price), moment, tz)
    if emissions is not None:
        kg = rate_at(co2_source(emissions.source), moment, tz)
        co2 = None if kg is None else kg / _KG_PER_G
    return CurrentRates(import_price=import_price, export_price=export_price, co2_g_per_kwh=co2)
