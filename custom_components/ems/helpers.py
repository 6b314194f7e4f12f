"""Errors mapped to Home Assistant's exception types in one place, each with a translation."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Concatenate

from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from homeassistant.helpers import device_registry as dr

from .compat import device_entry_ids
from .const import DOMAIN
from .coordinator import EmsConfigEntry, EmsCoordinator
from .engine.control.battery import BatteryState, WriteFailedError, controllable, recipe_of
from .engine.control.commands import BatteryMode
from .engine.control.recipe import why_not
from .engine.modbus.transport import ModbusTransportError
from .engine.model import Device


def validation_error(key: str, **placeholders: str) -> ServiceValidationError:
    """A translated error about what the caller asked for."""
    return ServiceValidationError(
        translation_domain=DOMAIN, translation_key=key, translation_placeholders=placeholders
    )


async def async_run_action[**P, T](
    action: Callable[P, Awaitable[T]], *args: P.args, **kwargs: P.kwargs
) -> T:
    """Run an action that talks to a device; its failures become translated HA errors."""
    try:
        return await action(*args, **kwargs)
    except WriteFailedError as err:
        raise HomeAssistantError(
            translation_domain=DOMAIN,
            translation_key="write_failed",
            translation_placeholders={"device": err.device.name, "register": err.key},
        ) from err
    except ModbusTransportError as err:
        raise HomeAssistantError(
            translation_domain=DOMAIN,
            translation_key="communication_error",
            translation_placeholders={"error": str(err)},
        ) from err


def device_action[EntityT: Any, **P](
    func: Callable[Concatenate[EntityT, P], Coroutine[Any, Any, None]],
) -> Callable[Concatenate[EntityT, P], Coroutine[Any, Any, None]]:
    """Decorate an entity's setter so device errors reach the user translated."""

    async def wrapper(self: EntityT, /, *args: P.args, **kwargs: P.kwargs) -> None:
        await async_run_action(func, self, *args, **kwargs)

    return wrapper


def loaded_entry(hass: HomeAssistant, entry_id: str) -> EmsConfigEntry:
    """The running hub a service call names, or a translated reason why there is none."""
    entry: EmsConfigEntry | None = hass.config_entries.async_get_entry(entry_id)
    if entry is None or entry.domain != DOMAIN:
        raise validation_error("unknown_entry", entry_id=entry_id)
    if entry.state is not ConfigEntryState.LOADED:
        raise validation_error("not_loaded", device=entry.title)
    return entry


def battery_target(
    hass: HomeAssistant, device_id: str
) -> tuple[EmsCoordinator, Device, BatteryState]:
    """The battery a service call names, or a translated reason why it cannot be steered."""
    entry_device = dr.async_get(hass).async_get(device_id)
    if entry_device is None:
        raise validation_error("unknown_device", device_id=device_id)
    for entry_id in device_entry_ids(entry_device):
        entry: EmsConfigEntry | None = hass.config_entries.async_get_entry(entry_id)
        if entry is None or entry.domain != DOMAIN:
            continue
        if entry.state is not ConfigEntryState.LOADED:
            raise validation_error("not_loaded", device=entry_device.name or device_id)
        coordinator = entry.runtime_data.coordinator
        device = next(
            (
                d
                for d in coordinator.devices.values()
                if (DOMAIN, f"{entry.entry_id}_{d.id}") in entry_device.identifiers
            ),
            None,
        )
        if device is None or not controllable(device):
            raise validation_error("not_a_battery", device=entry_device.name or device_id)
        if not coordinator.allow_control:
            raise validation_error("control_disabled", device=device.name)
        return coordinator, device, coordinator.control.states[device.id]
    raise validation_error("unknown_device", device_id=device_id)


def check_mode(device: Device, mode: BatteryMode) -> None:
    """Refuse a mode the battery's control recipe cannot run, saying why."""
    reason = why_not(recipe_of(device), mode)
    if reason is not None:
        raise validation_error(f"mode_not_supported_{reason}", device=device.name, mode=mode.value)
