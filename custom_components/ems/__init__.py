"""The ems integration: an energy-management system for Modbus meters, PV and batteries."""

from __future__ import annotations

from datetime import timedelta
import time

from homeassistant.const import CONF_HOST, CONF_PORT, CONF_SCAN_INTERVAL, Platform
from homeassistant.core import HomeAssistant
import homeassistant.helpers.config_validation as cv
from homeassistant.helpers.typing import ConfigType

from .const import (
    CONF_MAX_GAP,
    CONF_MAX_READ,
    CONF_PROFILE,
    CONF_TIMEOUT,
    CONF_UNIT_ID,
    DEFAULT_PROFILE,
    DEFAULT_SCAN_INTERVAL,
    DOMAIN,
)
from .coordinator import EmsConfigEntry, EmsCoordinator, EmsRuntimeData
from .modbus import DEFAULT_MAX_GAP, DEFAULT_MAX_READ, DEFAULT_TIMEOUT, HubSettings, ModbusHub
from .model import Device
from .profiles import builtin_profiles

PLATFORMS: list[Platform] = [Platform.SENSOR]
CONFIG_SCHEMA = cv.config_entry_only_config_schema(DOMAIN)


async def async_setup(hass: HomeAssistant, config: ConfigType) -> bool:
    """Nothing to set up before the hubs; actions arrive with battery control."""
    return True


async def async_setup_entry(hass: HomeAssistant, entry: EmsConfigEntry) -> bool:
    """Connect to the hub, read every device once, then create the entities."""
    profiles = await hass.async_add_executor_job(builtin_profiles)
    profile = profiles[entry.data.get(CONF_PROFILE, DEFAULT_PROFILE)]
    unit_id: int = entry.data[CONF_UNIT_ID]
    device = Device(
        id=f"unit{unit_id}",
        name=f"{profile.model} (unit {unit_id})",
        unit_id=unit_id,
        profile=profile,
    )
    hub = ModbusHub(
        settings=HubSettings(
            host=entry.data[CONF_HOST],
            port=entry.data[CONF_PORT],
            timeout=entry.options.get(CONF_TIMEOUT, DEFAULT_TIMEOUT),
        ),
        clock=time.monotonic,
    )
    coordinator = EmsCoordinator(
        hass,
        entry,
        hub,
        [device],
        max_read=entry.options.get(CONF_MAX_READ, DEFAULT_MAX_READ),
        max_gap=entry.options.get(CONF_MAX_GAP, DEFAULT_MAX_GAP),
        scan_interval=timedelta(
            seconds=entry.options.get(CONF_SCAN_INTERVAL, DEFAULT_SCAN_INTERVAL.total_seconds())
        ),
    )
    try:
        await coordinator.async_config_entry_first_refresh()
    except BaseException:
        await hub.close()
        raise
    entry.runtime_data = EmsRuntimeData(coordinator=coordinator)
    entry.async_on_unload(entry.add_update_listener(_async_options_updated))
    await hass.config_entries.async_forward_entry_setups(entry, PLATFORMS)
    return True


async def _async_options_updated(hass: HomeAssistant, entry: EmsConfigEntry) -> None:
    """New limits mean a new read plan: reload the hub."""
    await hass.config_entries.async_reload(entry.entry_id)


async def async_unload_entry(hass: HomeAssistant, entry: EmsConfigEntry) -> bool:
    """Remove the entities and close the connection."""
    unloaded = await hass.config_entries.async_unload_platforms(entry, PLATFORMS)
    if unloaded:
        await entry.runtime_data.coordinator.hub.close()
    return unloaded
