"""The ems integration: an energy-management system for Modbus meters, PV and batteries."""

from __future__ import annotations

from datetime import timedelta
import logging
import time

from homeassistant.const import (
    CONF_SCAN_INTERVAL,
    EVENT_HOMEASSISTANT_STOP,
    Platform,
)
from homeassistant.core import Event, HomeAssistant
from homeassistant.helpers import config_validation as cv, device_registry as dr
from homeassistant.helpers.typing import ConfigType

from .const import (
    CONF_ALLOW_CONTROL,
    CONF_MAX_GAP,
    CONF_MAX_READ,
    DEFAULT_SCAN_INTERVAL,
    DOMAIN,
    SUBENTRY_DEVICE,
)
from .coordinator import EmsConfigEntry, EmsCoordinator, EmsRuntimeData
from .engine.modbus.plan import DEFAULT_MAX_GAP, DEFAULT_MAX_READ
from .engine.modbus.transport import ModbusHub
from .engine.model import Device
from .entity import hub_device_info
from .glue.card import async_register_card
from .glue.devices import (
    Catalogue,
    async_load_catalogue,
    devices_from_subentry,
    hub_identifiers,
    hub_settings,
)
from .glue.issues import (
    clear_profile_missing_issue,
    raise_profile_missing_issue,
    report_profile_errors,
)
from .glue.migrations import migrate_entry
from .glue.store import EmsStore
from .glue.websocket_api import async_setup_websocket
from .services import async_setup_services

_LOGGER = logging.getLogger(__name__)

PLATFORMS: list[Platform] = [Platform.NUMBER, Platform.SELECT, Platform.SENSOR]
CONFIG_SCHEMA = cv.config_entry_only_config_schema(DOMAIN)


async def async_setup(hass: HomeAssistant, config: ConfigType) -> bool:
    """Register what serves every hub: the battery actions (they find their hub through the
    device they target), the readings stream and the site card."""
    async_setup_services(hass)
    async_setup_websocket(hass)
    await async_register_card(hass)
    return True


async def async_setup_entry(hass: HomeAssistant, entry: EmsConfigEntry) -> bool:
    """Connect to the hub, read every device once, then create the entities."""
    options, subentries = dict(entry.options), set(entry.subentries)
    catalogue = await async_load_catalogue(hass)
    devices = _devices(hass, entry, catalogue)
    _remove_stale_devices(hass, entry)
    hub = ModbusHub(settings=hub_settings(entry.data, entry.options), clock=time.monotonic)
    coordinator = EmsCoordinator(
        hass,
        entry,
        hub,
        devices,
        max_read=entry.options.get(CONF_MAX_READ, DEFAULT_MAX_READ),
        max_gap=entry.options.get(CONF_MAX_GAP, DEFAULT_MAX_GAP),
        scan_interval=timedelta(
            seconds=entry.options.get(CONF_SCAN_INTERVAL, DEFAULT_SCAN_INTERVAL.total_seconds())
        ),
        allow_control=entry.options.get(CONF_ALLOW_CONTROL, False),
    )
    await coordinator.async_restore()
    try:
        await coordinator.async_config_entry_first_refresh()
    except BaseException:
        await hub.close()
        raise
    entry.runtime_data = EmsRuntimeData(coordinator=coordinator)
    # Every device names the hub as its parent: the hub must exist before any platform runs.
    hub_info = hub_device_info(coordinator)  # a dataclass from 2026.11: read by key only
    dr.async_get(hass).async_get_or_create(
        config_entry_id=entry.entry_id,
        identifiers=hub_info["identifiers"],
        name=hub_info.get("name"),
        manufacturer=hub_info.get("manufacturer"),
        model=hub_info.get("model"),
    )
    entry.async_on_unload(entry.add_update_listener(_async_entry_updated))

    async def _release_on_stop(_: Event) -> None:
        await coordinator.control.release()
        await coordinator.async_finish_publishing()

    entry.async_on_unload(hass.bus.async_listen_once(EVENT_HOMEASSISTANT_STOP, _release_on_stop))
    await hass.config_entries.async_forward_entry_setups(entry, PLATFORMS)
    # A change saved while this setup ran found no update listener yet: catch up with it.
    if dict(entry.options) != options or set(entry.subentries) != subentries:
        hass.config_entries.async_schedule_reload(entry.entry_id)
    return True


def _devices(hass: HomeAssistant, entry: EmsConfigEntry, catalogue: Catalogue) -> list[Device]:
    """The hub's devices; one whose profile is gone is left out and reported as a repair."""
    devices: list[Device] = []
    for subentry in entry.subentries.values():
        if subentry.subentry_type != SUBENTRY_DEVICE:
            continue
        found = devices_from_subentry(subentry, catalogue)
        if found is None:
            raise_profile_missing_issue(hass, entry.entry_id, subentry)
            continue
        clear_profile_missing_issue(hass, subentry)
        devices.extend(found)
    for error in catalogue.errors:
        _LOGGER.error("Profile not loaded: %s", error)
    report_profile_errors(hass, catalogue.errors)
    return devices


def _remove_stale_devices(hass: HomeAssistant, entry: EmsConfigEntry) -> None:
    """Forget registry devices the hub no longer has (a subentry removed while Home Assistant
    was stopped, or before subentries owned their devices); their entities would stay dead."""
    registry = dr.async_get(hass)
    current = hub_identifiers(entry.entry_id, entry.subentries.values())
    for device in dr.async_entries_for_config_entry(registry, entry.entry_id):
        if not device.identifiers & current:
            # Only ems's own entry holds these devices, so removing the device is removing it
            # from the entry (the form later releases keep: a device has one entry).
            registry.async_remove_device(device.id)


async def async_remove_config_entry_device(
    hass: HomeAssistant, entry: EmsConfigEntry, device_entry: dr.DeviceEntry
) -> bool:
    """Let the user delete a device the hub no longer has; the hub, its site and its devices
    stay (a device leaves the hub by deleting its subentry)."""
    return not device_entry.identifiers & hub_identifiers(entry.entry_id, entry.subentries.values())


async def _async_entry_updated(hass: HomeAssistant, entry: EmsConfigEntry) -> None:
    """New options or devices mean a new read plan: reload the hub."""
    await hass.config_entries.async_reload(entry.entry_id)


async def async_unload_entry(hass: HomeAssistant, entry: EmsConfigEntry) -> bool:
    """Remove the entities and close the connection."""
    unloaded = await hass.config_entries.async_unload_platforms(entry, PLATFORMS)
    if unloaded:
        coordinator = entry.runtime_data.coordinator
        await coordinator.control.release()
        await coordinator.async_finish_publishing()
        await coordinator.async_persist()
        await coordinator.hub.close()
    return unloaded


async def async_remove_entry(hass: HomeAssistant, entry: EmsConfigEntry) -> None:
    """Forget the hub's counter baselines with the hub."""
    await EmsStore(hass, entry.entry_id).async_remove()


async def async_migrate_entry(hass: HomeAssistant, entry: EmsConfigEntry) -> bool:
    """Bring an entry written by an older ems to this one's version (glue/migrations.py)."""
    return migrate_entry(hass, entry)
