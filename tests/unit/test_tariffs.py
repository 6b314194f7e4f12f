"""Tariff and CO2 options: the schedule text, the models built from options, the flow's errors."""

from __future__ import annotations

from datetime import UTC, datetime, time
import math
from typing import Any
from zoneinfo import ZoneInfo

from hypothesis import given, settings, strategies as st
import pytest

from custom_components.ems.engine.tariffs.model import (
    ALL_MONTHS,
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
)
from custom_components.ems.engine.tariffs.options import (
    ENTITY_HOLD_S,
    TariffOptionsError,
    emissions_from_options,
    problems,
    tariff_from_options,
)
from custom_components.ems.engine.tariffs.price_lists import listed_prices, with_listed
from custom_components.ems.engine.tariffs.rates import current_rates
from custom_components.ems.engine.tariffs.schedule import parse_schedule
from custom_components.ems.engine.tariffs.validation import validate_tariff

WINTER = frozenset({10, 11, 12, 1, 2, 3})


def test_parse_schedule_good_lines_comments_and_blanks() -> None:
    text = (
        "# my utility, 2025\n"
        "\n"
        "weekday 07:00-22:00 0.34\n"
        "  WEEKEND 07:00 - 22:00 0,30   # decimal comma, spaces round the dash\n"
        "all 22:00-07:00 0.21 months 10-3\n"
        "all 22:00-07:00 0.25 months 4-9\n"
        "all 00:00-00:00 0.5 months 7\n"
    )
    periods, found = parse_schedule(text)
    assert found == [(7, "tou_overlap")]  # July is already priced by lines 3 to 6
    assert periods == [
        TouPeriod(start=time(7), end=time(22), price=0.34, days=DayType.WEEKDAY),
        TouPeriod(start=time(7), end=time(22), price=0.30, days=DayType.WEEKEND),
        TouPeriod(start=time(22), end=time(7), price=0.21, months=WINTER),
        TouPeriod(start=time(22), end=time(7), price=0.25, months=ALL_MONTHS - WINTER),
    ]


def test_parse_schedule_whole_day_and_24_00() -> None:
    periods, found = parse_schedule("weekend 00:00-24:00 0.1\nweekday 00:00-00:00 0.2")
    assert found == []
    assert [period.quarters() for period in periods] == [list(range(96))] * 2


@pytest.mark.parametrize(
    ("line", "code"),
    [
        ("garbage", "tou_syntax"),
        ("weekday 07:00-22:00", "tou_syntax"),  # missing price
        ("weekday 07:00-22:00 cheap", "tou_syntax"),
        ("monday 07:00-22:00 0.3", "tou_syntax"),
        ("all 25:00-07:00 0.3", "tou_syntax"),
        ("all 07:00-07:60 0.3", "tou_syntax"),
        ("all 24:00-07:00 0.3", "tou_syntax"),  # 24:00 only ends a period
        ("all 07:00-22:00 0.3 months", "tou_syntax"),
        ("all 07:00-22:00 0.3 extra", "tou_syntax"),
        ("all 07:10-08:00 0.3", "tou_not_quarter_hour"),
        ("all 07:00-08:05 0.3", "tou_not_quarter_hour"),
        ("all 07:00-07:00 0.3", "tou_period_empty"),
        ("all 07:00-08:00 -0.3", "tou_price_invalid"),
        ("all 07:00-08:00 nan", "tou_price_invalid"),
        ("all 07:00-08:00 inf", "tou_price_invalid"),
        ("all 07:00-08:00 0.3 months 13", "tou_months_invalid"),
        ("all 07:00-08:00 0.3 months 0-3", "tou_months_invalid"),
        ("all 07:00-08:00 0.3 months 4-13", "tou_months_invalid"),
    ],
)
def test_parse_schedule_bad_line(line: str, code: str) -> None:
    """Each bad line is reported with its number and gives no period; good lines still do."""
    periods, found = parse_schedule(f"# header\nweekend 07:00-08:00 0.1\n{line}\n")
    assert found == [(3, code)]
    assert len(periods) == 1


def test_parse_schedule_overlap_across_midnight_and_days() -> None:
    """A weekday night period overlaps an all-days morning; weekend and weekday do not."""
    text = "weekday 22:00-06:00 0.2\nweekend 05:00-07:00 0.3\nall 05:45-06:15 0.4\n"
    periods, found = parse_schedule(text)
    assert found == [(3, "tou_overlap")]
    assert len(periods) == 2


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_parse_schedule_never_raises(text: str) -> None:
    periods, found = parse_schedule(text)
    assert all(isinstance(period, TouPeriod) for period in periods)
    assert all(line >= 1 and code.startswith("tou_") for line, code in found)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["all", "weekday", "weekend", "Weekend", "x"]),
            st.integers(0, 25),
            st.integers(0, 60),
            st.integers(0, 25),
            st.integers(0, 60),
            st.one_of(
                st.floats(allow_nan=True), st.text(alphabet="0123456789.,-eanif", max_size=4)
            ),
            st.one_of(st.none(), st.tuples(st.integers(0, 14), st.integers(0, 14))),
        ),
        max_size=6,
    )
)
def test_parse_schedule_never_raises_on_near_miss_lines(lines: list[tuple[Any, ...]]) -> None:
    """Lines that almost follow the syntax: every one is a period or a problem, never both."""
    text = "\n".join(
        f"{days} {h1:02}:{m1:02}-{h2:02}:{m2:02} {price}"
        + (f" months {months[0]}-{months[1]}" if months else "")
        for days, h1, m1, h2, m2, price, months in lines
    )
    periods, found = parse_schedule(text)
    assert len(periods) + len(found) == len([line for line in text.splitlines() if line.strip()])


# --- tariffs ------------------------------------------------------------------------------------


def test_no_price_is_no_tariff() -> None:
    assert tariff_from_options({}, currency="EUR") is None
    assert tariff_from_options({"price_mode": "none", "fee_amount": 0}, currency="EUR") is None
    assert problems({}) == {}


def test_flat_tariff_with_everything() -> None:
    tariff = tariff_from_options(
        {
            "price_mode": "flat",
            "import_price": 0.31,
            "export_mode": "flat",
            "export_price": 0.08,
            "fee_amount": 0.45,
            "fee_period": "day",
            "demand_charge": 9.5,
        },
        currency="EUR",
    )
    assert tariff is not None
    assert tariff.import_price == FlatPrice(price=0.31)
    assert tariff.export_price == FlatPrice(price=0.08)
    assert tariff.fee == FixedFee(amount=0.45, per=FeePeriod.DAY)
    assert tariff.demand_charge == DemandCharge(per_kw_month=9.5)
    assert tariff.currency == "EUR"
    assert validate_tariff(tariff) == []


def test_zero_fee_and_demand_charge_are_none() -> None:
    tariff = tariff_from_options(
        {"price_mode": "flat", "import_price": 0.2, "fee_amount": 0, "demand_charge": 0},
        currency=None,
    )
    assert tariff is not None
    assert (tariff.fee, tariff.demand_charge, tariff.export_price) == (None, None, None)
    monthly = tariff_from_options(
        {"price_mode": "flat", "import_price": 0.2, "fee_amount": 12}, currency=None
    )
    assert monthly is not None
    assert monthly.fee == FixedFee(amount=12.0, per=FeePeriod.MONTH)


def test_time_of_use_tariff() -> None:
    options = {
        "price_mode": "time_of_use",
        "import_price": 0.25,
        "tou_schedule": "weekday 07:00-22:00 0.34\nall 22:00-07:00 0.21 months 10-3",
    }
    tariff = tariff_from_options(options, currency="SEK")
    assert tariff is not None
    assert tariff.import_price == TimeOfUse(
        periods=(
            TouPeriod(start=time(7), end=time(22), price=0.34, days=DayType.WEEKDAY),
            TouPeriod(start=time(22), end=time(7), price=0.21, months=WINTER),
        ),
        default_price=0.25,
    )
    # without the default, summer nights and weekend days have no price
    uncovered = {**options, "import_price": None}
    assert problems(uncovered) == {"tou_schedule": "tou_not_covered"}
    with pytest.raises(TariffOptionsError) as raised:
        tariff_from_options(uncovered, currency="SEK")
    assert raised.value.errors == {"tou_schedule": "tou_not_covered"}
    full = {**uncovered, "tou_schedule": "weekday 07:00-22:00 0.34\nall 00:00-00:00 0.2"}
    assert problems(full) == {"tou_schedule": "tou_overlap"}
    full["tou_schedule"] = "all 07:00-22:00 0.34\nall 22:00-07:00 0.2"
    assert problems(full) == {}


def test_entity_prices_hold_for_a_while_and_no_fallback() -> None:
    hour = datetime(2025, 1, 1, 12, tzinfo=UTC)
    prices = {hour: 0.31}
    exports = {hour.timestamp(): -0.02}
    options = {
        "price_mode": "entity",
        "price_entity": "sensor.nord_pool",
        "export_mode": "entity",
        "export_price_entity": "sensor.feed_in",
    }
    tariff = tariff_from_options(
        options, currency="NOK", import_prices=prices, export_prices=exports
    )
    assert tariff is not None
    assert tariff.import_price == DynamicPrice(prices=prices, max_hold_s=ENTITY_HOLD_S)
    assert tariff.export_price == DynamicPrice(prices=exports, max_hold_s=ENTITY_HOLD_S)
    assert isinstance(tariff.import_price, DynamicPrice)
    assert tariff.import_price.fallback is None
    # nothing sampled yet: a tariff without prices (cost unknown), not an error
    empty = tariff_from_options(options, currency="NOK")
    assert empty is not None
    assert empty.import_price == DynamicPrice(prices={}, max_hold_s=ENTITY_HOLD_S)
    with pytest.raises(TariffOptionsError):
        tariff_from_options(options, currency="NOK", import_prices={datetime(2025, 1, 1): 1.0})  # noqa: DTZ001


def test_export_flat_with_import_entity() -> None:
    tariff = tariff_from_options(
        {
            "price_mode": "entity",
            "price_entity": "input_number.price",
            "export_mode": "flat",
            "export_price": 0,
        },
        currency="EUR",
    )
    assert tariff is not None
    assert tariff.export_price == FlatPrice(price=0.0)


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({"price_mode": "flat"}, {"import_price": "price_required"}),
        ({"price_mode": "flat", "import_price": ""}, {"import_price": "price_required"}),
        ({"price_mode": "flat", "import_price": "x"}, {"import_price": "price_invalid"}),
        ({"price_mode": "flat", "import_price": -1}, {"import_price": "price_invalid"}),
        ({"price_mode": "flat", "import_price": True}, {"import_price": "price_invalid"}),
        ({"price_mode": "entity"}, {"price_entity": "entity_required"}),
        ({"price_mode": "entity", "price_entity": " "}, {"price_entity": "entity_required"}),
        ({"price_mode": "time_of_use"}, {"tou_schedule": "tou_not_covered"}),
        (
            {"price_mode": "time_of_use", "tou_schedule": "all 07:00-08:00 x"},
            {"tou_schedule": "tou_syntax"},
        ),
        (
            {"price_mode": "time_of_use", "tou_schedule": "all 07:00-08:00 1 months 14"},
            {"tou_schedule": "tou_months_invalid"},
        ),
        (
            {"price_mode": "time_of_use", "import_price": -2, "tou_schedule": ""},
            {"import_price": "price_invalid"},
        ),
        (
            {"price_mode": "flat", "import_price": 1, "export_mode": "flat"},
            {"export_price": "price_required"},
        ),
        (
            {"price_mode": "flat", "import_price": 1, "export_mode": "entity"},
            {"export_price_entity": "entity_required"},
        ),
        (
            {"price_mode": "flat", "import_price": 1, "fee_amount": -3},
            {"fee_amount": "amount_invalid"},
        ),
        (
            {"price_mode": "flat", "import_price": 1, "fee_amount": 3, "fee_period": "week"},
            {"fee_period": "invalid_choice"},
        ),
        (
            {"price_mode": "flat", "import_price": 1, "demand_charge": "lots"},
            {"demand_charge": "amount_invalid"},
        ),
        ({"price_mode": "cheap"}, {"price_mode": "invalid_choice"}),
        ({"export_mode": "flat", "export_price": 0.1}, {"export_mode": "needs_price"}),
        (
            {"fee_amount": 5, "demand_charge": 2},
            {"fee_amount": "needs_price", "demand_charge": "needs_price"},
        ),
        ({"co2_mode": "entity"}, {"co2_entity": "entity_required"}),
        ({"co2_mode": "factor", "co2_factor": -0.1}, {"co2_factor": "amount_invalid"}),
        ({"co2_mode": "factor", "co2_factor": "x"}, {"co2_factor": "amount_invalid"}),
        ({"co2_mode": "coal"}, {"co2_mode": "invalid_choice"}),
        (
            {"price_mode": "flat", "co2_mode": "entity"},
            {"import_price": "price_required", "co2_entity": "entity_required"},
        ),
    ],
)
def test_problems(options: dict[str, Any], expected: dict[str, str]) -> None:
    assert problems(options) == expected


def test_problems_none_for_complete_options() -> None:
    options = {
        "price_mode": "time_of_use",
        "import_price": 0.3,
        "tou_schedule": "weekday 07:00-22:00 0.34\n# night\nall 22:00-07:00 0.21 months 10-3",
        "price_entity": "sensor.unused_in_this_mode",
        "export_mode": "entity",
        "export_price_entity": "sensor.feed_in",
        "fee_amount": 0.4,
        "fee_period": "day",
        "demand_charge": 4,
        "co2_mode": "factor",
        "co2_factor": 0.35,
        "co2_export_avoided": True,
    }
    assert problems(options) == {}


# --- emissions -----------------------------------------------------------------------------------


def test_emissions_from_options() -> None:
    assert emissions_from_options({}) is None
    assert emissions_from_options({"co2_mode": "none", "co2_factor": 0.4}) is None
    factor = emissions_from_options({"co2_mode": "factor", "co2_factor": 0.25})
    assert factor is not None
    assert factor.source == Co2Factor(kg_per_kwh=0.25)
    assert not factor.count_export_as_avoided
    default = emissions_from_options({"co2_mode": "factor"})
    assert default is not None
    assert default.source == Co2Factor(kg_per_kwh=0.4)
    hour = datetime(2025, 6, 1, 10, tzinfo=UTC)
    intensity = emissions_from_options(
        {"co2_mode": "entity", "co2_entity": "sensor.co2_intensity", "co2_export_avoided": True},
        intensity={hour: 120.0},
    )
    assert intensity is not None
    assert intensity.source == Co2Intensity(g_per_kwh={hour: 120.0}, max_hold_s=ENTITY_HOLD_S)
    assert intensity.count_export_as_avoided


def test_emissions_from_bad_options_raise() -> None:
    with pytest.raises(TariffOptionsError) as raised:
        emissions_from_options({"co2_mode": "entity"})
    assert raised.value.errors == {"co2_entity": "entity_required"}
    with pytest.raises(TariffOptionsError) as raised:
        emissions_from_options(
            {"co2_mode": "entity", "co2_entity": "sensor.co2"},
            intensity={datetime(2025, 6, 1, 10, tzinfo=UTC): -5.0},
        )
    assert raised.value.errors == {"co2_entity": "entity_not_numeric"}
    assert "co2_entity" in str(raised.value)


# ---------------------------------------------------------------------------------------------
# Price lists in entity attributes, and the rates that apply now
# ---------------------------------------------------------------------------------------------

HOUR_10 = datetime(2026, 1, 15, 10, tzinfo=UTC)


def test_listed_prices_reads_the_common_shapes() -> None:
    """Nord Pool (datetimes), Energi Data Service (hour/price) and ENTSO-e (ISO text)."""
    nord_pool = {
        "raw_today": [
            {"start": HOUR_10, "end": HOUR_10.replace(hour=11), "value": 0.21},
            {"start": HOUR_10.replace(hour=11), "end": HOUR_10.replace(hour=12), "value": 0.25},
        ],
        "raw_tomorrow": [{"start": HOUR_10.replace(day=16), "value": None}],  # not yet known
        "today": [0.21, 0.25],  # bare numbers: no time, not read
    }
    assert listed_prices(nord_pool) == {
        HOUR_10.timestamp(): 0.21,
        HOUR_10.timestamp() + 3600: 0.25,
    }
    energi = {"forecast": [{"hour": HOUR_10, "price": 1.5}]}
    assert listed_prices(energi) == {HOUR_10.timestamp(): 1.5}
    entsoe = {"prices_today": [{"time": "2026-01-15T11:00:00+01:00", "price": "0,5"}]}
    assert listed_prices(entsoe) == {}  # a decimal comma is not a number the entity would send
    entsoe = {"prices_today": [{"time": "2026-01-15T11:00:00+01:00", "price": "-0.05"}]}
    assert listed_prices(entsoe) == {HOUR_10.timestamp(): -0.05}


@pytest.mark.parametrize(
    "record",
    [
        {"start": "2026-01-15T10:00:00", "value": 0.2},  # naive: which 10:00?
        {"start": "tomorrow", "value": 0.2},
        {"start": HOUR_10, "value": float("nan")},
        {"start": HOUR_10, "value": True},
        {"start": HOUR_10, "value": [0.2]},
        {"value": 0.2},
        "0.2",
    ],
)
def test_listed_prices_skips_what_it_cannot_place(record: object) -> None:
    assert listed_prices({"raw_today": [record]}) == {}


@given(st.dictionaries(st.text(max_size=12), st.recursive(
    st.none() | st.booleans() | st.floats() | st.text(max_size=20) | st.datetimes(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=4),
    max_leaves=12,
)))  # fmt: skip
@settings(max_examples=200)
def test_listed_prices_never_raises(attributes: dict[str, Any]) -> None:
    for price in listed_prices(attributes).values():
        assert math.isfinite(price)


def test_a_published_list_decides_the_span_it_covers() -> None:
    """Inside the listed span the list wins (it carries revisions); outside, the samples."""
    start = HOUR_10.timestamp()
    sampled = {start - 7200: 0.1, start + 600: 0.9, start + 3 * 3600: 0.3}
    listed = {start: 0.2, start + 3600: 0.25}
    assert with_listed(sampled, listed) == {
        start - 7200: 0.1, start: 0.2, start + 3600: 0.25, start + 3 * 3600: 0.3
    }  # fmt: skip
    assert with_listed(sampled, {}) == sampled


def test_current_rates_are_what_the_books_apply() -> None:
    """The rate of the quarter hour now: time-of-use by local time, dynamic as held."""
    berlin = ZoneInfo("Europe/Berlin")
    tou = TimeOfUse(
        periods=(TouPeriod(start=time(6), end=time(22), price=0.35, days=DayType.ALL),),
        default_price=0.20,
    )
    tariff = Tariff(import_price=tou, export_price=FlatPrice(price=0.08))
    at_21_59_local = datetime(2026, 1, 15, 20, 59, tzinfo=UTC).timestamp()
    rates = current_rates(tariff, None, at_21_59_local, berlin)
    assert (rates.import_price, rates.export_price, rates.co2_g_per_kwh) == (0.35, 0.08, None)
    assert current_rates(tariff, None, at_21_59_local + 60, berlin).import_price == 0.20

    at_22_05_local = at_21_59_local + 360
    dynamic = Tariff(import_price=DynamicPrice(prices={at_22_05_local: 0.5}, max_hold_s=3600))
    emissions = Emissions(source=Co2Intensity(g_per_kwh={at_21_59_local - 900: 312.0}))
    rates = current_rates(dynamic, emissions, at_22_05_local + 60, berlin)
    assert rates.import_price is None  # the books price 22:00-22:15 from its start
    assert current_rates(dynamic, None, at_22_05_local + 600, berlin).import_price == 0.5
    assert rates.co2_g_per_kwh == pytest.approx(312.0)
    rates = current_rates(None, Emissions(source=Co2Factor(kg_per_kwh=0.233)), 0.0, berlin)
    assert (rates.import_price, rates.co2_g_per_kwh) == (None, pytest.approx(233.0))
