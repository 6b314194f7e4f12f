"""Aggregation: local hours across DST, outages spread, demand, peak, and bills to the cent.

Every bill below is worked out by hand in the test, so a reader can check it on paper.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from itertools import pairwise
import math
from zoneinfo import ZoneInfo

from hypothesis import given, settings, strategies as st
import pytest

from custom_components.ems.engine.books.accounting import CounterSeries, aggregate
from custom_components.ems.engine.books.aggregates import (
    Aggregate,
    Pricing,
    SeriesRole,
    daily,
    hourly_aggregates,
    monthly,
)
from custom_components.ems.engine.books.bills import Bill, bills, money
from custom_components.ems.engine.books.counters import HourBucket
from custom_components.ems.engine.books.periods import Period, local_hours
from custom_components.ems.engine.model import SITE_SERIES
from custom_components.ems.engine.tariffs.model import (
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
from custom_components.ems.engine.tariffs.validation import validate_emissions, validate_tariff

BERLIN = ZoneInfo("Europe/Berlin")
ZONES = [
    ZoneInfo(name)
    for name in (
        "UTC",
        "Europe/Berlin",
        "America/New_York",
        "America/Santiago",  # changes at midnight: some days start at 01:00
        "Australia/Lord_Howe",  # a 30-minute DST shift
        "Asia/Kathmandu",  # +05:45
        "Pacific/Chatham",  # +12:45 / +13:45
    )
]


def _hours_of(
    timestamps: Sequence[float],
    totals: Sequence[float],
    tz: ZoneInfo,
    *,
    estimated: Sequence[bool] | None = None,
    power_timestamps: Sequence[float] | None = None,
    power_w: Sequence[float] | None = None,
) -> list[HourBucket]:
    """The hours of one counter, as the counter stage makes them inside `aggregate`."""
    series = CounterSeries(
        device_id="site",
        channel="counter",
        timestamps=timestamps,
        totals_kwh=totals,
        estimated=estimated,
        power_timestamps=power_timestamps,
        power_w=power_w,
    )
    return list(aggregate([series], tz).buckets.get(("site", "counter"), ()))


def _at(day: date, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=BERLIN)


def _counter(
    start: datetime, hourly_kwh: Sequence[float], step_s: int = 900, total: float = 1000.0
) -> tuple[list[float], list[float]]:
    """Samples every step_s from `start`, each hour's energy spread evenly over its steps.

    Hours here are real hours (3600 s) from `start`, which on a DST day are still the local
    clock's buckets because `start` is a local hour start.
    """
    steps = 3600 // step_s
    first = start.timestamp()
    timestamps, totals = [first], [total]
    for hour, kwh in enumerate(hourly_kwh):
        for step in range(1, steps + 1):
            timestamps.append(first + hour * 3600 + step * step_s)
            totals.append(totals[-1] + kwh / steps)
    return timestamps, totals


def _hours(
    timestamps: Sequence[float],
    totals: Sequence[float],
    pricing: Pricing | None = None,
    channel: str = "grid_import",
) -> list[Aggregate]:
    return hourly_aggregates("site", channel, _hours_of(timestamps, totals, BERLIN), pricing)


def _import(tariff: Tariff, emissions: Emissions | None = None) -> Pricing:
    return Pricing.for_role(SeriesRole.IMPORT, tariff, emissions)


def _export(tariff: Tariff, emissions: Emissions | None = None) -> Pricing:
    return Pricing.for_role(SeriesRole.EXPORT, tariff, emissions)


def _one_bill(imports: list[Aggregate], tariff: Tariff, exports: Sequence[Aggregate] = ()) -> Bill:
    (bill,) = bills(imports, exports, tariff, Period.DAY)
    return bill


# --- local hours and DST ----------------------------------------------------------------------


def test_spring_forward_day_has_23_buckets_and_an_exact_day_sum() -> None:
    day = date(2026, 3, 29)  # Europe/Berlin: 02:00 CET -> 03:00 CEST
    # Hour i of the day uses (i + 1) / 4 kWh: 0.25, 0.5, ... 5.75 (dyadic, so exact in binary).
    energies = [(i + 1) / 4 for i in range(23)]
    timestamps, totals = _counter(_at(day), energies)
    hours = _hours(timestamps, totals)

    assert len(hours) == 23
    starts = [item.start.strftime("%H:%M%z") for item in hours]
    assert starts[:4] == ["00:00+0100", "01:00+0100", "03:00+0200", "04:00+0200"]
    assert [item.energy_kwh for item in hours] == energies
    (day_total,) = daily(hours)
    assert day_total.start == _at(day)
    assert day_total.end == _at(date(2026, 3, 30))
    assert day_total.end - day_total.start == timedelta(hours=24)  # wall clock ...
    assert day_total.end.timestamp() - day_total.start.timestamp() == 23 * 3600  # ... real time
    # 0.25 * (1 + 2 + ... + 23) = 0.25 * 276 = 69 kWh, exactly, and exactly the hours' sum.
    assert day_total.energy_kwh == 69.0 == math.fsum(item.energy_kwh for item in hours)
    assert day_total.complete


def test_fall_back_day_has_25_buckets_and_an_exact_day_sum() -> None:
    day = date(2026, 10, 25)  # Europe/Berlin: 03:00 CEST -> 02:00 CET
    energies = [(i + 1) / 4 for i in range(25)]
    timestamps, totals = _counter(_at(day), energies)
    hours = _hours(timestamps, totals)

    assert len(hours) == 25
    starts = [item.start.strftime("%H:%M%z") for item in hours]
    # 02:00 happens twice, told apart by the offset (and the fold).
    assert starts[1:5] == ["01:00+0200", "02:00+0200", "02:00+0100", "03:00+0100"]
    assert [hours[2].start.fold, hours[3].start.fold] == [0, 1]
    (day_total,) = daily(hours)
    # 0.25 * (1 + 2 + ... + 25) = 0.25 * 325 = 81.25 kWh.
    assert day_total.energy_kwh == 81.25 == math.fsum(item.energy_kwh for item in hours)
    assert day_total.end.timestamp() - day_total.start.timestamp() == 25 * 3600


def test_month_with_both_dst_days_sums_its_days() -> None:
    start = _at(date(2026, 3, 1))
    hours_in_march = 31 * 24 - 1  # the spring-forward day is short
    timestamps, totals = _counter(start, [0.5] * hours_in_march)
    hours = _hours(timestamps, totals)
    days = daily(hours)
    (march,) = monthly(days)
    assert len(hours) == hours_in_march
    assert len(days) == 31
    assert march.energy_kwh == 0.5 * hours_in_march
    assert (march.start, march.end) == (start, _at(date(2026, 4, 1)))
    assert march.complete


@pytest.mark.parametrize(
    ("zone", "day", "expected"),
    [
        ("Europe/Berlin", date(2026, 3, 29), 23),
        ("Europe/Berlin", date(2026, 10, 25), 25),
        ("America/New_York", date(2026, 3, 8), 23),
        ("America/Santiago", date(2026, 9, 6), 23),  # midnight does not exist: day starts 01:00
        ("Australia/Lord_Howe", date(2026, 4, 5), 24.5),  # back by 30 minutes
        ("Australia/Lord_Howe", date(2026, 10, 4), 23.5),  # forward by 30 minutes
        ("Pacific/Chatham", date(2026, 4, 5), 25),
        ("Asia/Kathmandu", date(2026, 6, 1), 24),
    ],
)
def test_transition_days_in_many_zones(zone: str, day: date, expected: float) -> None:
    tz = ZoneInfo(zone)
    midnight = datetime(day.year, day.month, day.day, tzinfo=tz)
    start = datetime.fromtimestamp(midnight.timestamp(), tz)  # a missing midnight moves on
    following = day + timedelta(days=1)
    end = datetime(following.year, following.month, following.day, tzinfo=tz).timestamp()
    grid = local_hours(start.timestamp(), end - 1, tz)
    assert grid.bounds[0] == start.timestamp()
    assert grid.bounds[-1] == end
    assert (grid.bounds[-1] - grid.bounds[0]) / 3600 == expected
    # Every minute of the day falls in the bucket of its own wall-clock hour and offset, and
    # every bucket starts at that hour's first instant.
    for moment in range(int(start.timestamp()), int(end), 60):
        local = datetime.fromtimestamp(moment, tz)
        bucket = grid.local_bounds[grid.hour_of(moment)]
        assert (local.date(), local.hour, local.utcoffset()) == (
            bucket.date(),
            bucket.hour,
            bucket.utcoffset(),
        )
    lord_howe = [item.strftime("%H:%M%z") for item in grid.local_bounds[:4]]
    if zone == "Australia/Lord_Howe" and day.month == 10:
        assert lord_howe == ["00:00+1030", "01:00+1030", "02:30+1100", "03:00+1100"]


@settings(max_examples=60, deadline=None)
@given(
    zone=st.sampled_from(ZONES),
    start=st.integers(1_577_836_800, 1_893_456_000),  # 2020..2030
    length=st.integers(1, 400 * 3600),
    probes=st.lists(st.floats(0, 1), min_size=1, max_size=20),
)
def test_every_instant_falls_in_the_bucket_of_its_local_hour(
    zone: ZoneInfo, start: int, length: int, probes: list[float]
) -> None:
    grid = local_hours(start, start + length, zone)
    assert grid.bounds[0] <= start < grid.bounds[1]
    assert grid.bounds[-2] < start + length <= grid.bounds[-1]
    assert all(0 < b - a <= 3600 for a, b in pairwise(grid.bounds))
    for share in probes:
        moment = start + share * length
        hour = grid.hour_of(moment)
        local = datetime.fromtimestamp(moment, zone)
        bucket = grid.local_bounds[hour]
        assert (local.date(), local.hour, local.utcoffset()) == (
            bucket.date(),
            bucket.hour,
            bucket.utcoffset(),
        )


# --- counters into hours: outages -------------------------------------------------------------


def _load_kw(moment: float) -> float:
    """A household load that differs from hour to hour and minute to minute."""
    local = datetime.fromtimestamp(moment, BERLIN)
    return 0.4 + 0.3 * (local.hour % 5) + 0.01 * (local.minute % 7)


def _minute_counter(day: date) -> tuple[list[float], list[float]]:
    """One-minute samples over a day; each minute's energy is the load at its start."""
    first = _at(day).timestamp()
    timestamps, totals = [first], [500.0]
    for minute in range(24 * 60):
        moment = first + 60 * minute
        timestamps.append(moment + 60)
        totals.append(totals[-1] + _load_kw(moment) / 60)
    return timestamps, totals


def _truth(timestamps: list[float], totals: list[float], start: float, end: float) -> float:
    first, last = timestamps.index(start), timestamps.index(end)
    return totals[last] - totals[first]


def test_three_hour_outage_is_spread_flagged_and_keeps_the_total() -> None:
    day = date(2026, 6, 3)
    timestamps, totals = _minute_counter(day)
    ten, one_pm = _at(day, 10).timestamp(), _at(day, 13).timestamp()
    # Offline from 10:00 to 13:00: no samples in between; the meter kept counting.
    kept = [i for i, moment in enumerate(timestamps) if not ten < moment < one_pm]
    hours = _hours([timestamps[i] for i in kept], [totals[i] for i in kept])

    by_hour = {item.start.hour: item for item in hours}
    outage = _truth(timestamps, totals, ten, one_pm)
    for hour in (10, 11, 12):
        # Spread evenly: a third each, never a zero hour followed by a spike.
        assert by_hour[hour].energy_kwh == pytest.approx(outage / 3, rel=1e-12)
        assert by_hour[hour].estimated
        assert by_hour[hour].peak_kw is None  # no sample inside: no evidence of a peak
    for hour in set(range(24)) - {10, 11, 12}:
        start = _at(day, hour).timestamp()
        truth = _truth(timestamps, totals, start, start + 3600)
        assert by_hour[hour].energy_kwh == pytest.approx(truth, rel=1e-12)
        assert not by_hour[hour].estimated
    (day_total,) = daily(hours)
    assert day_total.energy_kwh == pytest.approx(totals[-1] - totals[0], rel=1e-12)
    assert day_total.estimated


def test_outage_inside_hours_spreads_pro_rata_by_time() -> None:
    day = date(2026, 6, 3)
    timestamps, totals = _minute_counter(day)
    down, up = _at(day, 10, 20).timestamp(), _at(day, 13, 40).timestamp()
    kept = [i for i, moment in enumerate(timestamps) if not down < moment < up]
    hours = _hours([timestamps[i] for i in kept], [totals[i] for i in kept])
    by_hour = {item.start.hour: item for item in hours}

    gap_kwh = _truth(timestamps, totals, down, up)  # 200 minutes of energy
    measured = _truth(timestamps, totals, _at(day, 10).timestamp(), down)  # 10:00-10:20
    # Hour 10 keeps its 20 measured minutes and gets 40 of the gap's 200 minutes.
    assert by_hour[10].energy_kwh == pytest.approx(measured + gap_kwh * 40 / 200, rel=1e-12)
    assert by_hour[11].energy_kwh == pytest.approx(gap_kwh * 60 / 200, rel=1e-12)
    assert [hour for hour, item in sorted(by_hour.items()) if item.estimated] == [10, 11, 12, 13]
    assert math.fsum(item.energy_kwh for item in hours) == pytest.approx(totals[-1] - totals[0])


def test_flagged_samples_mark_their_interval_estimated() -> None:
    day = date(2026, 6, 3)
    timestamps, totals = _counter(_at(day), [1.0] * 4, step_s=300)
    flags = [False] * len(timestamps)
    flags[13] = True  # the interval 01:00-01:05 was bridged upstream
    buckets = _hours_of(timestamps, totals, BERLIN, estimated=flags)
    assert [bucket.estimated for bucket in buckets] == [False, True, False, False]


def test_samples_out_of_order_and_duplicates() -> None:
    day = date(2026, 6, 3)
    timestamps = [_at(day, t).timestamp() for t in (1, 0)] + [_at(day, 0, 30).timestamp()] * 2
    totals = [11.0, 10.0, 10.4, 10.5]  # the last two: the same instant, the later one wins
    buckets = _hours_of(timestamps, totals, BERLIN)
    assert [bucket.energy_kwh for bucket in buckets] == [1.0]
    with pytest.raises(ValueError, match="finite"):
        _hours_of([0.0, 60.0], [1.0, math.nan], BERLIN)


def test_a_counter_reset_adds_no_energy_and_no_negative_hour() -> None:
    start = _at(date(2026, 6, 3)).timestamp()
    timestamps = [start, start + 1800, start + 3600, start + 5400, start + 7200]
    totals = [100.0, 101.0, 2.0, 2.5, 3.0]  # reset between 00:30 and 01:00
    buckets = _hours_of(timestamps, totals, BERLIN)
    assert [bucket.energy_kwh for bucket in buckets] == [1.0, 1.0]


def test_partial_hours_at_the_ends_count_what_is_covered() -> None:
    start = _at(date(2026, 6, 3), 10, 20).timestamp()
    timestamps = [start + 60 * i for i in range(71)]  # 10:20 .. 11:30
    totals = [float(i) / 60 for i in range(71)]  # 1 kW
    first, second = _hours_of(timestamps, totals, BERLIN)
    assert first.energy_kwh == pytest.approx(40 / 60)
    assert second.energy_kwh == pytest.approx(30 / 60)
    assert not first.complete
    assert not second.complete
    # Demand comes from quarter hours the samples cover from end to end only.
    assert first.demand_kw == pytest.approx(1.0)
    assert first.quarter_kwh == pytest.approx((0.0, 0.25 * 2 / 3, 0.25, 0.25))


# --- demand and peak --------------------------------------------------------------------------


def test_demand_is_the_largest_aligned_quarter_hour_average() -> None:
    day = date(2026, 6, 3)
    first = _at(day, 10).timestamp()
    # 1 kW, except 10 kW from 10:07:30 to 10:22:30: one 15-minute stretch, but it straddles
    # two wall-clock quarters, each of which averages (7.5 * 10 + 7.5 * 1) / 15 = 5.5 kW.
    timestamps = [first + 450 * i for i in range(9)]
    kw = [1.0, 10.0, 10.0, 1.0, 1.0, 1.0, 1.0, 1.0]
    totals = [0.0]
    for power in kw:
        totals.append(totals[-1] + power * 450 / 3600)
    (bucket,) = _hours_of(timestamps, totals, BERLIN)
    assert bucket.demand_kw == pytest.approx(5.5)
    assert bucket.peak_kw == pytest.approx(10.0)  # largest interval average (no power samples)
    assert bucket.energy_kwh == pytest.approx(1.0 + 2 * 9 * 450 / 3600)


def test_peak_from_power_samples() -> None:
    first = _at(date(2026, 6, 3), 10).timestamp()
    timestamps, totals = [first, first + 3600], [0.0, 2.0]
    power_ts = [first + 10 * i for i in range(360)]
    power_w = [2000.0] * 360
    power_w[100] = 7300.0
    (bucket,) = _hours_of(timestamps, totals, BERLIN, power_timestamps=power_ts, power_w=power_w)
    assert bucket.peak_kw == 7.3
    assert bucket.demand_kw == pytest.approx(2.0)


# --- bills, by hand ---------------------------------------------------------------------------


def test_flat_price_bill() -> None:
    tariff = Tariff(import_price=FlatPrice(price=0.315), currency="EUR")
    timestamps, totals = _counter(_at(date(2026, 6, 1)), [1.0] * 24)
    bill = _one_bill(_hours(timestamps, totals, _import(tariff)), tariff)
    # 24 h x 1 kWh x 0.315 EUR/kWh = 7.56 EUR
    assert bill.import_kwh == 24.0
    assert bill.energy_charge == Decimal("7.56")
    assert bill.total == Decimal("7.56")
    assert bill.currency == "EUR"


def _tou_tariff() -> Tariff:
    return Tariff(
        import_price=TimeOfUse(
            periods=(
                # Weekday nights: on Friday 22:00-24:00, but not Saturday 00:00-06:00, which
                # is a weekend day (each quarter hour is judged by its own date).
                TouPeriod(start=time(22), end=time(6), price=0.20, days=DayType.WEEKDAY),
                # Weekday evening peak, from a half hour.
                TouPeriod(start=time(17, 30), end=time(20), price=0.45, days=DayType.WEEKDAY),
                # Weekends all day.
                TouPeriod(start=time(0), end=time(0), price=0.25, days=DayType.WEEKEND),
            ),
            default_price=0.36,  # weekday daytime
        ),
        currency="EUR",
    )


def test_time_of_use_bill_across_midnight_and_into_the_weekend() -> None:
    tariff = _tou_tariff()
    assert validate_tariff(tariff) == []
    # Friday 2026-06-05 12:00 to Saturday 12:00, 1 kWh every hour (0.25 kWh every quarter).
    timestamps, totals = _counter(_at(date(2026, 6, 5), 12), [1.0] * 24)
    hours = _hours(timestamps, totals, _import(tariff))
    friday, saturday = bills(hours, [], tariff, Period.DAY)
    # Friday: 12:00-17:30  5.5 kWh x 0.36 = 1.980
    #         17:30-20:00  2.5 kWh x 0.45 = 1.125
    #         20:00-22:00  2.0 kWh x 0.36 = 0.720
    #         22:00-24:00  2.0 kWh x 0.20 = 0.400
    #                                       4.225 -> 4.23 (half a cent rounds up)
    assert friday.energy_charge == Decimal("4.23")
    # Saturday: 00:00-12:00 12 kWh x 0.25 = 3.00 (weekend, not the weekday night price)
    assert saturday.energy_charge == Decimal("3.00")
    (june,) = bills(hours, [], tariff, Period.MONTH)
    # 4.225 + 3.00 = 7.225 -> 7.23
    assert june.energy_charge == Decimal("7.23")
    # The half-hour boundary splits the 17:00 hour: 0.5 x 0.36 + 0.5 x 0.45 = 0.405
    five_pm = next(item for item in hours if item.start.hour == 17)
    assert five_pm.cost == pytest.approx(0.405)


def test_time_of_use_seasons_and_holidays() -> None:
    tariff = Tariff(
        import_price=TimeOfUse(
            periods=(
                TouPeriod(start=time(8), end=time(20), price=0.40, months=season(11, 2)),
                TouPeriod(start=time(0), end=time(0), price=0.10, days=DayType.WEEKEND),
            ),
            default_price=0.30,
            holidays=frozenset({date(2026, 12, 25)}),
        )
    )
    assert season(11, 2) == frozenset({11, 12, 1, 2})
    assert validate_tariff(tariff) == ["import_tou_overlap"]  # winter weekends: first wins
    # Thursday 2026-12-24 10:00-11:00 (winter day): 2 kWh x 0.40 = 0.80
    # Friday 2026-12-25 10:00-11:00 (a holiday: the winter period still wins, listed first)
    # Wednesday 2026-06-03 10:00-11:00 (summer weekday): 2 kWh x 0.30 = 0.60
    # Wednesday 2026-06-03 21:00-22:00: 2 kWh x 0.30 = 0.60
    costs = []
    for moment in (
        _at(date(2026, 12, 24), 10),
        _at(date(2026, 12, 25), 10),
        _at(date(2026, 12, 25), 21),  # holiday evening: weekend price 2 x 0.10 = 0.20
        _at(date(2026, 6, 3), 10),
    ):
        timestamps, totals = _counter(moment, [2.0])
        (hour,) = _hours(timestamps, totals, _import(tariff))
        costs.append(money(hour.cost or 0.0))
    assert costs == [Decimal("0.80"), Decimal("0.80"), Decimal("0.20"), Decimal("0.60")]


def test_dynamic_price_bill_with_a_negative_hour_and_a_fallback() -> None:
    day = date(2026, 6, 3)
    prices: dict[datetime | float, float] = {
        _at(day, 10).astimezone(UTC): 0.30,
        _at(day, 11).astimezone(UTC): -0.05,  # spot prices go negative
        _at(day, 12).timestamp(): 0.12,  # epoch keys work too
        # 13:00 is missing: the fallback applies
    }
    tariff = Tariff(import_price=DynamicPrice(prices=prices, fallback=0.25))
    assert validate_tariff(tariff) == []
    timestamps, totals = _counter(_at(day, 10), [2.0] * 4)
    bill = _one_bill(_hours(timestamps, totals, _import(tariff)), tariff)
    # 2 x 0.30 + 2 x (-0.05) + 2 x 0.12 + 2 x 0.25 = 0.60 - 0.10 + 0.24 + 0.50 = 1.24
    assert bill.energy_charge == Decimal("1.24")

    no_fallback = Tariff(import_price=DynamicPrice(prices=prices))
    bill = _one_bill(_hours(timestamps, totals, _import(no_fallback)), no_fallback)
    assert bill.energy_charge is None  # 13:00 has no price: unknown, not free
    assert bill.total is None


def test_export_compensation_flat_and_from_a_series() -> None:
    day = date(2026, 6, 3)
    imports = _counter(_at(day, 10), [5.0, 5.0])
    exports = _counter(_at(day, 10), [10.0, 15.0])
    flat = Tariff(import_price=FlatPrice(price=0.30), export_price=FlatPrice(price=0.08))
    bill = _one_bill(
        _hours(*imports, _import(flat)), flat, _hours(*exports, _export(flat), "grid_export")
    )
    # import 10 kWh x 0.30 = 3.00; export 25 kWh x 0.08 = 2.00; total 3.00 - 2.00 = 1.00
    assert (bill.energy_charge, bill.export_credit, bill.total) == (
        Decimal("3.00"),
        Decimal("2.00"),
        Decimal("1.00"),
    )
    export_hours = _hours(*exports, _export(flat), "grid_export")
    assert [item.cost for item in export_hours] == pytest.approx([-0.8, -1.2])  # money received

    series = Tariff(
        import_price=FlatPrice(price=0.30),
        export_price=DynamicPrice(prices={_at(day, 10): 0.071, _at(day, 11): 0.052}),
    )
    bill = _one_bill(
        _hours(*imports, _import(series)), series, _hours(*exports, _export(series), "grid_export")
    )
    # export 10 kWh x 0.071 + 15 kWh x 0.052 = 0.71 + 0.78 = 1.49; total 3.00 - 1.49 = 1.51
    assert (bill.export_credit, bill.total) == (Decimal("1.49"), Decimal("1.51"))

    holes = Tariff(
        import_price=FlatPrice(price=0.30),
        export_price=DynamicPrice(prices={_at(day, 10): 0.071}),  # nothing for 11:00
    )
    bill = _one_bill(
        _hours(*imports, _import(holes)), holes, _hours(*exports, _export(holes), "grid_export")
    )
    assert (bill.energy_charge, bill.export_credit, bill.total) == (Decimal("3.00"), None, None)


def test_fixed_fees_per_month_and_per_day() -> None:
    june = _counter(_at(date(2026, 6, 1)), [0.5] * (30 * 24))  # the whole of June
    monthly_fee = Tariff(
        import_price=FlatPrice(price=0.30), fee=FixedFee(amount=12.0, per=FeePeriod.MONTH)
    )
    hours = _hours(*june, _import(monthly_fee))
    (month_bill,) = bills(hours, [], monthly_fee, Period.MONTH)
    # 360 kWh x 0.30 = 108.00; fee 12.00 once; total 120.00
    assert (month_bill.energy_charge, month_bill.fixed_fee, month_bill.total) == (
        Decimal("108.00"),
        Decimal("12.00"),
        Decimal("120.00"),
    )
    day_bills = bills(hours, [], monthly_fee, Period.DAY)
    # Each day shows its share: 12.00 / 30 days = 0.40; 12 kWh x 0.30 = 3.60; total 4.00
    assert len(day_bills) == 30
    assert {(bill.fixed_fee, bill.total) for bill in day_bills} == {
        (Decimal("0.40"), Decimal("4.00"))
    }

    daily_fee = Tariff(
        import_price=FlatPrice(price=0.30), fee=FixedFee(amount=0.45, per=FeePeriod.DAY)
    )
    # 2026-10-24..26: a 25-hour day in the middle still costs one day's fee.
    three_days = _counter(_at(date(2026, 10, 24)), [1.0] * (24 + 25 + 24))
    hours = _hours(*three_days, _import(daily_fee))
    (october,) = bills(hours, [], daily_fee, Period.MONTH)
    # 73 kWh x 0.30 = 21.90; fee 3 days x 0.45 = 1.35; total 23.25
    assert (october.energy_charge, october.fixed_fee, october.total) == (
        Decimal("21.90"),
        Decimal("1.35"),
        Decimal("23.25"),
    )


def test_demand_charge_on_the_monthly_bill() -> None:
    tariff = Tariff(
        import_price=FlatPrice(price=0.25), demand_charge=DemandCharge(per_kw_month=9.80)
    )
    # June 3rd: 1 kW all day, except 10:15-10:30 at 10 kW (2.5 kWh in that quarter hour).
    first = _at(date(2026, 6, 3))
    timestamps = [first.timestamp() + 900 * i for i in range(97)]
    quarter_kwh = [0.25] * 96
    quarter_kwh[41] = 2.5  # 10:15 is quarter 41 of the day
    totals = [0.0]
    for kwh in quarter_kwh:
        totals.append(totals[-1] + kwh)
    hours = _hours(timestamps, totals, _import(tariff))
    (bill,) = bills(hours, [], tariff, Period.MONTH)
    # energy: 95 x 0.25 + 2.5 = 26.25 kWh x 0.25 = 6.5625 -> 6.56
    # demand: 2.5 kWh in 15 minutes = 10 kW; 10 kW x 9.80 = 98.00
    # total: 6.56 + 98.00 = 104.56
    assert bill.demand_kw == pytest.approx(10.0)
    assert (bill.energy_charge, bill.demand_charge, bill.total) == (
        Decimal("6.56"),
        Decimal("98.00"),
        Decimal("104.56"),
    )
    (day_bill,) = bills(hours, [], tariff, Period.DAY)
    assert day_bill.demand_charge == Decimal("0.00")  # charged per month only


def test_co2_fixed_factor_intensity_series_and_avoided_export() -> None:
    day = date(2026, 6, 3)
    imports = _counter(_at(day, 10), [4.0, 6.0])
    exports = _counter(_at(day, 10), [1.0, 3.0])
    tariff = Tariff(import_price=FlatPrice(price=0.30))
    fixed = Emissions(source=Co2Factor(kg_per_kwh=0.4), count_export_as_avoided=True)
    import_hours = _hours(*imports, _import(tariff, fixed))
    # 10 kWh x 0.4 kg/kWh = 4.0 kg
    assert math.fsum(item.co2_kg or 0.0 for item in import_hours) == pytest.approx(4.0)

    intensity = Emissions(
        source=Co2Intensity(g_per_kwh={_at(day, 10): 300.0, _at(day, 11): 200.0}),
        count_export_as_avoided=True,
    )
    assert validate_emissions(intensity) == []
    import_hours = _hours(*imports, _import(tariff, intensity))
    export_hours = _hours(*exports, _export(tariff, intensity), "grid_export")
    # imports: 4 kWh x 300 g + 6 kWh x 200 g = 1.2 + 1.2 = 2.4 kg
    assert [item.co2_kg for item in import_hours] == pytest.approx([1.2, 1.2])
    # exports avoided: 1 kWh x 300 g + 3 kWh x 200 g = 0.3 + 0.6 kg, apart from emissions
    assert [item.co2_avoided_kg for item in export_hours] == pytest.approx([0.3, 0.6])
    assert all(item.co2_kg is None for item in export_hours)
    not_counted = Emissions(source=Co2Factor(kg_per_kwh=0.4))
    export_hours = _hours(*exports, _export(tariff, not_counted), "grid_export")
    assert all(item.co2_avoided_kg is None for item in export_hours)


def test_money_rounds_half_up_through_float_noise() -> None:
    assert money(2.675) == Decimal("2.68")  # 2.675 is 2.67499999... as a float
    assert money(0.1 + 0.2) == Decimal("0.30")
    assert money(-1.005) == Decimal("-1.01")
    assert str(money(-0.001)) == "0.00"


# --- validation -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tariff", "codes"),
    [
        (Tariff(import_price=FlatPrice(price=-0.1)), ["import_price_negative"]),
        (Tariff(import_price=FlatPrice(price=math.nan)), ["import_price_not_finite"]),
        (Tariff(import_price=DynamicPrice(prices={0.0: -0.2}, fallback=-0.1)), []),
        (Tariff(import_price=DynamicPrice(prices={}, max_hold_s=0)), ["import_hold_invalid"]),
        (
            Tariff(import_price=DynamicPrice(prices={datetime(2026, 1, 1): 0.1})),  # noqa: DTZ001
            ["import_time_naive"],
        ),
        (
            Tariff(
                import_price=TimeOfUse(
                    periods=(
                        TouPeriod(start=time(7), end=time(7), price=0.3),
                        TouPeriod(start=time(7, 10), end=time(9), price=0.3),
                        TouPeriod(start=time(9), end=time(10), price=0.3, months=frozenset({13})),
                    ),
                    default_price=0.2,
                )
            ),
            ["import_tou_period_empty", "import_tou_not_quarter_hour", "import_tou_months_invalid"],
        ),
        (
            Tariff(
                import_price=TimeOfUse(
                    periods=(
                        TouPeriod(start=time(22), end=time(6), price=0.2),
                        TouPeriod(start=time(5), end=time(8), price=0.3),
                    )
                )
            ),
            ["import_tou_overlap", "import_tou_not_covered"],
        ),
        (
            Tariff(
                import_price=TimeOfUse(
                    periods=(
                        TouPeriod(start=time(22), end=time(6), price=0.2),
                        TouPeriod(start=time(6), end=time(22), price=0.3),
                    )
                )
            ),
            [],
        ),
        (
            Tariff(
                import_price=FlatPrice(price=0.3),
                export_price=FlatPrice(price=-0.01),
                fee=FixedFee(amount=-1.0),
                demand_charge=DemandCharge(per_kw_month=math.inf),
                currency="euro",
            ),
            [
                "export_price_negative",
                "fee_negative",
                "demand_charge_not_finite",
                "currency_invalid",
            ],
        ),
    ],
)
def test_validate_tariff(tariff: Tariff, codes: list[str]) -> None:
    assert validate_tariff(tariff) == codes


def test_validate_emissions() -> None:
    assert validate_emissions(Emissions(source=Co2Factor(kg_per_kwh=-0.1))) == ["co2_negative"]
    bad_series = Co2Intensity(g_per_kwh={0.0: -5.0}, fallback_g_per_kwh=math.nan)
    assert validate_emissions(Emissions(source=bad_series)) == ["co2_negative", "co2_not_finite"]


# --- everything at once -----------------------------------------------------------------------


def test_aggregate_site_series_with_bills() -> None:
    day = date(2026, 6, 3)
    start = _at(day)
    per_series = {
        "grid_import": [1.0] * 24,
        "grid_export": [0.5] * 24,
        "production": [2.0] * 24,
        "consumption": [2.5] * 24,
        "battery_charge": [0.25] * 24,
        "battery_discharge": [0.25] * 24,
    }
    roles = {"grid_import": SeriesRole.IMPORT, "grid_export": SeriesRole.EXPORT}
    series = [
        CounterSeries(
            device_id="site",
            channel=name,
            timestamps=(columns := _counter(start, per_series[name]))[0],
            totals_kwh=columns[1],
            role=roles.get(name, SeriesRole.OTHER),
        )
        for name in SITE_SERIES
    ]
    tariff = Tariff(
        import_price=FlatPrice(price=0.30),
        export_price=FlatPrice(price=0.08),
        fee=FixedFee(amount=0.50, per=FeePeriod.DAY),
        currency="EUR",
    )
    result = aggregate(
        series, BERLIN, tariff=tariff, emissions=Emissions(source=Co2Factor(kg_per_kwh=0.5))
    )
    assert len(result.hourly) == 6 * 24
    assert {item.channel: item.energy_kwh for item in result.daily} == {
        name: math.fsum(per_series[name]) for name in SITE_SERIES
    }
    by_channel = {item.channel: item for item in result.monthly}
    assert by_channel["grid_import"].cost == pytest.approx(7.2)  # 24 kWh x 0.30
    assert by_channel["grid_import"].co2_kg == pytest.approx(12.0)  # 24 kWh x 0.5
    assert by_channel["grid_export"].cost == pytest.approx(-0.96)  # 12 kWh x 0.08, received
    assert by_channel["production"].cost is None
    (bill,) = result.daily_bills
    # 7.20 - 0.96 + 0.50 = 6.74
    assert bill.total == Decimal("6.74")
    assert result.monthly_bills[0].total == Decimal("6.74")
    assert aggregate([], BERLIN).hourly == ()


# --- properties -------------------------------------------------------------------------------

_STEPS = st.lists(
    st.tuples(
        st.floats(1, 7200, allow_nan=False),  # seconds since the previous sample
        st.floats(0, 5, allow_nan=False),  # kWh since the previous sample
        st.booleans(),  # flagged estimated
    ),
    min_size=1,
    max_size=80,
)


def _series(
    start: float, steps: list[tuple[float, float, bool]]
) -> tuple[list[float], list[float], list[bool]]:
    timestamps, totals, flags = [start], [1234.5], [False]
    for span, kwh, flag in steps:
        timestamps.append(timestamps[-1] + span)
        totals.append(totals[-1] + kwh)
        flags.append(flag)
    return timestamps, totals, flags


def _estimated_truth(
    buckets: list[HourBucket], timestamps: list[float], flags: list[bool], gap_s: float
) -> list[bool]:
    """Brute force: a bucket is estimated iff a gap or flagged interval overlaps it."""
    intervals = [
        (timestamps[i - 1], timestamps[i])
        for i in range(1, len(timestamps))
        if flags[i] or timestamps[i] - timestamps[i - 1] > gap_s
    ]
    return [
        any(a < bucket.end_ts and b > bucket.start_ts for a, b in intervals) for bucket in buckets
    ]


@settings(max_examples=200, deadline=None)
@given(
    start=st.floats(1_774_700_000, 1_774_800_000, allow_nan=False),  # around spring-forward
    steps=_STEPS,
    zone=st.sampled_from(ZONES),
)
def test_hours_add_up_never_go_negative_and_are_estimated_exactly_at_gaps(
    start: float, steps: list[tuple[float, float, bool]], zone: ZoneInfo
) -> None:
    timestamps, totals, flags = _series(start, steps)
    buckets = _hours_of(timestamps, totals, zone, estimated=flags)
    assert math.fsum(bucket.energy_kwh for bucket in buckets) == pytest.approx(
        totals[-1] - totals[0], rel=1e-9, abs=1e-9
    )
    assert all(bucket.energy_kwh >= 0.0 for bucket in buckets)
    assert all(kwh >= 0.0 for bucket in buckets for kwh in bucket.quarter_kwh)
    assert [bucket.estimated for bucket in buckets] == _estimated_truth(
        buckets, timestamps, flags, 900.0
    )
    assert all(a.end_ts == b.start_ts for a, b in pairwise(buckets))  # contiguous
    assert buckets[0].start_ts <= timestamps[0] < buckets[0].end_ts
    assert buckets[-1].start_ts < timestamps[-1] <= buckets[-1].end_ts


@settings(max_examples=100, deadline=None)
@given(
    start=st.floats(1_774_700_000, 1_774_800_000, allow_nan=False),
    values=st.lists(st.floats(0, 1e6, allow_nan=False), min_size=2, max_size=50),
    spans=st.lists(st.floats(1, 5000, allow_nan=False), min_size=50, max_size=50),
)
def test_any_counter_gives_non_negative_hours_summing_to_its_increases(
    start: float, values: list[float], spans: list[float]
) -> None:
    timestamps = [start]
    for span in spans[: len(values) - 1]:
        timestamps.append(timestamps[-1] + span)
    buckets = _hours_of(timestamps, values, BERLIN)
    increases = math.fsum(max(b - a, 0.0) for a, b in pairwise(values))
    assert all(bucket.energy_kwh >= 0.0 for bucket in buckets)
    assert math.fsum(bucket.energy_kwh for bucket in buckets) == pytest.approx(
        increases, rel=1e-9, abs=1e-6
    )


def test_fewer_than_two_samples_give_no_hours() -> None:
    assert _hours_of([], [], BERLIN) == []
    assert _hours_of([1e9], [5.0], BERLIN) == []
