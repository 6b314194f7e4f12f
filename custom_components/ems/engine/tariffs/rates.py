"""Rates: the price or CO2 intensity of every quarter hour, for the books (per hour bucket)
and for the sensors (now).
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
        for month, weekend, quarter in period.cells():
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
