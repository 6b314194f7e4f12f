"""Config entries written by an older ems, brought to what this one reads.

1 → 2: the hub held one SDM630 in its own data; it becomes a device subentry.
2.1 → 2.2: a SunSpec chain splits into logical devices (an inverter and its meters, say). The
other devices get the role discovery would propose, and an entity whose point moved to one of
them moves with it, keeping its entity id and history: its meaning has not changed.
"""

from __future__ import annotations

import logging
from types import MappingProxyType

from homeassistant.config_entries import ConfigEntry, ConfigSubentry
from homeassistant.const import CONF_HOST, CONF_PORT, Platform
from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er

from ..const import (
    CONF_PARTS,
    CONF_PROFILE,
    CONF_ROLE,
    CONF_UNIT_ID,
    DOMAIN,
    SUBENTRY_DEVICE,
    SUNSPEC_PROFILE,
)
from ..engine.model import DeviceRole
from ..engine.profiles.sunspec import ModelInstance, build_profile
from ..engine.profiles.sunspec_chain import ChainPart, primary_index, split_chain
from .devices import default_parts, device_id_of, device_unique_id, stored_chain

_LOGGER = logging.getLogger(__name__)

ENTRY_VERSION = 2
ENTRY_MINOR_VERSION = 2


def migrate_entry(hass: HomeAssistant, entry: ConfigEntry) -> bool:
    """Bring the entry to `ENTRY_VERSION.ENTRY_MINOR_VERSION`; `False` for a newer one."""
    if entry.version > ENTRY_VERSION:
        return False
    if entry.version == 1:
        _hub_meter_to_subentry(hass, entry)
    if entry.minor_version < 2:
        _split_sunspec_chains(hass, entry)
        hass.config_entries.async_update_entry(entry, minor_version=2)
    return True


def _hub_meter_to_subentry(hass: HomeAssistant, entry: ConfigEntry) -> None:
    unit_id = int(entry.data[CONF_UNIT_ID])
    hass.config_entries.async_update_entry(
        entry,
        data={CONF_HOST: entry.data[CONF_HOST], CONF_PORT: entry.data[CONF_PORT]},
        version=2,
        minor_version=1,
    )
    hass.config_entries.async_add_subentry(
        entry,
        ConfigSubentry(
            data=MappingProxyType(
                {
                    CONF_UNIT_ID: unit_id,
                    CONF_PROFILE: "eastron_sdm630",
                    CONF_ROLE: DeviceRole.GRID.value,
                }
            ),
            subentry_type=SUBENTRY_DEVICE,
            title=f"SDM630 (unit {unit_id})",
            unique_id=str(unit_id),
        ),
    )


def _split_sunspec_chains(hass: HomeAssistant, entry: ConfigEntry) -> None:
    devices = [s for s in entry.subentries.values() if s.subentry_type == SUBENTRY_DEVICE]
    taken = {DeviceRole(s.data[CONF_ROLE]) for s in devices}
    for subentry in devices:
        if subentry.data[CONF_PROFILE] != SUNSPEC_PROFILE or CONF_PARTS in subentry.data:
            continue
        unit_id = int(subentry.data[CONF_UNIT_ID])
        chain = stored_chain(subentry.data)
        parts = split_chain(chain)
        settings = default_parts(parts, unit_id, taken)
        taken |= {DeviceRole(part[CONF_ROLE]) for part in settings.values()}
        hass.config_entries.async_update_subentry(
            entry, subentry, data={**subentry.data, CONF_PARTS: settings}
        )
        _move_entities(hass, entry.entry_id, unit_id, chain, parts)
        if settings:
            _LOGGER.info(
                "Unit %s now shows as %s devices; the new ones: %s",
                unit_id,
                len(parts),
                ", ".join(f"{s[CONF_ROLE]} {key}" for key, s in settings.items()),
            )


def _move_entities(
    hass: HomeAssistant,
    entry_id: str,
    unit_id: int,
    chain: list[ModelInstance],
    parts: list[ChainPart],
) -> None:
    """Hand each sensor whose register now belongs to another logical device to that device."""
    whole = build_profile(chain)  # the one device the chain was before the split
    before = {spec.key: spec.register.address for spec in whole.channels}
    registry = er.async_get(hass)
    primary = primary_index(parts)
    own = device_id_of(unit_id)
    for index, part in enumerate(parts):
        if index == primary:
            continue
        device_id = device_id_of(unit_id, part)
        for spec in build_profile(list(part.models)).channels:
            if before.get(spec.key) != spec.register.address:
                continue
            old = device_unique_id(entry_id, own, spec.key)
            entity_id = registry.async_get_entity_id(Platform.SENSOR, DOMAIN, old)
            if entity_id is not None:
                new = device_unique_id(entry_id, device_id, spec.key)
                registry.async_update_entity(entity_id, new_unique_id=new)
