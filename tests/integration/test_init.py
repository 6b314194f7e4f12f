"""Setup, unload, and a device that disappears and comes back without a restart."""

from __future__ import annotations

import asyncio

from homeassistant.config_entries import ConfigEntryState
from homeassistant.const import CONF_HOST, CONF_PORT, STATE_UNAVAILABLE
from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.ems.const import (
    CONF_PROFILE,
    CONF_ROLE,
    CONF_TIMEOUT,
    CONF_UNIT_ID,
    DOMAIN,
    SUBENTRY_DEVICE,
)
from custom_components.ems.engine.modbus.transport import BACKOFF_FIRST
from simulator import SiteSimulator

POWER = "sensor.sdm630_unit_1_active_power"


async def test_setup_and_unload(hass: HomeAssistant, init_integration: MockConfigEntry) -> None:
    """The entry loads with live sensors; unloading closes the connection."""
    assert init_integration.state is ConfigEntryState.LOADED
    coordinator = init_integration.runtime_data.coordinator
    assert coordinator.hub.connected
    assert float(hass.states.get(POWER).state) != 0.0

    assert await hass.config_entries.async_unload(init_integration.entry_id)
    await hass.async_block_till_done()
    assert init_integration.state is ConfigEntryState.NOT_LOADED
    assert not coordinator.hub.connected
    assert hass.states.get(POWER).state == STATE_UNAVAILABLE


async def test_setup_retries_when_hub_is_down(
    hass: HomeAssistant, mock_config_entry: MockConfigEntry, simulator: SiteSimulator
) -> None:
    """An unreachable hub at start-up means "retry later", not a failed integration."""
    await simulator.stop()
    mock_config_entry.add_to_hass(hass)
    await hass.config_entries.async_setup(mock_config_entry.entry_id)
    await hass.async_block_till_done()
    assert mock_config_entry.state is ConfigEntryState.SETUP_RETRY


async def test_device_lost_and_back(
    hass: HomeAssistant,
    mock_config_entry: MockConfigEntry,
    simulator: SiteSimulator,
    entity_registry: er.EntityRegistry,
) -> None:
    """Simulator stopped → every meter entity unavailable → restarted → values again."""
    mock_config_entry.add_to_hass(hass)
    hass.config_entries.async_update_entry(mock_config_entry, options={CONF_TIMEOUT: 0.5})
    assert await hass.config_entries.async_setup(mock_config_entry.entry_id)
    await hass.async_block_till_done()
    coordinator = mock_config_entry.runtime_data.coordinator
    meter_entities = [
        entry.entity_id
        for entry in er.async_entries_for_config_entry(entity_registry, mock_config_entry.entry_id)
        if "_unit1_" in entry.unique_id and not entry.disabled
    ]
    assert len(meter_entities) > 20

    await simulator.stop()
    await coordinator.async_refresh()
    await hass.async_block_till_done()
    assert {hass.states.get(entity_id).state for entity_id in meter_entities} == {STATE_UNAVAILABLE}

    await simulator.start(host="127.0.0.1", port=simulator.port)
    # The first reconnect waits out the shortest back-off step.
    await asyncio.sleep(BACKOFF_FIRST)
    await coordinator.async_refresh()
    await hass.async_block_till_done()
    assert STATE_UNAVAILABLE not in {hass.states.get(e).state for e in meter_entities}
    expected = simulator.device_values(1)["ActivePower"]
    assert float(hass.states.get(POWER).state) == pytest.approx(expected, rel=1e-6)


async def test_options_saved_during_setup_are_not_lost(
    hass: HomeAssistant, mock_config_entry: MockConfigEntry, simulator: SiteSimulator
) -> None:
    """Options saved while the hub is still setting up (a script that adds devices and sets
    options in quick succession) reach the running hub: it reloads once more."""
    mock_config_entry.add_to_hass(hass)
    simulator.faults.response_delay_s = 0.3  # the first refresh takes a while
    setup = hass.async_create_task(hass.config_entries.async_setup(mock_config_entry.entry_id))
    await asyncio.sleep(0.1)
    assert mock_config_entry.state is ConfigEntryState.SETUP_IN_PROGRESS
    hass.config_entries.async_update_entry(mock_config_entry, options={"allow_control": True})
    await setup  # its result may already see the catch-up reload under way
    simulator.faults.response_delay_s = 0.0
    await hass.async_block_till_done()
    assert mock_config_entry.state is ConfigEntryState.LOADED
    assert mock_config_entry.runtime_data.coordinator.allow_control is True


async def test_a_version_1_entry_becomes_a_hub_with_its_meter_as_a_device(
    hass: HomeAssistant, simulator: SiteSimulator
) -> None:
    """Version 1 kept one SDM630 in the hub's own data; version 2 makes it a grid device
    subentry with the same unit id, and the meter reads as before."""
    entry = MockConfigEntry(
        domain=DOMAIN,
        version=1,
        title=f"127.0.0.1:{simulator.port}",
        unique_id=f"127.0.0.1:{simulator.port}",
        data={CONF_HOST: "127.0.0.1", CONF_PORT: simulator.port, CONF_UNIT_ID: 1},
    )
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()

    assert entry.state is ConfigEntryState.LOADED
    assert entry.version == 2
    assert dict(entry.data) == {CONF_HOST: "127.0.0.1", CONF_PORT: simulator.port}
    (subentry,) = entry.subentries.values()
    assert subentry.subentry_type == SUBENTRY_DEVICE
    assert subentry.unique_id == "1"
    assert subentry.title == "SDM630 (unit 1)"
    assert dict(subentry.data) == {
        CONF_UNIT_ID: 1,
        CONF_PROFILE: "eastron_sdm630",
        CONF_ROLE: "grid",
    }
    assert float(hass.states.get(POWER).state) != 0.0


async def test_an_entry_from_a_newer_version_is_not_touched(
    hass: HomeAssistant, simulator: SiteSimulator
) -> None:
    """A downgrade must not rewrite what a later ems stored: the entry stays as it was."""
    data = {CONF_HOST: "127.0.0.1", CONF_PORT: simulator.port}
    entry = MockConfigEntry(domain=DOMAIN, version=3, data=data)
    entry.add_to_hass(hass)
    assert not await hass.config_entries.async_setup(entry.entry_id)
    assert entry.state is ConfigEntryState.MIGRATION_ERROR
    assert entry.version == 3
    assert dict(entry.data) == data
