"""The checks of a tariff and of CO2 accounting: every problem is named by a code
(`<part>_<problem>`) that the options form maps onto its fields.
"""

from __future__ import annotations

from datetime import datetime, time

from ..books.periods import QUARTERS_PER_DAY
from ..numbers import finite
from .model import (
    _CURRENCY_CODE,
    ALL_MONTHS,
    Co2Factor,
    DynamicPrice,
    Emissions,
    FeePeriod,
    FlatPrice,
    Tariff,
    TimeOfUse,
    TimeSeries,
)

# Validation problem codes are "<part>_<problem>": part is import, export, fee, demand_charge
# or currency (and co2 for emissions).
PROBLEM_NOT_FINITE = "not_finite"
PROBLEM_NEGATIVE = "negative"
PROBLEM_TOU_PERIOD_EMPTY = "tou_period_empty"  # start == end (other than 00:00-00:00)
PROBLEM_TOU_NOT_QUARTER_HOUR = "tou_not_quarter_hour"  # a start or end off :00/:15/:30/:45
PROBLEM_TOU_MONTHS_INVALID = "tou_months_invalid"  # no month, or one outside 1..12
PROBLEM_TOU_OVERLAP = "tou_overlap"  # two periods price the same quarter hour
PROBLEM_TOU_NOT_COVERED = "tou_not_covered"  # a quarter hour has neither period nor default
PROBLEM_HOLD_INVALID = "hold_invalid"  # a series price may hold for no time
PROBLEM_TIME_NAIVE = "time_naive"  # a series key without a time zone
PROBLEM_INVALID = "invalid"


def _check_amount(
    problems: list[str], part: str, value: object, *, allow_negative: bool = False
) -> None:
    if finite(value) is None:
        problems.append(f"{part}_{PROBLEM_NOT_FINITE}")
    elif not allow_negative and isinstance(value, int | float) and value < 0:
        problems.append(f"{part}_{PROBLEM_NEGATIVE}")


def _on_quarter(moment: time) -> bool:
    return moment.minute % 15 == 0 and moment.second == 0 and moment.microsecond == 0


def _validate_tou(problems: list[str], part: str, model: TimeOfUse) -> None:
    claimed: set[tuple[int, bool, int]] = set()
    overlap = False
    for period in model.periods:
        _check_amount(problems, f"{part}_price", period.price)
        if not (_on_quarter(period.start) and _on_quarter(period.end)):
            problems.append(f"{part}_{PROBLEM_TOU_NOT_QUARTER_HOUR}")
        if not period.quarters():
            problems.append(f"{part}_{PROBLEM_TOU_PERIOD_EMPTY}")
        if not period.months or not period.months <= ALL_MONTHS:
            problems.append(f"{part}_{PROBLEM_TOU_MONTHS_INVALID}")
        for cell in period.cells():
            overlap = overlap or cell in claimed
            claimed.add(cell)
    if overlap:
        problems.append(f"{part}_{PROBLEM_TOU_OVERLAP}")
    if model.default_price is None:
        if len(claimed) < len(ALL_MONTHS) * 2 * QUARTERS_PER_DAY:
            problems.append(f"{part}_{PROBLEM_TOU_NOT_COVERED}")
    else:
        _check_amount(problems, f"{part}_price", model.default_price)


def _validate_series(problems: list[str], part: str, values: TimeSeries, hold_s: float) -> None:
    if not (finite(hold_s) is not None and hold_s > 0):
        problems.append(f"{part}_{PROBLEM_HOLD_INVALID}")
    if any(isinstance(key, datetime) and key.utcoffset() is None for key in values):
        problems.append(f"{part}_{PROBLEM_TIME_NAIVE}")
    if not all(finite(value) is not None for value in values.values()):
        problems.append(f"{part}_price_{PROBLEM_NOT_FINITE}")


def _validate_price(problems: list[str], part: str, model: object) -> None:
    if isinstance(model, FlatPrice):
        _check_amount(problems, f"{part}_price", model.price)
    elif isinstance(model, TimeOfUse):
        _validate_tou(problems, part, model)
    elif isinstance(model, DynamicPrice):
        _validate_series(problems, part, model.prices, model.max_hold_s)
        if model.fallback is not None:
            _check_amount(problems, f"{part}_price", model.fallback, allow_negative=True)
    else:
        problems.append(f"{part}_price_{PROBLEM_INVALID}")


def validate_tariff(tariff: Tariff) -> list[str]:
    """Problem codes, in order and without repeats; [] for a usable tariff.

    Flat and time-of-use prices must not be negative; dynamic prices may (spot markets go
    below zero). See the PROBLEM_* constants for the codes.
    """
    problems: list[str] = []
    _validate_price(problems, "import", tariff.import_price)
    if tariff.export_price is not None:
        _validate_price(problems, "export", tariff.export_price)
    if tariff.fee is not None:
        _check_amount(problems, "fee", tariff.fee.amount)
        if tariff.fee.per not in tuple(FeePeriod):
            problems.append(f"fee_period_{PROBLEM_INVALID}")
    if tariff.demand_charge is not None:
        _check_amount(problems, "demand_charge", tariff.demand_charge.per_kw_month)
    if tariff.currency is not None and not _CURRENCY_CODE.fullmatch(tariff.currency):
        problems.append(f"currency_{PROBLEM_INVALID}")
    return list(dict.fromkeys(problems))


def validate_emissions(emissions: Emissions) -> list[str]:
    """Problem codes ("co2_<problem>"); [] when usable."""
    problems: list[str] = []
    source = emissions.source
    if isinstance(source, Co2Factor):
        _check_amount(problems, "co2", source.kg_per_kwh)
    else:
        _validate_series(problems, "co2", source.g_per_kwh, source.max_hold_s)
        if any(finite(value) is not None and value < 0 for value in source.g_per_kwh.values()):
            problems.append(f"co2_{PROBLEM_NEGATIVE}")
        if source.fallback_g_per_kwh is not None:
            _check_amount(problems, "co2", source.fallback_g_per_kwh)
    return list(dict.fromkeys(problems))
