"""Battery actions for automations and planners: one contract for every battery brand."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
import time
from typing import Any, cast

from homeassistant.core import (
    HomeAssistant,
    ServiceCall,
    ServiceResponse,
    SupportsResponse,
    callback,
)
from homeassistant.helpers import config_validation as cv
import voluptuous as vol

from .const import DOMAIN
from .engine.control.battery import BatteryState
from .engine.control.commands import (
    MAX_POWER_W,
    BatteryCommand,
    BatteryLimits,
    BatteryMode,
    validate_command,
    validate_limits,
)
from .engine.model import DeviceRole
from .glue.energy_dashboard import async_setup_energy_dashboard, hub_sources
from .glue.statistics import statistics_hub
from .helpers import async_run_action, battery_target, check_mode, loaded_entry, validation_error

ATTR_DEVICE_ID = "device_id"
ATTR_ENTRY_ID = "entry_id"
ATTR_POWER = "power"
ATTR_TARGET_SOC = "target_soc"
ATTR_MIN_SOC = "min_soc"
ATTR_DURATION = "duration"
ATTR_GRID_SETPOINT = "grid_setpoint"
ATTR_PEAK_POWER = "peak_power"
ATTR_RECHARGE_POWER = "recharge_power"


def _no_overflow(validator: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """vol.Coerce(float) and cv.time_period let OverflowError (10**400, 1e400 s) escape."""

    def validate(value: Any) -> Any:
        try:
            return validator(value)
        except OverflowError as err:
            raise vol.Invalid("is too large") from err

    return validate


_FLOAT = _no_overflow(vol.Coerce(float))
_POWER = vol.All(_FLOAT, vol.Range(min=0, max=MAX_POWER_W))
_SOC = vol.All(_FLOAT, vol.Range(min=0, max=100))
_DURATION = vol.All(_no_overflow(cv.time_period), vol.Range(min=cv.time_period("00:00:01")))
_DEVICE: dict[vol.Marker, Any] = {vol.Required(ATTR_DEVICE_ID): cv.string}

SCHEMAS: dict[str, vol.Schema] = {
    "force_charge": vol.Schema(
        {
            **_DEVICE,
            vol.Required(ATTR_POWER): _POWER,
            vol.Optional(ATTR_TARGET_SOC): _SOC,
            vol.Optional(ATTR_DURATION): _DURATION,
        }
    ),
    "force_discharge": vol.Schema(
        {
            **_DEVICE,
            vol.Required(ATTR_POWER): _POWER,
            vol.Optional(ATTR_MIN_SOC): _SOC,
            vol.Optional(ATTR_DURATION): _DURATION,
        }
    ),
    "hold": vol.Schema({**_DEVICE, vol.Optional(ATTR_DURATION): _DURATION}),
    "auto": vol.Schema(_DEVICE),
    "self_consumption": vol.Schema(
        {
            **_DEVICE,
            vol.Optional(ATTR_GRID_SETPOINT, default=0): vol.All(
                _FLOAT, vol.Range(min=-MAX_POWER_W, max=MAX_POWER_W)
            ),
        }
    ),
    "peak_shaving": vol.Schema(
        {
            **_DEVICE,
            vol.Required(ATTR_PEAK_POWER): _POWER,
            vol.Optional(ATTR_RECHARGE_POWER, default=0): _POWER,
        }
    ),
    "set_limits": vol.Schema(
        {
            **_DEVICE,
            vol.Optional("charge_power_limit"): _POWER,
            vol.Optional("discharge_power_limit"): _POWER,
            vol.Optional("reserve_soc"): _SOC,
            vol.Optional("max_soc"): _SOC,
        }
    ),
}


def _expiry(data: Mapping[str, Any]) -> float | None:
    duration = data.get(ATTR_DURATION)
    return time.time() + duration.total_seconds() if duration else None


def _command(service: str, data: Mapping[str, Any]) -> BatteryCommand:
    commands: dict[str, Callable[[], BatteryCommand]] = {
        "force_charge": lambda: BatteryCommand(
            mode=BatteryMode.FORCE_CHARGE,
            power_w=data[ATTR_POWER],
            target_soc=data.get(ATTR_TARGET_SOC),
            expires_at=_expiry(data),
        ),
        "force_discharge": lambda: BatteryCommand(
            mode=BatteryMode.FORCE_DISCHARGE,
            power_w=data[ATTR_POWER],
            min_soc=data.get(ATTR_MIN_SOC),
            expires_at=_expiry(data),
        ),
        "hold": lambda: BatteryCommand(mode=BatteryMode.HOLD, expires_at=_expiry(data)),
        "auto": BatteryCommand,
        "self_consumption": lambda: BatteryCommand(
            mode=BatteryMode.SELF_CONSUMPTION, grid_setpoint_w=data[ATTR_GRID_SETPOINT]
        ),
        "peak_shaving": lambda: BatteryCommand(
            mode=BatteryMode.PEAK_SHAVING,
            peak_power_w=data[ATTR_PEAK_POWER],
            recharge_power_w=data[ATTR_RECHARGE_POWER] or None,
        ),
    }
    return commands[service]()


def _limits(battery: BatteryState, data: Mapping[str, Any]) -> BatteryLimits:
    fields = {
        "charge_power_limit": "max_charge_w",
        "discharge_power_limit": "max_discharge_w",
        "reserve_soc": "reserve_soc",
        "max_soc": "max_soc",
    }
    changes = {field: data[key] for key, field in fields.items() if key in data}
    return replace(battery.limits, **changes)


def _response(battery: BatteryState) -> ServiceResponse:
    """The command as applied this cycle: the mode, the power after clamping, and why."""
    applied = battery.applied
    response: dict[str, Any] = {
        "mode": applied.mode.value if applied else battery.command.mode.value,
        "power_w": applied.power_w if applied else None,
        "clamped": list(applied.clamped) if applied else [],
        "expires_at": battery.command.expires_at,
        "limits": {
            "charge_power_limit": battery.limits.max_charge_w,
            "discharge_power_limit": battery.limits.max_discharge_w,
            "reserve_soc": battery.limits.reserve_soc,
            "max_soc": battery.limits.max_soc,
        },
    }
    return response


ENERGY_DASHBOARD_SCHEMA = vol.Schema({vol.Required(ATTR_ENTRY_ID): cv.string})
SERVICE_SETUP_ENERGY_DASHBOARD = "setup_energy_dashboard"


def _handler(service: str) -> Callable[[ServiceCall], Any]:
    async def handle(call: ServiceCall) -> ServiceResponse:
        data = call.data
        coordinator, device, battery = battery_target(call.hass, data[ATTR_DEVICE_ID])
        if service == "set_limits":
            limits = _limits(battery, data)
            if problems := validate_limits(limits):
                raise validation_error("invalid_limits", problems=", ".join(problems))
            battery.limits = limits
        else:
            command = _command(service, data)
            check_mode(device, command.mode)
            if problems := validate_command(command, limits=battery.limits, now=time.time()):
                raise validation_error("invalid_command", problems=", ".join(problems))
            battery.command = command
        await async_run_action(coordinator.async_apply_control, device)
        return _response(battery)

    return handle


async def _setup_energy_dashboard(call: ServiceCall) -> ServiceResponse:
    """Add a hub's grid, PV and battery series to the Energy dashboard, keeping the rest."""
    entry = loaded_entry(call.hass, call.data[ATTR_ENTRY_ID])
    roles = {device.role for device in entry.runtime_data.coordinator.devices.values()}
    hub = statistics_hub(entry)
    sources = hub_sources(
        hub,
        entry.options,
        production=DeviceRole.PRODUCTION in roles,
        battery=DeviceRole.BATTERY in roles,
    )
    try:
        saved = await async_setup_energy_dashboard(call.hass, hub, sources)
    except vol.Invalid as err:
        raise validation_error("energy_refused", error=str(err)) from err
    return {"energy_sources": cast(list[Any], saved)}


@callback
def async_setup_services(hass: HomeAssistant) -> None:
    """Register the battery actions once, for every hub."""
    # Each schema runs before the handler: a bad field is refused by Home Assistant, naming it.
    # What a schema cannot say (a target below the reserve, say) the handler refuses with a
    # translated ServiceValidationError.
    for service, schema in SCHEMAS.items():
        hass.services.async_register(
            DOMAIN,
            service,
            _handler(service),
            schema=schema,
            supports_response=SupportsResponse.OPTIONAL,
        )
    hass.services.async_register(
        DOMAIN,
        SERVICE_SETUP_ENERGY_DASHBOARD,
        _setup_energy_dashboard,
        schema=ENERGY_DASHBOARD_SCHEMA,
        supports_response=SupportsResponse.OPTIONAL,
    )
