"""The sensors of each device: one per profile channel (or derived channel), its rejections,
and for a battery ems steers, what ems does with it. Each reads the cycle's snapshot."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
import re
from typing import Any

from homeassistant.components.sensor import (
    SensorDeviceClass,
    SensorEntityDescription,
    SensorStateClass,
)
from homeassistant.const import (
    EntityCategory,
)
from homeassistant.helpers.typing import StateType
from homeassistant.util import dt as dt_util

from ..engine.control.battery import BatteryReport
from ..engine.control.commands import BatteryMode
from ..engine.cycle import SiteSnapshot
from ..engine.model import ChannelKind, DataType, Device, DeviceRole
from ..engine.normalization import canonical_unit
from ..engine.pipeline import DERIVED_CHANNELS, derived_keys

_DEVICE_CLASS_BY_UNIT: dict[str, SensorDeviceClass] = {
    "W": SensorDeviceClass.POWER,
    "var": SensorDeviceClass.REACTIVE_POWER,
    "VA": SensorDeviceClass.APPARENT_POWER,
    "V": SensorDeviceClass.VOLTAGE,
    "A": SensorDeviceClass.CURRENT,
    "Hz": SensorDeviceClass.FREQUENCY,
    "kWh": SensorDeviceClass.ENERGY,
    "°C": SensorDeviceClass.TEMPERATURE,
}
_DEVICE_CLASS_BY_KEY: dict[str, SensorDeviceClass] = {
    "PowerFactor": SensorDeviceClass.POWER_FACTOR,
    "SOC": SensorDeviceClass.BATTERY,
    "Capacity": SensorDeviceClass.ENERGY_STORAGE,
    "RevertTimeout": SensorDeviceClass.DURATION,
}
_PRECISION_BY_UNIT = {"W": 0, "var": 0, "VA": 0, "V": 1, "A": 2, "Hz": 2, "kWh": 3, "kvarh": 3}
# Per-phase energies, reactive energy, per-phase apparent and reactive power, line-to-line
# voltages and the neutral current matter to few users and change every cycle.
_DISABLED_BY_DEFAULT = re.compile(
    r"^(Energy(Import|Export)_L\d|ReactiveEnergy.*|CurrentSum"
    r"|(Apparent|Reactive)Power_L\d|Voltage_L\d_L\d|Current_N)$"
)
_PHASE_SUFFIX = re.compile(r"_(L\d(?:_L\d)?|N)$")


@dataclass(frozen=True, kw_only=True)
class EmsSensorEntityDescription(SensorEntityDescription):
    """How to read one sensor's value from a cycle's snapshot."""

    value_fn: Callable[[SiteSnapshot], StateType | datetime]
    attributes_fn: Callable[[SiteSnapshot], dict[str, Any]] | None = None


def translation_for(channel_key: str) -> tuple[str, dict[str, str]]:
    """A channel key's translation key and placeholders: `Voltage_L1` → voltage_phase, L1."""
    placeholders: dict[str, str] = {}
    base = channel_key
    if match := _PHASE_SUFFIX.search(channel_key):
        placeholders["phase"] = match.group(1).replace("_", "-")
        base = channel_key[: match.start()]
    snake = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", base).replace("__", "_").lower()
    return (f"{snake}_phase" if placeholders else snake), placeholders


def _channel_description(
    device: Device,
    key: str,
    unit: str | None,
    kind: ChannelKind,
    device_class: str | None = None,
    *,
    text: bool = False,
) -> EmsSensorEntityDescription:
    """A sensor for one channel, profile-defined or derived; all metadata from the channel.
    A text channel gets nothing that makes Home Assistant expect a number, whatever its key
    (a user profile may call a string "SOC")."""
    canonical = None if text else canonical_unit(unit)
    translation_key, placeholders = translation_for(key)
    diagnostic = kind is ChannelKind.IDENTITY or (kind is ChannelKind.STATE and key != "Status")
    sensor_class = None if text else _device_class(key, canonical, device_class)
    state_class = None if text else _STATE_CLASS.get(kind)
    if sensor_class is SensorDeviceClass.ENERGY_STORAGE:
        state_class = SensorStateClass.MEASUREMENT  # a capacity in kWh is a level, not a meter
    return EmsSensorEntityDescription(
        key=key,
        translation_key=translation_key,
        translation_placeholders=placeholders,
        name=key.replace("_", " "),
        native_unit_of_measurement=canonical,
        device_class=sensor_class,
        options=["on", "off"] if key == "Status" and device.role is DeviceRole.LOAD else None,
        state_class=state_class,
        suggested_display_precision=None if text else _PRECISION_BY_UNIT.get(canonical or ""),
        entity_category=EntityCategory.DIAGNOSTIC if diagnostic else None,
        entity_registry_enabled_default=not diagnostic and not _DISABLED_BY_DEFAULT.match(key),
        value_fn=_channel_value(device.id, key),
    )


def _device_class(key: str, unit: str | None, hint: str | None) -> SensorDeviceClass | None:
    if hint:
        return SensorDeviceClass(hint)
    if key == "Status":
        return None
    base_key = _PHASE_SUFFIX.sub("", key)
    return _DEVICE_CLASS_BY_KEY.get(base_key) or _DEVICE_CLASS_BY_UNIT.get(unit or "")


def device_descriptions(device: Device) -> list[EmsSensorEntityDescription]:
    descriptions = [
        _channel_description(
            device,
            spec.key,
            spec.unit,
            spec.kind,
            spec.device_class,
            text=spec.register.data_type is DataType.STRING,
        )
        for spec in device.profile.channels
    ]
    for key in derived_keys(device):
        unit, kind = DERIVED_CHANNELS[key]
        device_class = SensorDeviceClass.ENUM if key == "Status" else None
        descriptions.append(_channel_description(device, key, unit, kind, device_class))
    descriptions.append(_rejections_description(device))
    return descriptions


_STATE_CLASS = {
    ChannelKind.COUNTER: SensorStateClass.TOTAL_INCREASING,
    ChannelKind.MEASUREMENT: SensorStateClass.MEASUREMENT,
}


def _channel_value(device_id: str, key: str) -> Callable[[SiteSnapshot], StateType]:
    def value(snapshot: SiteSnapshot) -> StateType:
        reading = snapshot.devices[device_id].readings.get(key)
        return reading.value if reading is not None and reading.usable else None

    return value


def _rejections_description(device: Device) -> EmsSensorEntityDescription:
    """Rejected readings of one device, with the count per reason as attributes."""
    return EmsSensorEntityDescription(
        key="rejected_readings",
        translation_key="rejected_readings",
        entity_category=EntityCategory.DIAGNOSTIC,
        state_class=SensorStateClass.TOTAL_INCREASING,
        value_fn=lambda snapshot: sum(snapshot.rejections.get(device.id, {}).values()),
        attributes_fn=lambda snapshot: {"by_reason": snapshot.rejections.get(device.id, {})},
    )


def control_sensors(device_id: str) -> list[EmsSensorEntityDescription]:
    """What ems is doing with a battery: the mode applied, until when, and how writes went."""
    return [
        EmsSensorEntityDescription(
            key="applied_mode",
            translation_key="applied_mode",
            device_class=SensorDeviceClass.ENUM,
            options=[mode.value for mode in BatteryMode],
            value_fn=lambda snapshot: snapshot.batteries[device_id].mode.value,
            attributes_fn=lambda snapshot: _applied(snapshot.batteries[device_id]),
        ),
        EmsSensorEntityDescription(
            key="command_expires",
            translation_key="command_expires",
            device_class=SensorDeviceClass.TIMESTAMP,
            value_fn=lambda snapshot: _expiry(snapshot.batteries[device_id]),
        ),
        EmsSensorEntityDescription(
            key="last_write_result",
            translation_key="last_write_result",
            device_class=SensorDeviceClass.ENUM,
            options=["none", "ok", "failed"],
            entity_category=EntityCategory.DIAGNOSTIC,
            value_fn=lambda snapshot: snapshot.batteries[device_id].last_result,
        ),
        EmsSensorEntityDescription(
            key="control_writes",
            translation_key="control_writes",
            state_class=SensorStateClass.TOTAL_INCREASING,
            entity_category=EntityCategory.DIAGNOSTIC,
            value_fn=lambda snapshot: snapshot.batteries[device_id].writes,
        ),
    ]


def _applied(report: BatteryReport) -> dict[str, Any]:
    applied = report.applied
    return {
        "power_w": applied.power_w if applied else None,
        "clamped": list(applied.clamped) if applied else [],
    }


def _expiry(report: BatteryReport) -> datetime | None:
    expires_at = report.command.expires_at
    return dt_util.utc_from_timestamp(expires_at) if expires_at else None
