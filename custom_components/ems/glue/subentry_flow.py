"""Add a device to a hub as a subentry, or change one (its name, role and tuning, and those
of each logical device its SunSpec chain holds)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from homeassistant.config_entries import (
    ConfigEntry,
    ConfigSubentry,
    ConfigSubentryFlow,
    SubentryFlowResult,
)
from homeassistant.const import CONF_NAME
import voluptuous as vol

from ..const import CONF_PARTS, CONF_ROLE, CONF_UNIT_ID
from ..engine.model import DeviceRole
from .device_flow import DeviceSteps, hub_roles, identify, subentry_roles
from .devices import async_load_catalogue, hub_settings
from .flow_forms import DEVICE_RECONFIGURE_SCHEMA, TUNING, UNIT_FIELD


class DeviceSubentryFlow(ConfigSubentryFlow, DeviceSteps):
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
            identified, error = await identify(settings, self.unit_id, self.catalogue)
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
        taken = hub_roles(self._get_entry())
        errors: dict[str, str] = {}
        if user_input is not None:
            errors = self._device_errors(user_input, taken)
            if not errors:
                self._start_parts(user_input)
                return await self.async_step_part()
        return self.async_show_form(
            step_id="device",
            data_schema=self.add_suggested_values_to_schema(self._device_schema(taken), user_input),
            errors=errors,
            description_placeholders={"unit_id": str(self.unit_id), "found": self._found()},
        )

    async def async_step_part(self, user_input: dict[str, Any] | None = None) -> SubentryFlowResult:
        """Name and place each further logical device of the unit's SunSpec chain."""
        taken = hub_roles(self._get_entry())
        errors: dict[str, str] = {}
        if user_input is not None:
            errors = self._take_part(user_input, taken)
        if not self.pending_parts:
            return self.async_create_entry(
                title=str(self.device_input[CONF_NAME]).strip(),
                data=self._device_subentry_data(self.device_input),
                unique_id=str(self.unit_id),
            )
        part = self.pending_parts[0]
        return self.async_show_form(
            step_id="part",
            data_schema=self.add_suggested_values_to_schema(
                self._part_schema(part, taken | self._part_roles()), user_input
            ),
            errors=errors,
            description_placeholders=self._part_placeholders(part),
        )

    async def async_step_reconfigure(
        self, user_input: dict[str, Any] | None = None
    ) -> SubentryFlowResult:
        """Rename a device, move it to another role, or tune its cleaning thresholds; then the
        same for each further logical device of its SunSpec chain."""
        entry, subentry = self._get_entry(), self._get_reconfigure_subentry()
        errors: dict[str, str] = {}
        if user_input is not None:
            errors = self._device_errors(user_input, self._others(entry, subentry))
            if not errors:
                self.device_input = user_input
                self.part_settings = {}
                self.parts_left = list(subentry.data.get(CONF_PARTS, {}))
                return await self.async_step_reconfigure_part()
        return self.async_show_form(
            step_id="reconfigure",
            data_schema=self.add_suggested_values_to_schema(
                DEVICE_RECONFIGURE_SCHEMA, user_input or _current(subentry.title, subentry.data)
            ),
            errors=errors,
        )

    async def async_step_reconfigure_part(
        self, user_input: dict[str, Any] | None = None
    ) -> SubentryFlowResult:
        """One further logical device of the chain: its name, role and tuning."""
        entry, subentry = self._get_entry(), self._get_reconfigure_subentry()
        stored = subentry.data.get(CONF_PARTS, {})
        errors: dict[str, str] = {}
        if user_input is not None:
            taken = self._others(entry, subentry) | self._part_roles()
            errors = self._device_errors(user_input, taken)
            if not errors:
                key = self.parts_left.pop(0)
                self.part_settings[key] = _settings(user_input)
        if not self.parts_left:
            return self.async_update_and_abort(
                entry,
                subentry,
                title=str(self.device_input[CONF_NAME]).strip(),
                data_updates={
                    **_settings(self.device_input, with_name=False),
                    **({CONF_PARTS: self.part_settings} if stored else {}),
                },
            )
        key = self.parts_left[0]
        current = stored[key]
        return self.async_show_form(
            step_id="reconfigure_part",
            data_schema=self.add_suggested_values_to_schema(
                DEVICE_RECONFIGURE_SCHEMA, user_input or _current(current[CONF_NAME], current)
            ),
            errors=errors,
            description_placeholders={"name": str(current[CONF_NAME]), "address": key},
        )

    @staticmethod
    def _others(entry: ConfigEntry, subentry: ConfigSubentry) -> set[DeviceRole]:
        """The roles of the hub's other devices."""
        others = {key: s for key, s in entry.subentries.items() if key != subentry.subentry_id}
        return subentry_roles(others.values())


def _settings(user_input: dict[str, Any], *, with_name: bool = True) -> dict[str, Any]:
    """What a device keeps of the reconfigure form: role, tuning and (for a part) its name."""
    settings = {CONF_ROLE: user_input[CONF_ROLE]}
    settings |= {key: user_input[key] for key in TUNING if key in user_input}
    if with_name:
        settings[CONF_NAME] = str(user_input[CONF_NAME]).strip()
    return settings


def _current(name: str, settings: Mapping[str, Any]) -> dict[str, Any]:
    return {
        CONF_NAME: name,
        CONF_ROLE: settings[CONF_ROLE],
        **{key: settings[key] for key in TUNING if key in settings},
    }
