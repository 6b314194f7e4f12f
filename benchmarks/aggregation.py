"""Aggregation of a year of 1-minute counters for the six site series, against a plain reference.

    .venv/bin/python benchmarks/aggregation.py      # prints one JSON document

The data: a simulated site in Europe/Berlin over 2026 (PV, household load, a battery and the
grid), one sample a minute, integrated into the six lifetime counters of `model.SITE_SERIES`.
Three outages remove samples: 3 hours, 26 hours, and the night of the fall-back day.

Both sides compute the same thing: local hours (23 and 25 on the DST days), energy with outages
spread, 15-minute demand, peak, time-of-use cost of imports, export compensation, CO2 from an
hourly intensity series (avoided CO2 for exports), days, months and daily and monthly bills.
`aggregation.aggregate` interpolates the counters at quarter-hour instants (bisect) and scans
samples only with C-level iterators; the reference walks every sample interval, converts each
one's start to local time and adds it up in dicts, as one would write it first. The results
are compared hour by hour before any time is reported.

Times are medians of REPEATS runs of each side, alternating, in the same process; the result
is their ratio. Peak memory is tracemalloc's peak during one more run (the inputs are allocated
before it starts): ours over the whole year, and both sides over the first MEMORY_DAYS days for
a like-for-like ratio (tracing every allocation of the reference over a year would take longer
than the whole benchmark may).
"""

from __future__ import annotations

from array import array
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time as clock_time, tzinfo
from decimal import Decimal
from itertools import compress
import json
import math
from pathlib import Path
import platform
import random
import statistics
import sys
import time
import tracemalloc
import types
from typing import Any
from zoneinfo import ZoneInfo

# The stage is pure: register the package bare (as the unit tests do without Home Assistant),
# so the benchmark neither needs nor pays for importing Home Assistant.
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
_package = types.ModuleType("custom_components.ems")
_package.__path__ = [str(ROOT / "custom_components" / "ems")]
sys.modules.setdefault("custom_components.ems", _package)

from custom_components.ems import aggregation as agg  # noqa: E402
from custom_components.ems.engine.model import SITE_SERIES  # noqa: E402

TZ = ZoneInfo("Europe/Berlin")
YEAR = 2026
REPEATS = 3
MEMORY_DAYS = 91  # January to March, with the spring-forward day
SEED = 20260101
GAP_S = agg.DEFAULT_GAP_S
OUTAGES = (  # local start, hours
    (datetime(YEAR, 2, 10, 9, tzinfo=TZ), 3.0),
    (datetime(YEAR, 7, 15, 6, tzinfo=TZ), 26.0),
    (datetime(YEAR, 10, 25, 1, 30, tzinfo=TZ), 2.5),  # across the repeated 02:00 hour
)
TOLERANCE_KWH = 1e-6
TOLERANCE_MONEY = 1e-6

TARIFF = agg.Tariff(
    import_price=agg.TimeOfUse(
        periods=(
            agg.TouPeriod(
                start=clock_time(17, 30),
                end=clock_time(20),
                price=0.452,
                days=agg.DayType.WEEKDAY,
                months=agg.season(10, 3),
            ),
            agg.TouPeriod(
                start=clock_time(22), end=clock_time(6), price=0.214, days=agg.DayType.WEEKDAY
            ),
            agg.TouPeriod(
                start=clock_time(0), end=clock_time(0), price=0.251, days=agg.DayType.WEEKEND
            ),
        ),
        default_price=0.338,
        holidays=frozenset({date(YEAR, 1, 1), date(YEAR, 5, 1), date(YEAR, 12, 25)}),
    ),
    export_price=agg.FlatPrice(price=0.082),
    fee=agg.FixedFee(amount=11.90, per=agg.FeePeriod.MONTH),
    demand_charge=agg.DemandCharge(per_kw_month=9.80),
    currency="EUR",
)
FALLBACK_G_PER_KWH = 400.0


# --- data -------------------------------------------------------------------------------------


@dataclass
class SiteYear:
    timestamps: array[float]
    counters: dict[str, array[float]]
    intensity: dict[float, float] = field(default_factory=dict)


def _pv_w(moment: float, day: int, cloud: float) -> float:
    """8 kWp in Berlin, roughly: longer and higher days in summer."""
    daylength_h = 12.0 + 4.3 * math.cos(2 * math.pi * (day - 172) / 365)
    hour = (moment % 86400) / 3600 - (11.2 - daylength_h / 2)  # solar noon ~11:12 UTC
    if not 0.0 < hour < daylength_h:
        return 0.0
    height = 0.55 + 0.45 * math.cos(2 * math.pi * (day - 172) / 365)
    return 8000.0 * height * cloud * math.sin(math.pi * hour / daylength_h)


def simulate_site(seed: int = SEED) -> SiteYear:
    """One sample a minute over the year; each minute's power is held over it."""
    rng = random.Random(seed)
    start = datetime(YEAR, 1, 1, tzinfo=TZ).timestamp()
    minutes = round((datetime(YEAR + 1, 1, 1, tzinfo=TZ).timestamp() - start) / 60)
    totals = dict.fromkeys(SITE_SERIES, 0.0)
    totals["grid_import"], totals["production"] = 48_211.5, 12_093.25  # lifetime so far
    columns = {name: array("d", [value]) for name, value in totals.items()}
    timestamps = array("d", [start])
    soc_kwh, capacity_kwh, cloud = 5.0, 10.0, 0.8
    for minute in range(minutes):
        moment = start + 60 * minute
        cloud = min(1.0, max(0.15, cloud + rng.gauss(0.0, 0.03)))
        production = _pv_w(moment, minute // 1440, cloud)
        consumption = 280.0 + 320.0 * rng.random() + (2400.0 if rng.random() < 0.03 else 0.0)
        surplus = production - consumption
        if surplus > 0:
            battery = -min(surplus, 3000.0, (capacity_kwh - soc_kwh) * 60_000.0)
        else:
            battery = min(-surplus, 3000.0, soc_kwh * 60_000.0)
        soc_kwh -= battery / 60_000.0
        grid = consumption - production - battery
        rates = {
            "grid_import": max(grid, 0.0),
            "grid_export": max(-grid, 0.0),
            "production": production,
            "consumption": consumption,
            "battery_charge": max(-battery, 0.0),
            "battery_discharge": max(battery, 0.0),
        }
        for name, watts in rates.items():
            totals[name] += watts / 60_000.0
            columns[name].append(totals[name])
        timestamps.append(moment + 60)
    return _with_outages(SiteYear(timestamps, columns, _intensity(rng, start, minutes)))


def _with_outages(site: SiteYear) -> SiteYear:
    windows = [(begin.timestamp(), begin.timestamp() + hours * 3600) for begin, hours in OUTAGES]
    keep = [not any(a < t < b for a, b in windows) for t in site.timestamps]
    return SiteYear(
        array("d", compress(site.timestamps, keep)),
        {name: array("d", compress(values, keep)) for name, values in site.counters.items()},
        site.intensity,
    )


def _intensity(rng: random.Random, start: float, minutes: int) -> dict[float, float]:
    """Hourly grid intensity (g/kWh), with 1 % of the hours missing (the fallback applies)."""
    hours = minutes // 60
    return {
        start + 3600 * hour: 380.0 + 140.0 * math.sin(2 * math.pi * hour / 24) + rng.gauss(0, 30)
        for hour in range(hours)
        if rng.random() >= 0.01
    }


def _series(site: SiteYear) -> list[agg.CounterSeries]:
    roles = {"grid_import": agg.SeriesRole.IMPORT, "grid_export": agg.SeriesRole.EXPORT}
    return [
        agg.CounterSeries(
            device_id="site",
            channel=name,
            timestamps=site.timestamps,
            totals_kwh=site.counters[name],
            role=roles.get(name, agg.SeriesRole.OTHER),
        )
        for name in SITE_SERIES
    ]


def _emissions(site: SiteYear) -> agg.Emissions:
    return agg.Emissions(
        source=agg.Co2Intensity(g_per_kwh=site.intensity, fallback_g_per_kwh=FALLBACK_G_PER_KWH),
        count_export_as_avoided=True,
    )


# --- the reference ----------------------------------------------------------------------------


@dataclass
class RefHour:
    start: datetime
    energy: float = 0.0
    estimated: bool = False
    peak: float | None = None
    demand: float | None = None
    cost: float | None = None
    co2: float | None = None
    quarters: list[int] = field(default_factory=list)


def _ref_tou_price(model: agg.TimeOfUse, local: datetime) -> float | None:
    weekend = local.weekday() >= 5 or local.date() in model.holidays
    minute = local.hour * 60 + local.minute
    for period in model.periods:
        if local.month not in period.months:
            continue
        if (period.days == agg.DayType.WEEKDAY and weekend) or (
            period.days == agg.DayType.WEEKEND and not weekend
        ):
            continue
        begin = period.start.hour * 60 + period.start.minute
        end = period.end.hour * 60 + period.end.minute
        if begin == end == 0:
            return period.price
        if (begin <= minute < end) if begin < end else (minute >= begin or minute < end):
            return period.price
    return model.default_price


def _ref_series(
    timestamps: Sequence[float], totals: Sequence[float], tz: tzinfo
) -> tuple[dict[tuple[Any, ...], RefHour], dict[int, float]]:
    """Walk every interval, split it at quarter hours, book each piece by its local hour."""
    hours: dict[tuple[Any, ...], RefHour] = {}
    quarters: dict[int, float] = {}
    for index in range(1, len(timestamps)):
        begin, end = timestamps[index - 1], timestamps[index]
        energy = totals[index] - totals[index - 1]
        span = end - begin
        gap = span > GAP_S
        power_kw = energy / span * 3600
        moment = begin
        while moment < end:
            quarter = int(moment // 900)
            piece_end = min((quarter + 1) * 900, end)
            share = energy * (piece_end - moment) / span
            local = datetime.fromtimestamp(moment, tz)
            key = (local.year, local.month, local.day, local.hour, local.utcoffset())
            hour = hours.get(key)
            if hour is None:
                start = local.replace(minute=0, second=0, microsecond=0)
                hour = hours[key] = RefHour(start=start)
            hour.energy += share
            if gap:
                hour.estimated = True
            elif hour.peak is None or power_kw > hour.peak:
                hour.peak = power_kw
            if quarter not in quarters:
                quarters[quarter] = 0.0
                hour.quarters.append(quarter)
            quarters[quarter] += share
            moment = piece_end
    return hours, quarters


def _ref_rates(
    hours: dict[tuple[Any, ...], RefHour],
    quarters: dict[int, float],
    price: Callable[[float, datetime], float | None] | None,
    co2: Callable[[float], float | None] | None,
    span: tuple[float, float],
) -> None:
    for hour in hours.values():
        demand, cost, emitted = None, 0.0, 0.0
        for quarter in hour.quarters:
            begin = quarter * 900
            kwh = quarters[quarter]
            if span[0] <= begin and begin + 900 <= span[1]:
                demand = kwh * 4 if demand is None else max(demand, kwh * 4)
            local = datetime.fromtimestamp(begin, hour.start.tzinfo)
            if price is not None:
                cost += kwh * (price(begin, local) or 0.0)
            if co2 is not None:
                emitted += kwh * (co2(begin) or 0.0) / 1000
        hour.demand = demand
        hour.cost = cost if price is not None else None
        hour.co2 = emitted if co2 is not None else None


def _ref_intensity(site: SiteYear) -> Callable[[float], float | None]:
    def grams(moment: float) -> float | None:
        return site.intensity.get(moment - moment % 3600, FALLBACK_G_PER_KWH)

    return grams


@dataclass
class RefResult:
    hours: dict[str, dict[tuple[Any, ...], RefHour]]
    days: dict[str, dict[date, float]]
    months: dict[str, dict[date, float]]
    bills: dict[date, Decimal]


def reference(site: SiteYear, tz: tzinfo = TZ) -> RefResult:
    """The same aggregation, written plainly."""
    span = (site.timestamps[0], site.timestamps[-1])
    tou = TARIFF.import_price
    assert isinstance(tou, agg.TimeOfUse)
    export_price = 0.082
    hours: dict[str, dict[tuple[Any, ...], RefHour]] = {}
    for name in SITE_SERIES:
        by_hour, quarters = _ref_series(site.timestamps, site.counters[name], tz)
        price: Callable[[float, datetime], float | None] | None = None
        co2 = None
        if name == "grid_import":
            price, co2 = (lambda _moment, local: _ref_tou_price(tou, local)), _ref_intensity(site)
        elif name == "grid_export":
            price, co2 = (lambda _moment, _local: -export_price), _ref_intensity(site)
        _ref_rates(by_hour, quarters, price, co2, span)
        hours[name] = by_hour
    days: dict[str, dict[date, float]] = {}
    months: dict[str, dict[date, float]] = {}
    for name, by_hour in hours.items():
        days[name], months[name] = {}, {}
        for hour in by_hour.values():
            day = hour.start.date()
            days[name][day] = days[name].get(day, 0.0) + hour.energy
            month = day.replace(day=1)
            months[name][month] = months[name].get(month, 0.0) + hour.energy
    return RefResult(hours, days, months, _ref_bills(hours))


def _ref_bills(hours: dict[str, dict[tuple[Any, ...], RefHour]]) -> dict[date, Decimal]:
    """Monthly totals: import cost - export credit + monthly fee + demand charge, each
    rounded to the cent as a bill prints them."""
    cost: dict[str, dict[date, float]] = {"grid_import": {}, "grid_export": {}}
    demand: dict[date, float] = {}
    for name, by_month in cost.items():
        for hour in hours[name].values():
            month = hour.start.date().replace(day=1)
            by_month[month] = by_month.get(month, 0.0) + (hour.cost or 0.0)
            if name == "grid_import" and hour.demand is not None:
                demand[month] = max(demand.get(month, 0.0), hour.demand)
    assert TARIFF.fee is not None
    assert TARIFF.demand_charge is not None
    return {
        month: agg.money(imported)
        + agg.money(cost["grid_export"].get(month, 0.0))
        + agg.money(TARIFF.fee.amount)
        + agg.money(demand.get(month, 0.0) * TARIFF.demand_charge.per_kw_month)
        for month, imported in cost["grid_import"].items()
    }


# --- comparison and measurement ---------------------------------------------------------------


def _ours(site: SiteYear) -> agg.Aggregation:
    return agg.aggregate(_series(site), TZ, tariff=TARIFF, emissions=_emissions(site))


def _hour_key(local: datetime) -> tuple[Any, ...]:
    return (local.year, local.month, local.day, local.hour, local.utcoffset())


def _diff(a: float | None, b: float | None) -> float:
    if a is None or b is None:
        return 0.0 if a is b else math.inf
    return abs(a - b)


def compare(ours: agg.Aggregation, ref: RefResult) -> dict[str, Any]:
    """Largest differences hour by hour, and whether every flag and bill agrees."""
    worst = dict.fromkeys(("energy_kwh", "demand_kw", "peak_kw", "cost", "co2_kg"), 0.0)
    flags_equal = hours_equal = True
    for item in ours.hourly:
        ref_hour = ref.hours[item.channel].get(_hour_key(item.start))
        if ref_hour is None:
            hours_equal = False
            continue
        co2 = item.co2_avoided_kg if item.channel == "grid_export" else item.co2_kg
        for name, a, b in (
            ("energy_kwh", item.energy_kwh, ref_hour.energy),
            ("demand_kw", item.demand_kw, ref_hour.demand),
            ("peak_kw", item.peak_kw, ref_hour.peak),
            ("cost", item.cost, ref_hour.cost),
            ("co2_kg", co2, ref_hour.co2),
        ):
            worst[name] = max(worst[name], _diff(a, b))
        flags_equal = flags_equal and item.estimated == ref_hour.estimated
    hours_equal = hours_equal and len(ours.hourly) == sum(map(len, ref.hours.values()))
    day_worst = max(
        abs(item.energy_kwh - ref.days[item.channel][item.start.date()]) for item in ours.daily
    )
    bills_equal = {bill.start.date(): bill.total for bill in ours.monthly_bills} == ref.bills
    agree = (
        hours_equal
        and flags_equal
        and bills_equal
        and max(worst.values()) <= TOLERANCE_MONEY
        and day_worst <= TOLERANCE_KWH
    )
    return {
        "agree": agree,
        "same_hours": hours_equal,
        "same_estimated_flags": flags_equal,
        "same_monthly_bills": bills_equal,
        "max_abs_diff_per_hour": {name: float(f"{value:.3g}") for name, value in worst.items()},
        "max_abs_diff_per_day_kwh": float(f"{day_worst:.3g}"),
    }


def _timed(run: Callable[[], object], seconds: list[float]) -> object:
    began = time.perf_counter()
    result = run()
    seconds.append(time.perf_counter() - began)
    return result


def _first_days(site: SiteYear, days: int) -> SiteYear:
    end = datetime(YEAR, 1, 1, tzinfo=TZ).timestamp() + days * 86400 + 3600  # past DST: 1 h
    count = sum(1 for moment in site.timestamps if moment <= end)
    return SiteYear(
        site.timestamps[:count],
        {name: values[:count] for name, values in site.counters.items()},
        site.intensity,
    )


def _peak_mib(run: Callable[[], object]) -> float:
    tracemalloc.start()
    try:
        run()
        return tracemalloc.get_traced_memory()[1] / 2**20
    finally:
        tracemalloc.stop()


def _facts(site: SiteYear, ours: agg.Aggregation) -> dict[str, Any]:
    day_hours = {
        day.start.date().isoformat(): round((day.end.timestamp() - day.start.timestamp()) / 3600)
        for day in ours.daily
        if day.channel == "grid_import" and day.start.date() in DST_DAYS
    }
    return {
        "samples_per_series": len(site.timestamps),
        "series": len(SITE_SERIES),
        "samples": len(site.timestamps) * len(SITE_SERIES),
        "hours_per_series": len(ours.hourly) // len(SITE_SERIES),
        "estimated_hours_per_series": sum(item.estimated for item in ours.hourly)
        // len(SITE_SERIES),
        "hours_on_dst_days": day_hours,
        "year_import_kwh": round(
            sum(m.energy_kwh for m in ours.monthly if m.channel == "grid_import"), 3
        ),
        "year_bill_total_eur": str(sum(_totals(ours.monthly_bills), Decimal(0))),
    }


def _totals(bills: Iterable[agg.Bill]) -> Iterable[Decimal]:
    return (bill.total for bill in bills if bill.total is not None)


DST_DAYS = (date(YEAR, 3, 29), date(YEAR, 10, 25))


def main() -> None:
    """Build the data, check that both sides agree, time them, print JSON."""
    began = time.perf_counter()
    site = simulate_site()
    ours_runs: list[float] = []
    ref_runs: list[float] = []
    for _ in range(REPEATS):  # alternating, so that drift touches both sides alike
        ours = _timed(lambda: _ours(site), ours_runs)
        ref = _timed(lambda: reference(site), ref_runs)
    assert isinstance(ours, agg.Aggregation)
    assert isinstance(ref, RefResult)
    ours_s, ref_s = statistics.median(ours_runs), statistics.median(ref_runs)
    agreement = compare(ours, ref)
    del ref
    year_mib = _peak_mib(lambda: _ours(site))
    part = _first_days(site, MEMORY_DAYS)
    ours_mib = _peak_mib(lambda: _ours(part))
    ref_mib = _peak_mib(lambda: reference(part))
    input_mib = (len(site.timestamps) * (1 + len(SITE_SERIES)) * 8) / 2**20
    report = {
        "benchmark": "aggregation: one year of 1-minute counters, 6 site series",
        "python": platform.python_version(),
        "repeats": REPEATS,
        "data": _facts(site, ours),
        "agreement": agreement,
        "speedup_vs_reference": round(ref_s / ours_s, 2),
        "time_ratio_ours_to_reference": round(ours_s / ref_s, 4),
        "median_s": {"ours": round(ours_s, 3), "reference": round(ref_s, 3)},
        "peak_memory_mib": {
            "ours_year": round(year_mib, 1),
            "inputs_year_not_counted": round(input_mib, 1),
            f"ours_first_{MEMORY_DAYS}_days": round(ours_mib, 1),
            f"reference_first_{MEMORY_DAYS}_days": round(ref_mib, 1),
            "ratio_ours_to_reference": round(ours_mib / ref_mib, 3),
        },
        "wall_s": round(time.perf_counter() - began, 1),
    }
    print(json.dumps(report, indent=2))
    if not agreement["agree"]:
        sys.exit("ours and the reference disagree")


if __name__ == "__main__":
    main()
