"""The one base entity: device info, unique ids and availability for every platform."""

from __future__ import annotations

from homeassistant.helpers.device_registry import DeviceInfo
from homeassistant.helpers.entity import EntityDescription
from homeassistant.helpers.update_coordinator import CoordinatorEntity

from .compat import via_device
from .const import DOMAIN
from .coordinator import EmsCoordinator
from .engine.model import Device
from .glue.devices import device_identifier, device_unique_id


def hub_device_info(coordinator: EmsCoordinator) -> DeviceInfo:
    """The hub itself: a gateway or a Modbus TCP device at one address."""
    entry = coordinator.config_entry
    return DeviceInfo(
        identifiers={(DOMAIN, entry.entry_id)},
        name=entry.title,
        manufacturer="ems",
        model="Modbus hub",
    )


def device_info(coordinator: EmsCoordinator, device: Device) -> DeviceInfo:
    """A device behind the hub, with what it told us about itself (SunSpec model 1, serial)."""
    entry = coordinator.config_entry
    # A logical device without its own common model is made by whoever made the unit.
    maker = _identity(coordinator, device, "Manufacturer")
    unit = coordinator.devices.get(device.part_of) if device.part_of else None
    if maker is None and unit is not None:
        maker = _identity(coordinator, unit, "Manufacturer")
    info = DeviceInfo(
        identifiers={device_identifier(entry.entry_id, device.id)},
        name=device.name,
        manufacturer=maker or device.profile.manufacturer,
        model=_identity(coordinator, device, "Model") or device.profile.model,
        **_via_hub(coordinator),
    )
    if serial := _identity(coordinator, device, "SerialNumber"):
        info["serial_number"] = serial
    if version := _identity(coordinator, device, "Version"):
        info["sw_version"] = version
    return info


def _identity(coordinator: EmsCoordinator, device: Device, key: str) -> str | None:
    if coordinator.data is None or (state := coordinator.data.devices.get(device.id)) is None:
        return None
    reading = state.readings.get(key)
    if reading is None or not reading.usable:
        return None
    return str(reading.value)


def site_device_info(coordinator: EmsCoordinator) -> DeviceInfo:
    """The virtual site device: sums and flows of everything on the hub."""
    entry = coordinator.config_entry
    return DeviceInfo(
        identifiers={device_identifier(entry.entry_id, "site")},
        translation_key="site",
        manufacturer="ems",
        model="Energy site",
        **_via_hub(coordinator),
    )


def _via_hub(coordinator: EmsCoordinator) -> DeviceInfo:
    entry_id = coordinator.config_entry.entry_id
    return via_device(coordinator.hass, (DOMAIN, entry_id), entry_id)


class EmsEntity(CoordinatorEntity[EmsCoordinator]):
    """An entity of one device, of the site (`site=True`) or of the hub (neither)."""

    _attr_has_entity_name = True

    def __init__(
        self,
        coordinator: EmsCoordinator,
        description: EntityDescription,
        device: Device | None = None,
        *,
        site: bool = False,
    ) -> None:
        """Bind the entity to its device and derive a unique id that survives renames."""
        super().__init__(coordinator)
        self.entity_description = description
        self.device = device
        entry_id = coordinator.config_entry.entry_id
        if site:
            self._attr_device_info = site_device_info(coordinator)
            self._attr_unique_id = device_unique_id(entry_id, "site", description.key)
        elif device is None:
            self._attr_device_info = hub_device_info(coordinator)
            self._attr_unique_id = f"{entry_id}_{description.key}"
        else:
            self._attr_device_info = device_info(coordinator, device)
            self._attr_unique_id = device_unique_id(entry_id, device.id, description.key)

    @property
    def available(self) -> bool:
        """A device that stopped answering makes its entities unavailable."""
        if not super().available or self.device is None:
            return super().available
        state = self.coordinator.data.devices.get(self.device.id)
        return state is not None and state.online
