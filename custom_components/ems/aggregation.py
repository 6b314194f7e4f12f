"""The books as the rest of ems reads them: energy counters into local hours, days and months,
with 15-minute demand, peak power, cost and CO2, and bills.

A façade over `engine.books` (periods, counters, aggregates, bills, the ledger's pass) and
`engine.tariffs` (the tariff and CO2 models and their rates); how the numbers are made is told
in `engine/books/__init__.py`. Pure, like the engine: nothing here imports Home Assistant.
"""

from __future__ import annotations

from .engine.books.accounting import Aggregation, CounterSeries, aggregate
from .engine.books.aggregates import Aggregate, SeriesRole, daily, monthly
from .engine.books.bills import Bill, bills, money, standing_charges
from .engine.books.counters import DEFAULT_GAP_S
from .engine.books.periods import Period, local_hours
from .engine.tariffs.model import (
    Co2Factor,
    Co2Intensity,
    DayType,
    DemandCharge,
    DynamicPrice,
    Emissions,
    FeePeriod,
    FixedFee,
    FlatPrice,
    Tariff,
    TimeOfUse,
    TouPeriod,
    season,
)
from .engine.tariffs.rates import CurrentRates, current_rates

__all__ = [
    "DEFAULT_GAP_S",
    "Aggregate",
    "Aggregation",
    "Bill",
    "Co2Factor",
    "Co2Intensity",
    "CounterSeries",
    "CurrentRates",
    "DayType",
    "DemandCharge",
    "DynamicPrice",
    "Emissions",
    "FeePeriod",
    "FixedFee",
    "FlatPrice",
    "Period",
    "SeriesRole",
    "Tariff",
    "TimeOfUse",
    "TouPeriod",
    "aggregate",
    "bills",
    "current_rates",
    "daily",
    "local_hours",
    "money",
    "monthly",
    "season",
    "standing_charges",
]
