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
from ..engine.model import ChannelKind, ChannelSpec, DataType, Device, DeviceRole, Symbols
from ..engine.normalization import canonical_unit
from ..engine.pipeline import DERIVED_CHANNELS, derived_keys
from ..engine.profiles.sunspec import standard_translation

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
# Points with the standard's own names that few users read: vendor-defined states and events,
# the second event word, per-phase and apparent or reactive energies, grid-support settings
# and controls (121, 123), and the model's bookkeeping (addresses, heartbeats, module ids).
_DISABLED_BY_ORIGIN = re.compile(
    r"Vnd|\.Evt2$|^12[13]\.|^2\d\d\.Tot(Wh(Imp|Exp)Ph|VAh|VArh)|^1\.(Opt|DA)$"
    r"|^802\.(Hb|CtrlHb|AlmRst|CellV(Max|Min)(Str|Mod))$|^160\.(\d+\.)?(ID|IDStr|Tms|TmsPer|N)$"
)
# Nameplate, settings, status and controls (120-123) describe the inverter, not the energy.
_DIAGNOSTIC_BY_ORIGIN = re.compile(r"^12[0-3]\.")
_PHASE_SUFFIX = re.compile(r"_(L\d(?:_L\d)?|N)$")
_PV_STRING = re.compile(r"^PV(\d+)_(Voltage|Current|Power|Energy)$")


@dataclass(frozen=True, kw_only=True)
class EmsSensorEntityDescription(SensorEntityDescription):
    """How to read one sensor's value from a cycle's snapshot."""

    value_fn: Callable[[SiteSnapshot], StateType | datetime]
    attributes_fn: Callable[[SiteSnapshot], dict[str, Any]] | None = None


def translation_for(
    channel_key: str, origin: str | None = None, *, symbolic: bool = False
) -> tuple[str, dict[str, str]]:
    """A channel's translation key and placeholders: `Voltage_L1` → voltage_phase, L1;
    `PV2_Power` → pv_string_power, 2. A point that keeps its standard's name, and any point
    with named values (whose states the standard names), is named from the standard:
    `103.TmpSnk` → sunspec_103_tmpsnk."""
    if origin is not None and (symbolic or channel_key == origin):
        return standard_translation(origin)
    if match := _PV_STRING.match(channel_key):
        return f"pv_string_{match.group(2).lower()}", {"string": match.group(1)}
    placeholders: dict[str, str] = {}
    base = channel_key
    if match := _PHASE_SUFFIX.search(channel_key):
        placeholders["phase"] = match.group(1).replace("_", "-")
        base = channel_key[: match.start()]
    snake = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", base).replace("__", "_").lower()
    return (f"{snake}_phase" if placeholders else snake), placeholders


@dataclass(frozen=True, kw_only=True, slots=True)
class _Channel:
    """What a sensor needs to know of a channel, profile-defined or derived."""

    key: str
    unit: str | None
    kind: ChannelKind
    device_class: str | None = None
    text: bool = False
    origin: str | None = None
    symbols: Symbols | None = None

    @classmethod
    def of(cls, spec: ChannelSpec) -> _Channel:
        return cls(
            key=spec.key,
            unit=spec.unit,
            kind=spec.kind,
            device_class=spec.device_class,
            text=spec.register.data_type is DataType.STRING,
            origin=spec.origin,
            symbols=spec.symbols,
        )


def _channel_description(device: Device, channel: _Channel) -> EmsSensorEntityDescription:
    """A sensor for one channel; all metadata from the channel. A text channel gets nothing
    that makes Home Assistant expect a number, whatever its key (a user profile may call a
    string "SOC"). An enumerated channel shows its value's name, a bit field how many of its
    flags are set, with their names as an attribute: one entity per point, on every release."""
    key, kind, symbols = channel.key, channel.kind, channel.symbols
    if symbols is not None:
        return _symbolic_description(device, channel, symbols)
    text = channel.text
    canonical = None if text else canonical_unit(channel.unit)
    translation_key, placeholders = translation_for(key, channel.origin)
    # Identity and bare numbers (addresses, heartbeats, vendor codes) are there for support.
    hidden = kind is ChannelKind.IDENTITY or (kind is ChannelKind.STATE and key != "Status")
    diagnostic = hidden or _is_detail(channel)
    sensor_class = None if text else _device_class(key, canonical, channel.device_class)
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
        entity_registry_enabled_default=not hidden and _enabled_by_default(channel),
        value_fn=_channel_value(device.id, key),
    )


def _symbolic_description(
    device: Device, channel: _Channel, symbols: Symbols
) -> EmsSensorEntityDescription:
    translation_key, placeholders = translation_for(channel.key, channel.origin, symbolic=True)
    raw = _channel_value(device.id, channel.key)
    if symbols.bitfield:
        return EmsSensorEntityDescription(
            key=channel.key,
            translation_key=translation_key,
            translation_placeholders=placeholders,
            entity_category=EntityCategory.DIAGNOSTIC,
            entity_registry_enabled_default=_enabled_by_default(channel),
            value_fn=lambda snapshot: _flag_count(symbols, raw(snapshot)),
            attributes_fn=lambda snapshot: {"active_flags": list(symbols.active(raw(snapshot)))},
        )
    return EmsSensorEntityDescription(
        key=channel.key,
        translation_key=translation_key,
        translation_placeholders=placeholders,
        device_class=SensorDeviceClass.ENUM,
        options=symbols.options,
        # The operating state is what a user looks at; the other states explain it.
        entity_category=None if channel.key == "Status" else EntityCategory.DIAGNOSTIC,
        entity_registry_enabled_default=_enabled_by_default(channel),
        value_fn=lambda snapshot: symbols.state(raw(snapshot)),
        # A value the standard does not name is shown as unknown, with its number kept.
        attributes_fn=lambda snapshot: {"code": raw(snapshot)},
    )


def _flag_count(symbols: Symbols, value: StateType) -> int | None:
    return None if value is None else len(symbols.active(value))


def _is_detail(channel: _Channel) -> bool:
    return channel.origin is not None and bool(_DIAGNOSTIC_BY_ORIGIN.match(channel.origin))


def _enabled_by_default(channel: _Channel) -> bool:
    if channel.origin is not None and _DISABLED_BY_ORIGIN.search(channel.origin):
        return False
    return not _DISABLED_BY_DEFAULT.match(channel.key)


def _device_class(key: str, unit: str | None, hint: str | None) -> SensorDeviceClass | None:
    if hint:
        return SensorDeviceClass(hint)
    if key == "Status":
        return None
    base_key = _PHASE_SUFFIX.sub("", key)
    return _DEVICE_CLASS_BY_KEY.get(base_key) or _DEVICE_CLASS_BY_UNIT.get(unit or "")


def device_descriptions(device: Device) -> list[EmsSensorEntityDescription]:
    descriptions = [
        _channel_description(device, _Channel.of(spec)) for spec in device.profile.channels
    ]
    for key in derived_keys(device):
        unit, kind = DERIVED_CHANNELS[key]
        device_class = SensorDeviceClass.ENUM if key == "Status" else None
        channel = _Channel(key=key, unit=unit, kind=kind, device_class=device_class)
        descriptions.append(_channel_description(device, channel))
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
            # Kept across restarts; writes of EEPROM or flash registers wear the device.
            attributes_fn=lambda snapshot: {
                "by_register": dict(snapshot.batteries[device_id].writes_by_register),
                "persisted_writes": snapshot.batteries[device_id].persisted_writes,
            },
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
