"""Config flow: a Modbus hub (tested before it is saved) and its devices as subentries."""

from __future__ import annotations

import logging
from typing import Any

from homeassistant.config_entries import (
    ConfigEntry,
    ConfigFlow,
    ConfigFlowResult,
    ConfigSubentryFlow,
    SubentryFlowResult,
)
from homeassistant.const import CONF_NAME
from homeassistant.core import callback
from homeassistant.helpers import selector
import voluptuous as vol

from .const import (
    CONF_PROFILE,
    CONF_ROLE,
    CONF_STATISTICS_HUB,
    CONF_TRANSPORT,
    CONF_UNIT_ID,
    DEFAULT_UNIT_ID,
    DOMAIN,
    SUBENTRY_DEVICE,
    SUNSPEC_PROFILE,
)
from .engine.modbus.transport import HubSettings, ModbusTransportError, Transport
from .engine.model import DEFAULT_ROLE, DeviceRole, DeviceType
from .glue.devices import (
    Catalogue,
    Identified,
    async_identify,
    async_load_catalogue,
    describe_error,
    device_data,
    hub_id,
    hub_settings,
)
from .glue.flow_forms import (
    ADDRESS_FIELDS,
    DEVICE_RECONFIGURE_SCHEMA,
    NETWORK_SCHEMA,
    SERIAL_FIELDS,
    SERIAL_SCHEMA,
    TUNING,
    UNIT_FIELD,
    address_fields_of,
    as_form,
    choice,
)
from .glue.options_flow import EmsOptionsFlow
from .glue.statistics import free_statistics_hub

_LOGGER = logging.getLogger(__name__)


class _DeviceSteps:
    """The device step shared by the hub flow (its first device) and the subentry flow."""

    catalogue: Catalogue
    identified: Identified
    unit_id: int

    def _device_schema(self, taken_roles: set[DeviceRole]) -> vol.Schema:
        found = self.identified.profile
        profiles = {
            profile_id: f"{profile.manufacturer} {profile.model}"
            for profile_id, profile in self.catalogue.profiles.items()
        }
        if self.identified.sunspec_models and found is not None:
            profiles = {SUNSPEC_PROFILE: found.model, **profiles}
        default_profile = (
            SUNSPEC_PROFILE if self.identified.sunspec_models else (found.id if found else None)
        )
        device_type = found.device_type if found else DeviceType.METER
        role = DEFAULT_ROLE[device_type]
        if role is DeviceRole.GRID and DeviceRole.GRID in taken_roles:
            role = DeviceRole.SUBMETER
        default_name = f"{found.model if found else 'Device'} (unit {self.unit_id})"
        profile_field = (
            vol.Required(CONF_PROFILE, default=default_profile)
            if default_profile
            else vol.Required(CONF_PROFILE)
        )
        return vol.Schema(
            {
                profile_field: selector.SelectSelector(
                    selector.SelectSelectorConfig(
                        options=[
                            selector.SelectOptionDict(value=key, label=label)
                            for key, label in profiles.items()
                        ],
                        mode=selector.SelectSelectorMode.DROPDOWN,
                    )
                ),
                vol.Required(CONF_NAME, default=default_name): selector.TextSelector(),
                vol.Required(CONF_ROLE, default=role.value): choice(
                    [member.value for member in DeviceRole], CONF_ROLE
                ),
            }
        )

    def _device_errors(
        self, user_input: dict[str, Any], taken_roles: set[DeviceRole]
    ) -> dict[str, str]:
        # The profile selector only offers what the catalogue and the device offer.
        if not str(user_input[CONF_NAME]).strip():
            return {CONF_NAME: "name_required"}
        if user_input[CONF_ROLE] == DeviceRole.GRID and DeviceRole.GRID in taken_roles:
            return {CONF_ROLE: "grid_taken"}
        return {}

    def _device_subentry_data(self, user_input: dict[str, Any]) -> dict[str, Any]:
        return device_data(
            self.unit_id,
            DeviceRole(user_input[CONF_ROLE]),
            user_input[CONF_PROFILE],
            self.identified.sunspec_models,
        )


async def _identify(
    settings: HubSettings, unit_id: int, catalogue: Catalogue
) -> tuple[Identified | None, str | None]:
    try:
        return await async_identify(settings, unit_id, catalogue), None
    except ModbusTransportError as err:
        return None, describe_error(err)
    except Exception:  # a flow must never end in a traceback: the user gets a form back
        _LOGGER.exception("Unexpected error while identifying unit %s", unit_id)
        return None, "unknown"


class EmsConfigFlow(ConfigFlow, _DeviceSteps, domain=DOMAIN):
    """Add a hub: where it is, then what answers at the first unit id."""

    VERSION = 2

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
                identified, error = await _identify(settings, self.unit_id, self.catalogue)
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
                return self.async_create_entry(
                    title=hub_id(self.hub_data),
                    data={**self.hub_data, CONF_STATISTICS_HUB: free_statistics_hub(self.hass)},
                    subentries=[
                        {
                            "subentry_type": SUBENTRY_DEVICE,
                            "title": str(user_input[CONF_NAME]).strip(),
                            "unique_id": str(self.unit_id),
                            "data": self._device_subentry_data(user_input),
                        }
                    ],
                )
        return self.async_show_form(
            step_id="device",
            data_schema=self.add_suggested_values_to_schema(self._device_schema(set()), user_input),
            errors=errors,
            description_placeholders={"unit_id": str(self.unit_id)},
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
    _, error = await _identify(settings, unit_id, catalogue)
    return {"base": error} if error and error != "unsupported_device" else {}


class DeviceSubentryFlow(ConfigSubentryFlow, _DeviceSteps):
    """Add a device to a hub, or rename it and change its role."""

    async def async_step_user(self, user_input: dict[str, Any] | None = None) -> SubentryFlowResult:
        """Ask for the unit id, then ask the device what it is."""
        entry = self._get_entry()
        errors: dict[str, str] = {}
        if user_input is not None:
            self.unit_id = user_input[CONF_UNIT_ID]
            if any(s.unique_id == str(self.unit_id) for s in entry.subentries.values()):
                return self.async_abort(reason="already_configured")
            self.catalogue = await async_load_catalogue(self.hass)
            settings = hub_settings(entry.data, entry.options)
            identified, error = await _identify(settings, self.unit_id, self.catalogue)
            if identified is not None:
                self.identified = identified
                return await self.async_step_device()
            errors["base"] = error or "cannot_connect"
        return self.async_show_form(
            step_id="user",
            data_schema=self.add_suggested_values_to_schema(vol.Schema(UNIT_FIELD), user_input),
            errors=errors,
        )

    async def async_step_device(
        self, user_input: dict[str, Any] | None = None
    ) -> SubentryFlowResult:
        """Confirm (or pick) the profile, name the device, and place it on the site."""
        taken = _roles(self._get_entry())
        errors: dict[str, str] = {}
        if user_input is not None:
            errors = self._device_errors(user_input, taken)
            if not errors:
                return self.async_create_entry(
                    title=str(user_input[CONF_NAME]).strip(),
                    data=self._device_subentry_data(user_input),
                    unique_id=str(self.unit_id),
                )
        return self.async_show_form(
            step_id="device",
            data_schema=self.add_suggested_values_to_schema(self._device_schema(taken), user_input),
            errors=errors,
            description_placeholders={"unit_id": str(self.unit_id)},
        )

    async def async_step_reconfigure(
        self, user_input: dict[str, Any] | None = None
    ) -> SubentryFlowResult:
        """Rename a device, move it to another role, or tune its cleaning thresholds."""
        entry, subentry = self._get_entry(), self._get_reconfigure_subentry()
        taken = _roles(entry) - {DeviceRole(subentry.data[CONF_ROLE])}
        errors: dict[str, str] = {}
        if user_input is not None:
            name = str(user_input[CONF_NAME]).strip()
            if not name:
                errors[CONF_NAME] = "name_required"
            elif user_input[CONF_ROLE] == DeviceRole.GRID and DeviceRole.GRID in taken:
                errors[CONF_ROLE] = "grid_taken"
            else:
                updates = {key: user_input[key] for key in TUNING if key in user_input}
                return self.async_update_and_abort(
                    entry,
                    subentry,
                    title=name,
                    data_updates={CONF_ROLE: user_input[CONF_ROLE], **updates},
                )
        current = {
            CONF_NAME: subentry.title,
            CONF_ROLE: subentry.data[CONF_ROLE],
            **{key: subentry.data[key] for key in TUNING if key in subentry.data},
        }
        return self.async_show_form(
            step_id="reconfigure",
            data_schema=self.add_suggested_values_to_schema(
                DEVICE_RECONFIGURE_SCHEMA, user_input or current
            ),
            errors=errors,
        )


def _roles(entry: ConfigEntry) -> set[DeviceRole]:
    return {
        DeviceRole(subentry.data[CONF_ROLE])
        for subentry in entry.subentries.values()
        if subentry.subentry_type == SUBENTRY_DEVICE
    }
