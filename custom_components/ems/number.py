"""Battery limits and mode settings as numbers; their ranges follow the live device limits."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from homeassistant.components.number import (
    NumberDeviceClass,
    NumberEntity,
    NumberEntityDescription,
    NumberMode,
)
from homeassistant.const import PERCENTAGE, EntityCategory, UnitOfPower
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .coordinator import EmsConfigEntry, EmsCoordinator
from .engine.control.battery import BatteryReport, BatteryState
from .engine.control.commands import MAX_POWER_W, validate_limits
from .engine.model import Device
from .entity import EmsEntity
from .helpers import device_action, validation_error

PARALLEL_UPDATES = 1


@dataclass(frozen=True, kw_only=True)
class EmsNumberEntityDescription(NumberEntityDescription):
    """How a number reads and changes a battery's limits or mode settings."""

    value_fn: Callable[[BatteryReport], float | None]
    set_value_fn: Callable[[BatteryState, float], None]
    # The device rating that bounds the number, read live (None: the static maximum).
    rating_key: str | None = None


def _limit(field: str) -> Callable[[BatteryState, float], None]:
    def set_value(battery: BatteryState, value: float) -> None:
        limits = replace(battery.limits, **{field: value})
        if problems := validate_limits(limits):
            raise validation_error("invalid_limits", problems=", ".join(problems))
        battery.limits = limits

    return set_value


def _setting(field: str) -> Callable[[BatteryState, float], None]:
    def set_value(battery: BatteryState, value: float) -> None:
        battery.settings = replace(battery.settings, **{field: value})

    return set_value


def _power(
    key: str,
    value_fn: Callable[[BatteryReport], float | None],
    set_value_fn: Callable[[BatteryState, float], None],
    *,
    minimum: float = 0,
    rating_key: str | None = None,
) -> EmsNumberEntityDescription:
    return EmsNumberEntityDescription(
        key=key,
        translation_key=key,
        native_unit_of_measurement=UnitOfPower.WATT,
        device_class=NumberDeviceClass.POWER,
        native_min_value=minimum,
        native_max_value=MAX_POWER_W,
        native_step=50,
        mode=NumberMode.BOX,
        entity_category=EntityCategory.CONFIG,
        value_fn=value_fn,
        set_value_fn=set_value_fn,
        rating_key=rating_key,
    )


def _soc(
    key: str,
    value_fn: Callable[[BatteryReport], float | None],
    set_value_fn: Callable[[BatteryState, float], None],
) -> EmsNumberEntityDescription:
    return EmsNumberEntityDescription(
        key=key,
        translation_key=key,
        native_unit_of_measurement=PERCENTAGE,
        device_class=NumberDeviceClass.BATTERY,
        native_min_value=0,
        native_max_value=100,
        native_step=1,
        mode=NumberMode.SLIDER,
        entity_category=EntityCategory.CONFIG,
        value_fn=value_fn,
        set_value_fn=set_value_fn,
    )


NUMBERS: tuple[EmsNumberEntityDescription, ...] = (
    _power(
        "charge_power_limit",
        lambda report: report.limits.max_charge_w,
        _limit("max_charge_w"),
        rating_key="MaxChargePower",
    ),
    _power(
        "discharge_power_limit",
        lambda report: report.limits.max_discharge_w,
        _limit("max_discharge_w"),
        rating_key="MaxDischargePower",
    ),
    _soc("reserve_soc_limit", lambda report: report.limits.reserve_soc, _limit("reserve_soc")),
    _soc("max_soc_limit", lambda report: report.limits.max_soc, _limit("max_soc")),
    _soc("target_soc", lambda report: report.settings.target_soc, _setting("target_soc")),
    _power(
        "grid_setpoint",
        lambda report: report.settings.grid_setpoint_w,
        _setting("grid_setpoint_w"),
        minimum=-MAX_POWER_W,
    ),
    _power(
        "peak_shaving_threshold",
        lambda report: report.settings.peak_power_w,
        _setting("peak_power_w"),
    ),
    _power(
        "recharge_power",
        lambda report: report.settings.recharge_power_w,
        _setting("recharge_power_w"),
        rating_key="MaxChargePower",
    ),
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: EmsConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Limits and settings for every battery ems can steer."""
    coordinator = entry.runtime_data.coordinator
    for subentry_id, device in coordinator.batteries_by_subentry(entry):
        async_add_entities(
            (EmsBatteryNumber(coordinator, description, device) for description in NUMBERS),
            config_subentry_id=subentry_id,
        )


class EmsBatteryNumber(EmsEntity, NumberEntity):
    """One limit or setting of a battery."""

    entity_description: EmsNumberEntityDescription

    def __init__(
        self,
        coordinator: EmsCoordinator,
        description: EmsNumberEntityDescription,
        device: Device,
    ) -> None:
        """Show the battery's report in each snapshot; change its control state."""
        super().__init__(coordinator, description, device)
        self.battery = coordinator.control.states[device.id]
        self.battery_device = device

    @property
    def native_value(self) -> float | None:
        """The current limit or setting; without a user limit, the device's own rating."""
        report = self.coordinator.data.batteries[self.battery_device.id]
        value = self.entity_description.value_fn(report)
        if value is None and self.entity_description.rating_key:
            return self.native_max_value
        return value

    @property
    def native_max_value(self) -> float:
        """Power numbers stop at the device's live rating."""
        key = self.entity_description.rating_key
        if key is None:
            return super().native_max_value
        reading = self.coordinator.data.devices[self.battery_device.id].readings.get(key)
        if reading is None or not reading.usable or not isinstance(reading.value, int | float):
            return MAX_POWER_W
        return float(reading.value)

    @device_action
    async def async_set_native_value(self, value: float) -> None:
        """Change the limit or setting and apply it at once."""
        if not self.coordinator.allow_control:
            raise validation_error("control_disabled", device=self.battery_device.name)
        self.entity_description.set_value_fn(self.battery, value)
        await self.coordinator.async_apply_control(self.battery_device)
