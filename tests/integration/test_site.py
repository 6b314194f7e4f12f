"""The Site device: sums by role, flows, shares and energies from the whole simulated site."""

from __future__ import annotations

from homeassistant.core import HomeAssistant
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from simulator import SiteSimulator


def _value(hass: HomeAssistant, entity_id: str) -> float:
    state = hass.states.get(entity_id)
    assert state is not None, entity_id
    return float(state.state)


async def _setup_at(
    hass: HomeAssistant, entry: MockConfigEntry, simulator: SiteSimulator, hours: float
) -> None:
    simulator.advance(hours * 3600)
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()


@pytest.mark.parametrize("hours", [3, 12.5])
async def test_site_powers_follow_the_simulator(
    hass: HomeAssistant, site_entry: MockConfigEntry, simulator: SiteSimulator, hours: float
) -> None:
    """Grid, production, battery and consumption equal the simulator's balance (night, noon)."""
    await _setup_at(hass, site_entry, simulator, hours)
    truth = simulator.truth
    assert _value(hass, "sensor.site_grid_power") == pytest.approx(truth.grid_power_w, abs=1)
    assert _value(hass, "sensor.site_production_power") == pytest.approx(truth.pv_power_w, abs=1)
    assert _value(hass, "sensor.site_battery_power") == pytest.approx(truth.battery_power_w, abs=1)
    consumption = _value(hass, "sensor.site_consumption_power")
    assert consumption == pytest.approx(truth.load_power_w, abs=2)
    home = sum(
        _value(hass, f"sensor.site_{source}_to_home_power")
        for source in ("solar", "grid", "battery")
    )
    assert home == pytest.approx(consumption, abs=1e-6)
    share = _value(hass, "sensor.site_self_sufficiency")
    assert 0 <= share <= 100


async def test_derived_channels_and_rejections(
    hass: HomeAssistant, site_entry: MockConfigEntry, simulator: SiteSimulator
) -> None:
    """The battery gets energy counters from its power; the heat pump gets load parameters."""
    await _setup_at(hass, site_entry, simulator, 12)
    assert _value(hass, "sensor.battery_energy_charged") >= 0
    assert _value(hass, "sensor.battery_energy_discharged") >= 0
    status = hass.states.get("sensor.heat_pump_status")
    assert status.state in ("on", "off")
    assert status.attributes["options"] == ["on", "off"]
    assert _value(hass, "sensor.heat_pump_runtime") >= 0
    rejected = hass.states.get("sensor.grid_meter_rejected_readings")
    assert rejected.state == "0"
    assert rejected.attributes["by_reason"] == {}
