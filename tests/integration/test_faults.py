"""Fault paths over a real socket: a bad register, a weak gateway, a slow or silent device."""

from __future__ import annotations

from homeassistant.const import STATE_UNAVAILABLE, STATE_UNKNOWN
from homeassistant.core import HomeAssistant
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.ems.const import CONF_TIMEOUT
from custom_components.ems.coordinator import EmsCoordinator
from custom_components.ems.engine.model import RegisterFunction
from simulator import SiteSimulator

from .conftest import device_subentry

FREQUENCY = "sensor.sdm630_unit_1_frequency"
POWER = "sensor.sdm630_unit_1_active_power"
VOLTAGE = "sensor.sdm630_unit_1_voltage_l1"
HEAT_PUMP_POWER = "sensor.heat_pump_active_power"


async def _setup(hass: HomeAssistant, entry: MockConfigEntry, **options: float) -> EmsCoordinator:
    entry.add_to_hass(hass)
    hass.config_entries.async_update_entry(entry, options={CONF_TIMEOUT: 0.5, **options})
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    coordinator: EmsCoordinator = entry.runtime_data.coordinator
    return coordinator


async def _cycle(hass: HomeAssistant, coordinator: EmsCoordinator) -> None:
    await coordinator.async_refresh()
    await hass.async_block_till_done()


async def test_illegal_address_quarantines_only_that_register(
    hass: HomeAssistant, mock_config_entry: MockConfigEntry, simulator: SiteSimulator
) -> None:
    """One register answering "illegal address" is quarantined; its neighbours keep updating."""
    coordinator = await _setup(hass, mock_config_entry)
    simulator.faults.exception(1, "input", 0x0046, code=2)
    for _ in range(4):  # past the cycles for which the last good value is held
        simulator.advance(60)
        await _cycle(hass, coordinator)
    # The meter refuses any read that touches 0x0046, so half a float32 may fall with it.
    quarantined = {address for _, _, address in coordinator.data.stats.quarantined}
    assert 0x0046 in quarantined
    assert quarantined <= {0x0046, 0x0047}
    assert {fn for _, fn, _ in coordinator.data.stats.quarantined} == {RegisterFunction.INPUT}
    assert hass.states.get(FREQUENCY).state == STATE_UNKNOWN
    served = simulator.device_values(1)
    assert float(hass.states.get(POWER).state) == pytest.approx(served["ActivePower"], rel=1e-6)
    assert float(hass.states.get(VOLTAGE).state) == pytest.approx(served["Voltage_L1"], rel=1e-6)
    diagnostic = hass.states.get(f"sensor.127_0_0_1_{simulator.port}_quarantined_registers")
    assert diagnostic.state == str(len(quarantined))
    assert "unit 1 input 70" in diagnostic.attributes["registers"]

    # Quarantined registers are not asked for again, so a cycle costs no failed request.
    simulator.reset_request_count()
    await _cycle(hass, coordinator)
    assert coordinator.data.stats.failed_requests == 0


async def test_quarantine_is_retried_and_lifted(
    hass: HomeAssistant, mock_config_entry: MockConfigEntry, simulator: SiteSimulator
) -> None:
    """Once the register answers again, the retry after the quarantine brings it back."""
    coordinator = await _setup(hass, mock_config_entry)
    coordinator.health.retry_after = 0.0  # retry at the next cycle instead of minutes later
    simulator.faults.exception(1, "input", 0x0046, code=2)
    await _cycle(hass, coordinator)
    assert coordinator.data.stats.quarantined
    simulator.faults.clear()
    await _cycle(hass, coordinator)
    assert coordinator.data.stats.quarantined == ()
    served = simulator.device_values(1)["Frequency"]
    assert float(hass.states.get(FREQUENCY).state) == pytest.approx(served, rel=1e-6)


async def test_weak_gateway_learns_its_request_limit(
    hass: HomeAssistant, mock_config_entry: MockConfigEntry, simulator: SiteSimulator
) -> None:
    """A gateway that refuses more than 32 registers is read in smaller requests, no errors."""
    simulator.faults.max_registers(32)
    coordinator = await _setup(hass, mock_config_entry)
    assert coordinator.health.max_read_cap is not None
    assert coordinator.health.max_read_cap <= 32
    await _cycle(hass, coordinator)
    assert coordinator.data.stats.failed_requests == 0
    assert coordinator.data.stats.quarantined == ()
    assert hass.states.get(POWER).state not in (STATE_UNAVAILABLE, STATE_UNKNOWN)


async def test_slow_device_times_out_then_recovers(
    hass: HomeAssistant, mock_config_entry: MockConfigEntry, simulator: SiteSimulator
) -> None:
    """Answers slower than the time-out make the meter unavailable; it recovers on its own."""
    coordinator = await _setup(hass, mock_config_entry)
    simulator.faults.delay(1.0)
    await _cycle(hass, coordinator)
    assert hass.states.get(POWER).state == STATE_UNAVAILABLE
    simulator.faults.delay(0)
    await _cycle(hass, coordinator)
    assert hass.states.get(POWER).state != STATE_UNAVAILABLE


async def test_garbage_values_never_reach_the_entity(
    hass: HomeAssistant, mock_config_entry: MockConfigEntry, simulator: SiteSimulator
) -> None:
    """NaN and out-of-range words are rejected: the last good value stays, never 0 or NaN."""
    coordinator = await _setup(hass, mock_config_entry)
    good = hass.states.get(POWER).state
    simulator.faults.garbage(1, "input", 0x0034, [0x7FC0, 0x0000])  # NaN
    await _cycle(hass, coordinator)
    assert hass.states.get(POWER).state == good
    simulator.faults.garbage(1, "input", 0x0034, [0x4F00, 0x0000])  # 2.1e9 W
    await _cycle(hass, coordinator)
    assert hass.states.get(POWER).state == good
    readings = coordinator.data.devices["unit1"].readings
    assert readings["ActivePower"].value == pytest.approx(float(good))


async def test_one_silent_device_does_not_stop_the_others(
    hass: HomeAssistant, mock_config_entry: MockConfigEntry, simulator: SiteSimulator
) -> None:
    """The heat-pump meter goes silent: only its entities go unavailable, and come back."""
    entry = MockConfigEntry(
        domain=mock_config_entry.domain,
        version=2,
        title=mock_config_entry.title,
        unique_id=mock_config_entry.unique_id,
        data=dict(mock_config_entry.data),
        subentries_data=[
            device_subentry(1, "eastron_sdm630", "grid", "SDM630 (unit 1)"),
            device_subentry(5, "eastron_sdm120", "load", "Heat pump"),
        ],
    )
    coordinator = await _setup(hass, entry)
    assert hass.states.get(HEAT_PUMP_POWER).state != STATE_UNAVAILABLE
    simulator.faults.offline(5, True)
    await _cycle(hass, coordinator)
    assert hass.states.get(HEAT_PUMP_POWER).state == STATE_UNAVAILABLE
    assert hass.states.get(POWER).state != STATE_UNAVAILABLE
    simulator.faults.offline(5, False)
    await _cycle(hass, coordinator)
    assert hass.states.get(HEAT_PUMP_POWER).state != STATE_UNAVAILABLE


async def test_power_spike_beyond_the_rating_is_rejected(
    hass: HomeAssistant, simulator: SiteSimulator
) -> None:
    """A 60 kW reading on a meter rated 10 kW never reaches the entity (it is in the profile's
    range, so only the device's rating can tell it is a glitch)."""
    subentry = device_subentry(1, "eastron_sdm630", "grid", "SDM630 (unit 1)")
    subentry["data"] = {**subentry["data"], "rated_power_kw": 10.0}
    entry = MockConfigEntry(
        domain="ems",
        version=2,
        title="hub",
        unique_id=f"127.0.0.1:{simulator.port}",
        data={"host": "127.0.0.1", "port": simulator.port},
        subentries_data=[subentry],
    )
    coordinator = await _setup(hass, entry)
    good = hass.states.get(POWER).state
    simulator.faults.garbage(1, "input", 0x0034, [0x476A, 0x6000])  # 60000 W
    await _cycle(hass, coordinator)
    assert hass.states.get(POWER).state == good
    assert coordinator.pipeline.rejections_of("unit1") == {"power_spike": 1}
