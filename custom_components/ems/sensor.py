"""Sensors: one per channel of every device, plus the hub's diagnostics."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
import re
from typing import Any

from homeassistant.components.sensor import (
    SensorDeviceClass,
    SensorEntity,
    SensorEntityDescription,
    SensorStateClass,
)
from homeassistant.const import EntityCategory, UnitOfTime
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
from homeassistant.helpers.typing import StateType

from .coordinator import EmsConfigEntry
from .entity import EmsEntity
from .model import ChannelKind, ChannelSpec, Device, SiteSnapshot
from .normalization import canonical_unit

PARALLEL_UPDATES = 0

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
# Per-phase energies and reactive energy matter to few users and change every cycle.
_DISABLED_BY_DEFAULT = re.compile(r"^(Energy(Import|Export)_L\d|ReactiveEnergy.*|CurrentSum)$")
_PHASE_SUFFIX = re.compile(r"_(L\d(?:_L\d)?|N)$")


@dataclass(frozen=True, kw_only=True)
class EmsSensorEntityDescription(SensorEntityDescription):
    """How to read one sensor's value from a cycle's snapshot."""

    value_fn: Callable[[SiteSnapshot], StateType]
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


def _channel_description(device: Device, spec: ChannelSpec) -> EmsSensorEntityDescription:
    unit = canonical_unit(spec.unit)
    base_key = _PHASE_SUFFIX.sub("", spec.key)
    device_class = (
        SensorDeviceClass(spec.device_class)
        if spec.device_class
        else _DEVICE_CLASS_BY_KEY.get(base_key) or _DEVICE_CLASS_BY_UNIT.get(unit or "")
    )
    translation_key, placeholders = translation_for(spec.key)
    identity = spec.kind in (ChannelKind.IDENTITY, ChannelKind.STATE)
    return EmsSensorEntityDescription(
        key=spec.key,
        translation_key=translation_key,
        translation_placeholders=placeholders,
        name=spec.key.replace("_", " "),
        native_unit_of_measurement=unit,
        device_class=device_class,
        state_class=_state_class(spec),
        suggested_display_precision=_PRECISION_BY_UNIT.get(unit or ""),
        entity_category=EntityCategory.DIAGNOSTIC if identity else None,
        entity_registry_enabled_default=not identity and not _DISABLED_BY_DEFAULT.match(spec.key),
        value_fn=_channel_value(device.id, spec.key),
    )


def _state_class(spec: ChannelSpec) -> SensorStateClass | None:
    if spec.kind is ChannelKind.COUNTER:
        return SensorStateClass.TOTAL_INCREASING
    if spec.kind is ChannelKind.MEASUREMENT:
        return SensorStateClass.MEASUREMENT
    return None


def _channel_value(device_id: str, key: str) -> Callable[[SiteSnapshot], StateType]:
    def value(snapshot: SiteSnapshot) -> StateType:
        reading = snapshot.devices[device_id].readings[key]
        return reading.value if reading.usable else None

    return value


HUB_SENSORS: tuple[EmsSensorEntityDescription, ...] = (
    EmsSensorEntityDescription(
        key="requests_per_cycle",
        translation_key="requests_per_cycle",
        entity_category=EntityCategory.DIAGNOSTIC,
        state_class=SensorStateClass.MEASUREMENT,
        value_fn=lambda snapshot: snapshot.stats.requests,
    ),
    EmsSensorEntityDescription(
        key="failed_requests",
        translation_key="failed_requests",
        entity_category=EntityCategory.DIAGNOSTIC,
        state_class=SensorStateClass.MEASUREMENT,
        value_fn=lambda snapshot: snapshot.stats.failed_requests,
    ),
    EmsSensorEntityDescription(
        key="quarantined_registers",
        translation_key="quarantined_registers",
        entity_category=EntityCategory.DIAGNOSTIC,
        state_class=SensorStateClass.MEASUREMENT,
        value_fn=lambda snapshot: len(snapshot.stats.quarantined),
        attributes_fn=lambda snapshot: {
            "registers": [
                f"unit {unit} {function} {address}"
                for unit, function, address in snapshot.stats.quarantined
            ]
        },
    ),
    EmsSensorEntityDescription(
        key="cycle_time",
        translation_key="cycle_time",
        entity_category=EntityCategory.DIAGNOSTIC,
        device_class=SensorDeviceClass.DURATION,
        native_unit_of_measurement=UnitOfTime.MILLISECONDS,
        state_class=SensorStateClass.MEASUREMENT,
        suggested_display_precision=0,
        entity_registry_enabled_default=False,
        value_fn=lambda snapshot: round(snapshot.stats.duration_s * 1000, 1),
    ),
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: EmsConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Create the sensors of every device on the hub."""
    coordinator = entry.runtime_data.coordinator
    async_add_entities(EmsSensor(coordinator, description) for description in HUB_SENSORS)
    for subentry_id, device in coordinator.devices_by_subentry(entry).items():
        async_add_entities(
            (
                EmsSensor(coordinator, _channel_description(device, spec), device)
                for spec in device.profile.channels
            ),
            config_subentry_id=subentry_id,
        )


class EmsSensor(EmsEntity, SensorEntity):
    """A sensor whose value comes from the latest cycle."""

    entity_description: EmsSensorEntityDescription

    @property
    def native_value(self) -> StateType:
        """The cleaned, normalized value; `None` when there is no trustworthy one."""
        return self.entity_description.value_fn(self.coordinator.data)

    @property
    def extra_state_attributes(self) -> dict[str, Any] | None:
        """Details a diagnostic sensor carries beside its count."""
        if self.entity_description.attributes_fn is None:
            return None
        return self.entity_description.attributes_fn(self.coordinator.data)
