"""End to end with the recorder: glitches in the grid meter's import counter never reach the
hourly statistics, and the counter's baseline survives a restart."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

from freezegun import freeze_time
from freezegun.api import StepTickTimeFactory, TickingDateTimeFactory
from homeassistant.core import HomeAssistant
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.components.recorder.common import (
    async_wait_recording_done,
    do_adhoc_statistics,
    statistics_during_period,
)

from custom_components.ems.coordinator import EmsCoordinator
from simulator import SiteConfig, SiteSimulator

from .conftest import device_subentry

IMPORT = "sensor.grid_meter_energy_import"
HOUR = datetime(2026, 1, 15, 2, tzinfo=UTC)
STEP = timedelta(seconds=60)


@pytest.fixture
async def importing_site(socket_enabled: None) -> AsyncIterator[SiteSimulator]:
    """A winter night with an empty battery: the house imports all it uses."""
    site = SiteSimulator(SiteConfig(start=HOUR - timedelta(minutes=10), initial_soc=0.0))
    await site.start(host="127.0.0.1", port=0)
    yield site
    await site.stop()


async def _setup(hass: HomeAssistant, site: SiteSimulator) -> EmsCoordinator:
    """The hub with the grid meter, set up; its coordinator."""
    entry = _entry(site)
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    coordinator: EmsCoordinator = entry.runtime_data.coordinator
    return coordinator


def _entry(site: SiteSimulator) -> MockConfigEntry:
    return MockConfigEntry(
        domain="ems",
        version=2,
        title="hub",
        unique_id=f"127.0.0.1:{site.port}",
        data={"host": "127.0.0.1", "port": site.port},
        subentries_data=[device_subentry(1, "eastron_sdm630", "grid", "Grid meter")],
    )


async def _cycle(
    hass: HomeAssistant,
    coordinator: EmsCoordinator,
    site: SiteSimulator,
    clock: TickingDateTimeFactory | StepTickTimeFactory,
) -> None:
    site.advance(STEP.total_seconds())
    clock.tick(STEP)
    await coordinator.async_refresh()
    await hass.async_block_till_done()


async def test_glitches_never_reach_the_hourly_sum(
    hass: HomeAssistant, importing_site: SiteSimulator
) -> None:
    """A zero, an all-ones (NaN) value and a spike in the import counter, inside one hour:
    the recorder's hourly sum equals the simulator's true import within 0.1 %."""
    # A ticking clock: pymodbus and the recorder wait on real timers, which a frozen clock
    # would never fire; each cycle jumps it a simulated minute ahead.
    with freeze_time(HOUR - timedelta(minutes=10), tick=True) as clock:
        await _glitchy_hour(hass, importing_site, clock)


async def _glitchy_hour(
    hass: HomeAssistant, importing_site: SiteSimulator, clock: TickingDateTimeFactory
) -> None:
    coordinator = await _setup(hass, importing_site)
    glitches = {
        15: [0x0000, 0x0000],  # the counter drops to zero
        25: [0xFFFF, 0xFFFF],  # all ones: NaN as float32
        35: [0x4974, 0x2400],  # 1,000,000 kWh: a spike up and back
    }
    truth_at: dict[datetime, float] = {}
    for minute in range(75):
        if minute - 10 in glitches:
            importing_site.faults.garbage(1, "input", 0x0048, glitches[minute - 10], count=1)
        await _cycle(hass, coordinator, importing_site, clock)
        truth_at[datetime.now(UTC)] = importing_site.truth.grid_import_kwh

    rejected = coordinator.pipeline.rejections_of("unit1")
    assert rejected.get("counter_zero", 0) >= 1
    assert rejected.get("not_implemented", 0) + rejected.get("out_of_range", 0) >= 1
    assert rejected.get("counter_spike", 0) >= 1

    await async_wait_recording_done(hass)
    # The recorder compiles 5-minute periods; the one that ends the hour also compiles it.
    for five_minutes in range(12):
        do_adhoc_statistics(hass, start=HOUR + timedelta(minutes=5 * five_minutes))
        await async_wait_recording_done(hass)
    stats = await hass.async_add_executor_job(
        statistics_during_period, hass, HOUR, HOUR + timedelta(hours=1), {IMPORT}, "hour"
    )
    (row,) = stats[IMPORT]
    # The hour's sum runs from the state in force when it began to the last state in it.
    first = max(t for t in truth_at if t < HOUR)
    last = max(t for t in truth_at if t < HOUR + timedelta(hours=1))
    true_import = truth_at[last] - truth_at[first]
    assert true_import > 0.3
    assert row["sum"] == pytest.approx(true_import, rel=1e-3)
    assert row["state"] == pytest.approx(truth_at[last], rel=1e-3)


async def test_counter_baseline_survives_a_restart(
    hass: HomeAssistant, importing_site: SiteSimulator
) -> None:
    """A meter reset is continued; after a restart the lifetime total still does not drop."""
    with freeze_time(HOUR, tick=True) as clock:
        await _reset_and_restart(hass, importing_site, clock)


async def _reset_and_restart(
    hass: HomeAssistant, importing_site: SiteSimulator, clock: TickingDateTimeFactory
) -> None:
    coordinator = await _setup(hass, importing_site)
    for _ in range(3):
        await _cycle(hass, coordinator, importing_site, clock)
    before_reset = float(hass.states.get(IMPORT).state)

    importing_site.faults.reset_counter(1, "EnergyImport")
    for _ in range(6):  # past the confirmation of the reset
        await _cycle(hass, coordinator, importing_site, clock)
    after_reset = float(hass.states.get(IMPORT).state)
    assert after_reset >= before_reset
    reading = coordinator.data.devices["unit1"].readings["EnergyImport"]
    assert reading.value == pytest.approx(after_reset)

    entry = coordinator.config_entry
    assert await hass.config_entries.async_reload(entry.entry_id)
    await hass.async_block_till_done()
    coordinator = entry.runtime_data.coordinator
    await _cycle(hass, coordinator, importing_site, clock)
    assert float(hass.states.get(IMPORT).state) >= after_reset
