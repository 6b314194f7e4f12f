"""The tariff and CO2 models: flat, time-of-use and dynamic prices, fixed fees, demand
charges, and CO2 factors or intensities. Prices are per kWh in the tariff's currency; a
time-of-use period covers quarter hours of the local day.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, time
from enum import StrEnum
import re
from typing import Final

from ..books.periods import QUARTERS_PER_DAY
from ..numbers import HOUR_S

_CURRENCY_CODE: Final = re.compile(r"[A-Z]{3}")


# ---------------------------------------------------------------------------------------------
# 3. Tariffs
# ---------------------------------------------------------------------------------------------


class DayType(StrEnum):
    """Which days a time-of-use period applies on; holidays count as weekend."""

    ALL = "all"
    WEEKDAY = "weekday"  # Monday to Friday
    WEEKEND = "weekend"  # Saturday, Sunday and the tariff's holidays


ALL_MONTHS: Final = frozenset(range(1, 13))
# Values by the instant they start to hold: aware datetimes or epoch seconds.
TimeSeries = Mapping[datetime, float] | Mapping[float, float] | Mapping[datetime | float, float]


def season(first_month: int, last_month: int) -> frozenset[int]:
    """The months from first to last, inclusive, wrapping over New Year: season(10, 3) is
    October to March."""
    months = range(first_month, (last_month if last_month >= first_month else last_month + 12) + 1)
    return frozenset((month - 1) % 12 + 1 for month in months)


@dataclass(frozen=True, kw_only=True, slots=True)
class FlatPrice:
    """One price per kWh at all times."""

    price: float


@dataclass(frozen=True, kw_only=True, slots=True)
class TouPeriod:
    """A price from `start` to `end` local time, on quarter hours. `end` <= `start` crosses
    midnight; 00:00 to 00:00 is the whole day. Days and months are checked against each
    quarter hour's own date: a 22:00-06:00 weekday period covers Friday 22:00-24:00 but not
    Saturday 00:00-06:00."""

    start: time
    end: time
    price: float
    days: DayType = DayType.ALL
    months: frozenset[int] = ALL_MONTHS

    def quarters(self) -> list[int]:
        """The quarter hours of the day (0..95) the period covers."""
        first = _quarter_of_day(self.start)
        stop = _quarter_of_day(self.end)
        if first == stop:
            return list(range(QUARTERS_PER_DAY)) if first == 0 else []
        if stop > first:
            return list(range(first, stop))
        return [*range(first, QUARTERS_PER_DAY), *range(stop)]

    def day_kinds(self) -> tuple[bool, ...]:
        """The weekend flags the period applies to."""
        if self.days == DayType.WEEKDAY:
            return (False,)
        if self.days == DayType.WEEKEND:
            return (True,)
        return (False, True)

    def cells(self) -> frozenset[tuple[int, bool, int]]:
        """The (month, weekend, quarter of day) cells the period prices."""
        quarters = self.quarters()
        return frozenset(
            (month, weekend, quarter)
            for month in self.months & ALL_MONTHS
            for weekend in self.day_kinds()
            for quarter in quarters
        )


def _quarter_of_day(moment: time) -> int:
    return (moment.hour * 60 + moment.minute) // 15


@dataclass(frozen=True, kw_only=True, slots=True)
class TimeOfUse:
    """A schedule of periods; the first period listed that covers a quarter hour sets its
    price, else `default_price` (None: no price, the quarter's cost is unknown)."""

    periods: tuple[TouPeriod, ...]
    default_price: float | None = None
    holidays: frozenset[date] = frozenset()


@dataclass(frozen=True, kw_only=True, slots=True)
class DynamicPrice:
    """Prices from an entity (Nord Pool, Tibber, ...): start of validity -> price. Each price
    holds until the next one starts, but not longer than `max_hold_s`; where no price holds,
    `fallback` does (None: the quarter's cost is unknown). Negative prices are valid."""

    prices: TimeSeries
    fallback: float | None = None
    max_hold_s: float = float(HOUR_S)


PriceModel = FlatPrice | TimeOfUse | DynamicPrice


class FeePeriod(StrEnum):
    """How often a fixed fee is charged."""

    DAY = "day"
    MONTH = "month"


@dataclass(frozen=True, kw_only=True, slots=True)
class FixedFee:
    """A standing charge, per local day or per month."""

    amount: float
    per: FeePeriod = FeePeriod.MONTH


@dataclass(frozen=True, kw_only=True, slots=True)
class DemandCharge:
    """A charge per kW of the month's demand (largest 15-minute average import power)."""

    per_kw_month: float


@dataclass(frozen=True, kw_only=True, slots=True)
class Tariff:
    """A supply contract. `currency` is HA's configured currency (None: unknown)."""

    import_price: PriceModel
    export_price: PriceModel | None = None
    fee: FixedFee | None = None
    demand_charge: DemandCharge | None = None
    currency: str | None = None


# ---------------------------------------------------------------------------------------------
# 4. CO2
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True, slots=True)
class Co2Factor:
    """A fixed emission factor."""

    kg_per_kwh: float


@dataclass(frozen=True, kw_only=True, slots=True)
class Co2Intensity:
    """Grid carbon intensity from an entity (CO2 Signal, ...): start -> g/kWh, each value held
    like a dynamic price; `fallback_g_per_kwh` where none holds (None: unknown)."""

    g_per_kwh: TimeSeries
    fallback_g_per_kwh: float | None = None
    max_hold_s: float = float(HOUR_S)


@dataclass(frozen=True, kw_only=True, slots=True)
class Emissions:
    """How CO2 is counted. Exported energy may count as avoided CO2 (at the same factor or
    intensity), reported apart from the emissions as `co2_avoided_kg`."""

    source: Co2Factor | Co2Intensity
    count_export_as_avoided: bool = False
