"""Diagnostics: what a maintainer needs to help, with hosts and serial numbers redacted."""

from __future__ import annotations

from typing import Any

from homeassistant.components.diagnostics import REDACTED, async_redact_data
from homeassistant.const import CONF_HOST
from homeassistant.core import HomeAssistant

from .const import CONF_SERIAL_PORT
from .coordinator import EmsConfigEntry, EmsCoordinator
from .engine.model import Device
from .glue.readings import SeedReading, registry_ids, snapshot_readings

TO_REDACT = {CONF_HOST, CONF_SERIAL_PORT}
# Identity channels that tie a dump to one household.
REDACTED_CHANNELS = frozenset({"SerialNumber"})


async def async_get_config_entry_diagnostics(
    hass: HomeAssistant, entry: EmsConfigEntry
) -> dict[str, Any]:
    """The hub's settings, its devices, the health of its read plan and every reading."""
    coordinator = entry.runtime_data.coordinator
    ids = registry_ids(hass, coordinator)
    readings = snapshot_readings(coordinator.data, coordinator.devices.values(), ids)
    return {
        "entry": {
            "version": entry.version,
            "data": async_redact_data(dict(entry.data), TO_REDACT),
            "options": dict(entry.options),
        },
        "hub": _hub(coordinator),
        "devices": [
            _device(coordinator, device, ids.get(device.id))
            for device in coordinator.devices.values()
        ],
        "readings": [_seed_format(reading) for reading in readings],
    }


def _hub(coordinator: EmsCoordinator) -> dict[str, Any]:
    stats = coordinator.data.stats
    return {
        "requests_per_cycle": stats.requests,
        "failed_requests": stats.failed_requests,
        "cycle_time_ms": round(stats.duration_s * 1000, 1),
        "quarantined_registers": [list(key) for key in stats.quarantined],
        "max_read_cap": coordinator.health.max_read_cap,
        "read_plan": [
            {"unit": b.unit_id, "function": b.function, "start": b.start, "count": b.count}
            for b in coordinator.read_plan
        ],
    }


def _registers(coordinator: EmsCoordinator, device: Device) -> dict[str, int]:
    """The raw words of the device's channels in the last cycle ("holding 13049": 2), for a
    report that confirms a profile on real hardware; identity channels are left out."""
    image = coordinator.cycle.last_image
    words: dict[str, int] = {}
    for spec in device.profile.channels:
        if spec.key in REDACTED_CHANNELS:
            continue
        register = spec.register
        table = image.get((device.unit_id, register.function), {})
        addresses = list(range(register.address, register.address + register.count))
        if register.scale_register is not None:
            addresses.append(register.scale_register)
        for address in addresses:
            if address in table:
                words[f"{register.function} {address}"] = table[address]
    return dict(
        sorted(words.items(), key=lambda item: (item[0].split()[0], int(item[0].split()[1])))
    )


def _device(coordinator: EmsCoordinator, device: Device, device_id: str | None) -> dict[str, Any]:
    state = coordinator.data.devices[device.id]
    return {
        "deviceId": device_id,
        "key": device.id,
        "name": device.name,
        "unit_id": device.unit_id,
        "role": device.role,
        "profile": {
            "id": device.profile.id,
            "manufacturer": device.profile.manufacturer,
            "model": device.profile.model,
            "channels": len(device.profile.channels),
        },
        "online": state.online,
        "rejected_readings": coordinator.pipeline.rejections_of(device.id),
        "registers": _registers(coordinator, device),
    }


def _seed_format(reading: SeedReading) -> dict[str, Any]:
    """A reading as the seed's API describes it, with its quality and the serial redacted."""
    record = reading.as_seed()
    if reading.parameter in REDACTED_CHANNELS:
        record["value"] = REDACTED
    return {**record, "quality": reading.quality}
