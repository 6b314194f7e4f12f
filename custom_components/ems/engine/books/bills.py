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

import calendar
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal
import math
from typing import Final

from ..tariffs.model import FeePeriod, FixedFee, Tariff
from .aggregates import Aggregate, _max_or_none, _sum_or_none
from .periods import Period, _period_span

_CENT: Final = Decimal("0.01")


# ---------------------------------------------------------------------------------------------
# 7. Bills
# ---------------------------------------------------------------------------------------------


def money(amount: float) -> Decimal:
    """An amount rounded to the cent, half up; float noise (beyond 1e-9) is dropped first so
    that 2.675 stays 2.675 and rounds to 2.68, as by hand."""
    cents = Decimal(repr(round(amount, 9))).quantize(_CENT, rounding=ROUND_HALF_UP)
    return cents if cents else abs(cents)  # never "-0.00"


@dataclass(frozen=True, kw_only=True, slots=True)
class Bill:
    """The site's bill for one local day or month. Every charge is rounded to the cent and
    the total is their sum, as printed on paper. `energy_charge` or `export_credit` (and so
    `total`) is None when an hour's price was missing."""

    period: Period
    start: datetime
    end: datetime
    currency: str | None
    import_kwh: float
    export_kwh: float
    demand_kw: float | None
    energy_charge: Decimal | None
    export_credit: Decimal | None
    fixed_fee: Decimal
    demand_charge: Decimal
    total: Decimal | None
    estimated: bool


def _fixed_fee(fee: FixedFee | None, period: Period, days: set[date]) -> Decimal:
    if fee is None:
        return money(0.0)
    if fee.per == FeePeriod.DAY:
        return money(fee.amount * len(days))
    if period == Period.MONTH:
        return money(fee.amount)
    (day,) = days
    return money(fee.amount / calendar.monthrange(day.year, day.month)[1])


def standing_charges(
    tariff: Tariff | None, period: Period, days: set[date], demand_kw: float | None
) -> tuple[float, float]:
    """The fixed fee and the demand charge of a day or month so far, as a bill charges them:
    a per-day fee for each day, a monthly fee in full on the month (its daily share on a day),
    the demand charge on the month only. (0, 0) without a tariff or without days."""
    if tariff is None or not days:
        return 0.0, 0.0
    fee = _fixed_fee(tariff.fee, period, days) if period == Period.MONTH or len(days) == 1 else 0
    rate = tariff.demand_charge.per_kw_month if tariff.demand_charge else 0.0
    demand = demand_kw * rate if period == Period.MONTH and demand_kw else 0.0
    return float(fee), demand


def _export_credit(exports: list[Aggregate], tariff: Tariff) -> Decimal | None:
    """What exports earned (their costs are negative); None when a price was missing."""
    if tariff.export_price is None:
        return money(0.0)
    cost = _sum_or_none([item.cost for item in exports])
    return None if cost is None else money(-cost)


def _bill(
    period: Period, imports: list[Aggregate], exports: list[Aggregate], tariff: Tariff
) -> Bill:
    start, end = _period_span(period, (imports or exports)[0].start)
    cost = _sum_or_none([item.cost for item in imports])
    energy_charge = None if cost is None else money(cost)
    export_credit = _export_credit(exports, tariff)
    demand = _max_or_none(item.demand_kw for item in imports)
    rate = tariff.demand_charge.per_kw_month if tariff.demand_charge else 0.0
    demand_charge = money(demand * rate if period == Period.MONTH and demand else 0.0)
    fee = _fixed_fee(tariff.fee, period, {item.start.date() for item in (*imports, *exports)})
    return Bill(
        period=period,
        start=start,
        end=end,
        currency=tariff.currency,
        import_kwh=math.fsum(item.energy_kwh for item in imports),
        export_kwh=math.fsum(item.energy_kwh for item in exports),
        demand_kw=demand,
        energy_charge=energy_charge,
        export_credit=export_credit,
        fixed_fee=fee,
        demand_charge=demand_charge,
        total=None
        if energy_charge is None or export_credit is None
        else energy_charge - export_credit + fee + demand_charge,
        estimated=any(item.estimated for item in (*imports, *exports)),
    )


def bills(
    imports: Iterable[Aggregate], exports: Iterable[Aggregate], tariff: Tariff, period: Period
) -> list[Bill]:
    """Daily or monthly bills from the hourly aggregates of the grid import and export series
    (priced with the same tariff), in order of time."""
    groups: dict[date, tuple[list[Aggregate], list[Aggregate]]] = {}
    for index, series in enumerate((imports, exports)):
        for item in series:
            local = item.start.date()
            key = local if period == Period.DAY else local.replace(day=1)
            groups.setdefault(key, ([], []))[index].append(item)
    return [_bill(period, *groups[key], tariff) for key in sorted(groups)]
