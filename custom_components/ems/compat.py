"""What differs between the Home Assistant releases ems runs on, decided once, in one place.

ems supports 2025.4.4 (the minimum in hacs.json) up to the newest release, and both ends are
tested (scripts/test runs the whole suite on each). Every difference is detected from the
running release itself, never from its version number, so a backport or a release in between
takes whichever form it actually has.
"""

from __future__ import annotations

import inspect
from typing import Final

from homeassistant import exceptions as ha_exceptions
from homeassistant.components.energy import data as energy_data
from homeassistant.components.recorder.models import StatisticMetaData
from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr, issue_registry as ir

# Devices belong to one config entry from 2026.8: `async_get_device` is deprecated (identifiers
# are unique per entry only), and so are `DeviceEntry.config_entries` and `via_device`.
ENTRY_SCOPED_DEVICES: Final = hasattr(dr.DeviceRegistry, "async_get_device_by_identifier")
VIA_DEVICE_ID: Final = "via_device_id" in dr.DeviceInfo.__annotations__
# 2025.4.4's recorder fails silently on an unknown metadata key; newer ones want unit_class.
STATISTICS_UNIT_CLASS: Final = "unit_class" in StatisticMetaData.__annotations__
# 2026.3 replaced the one grid source with `flow_from`/`flow_to` lists by flat grid sources.
FLAT_GRID_SOURCES: Final = "stat_energy_from" in energy_data.GridSourceType.__annotations__
# Newer releases refuse to read a store whose major version is newer than the reader's (a
# downgrade) before any migration runs; 2025.4 hands it to the migration.
STORE_TOO_NEW_ERRORS: Final[tuple[type[Exception], ...]] = tuple(
    error
    for error in (getattr(ha_exceptions, "UnsupportedStorageVersionError", None),)
    if isinstance(error, type) and issubclass(error, Exception)
)
# Newer releases remove an entry's repair issues with the entry; 2025.4 has no such link.
ISSUES_BELONG_TO_ENTRIES: Final = (
    "config_entry_id" in inspect.signature(ir.async_create_issue).parameters
)


def device_by_identifier(
    hass: HomeAssistant, identifier: tuple[str, str], entry_id: str
) -> dr.DeviceEntry | None:
    """The registry device of one config entry with this identifier."""
    registry = dr.async_get(hass)
    if ENTRY_SCOPED_DEVICES:
        return registry.async_get_device_by_identifier(  # type: ignore[attr-defined,no-any-return,unused-ignore]
            identifier, entry_id
        )
    return registry.async_get_device(identifiers={identifier})


def device_entry_ids(device: object) -> set[str]:
    """The config entries a registry device belongs to: one from 2026.8, where the registry
    also holds child devices (typed `object`: no type names both releases' entries)."""
    if ENTRY_SCOPED_DEVICES:
        return {getattr(device, "config_entry_id")}  # noqa: B009 - see the type above
    return set(getattr(device, "config_entries"))  # noqa: B009


def via_device(hass: HomeAssistant, parent: tuple[str, str], entry_id: str) -> dr.DeviceInfo:
    """The DeviceInfo fields that name a device's parent: its registry id on newer releases
    (the parent must be registered first), its identifier on older ones."""
    if not VIA_DEVICE_ID:
        return dr.DeviceInfo(via_device=parent)  # type: ignore[typeddict-unknown-key,unused-ignore]
    registered = device_by_identifier(hass, parent, entry_id)
    return dr.DeviceInfo() if registered is None else dr.DeviceInfo(via_device_id=registered.id)  # type: ignore[typeddict-unknown-key,unused-ignore]
