"""Home Assistant's repairs platform: a replaced device is confirmed through a fix flow.

The issues themselves are raised and cleared in `glue/issues.py`.
"""

from __future__ import annotations

from typing import Any

from homeassistant.components.repairs import ConfirmRepairFlow, RepairsFlow
from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr

from .compat import device_by_identifier
from .coordinator import EmsConfigEntry
from .glue.devices import device_identifier
from .glue.issues import DEVICE_REPLACED, clear_identity_issue


class DeviceReplacedRepairFlow(ConfirmRepairFlow):
    """The user confirms the new device; its serial becomes the one ems expects."""

    # The result type was renamed (FlowResult, then RepairsFlowResult): Any fits both releases.
    async def async_step_confirm(self, user_input: dict[str, str] | None = None) -> Any:
        """Show the old and new serials; on submit, accept the new one."""
        about = self.data or {}
        if user_input is not None and not await _async_accept(
            self.hass, str(about.get("entry_id")), str(about.get("device_id"))
        ):
            return self.async_abort(reason="not_loaded")
        return await super().async_step_confirm(user_input)


async def _async_accept(hass: HomeAssistant, entry_id: str, device_id: str) -> bool:
    """Accept the device's new serial, show it on the device page and store it now."""
    entry: EmsConfigEntry | None = hass.config_entries.async_get_entry(entry_id)
    if entry is None or entry.state is not ConfigEntryState.LOADED:
        return False
    coordinator = entry.runtime_data.coordinator
    serial = coordinator.identities.accept(device_id)
    clear_identity_issue(hass, entry_id, device_id)
    if serial is not None and (
        registry_device := device_by_identifier(
            hass, device_identifier(entry_id, device_id), entry_id
        )
    ):
        dr.async_get(hass).async_update_device(registry_device.id, serial_number=serial)
    await coordinator.async_persist()
    return True


async def async_create_fix_flow(
    hass: HomeAssistant, issue_id: str, data: dict[str, str | int | float | None] | None
) -> RepairsFlow:
    """The flow that fixes one of ems's fixable issues (only a replaced device is fixable)."""
    if issue_id.startswith(DEVICE_REPLACED):
        return DeviceReplacedRepairFlow()
    return ConfirmRepairFlow()
