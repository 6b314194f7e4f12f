"""The site's books in Home Assistant: day and month totals, and hourly `ems:` statistics."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta

from freezegun import freeze_time
from freezegun.api import TickingDateTimeFactory
from homeassistant.components.recorder.statistics import (
    list_statistic_ids,
    statistics_during_period,
)
from homeassistant.core import HomeAssistant
from homeassistant.helpers.recorder import get_instance
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.components.recorder.common import (
    async_wait_recording_done,
)

from simulator import SiteConfig, SiteSimulator

from .conftest import device_subentry

START = datetime(2026, 1, 15, 1, 30, tzinfo=UTC)
PRICED = {"price_mode": "flat", "import_price": 0.30, "co2_mode": "factor", "co2_factor": 0.4}


@pytest.fixture
async def site(socket_enabled: None) -> AsyncIterator[SiteSimulator]:
    """A winter night with an empty battery: the house imports what it uses."""
    simulated = SiteSimulator(SiteConfig(start=START, initial_soc=0.0))
    await simulated.start(host="127.0.0.1", port=0)
    yield simulated
    await simulated.stop()


@pytest.fixture
def clock() -> Iterator[TickingDateTimeFactory]:
    """A ticking clock at START: pymodbus and the recorder wait on real timers."""
    with freeze_time(START, tick=True) as ticking:
        yield ticking


async def _minutes(
    hass: HomeAssistant, entry: MockConfigEntry, site: SiteSimulator,
    clock: TickingDateTimeFactory, count: int,
) -> None:  # fmt: skip
    """Advance the site and the clock a minute at a time, one cycle each."""
    for _ in range(count):
        site.advance(60)
        clock.tick(timedelta(seconds=60))
        await entry.runtime_data.coordinator.async_refresh()
        await hass.async_block_till_done()


async def test_hours_are_booked_and_published(
    hass: HomeAssistant, site: SiteSimulator, clock: TickingDateTimeFactory
) -> None:
    """Across an hour boundary the import is booked per hour and published as statistics."""
    entry = await _setup(hass, site)
    truth_start = site.truth.grid_import_kwh
    await _minutes(hass, entry, site, clock, 45)
    await async_wait_recording_done(hass)

    imported = site.truth.grid_import_kwh - truth_start
    today = float(hass.states.get("sensor.site_grid_import_today").state)
    assert today == pytest.approx(imported, rel=0.02)
    assert hass.states.get("sensor.site_import_cost_today").state == "unknown"  # no tariff

    ids = await get_instance(hass).async_add_executor_job(list_statistic_ids, hass)
    ours = {item["statistic_id"]: item for item in ids if item["source"] == "ems"}
    series = f"ems:{entry.entry_id.lower()}_grid_import"
    assert series in ours
    assert ours[series]["has_sum"] is True
    assert ours[series]["statistics_unit_of_measurement"] == "kWh"


async def test_books_are_priced_with_the_tariff(
    hass: HomeAssistant, site: SiteSimulator, clock: TickingDateTimeFactory
) -> None:
    """A flat tariff and a CO2 factor from the options price today's import."""
    entry = await _setup(hass, site, PRICED)
    await _minutes(hass, entry, site, clock, 20)
    energy = float(hass.states.get("sensor.site_grid_import_today").state)
    cost = hass.states.get("sensor.site_import_cost_today")
    assert float(cost.state) == pytest.approx(energy * 0.30, rel=1e-3)
    assert cost.attributes["unit_of_measurement"] == hass.config.currency
    co2 = float(hass.states.get("sensor.site_co2_emissions_today").state)
    assert co2 == pytest.approx(energy * 0.4, rel=1e-3)


async def test_restart_mid_hour_counts_nothing_twice(
    hass: HomeAssistant, site: SiteSimulator, clock: TickingDateTimeFactory
) -> None:
    """Reloading the hub in the middle of an hour: the hour is booked once, with all of it
    (the site counter carries on from its stored state, the ledger from its samples)."""
    entry = await _setup(hass, site)
    truth = {}
    for minute in range(100):
        if minute == 50:  # 02:20, in the middle of the 02:00 hour
            assert await hass.config_entries.async_reload(entry.entry_id)
            await hass.async_block_till_done()
        site.advance(60)
        clock.tick(timedelta(seconds=60))
        await entry.runtime_data.coordinator.async_refresh()
        await hass.async_block_till_done()
        # The site's own integrated counter: what the books must neither lose nor repeat.
        snapshot = entry.runtime_data.coordinator.data
        assert snapshot.site is not None
        truth[datetime.now(UTC)] = snapshot.site.energy_kwh["grid_import"]
    await async_wait_recording_done(hass)

    ledger = entry.runtime_data.coordinator.ledger
    hour = datetime(2026, 1, 15, 2, tzinfo=UTC)
    booked = ledger.hours[hour.timestamp()].energy_kwh["grid_import"]
    expected = _at(truth, hour + timedelta(hours=1)) - _at(truth, hour)
    assert booked == pytest.approx(expected, rel=1e-3)  # sample clocks differ by ms
    stats = await get_instance(hass).async_add_executor_job(
        statistics_during_period,
        hass,
        hour,
        hour + timedelta(hours=1),
        {f"ems:{entry.entry_id.lower()}_grid_import"},
        "hour",
        None,
        {"state"},
    )
    (row,) = stats[f"ems:{entry.entry_id.lower()}_grid_import"]
    assert row["state"] == pytest.approx(booked)


def _at(series: dict[datetime, float], moment: datetime) -> float:
    """The counter at a moment, interpolated between the samples around it."""
    before = max(t for t in series if t <= moment)
    after = min(t for t in series if t >= moment)
    if after == before:
        return series[before]
    share = (moment - before) / (after - before)
    return series[before] + share * (series[after] - series[before])


async def _setup(
    hass: HomeAssistant, site: SiteSimulator, options: dict[str, object] | None = None
) -> MockConfigEntry:
    """The hub with the grid meter, optionally with tariff options, set up."""
    entry = MockConfigEntry(
        domain="ems",
        version=2,
        title="hub",
        unique_id=f"127.0.0.1:{site.port}",
        data={"host": "127.0.0.1", "port": site.port},
        options=options or {},
        subentries_data=[device_subentry(1, "eastron_sdm630", "grid", "Grid meter")],
    )
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    return entry


async def test_current_rates_are_shown_as_used(
    hass: HomeAssistant, site: SiteSimulator, clock: TickingDateTimeFactory
) -> None:
    """The Site device shows the price and CO2 intensity the books apply now."""
    entry = await _setup(hass, site, {**PRICED, "export_mode": "flat", "export_price": 0.08})
    await _minutes(hass, entry, site, clock, 1)
    price = hass.states.get("sensor.site_current_import_price")
    assert float(price.state) == pytest.approx(0.30)
    assert price.attributes["unit_of_measurement"] == f"{hass.config.currency}/kWh"
    assert float(hass.states.get("sensor.site_current_export_price").state) == pytest.approx(0.08)
    intensity = hass.states.get("sensor.site_current_co2_intensity")
    assert float(intensity.state) == pytest.approx(400.0)
    assert intensity.attributes["unit_of_measurement"] == "gCO2eq/kWh"


async def test_a_revised_price_rewrites_the_published_hours(
    hass: HomeAssistant, site: SiteSimulator, clock: TickingDateTimeFactory
) -> None:
    """A price entity that publishes its day (as Nord Pool does) and later revises an hour
    already booked: that hour's cost statistic is rewritten, and the sums after it follow."""
    hour_1, hour_2 = datetime(2026, 1, 15, 1, tzinfo=UTC), datetime(2026, 1, 15, 2, tzinfo=UTC)

    def publish(first_price: float) -> None:
        day = [
            {"start": hour_1 + timedelta(hours=h), "end": hour_1 + timedelta(hours=h + 1),
             "value": price}
            for h, price in enumerate([first_price, 0.25, 0.25])
        ]  # fmt: skip
        hass.states.async_set("sensor.nord_pool", "0.25", {"raw_today": day})

    publish(0.20)
    entry = await _setup(hass, site, {"price_mode": "entity", "price_entity": "sensor.nord_pool"})
    await _minutes(hass, entry, site, clock, 45)  # to 02:15: the 01:00 hour is booked
    statistic = f"ems:{entry.entry_id.lower()}_import_cost"
    energy = entry.runtime_data.coordinator.ledger.hours[hour_1.timestamp()].energy_kwh
    assert await _stored_cost(hass, statistic, hour_1) == pytest.approx(
        energy["grid_import"] * 0.20
    )

    publish(0.40)  # the 01:00 price is corrected after the fact
    await _minutes(hass, entry, site, clock, 50)  # to 03:05: the 02:00 hour is booked too
    first, second = await _stored_rows(hass, statistic, hour_1, 2)
    assert first["state"] == pytest.approx(energy["grid_import"] * 0.40)
    assert second["sum"] == pytest.approx(first["sum"] + second["state"])
    assert hour_2.timestamp() == second["start"]


async def _stored_rows(
    hass: HomeAssistant, statistic: str, start: datetime, count: int
) -> list[dict[str, float]]:
    """The first `count` hourly rows from `start`, once the recorder has them (the ledger
    publishes in the background)."""
    rows: list[dict[str, float]] = []
    for _ in range(100):
        await hass.async_block_till_done()
        await async_wait_recording_done(hass)
        stats = await get_instance(hass).async_add_executor_job(
            statistics_during_period, hass, start, None, {statistic}, "hour", None,
            {"state", "sum"},
        )  # fmt: skip
        rows = stats.get(statistic, [])
        if len(rows) >= count:
            return rows[:count]
    raise AssertionError(f"{statistic}: {len(rows)} rows, expected {count}")


async def _stored_cost(hass: HomeAssistant, statistic: str, hour: datetime) -> float:
    (row,) = await _stored_rows(hass, statistic, hour, 1)
    return row["state"]


async def test_net_cost_includes_the_fee_and_the_demand_charge(
    hass: HomeAssistant, site: SiteSimulator, clock: TickingDateTimeFactory
) -> None:
    """The month's net cost is the bill so far: import cost, the monthly fee in full, and the
    demand charge on the month's peak; each part is an attribute."""
    options = {**PRICED, "fee_amount": 12.0, "fee_period": "month", "demand_charge": 5.0}
    entry = await _setup(hass, site, options)
    await _minutes(hass, entry, site, clock, 50)  # past 02:00: the 01:00 hour has its demand
    net = hass.states.get("sensor.site_net_cost_this_month")
    parts = net.attributes
    assert parts["fixed_fee"] == pytest.approx(12.0)
    peak = float(hass.states.get("sensor.site_peak_demand_this_month").state)
    assert parts["demand_charge"] == pytest.approx(peak * 5.0, rel=1e-3)
    assert float(net.state) == pytest.approx(
        parts["import_cost"] + parts["fixed_fee"] + parts["demand_charge"], abs=1e-5
    )
    today = hass.states.get("sensor.site_net_cost_today").attributes
    assert today["fixed_fee"] == pytest.approx(0.39)  # 12 / 31 January days, to the cent
    assert today["demand_charge"] == 0.0
