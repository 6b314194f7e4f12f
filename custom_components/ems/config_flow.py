"""Config flow: a Modbus hub (tested before it is saved) and its devices as subentries."""

from __future__ import annotations

from typing import Any

from homeassistant.config_entries import (
    ConfigEntry,
    ConfigFlow,
    ConfigFlowResult,
    ConfigSubentryFlow,
)
from homeassistant.const import CONF_NAME
from homeassistant.core import callback
import voluptuous as vol

from .const import (
    CONF_STATISTICS_HUB,
    CONF_TRANSPORT,
    CONF_UNIT_ID,
    DEFAULT_UNIT_ID,
    DOMAIN,
    SUBENTRY_DEVICE,
)
from .engine.modbus.transport import HubSettings, Transport
from .glue.device_flow import DeviceSteps, identify
from .glue.devices import (
    Catalogue,
    async_load_catalogue,
    hub_id,
    hub_settings,
)
from .glue.flow_forms import (
    ADDRESS_FIELDS,
    NETWORK_SCHEMA,
    SERIAL_FIELDS,
    SERIAL_SCHEMA,
    address_fields_of,
    as_form,
)
from .glue.migrations import ENTRY_MINOR_VERSION, ENTRY_VERSION
from .glue.options_flow import EmsOptionsFlow
from .glue.statistics import free_statistics_hub
from .glue.subentry_flow import DeviceSubentryFlow


class EmsConfigFlow(ConfigFlow, DeviceSteps, domain=DOMAIN):
    """Add a hub: where it is, then what answers at the first unit id."""

    VERSION = ENTRY_VERSION
    MINOR_VERSION = ENTRY_MINOR_VERSION

    def __init__(self) -> None:
        """Nothing is known until the user gives an address."""
        self.hub_data: dict[str, Any] = {}

    @staticmethod
    @callback
    def async_get_options_flow(config_entry: ConfigEntry) -> EmsOptionsFlow:
        """Polling and gateway limits are options; they apply on reload."""
        return EmsOptionsFlow()

    @classmethod
    @callback
    def async_get_supported_subentry_types(
        cls, config_entry: ConfigEntry
    ) -> dict[str, type[ConfigSubentryFlow]]:
        """Each device on the hub is a subentry."""
        return {SUBENTRY_DEVICE: DeviceSubentryFlow}

    async def async_step_user(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """A gateway on the network, or a serial port on this machine."""
        return self.async_show_menu(step_id="user", menu_options=["network", "serial"])

    async def async_step_network(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Ask for the gateway's address and the first unit id."""
        return await self._hub_step("network", NETWORK_SCHEMA, user_input)

    async def async_step_serial(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Ask for the serial port, its settings and the first unit id."""
        return await self._hub_step("serial", SERIAL_SCHEMA, user_input)

    async def _hub_step(
        self, step_id: str, schema: vol.Schema, user_input: dict[str, Any] | None
    ) -> ConfigFlowResult:
        """Check the address, then ask the device at the unit id what it is."""
        errors: dict[str, str] = {}
        if user_input is not None:
            self.hub_data, errors = address_fields_of(user_input)
            if not errors:
                await self.async_set_unique_id(hub_id(self.hub_data))
                self._abort_if_unique_id_configured()
                self.catalogue = await async_load_catalogue(self.hass)
                self.unit_id = user_input[CONF_UNIT_ID]
                settings = hub_settings(self.hub_data, {})
                identified, error = await identify(settings, self.unit_id, self.catalogue)
                if identified is not None:
                    self.identified = identified
                    return await self.async_step_device()
                errors["base"] = error or "cannot_connect"
        return self.async_show_form(
            step_id=step_id,
            data_schema=self.add_suggested_values_to_schema(schema, user_input),
            errors=errors,
        )

    async def async_step_device(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Confirm (or pick) the device's profile, name it, and place it on the site."""
        errors: dict[str, str] = {}
        if user_input is not None:
            errors = self._device_errors(user_input, set())
            if not errors:
                self._start_parts(user_input)
                return await self.async_step_part()
        return self.async_show_form(
            step_id="device",
            data_schema=self.add_suggested_values_to_schema(self._device_schema(set()), user_input),
            errors=errors,
            description_placeholders={"unit_id": str(self.unit_id), "found": self._found()},
        )

    async def async_step_part(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Name and place each further logical device of the unit's SunSpec chain."""
        errors: dict[str, str] = {}
        if user_input is not None:
            errors = self._take_part(user_input, set())
        if not self.pending_parts:
            return self.async_create_entry(
                title=hub_id(self.hub_data),
                data={**self.hub_data, CONF_STATISTICS_HUB: free_statistics_hub(self.hass)},
                subentries=[
                    {
                        "subentry_type": SUBENTRY_DEVICE,
                        "title": str(self.device_input[CONF_NAME]).strip(),
                        "unique_id": str(self.unit_id),
                        "data": self._device_subentry_data(self.device_input),
                    }
                ],
            )
        part = self.pending_parts[0]
        return self.async_show_form(
            step_id="part",
            data_schema=self.add_suggested_values_to_schema(
                self._part_schema(part, self._part_roles()), user_input
            ),
            errors=errors,
            description_placeholders=self._part_placeholders(part),
        )

    async def async_step_reconfigure(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Move the hub to a new address or port (a new IP after a router change, say)."""
        entry = self._get_reconfigure_entry()
        serial = entry.data.get(CONF_TRANSPORT) == Transport.SERIAL
        errors: dict[str, str] = {}
        if user_input is not None:
            data, errors = address_fields_of(user_input)
            if not errors:
                unique_id = hub_id(data)
                await self.async_set_unique_id(unique_id)
                if entry.unique_id != unique_id:
                    self._abort_if_unique_id_configured()
                errors = await _reach_devices(entry, hub_settings(data, entry.options))
                if not errors:
                    return self.async_update_reload_and_abort(
                        entry, unique_id=unique_id, title=unique_id, data_updates=data
                    )
        schema = vol.Schema(SERIAL_FIELDS if serial else ADDRESS_FIELDS)
        return self.async_show_form(
            step_id="reconfigure",
            data_schema=self.add_suggested_values_to_schema(
                schema, user_input or as_form(entry.data)
            ),
            errors=errors,
        )


async def _reach_devices(entry: ConfigEntry, settings: HubSettings) -> dict[str, str]:
    """A new address must reach the devices the hub already has (the first one suffices)."""
    devices = [s for s in entry.subentries.values() if s.subentry_type == SUBENTRY_DEVICE]
    unit_id = int(devices[0].data[CONF_UNIT_ID]) if devices else DEFAULT_UNIT_ID
    catalogue = Catalogue(profiles={}, errors=[])
    _, error = await identify(settings, unit_id, catalogue)
    return {"base": error} if error and error != "unsupported_device" else {}
