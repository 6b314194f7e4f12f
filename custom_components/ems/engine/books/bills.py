"""Bills: energy charge, export credit, fixed fee and demand charge of a day or month,
rounded to the cent once, half up.
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
    return float(fee), _demand_charge(tariff, period, demand_kw)


def _demand_charge(tariff: Tariff, period: Period, demand_kw: float | None) -> float:
    """The month's demand at the tariff's rate; a day is charged none (the month is billed)."""
    rate = tariff.demand_charge.per_kw_month if tariff.demand_charge else 0.0
    return demand_kw * rate if period == Period.MONTH and demand_kw else 0.0


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
    demand_charge = money(_demand_charge(tariff, period, demand))
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
