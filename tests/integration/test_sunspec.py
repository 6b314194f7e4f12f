"""SunSpec end to end: discovery finds exactly what the simulator serves, and every channel
shows the value of the point it maps, scale factor applied."""

from __future__ import annotations

import time

from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.ems.engine.modbus.discovery import discover_sunspec
from custom_components.ems.engine.modbus.transport import HubSettings, ModbusHub
from custom_components.ems.glue.devices import Catalogue, async_identify
from simulator import SiteSimulator
from tests.integration.sunspec_states import assert_shows, live_state

SERVED_CHAINS = {2: [1, 103], 3: [1, 124, 802], 4: [1, 203]}


@pytest.mark.parametrize(("unit_id", "models"), SERVED_CHAINS.items())
async def test_discovery_finds_exactly_the_served_models(
    simulator: SiteSimulator, unit_id: int, models: list[int]
) -> None:
    """The marker is found at whichever base the device uses (40000 or 50000)."""
    hub = ModbusHub(
        settings=HubSettings(host="127.0.0.1", port=simulator.port), clock=time.monotonic
    )
    try:
        chain = await discover_sunspec(hub, unit_id)
    finally:
        await hub.close()
    assert [model.model_id for model in chain] == models
    base = 50000 if unit_id == 4 else 40000
    assert chain[0].address == base + 2


async def test_eastron_meters_are_not_sunspec(simulator: SiteSimulator) -> None:
    """An Eastron meter has no SunSpec map, and is identified by its meter code instead."""
    settings = HubSettings(host="127.0.0.1", port=simulator.port)
    from custom_components.ems.engine.profiles.loader import builtin_profiles

    catalogue = Catalogue(profiles=dict(builtin_profiles()), errors=[])
    for unit_id, profile_id in ((1, "eastron_sdm630"), (5, "eastron_sdm120")):
        identified = await async_identify(settings, unit_id, catalogue)
        assert identified.sunspec_models == []
        assert identified.profile is not None
        assert identified.profile.id == profile_id


@pytest.mark.usefixtures("entity_registry_enabled_by_default")
async def test_every_sunspec_channel_equals_the_simulator(
    hass: HomeAssistant,
    site_entry: MockConfigEntry,
    simulator: SiteSimulator,
    entity_registry: er.EntityRegistry,
) -> None:
    """Each SunSpec channel's state is the served point value (after its scale factor)."""
    simulator.advance(12 * 3600)  # midday: the inverter produces, every point is live
    site_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(site_entry.entry_id)
    await hass.async_block_till_done()
    coordinator = site_entry.runtime_data.coordinator
    checked = 0
    for device in coordinator.devices.values():
        served = simulator.device_values(device.unit_id)
        for spec in device.profile.channels:
            if spec.origin is None:
                continue
            state = live_state(hass, site_entry.entry_id, device.id, spec)
            assert_shows(spec, served[spec.origin], state)
            checked += 1
    assert checked > 60
