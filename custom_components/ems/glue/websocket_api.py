"""`ems/subscribe_readings`: every cycle's readings, in the seed's format, over the websocket."""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import partial
from typing import Any

from homeassistant.components.websocket_api import async_register_command
from homeassistant.components.websocket_api.connection import ActiveConnection
from homeassistant.components.websocket_api.const import ERR_NOT_FOUND
from homeassistant.components.websocket_api.decorators import websocket_command
from homeassistant.components.websocket_api.messages import event_message
from homeassistant.config_entries import (
    SIGNAL_CONFIG_ENTRY_CHANGED,
    ConfigEntry,
    ConfigEntryChange,
    ConfigEntryState,
)
from homeassistant.core import CALLBACK_TYPE, HomeAssistant, callback
from homeassistant.helpers import config_validation as cv, device_registry as dr
from homeassistant.helpers.dispatcher import async_dispatcher_connect
import voluptuous as vol

from ..const import DOMAIN
from ..coordinator import EmsConfigEntry, EmsCoordinator
from ..engine.cycle import SiteSnapshot
from .readings import SITE_KEY, hub_registry_id, registry_ids, snapshot_readings

COMMAND = f"{DOMAIN}/subscribe_readings"


@callback
def async_setup_websocket(hass: HomeAssistant) -> None:
    """Make the command available; it works for every hub, loaded now or later."""
    async_register_command(hass, ws_subscribe_readings)


class UnknownDeviceError(Exception):
    """The `device_id` filter names no device of a loaded ems hub."""


@dataclass(frozen=True, slots=True)
class _Scope:
    """Which readings a subscription wants: one hub or all, one device of it or all."""

    entry_id: str | None = None
    device_key: str | None = None
    parameters: frozenset[str] | None = None

    def covers(self, entry: ConfigEntry[Any]) -> bool:
        return entry.domain == DOMAIN and self.entry_id in (None, entry.entry_id)


def _scope_of_device(hass: HomeAssistant, device_id: str) -> tuple[str, str | None]:
    """The hub entry and the ems key (None: the hub itself, all of it) of a registry device."""
    for entry in hass.config_entries.async_loaded_entries(DOMAIN):
        coordinator: EmsCoordinator = entry.runtime_data.coordinator
        if device_id == hub_registry_id(hass, coordinator):
            return entry.entry_id, None
        for key, registry_id in registry_ids(hass, coordinator).items():
            if registry_id == device_id:
                return entry.entry_id, key
    device = dr.async_get(hass).async_get(device_id)
    if device is not None and any(domain == DOMAIN for domain, _ in device.identifiers):
        raise UnknownDeviceError(f"The hub of device {device_id} is not loaded")
    raise UnknownDeviceError(f"Device {device_id} is not an ems device")


class _ReadingsStream:
    """One subscription: follows each matching hub's coordinator, across reloads."""

    def __init__(
        self, hass: HomeAssistant, connection: ActiveConnection, msg_id: int, scope: _Scope
    ) -> None:
        self.hass = hass
        self.connection = connection
        self.msg_id = msg_id
        self.scope = scope
        self._listeners: dict[str, CALLBACK_TYPE] = {}
        # The snapshot last sent per hub: a listener call without a new cycle (a battery
        # command applied at once) must not repeat it.
        self._sent: dict[str, SiteSnapshot] = {}
        self._unsub_entries: CALLBACK_TYPE | None = None

    @callback
    def start(self) -> None:
        """Send what the hubs hold now, then follow them."""
        # A reload replaces the coordinator; the entry's state changes say when.
        self._unsub_entries = async_dispatcher_connect(
            self.hass, SIGNAL_CONFIG_ENTRY_CHANGED, self._entry_changed
        )
        records: list[dict[str, Any]] = []
        for entry in self.hass.config_entries.async_loaded_entries(DOMAIN):
            if self.scope.covers(entry):
                records += self._attach(entry)
        self._send(records)

    @callback
    def close(self) -> None:
        """The client unsubscribed or went away."""
        if self._unsub_entries is not None:
            self._unsub_entries()
        for unsubscribe in self._listeners.values():
            unsubscribe()
        self._listeners.clear()
        self._sent.clear()

    def _attach(self, entry: EmsConfigEntry) -> list[dict[str, Any]]:
        coordinator = entry.runtime_data.coordinator
        self._listeners[entry.entry_id] = coordinator.async_add_listener(
            partial(self._cycle, entry)
        )
        return self._records(entry)

    @callback
    def _entry_changed(self, change: ConfigEntryChange, entry: ConfigEntry[Any]) -> None:
        if not self.scope.covers(entry):
            return
        loaded = entry.state is ConfigEntryState.LOADED and change is not ConfigEntryChange.REMOVED
        if loaded and entry.entry_id not in self._listeners:
            if records := self._attach(entry):
                self._send(records)
        elif not loaded and (unsubscribe := self._listeners.pop(entry.entry_id, None)):
            unsubscribe()
            self._sent.pop(entry.entry_id, None)

    @callback
    def _cycle(self, entry: EmsConfigEntry) -> None:
        coordinator = entry.runtime_data.coordinator
        if not coordinator.last_update_success or coordinator.data is self._sent.get(
            entry.entry_id
        ):
            return
        if records := self._records(entry):
            self._send(records)

    def _records(self, entry: EmsConfigEntry) -> list[dict[str, Any]]:
        coordinator = entry.runtime_data.coordinator
        snapshot = coordinator.data
        self._sent[entry.entry_id] = snapshot
        key = self.scope.device_key
        devices = [d for d in coordinator.devices.values() if key in (None, d.id)]
        readings = snapshot_readings(
            snapshot, devices, registry_ids(self.hass, coordinator), site=key in (None, SITE_KEY)
        )
        wanted = self.scope.parameters
        return [
            reading.as_seed()
            for reading in readings
            if reading.live and (wanted is None or reading.parameter in wanted)
        ]

    def _send(self, records: list[dict[str, Any]]) -> None:
        self.connection.send_message(event_message(self.msg_id, {"readings": records}))


@websocket_command(
    {
        vol.Required("type"): COMMAND,
        vol.Optional("device_id"): cv.string,
        vol.Optional("parameter"): vol.All(cv.ensure_list, [cv.string]),
    }
)
@callback
def ws_subscribe_readings(
    hass: HomeAssistant, connection: ActiveConnection, msg: dict[str, Any]
) -> None:
    """Stream the readings of every hub, or of the hub or device that `device_id` names."""
    parameters = msg.get("parameter")
    scope = _Scope(parameters=None if parameters is None else frozenset(parameters))
    if (device_id := msg.get("device_id")) is not None:
        try:
            entry_id, device_key = _scope_of_device(hass, device_id)
        except UnknownDeviceError as err:
            connection.send_error(msg["id"], ERR_NOT_FOUND, str(err))
            return
        scope = replace(scope, entry_id=entry_id, device_key=device_key)
    stream = _ReadingsStream(hass, connection, msg["id"], scope)
    connection.subscriptions[msg["id"]] = stream.close
    connection.send_result(msg["id"])
    stream.start()
