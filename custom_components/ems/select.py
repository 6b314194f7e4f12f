"""Battery mode as a select: pick a mode in the UI, ems steers the battery to it."""

from __future__ import annotations

from homeassistant.components.select import SelectEntity, SelectEntityDescription
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .coordinator import EmsConfigEntry, EmsCoordinator
from .engine.control.battery import recipe_of
from .engine.control.commands import BatteryMode
from .engine.control.recipe import offered_modes
from .engine.model import Device
from .entity import EmsEntity
from .helpers import check_mode, device_action, validation_error

PARALLEL_UPDATES = 1

MODE = SelectEntityDescription(
    key="battery_mode",
    translation_key="battery_mode",
    options=[mode.value for mode in BatteryMode],
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: EmsConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """A mode select for every battery ems can steer."""
    coordinator = entry.runtime_data.coordinator
    for subentry_id, device in coordinator.batteries_by_subentry(entry):
        async_add_entities(
            [EmsBatteryModeSelect(coordinator, MODE, device)], config_subentry_id=subentry_id
        )


class EmsBatteryModeSelect(EmsEntity, SelectEntity):
    """The battery's commanded mode."""

    def __init__(
        self, coordinator: EmsCoordinator, description: SelectEntityDescription, device: Device
    ) -> None:
        """Show the battery's report in each snapshot; change its control state."""
        super().__init__(coordinator, description, device)
        self.battery = coordinator.control.states[device.id]
        self.battery_id = device.id
        # Only the modes the device's control recipe can run.
        self._attr_options = [mode.value for mode in offered_modes(recipe_of(device))]

    @property
    def current_option(self) -> str:
        """The mode ems is commanding (auto when nothing is)."""
        return self.coordinator.data.batteries[self.battery_id].command.mode.value

    @device_action
    async def async_select_option(self, option: str) -> None:
        """Command the mode with the settings from the number entities."""
        if not self.coordinator.allow_control:
            raise validation_error("control_disabled", device=self.battery_name)
        if self.device is None:
            return
        check_mode(self.device, BatteryMode(option))
        self.battery.command = self.battery.settings.command(BatteryMode(option))
        await self.coordinator.async_apply_control(self.device)

    @property
    def battery_name(self) -> str:
        """The battery's name for messages."""
        return self.device.name if self.device else ""
