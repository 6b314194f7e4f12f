"""Config flow: a Modbus TCP hub, tested before it is saved."""

from __future__ import annotations

import ipaddress
import re
from typing import Any

from homeassistant.config_entries import (
    ConfigEntry,
    ConfigFlow,
    ConfigFlowResult,
    OptionsFlow,
)
from homeassistant.const import CONF_HOST, CONF_PORT, CONF_SCAN_INTERVAL
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers import selector
import voluptuous as vol

from .const import (
    CONF_MAX_GAP,
    CONF_MAX_READ,
    CONF_TIMEOUT,
    CONF_UNIT_ID,
    DEFAULT_PORT,
    DEFAULT_PROFILE,
    DEFAULT_SCAN_INTERVAL,
    DEFAULT_UNIT_ID,
    DOMAIN,
)
from .modbus import (
    DEFAULT_MAX_GAP,
    DEFAULT_MAX_READ,
    DEFAULT_TIMEOUT,
    HubSettings,
    ModbusErrorKind,
    ModbusTransportError,
    probe,
)
from .profiles import builtin_profiles

_HOSTNAME = re.compile(r"^(?=.{1,253}$)([A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.?)+$")
_ERROR_BY_KIND = {
    ModbusErrorKind.CONNECTION: "cannot_connect",
    ModbusErrorKind.TIMEOUT: "no_response",
    ModbusErrorKind.EXCEPTION_RESPONSE: "unsupported_device",
}


def _number(minimum: float, maximum: float, *, step: float = 1, unit: str | None = None) -> vol.All:
    """A number box that also rejects out-of-range input sent past the frontend."""
    box = selector.NumberSelectorConfig(
        min=minimum, max=maximum, step=step, mode=selector.NumberSelectorMode.BOX
    )
    if unit is not None:
        box["unit_of_measurement"] = unit
    coerce = vol.Coerce(int) if step == 1 else vol.Coerce(float)
    return vol.All(selector.NumberSelector(box), coerce, vol.Range(min=minimum, max=maximum))


_USER_SCHEMA = vol.Schema(
    {
        vol.Required(CONF_HOST): selector.TextSelector(),
        vol.Required(CONF_PORT, default=DEFAULT_PORT): _number(1, 65535),
        vol.Required(CONF_UNIT_ID, default=DEFAULT_UNIT_ID): _number(1, 247),
    }
)
_RECONFIGURE_SCHEMA = vol.Schema(
    {
        vol.Required(CONF_HOST): selector.TextSelector(),
        vol.Required(CONF_PORT): _number(1, 65535),
    }
)
_OPTIONS_SCHEMA = vol.Schema(
    {
        vol.Required(CONF_SCAN_INTERVAL, default=DEFAULT_SCAN_INTERVAL.total_seconds()): _number(
            1, 3600, unit="s"
        ),
        vol.Required(CONF_TIMEOUT, default=DEFAULT_TIMEOUT): _number(0.2, 60, step=0.1, unit="s"),
        vol.Required(CONF_MAX_READ, default=DEFAULT_MAX_READ): _number(1, 125),
        vol.Required(CONF_MAX_GAP, default=DEFAULT_MAX_GAP): _number(0, 100),
    }
)


def valid_host(host: str) -> bool:
    """An IP address or a DNS name; no scheme, port or path."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return bool(_HOSTNAME.match(host)) and not host.replace(".", "").isdigit()
    return True


async def _test_connection(hass: HomeAssistant, host: str, port: int, unit_id: int) -> str | None:
    """Read the meter once; return the translation key of what went wrong, if anything."""
    profile = (await hass.async_add_executor_job(builtin_profiles))[DEFAULT_PROFILE]
    try:
        await probe(HubSettings(host=host, port=port), unit_id, profile.channels)
    except ModbusTransportError as err:
        return _ERROR_BY_KIND[err.kind]
    return None


class EmsConfigFlow(ConfigFlow, domain=DOMAIN):
    """Add a hub: where it is, and the meter's unit id."""

    VERSION = 1

    @staticmethod
    @callback
    def async_get_options_flow(config_entry: ConfigEntry) -> EmsOptionsFlow:
        """Polling and gateway limits are options; they apply on reload."""
        return EmsOptionsFlow()

    async def async_step_user(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Ask for the address, test it, and create the entry."""
        errors: dict[str, str] = {}
        if user_input is not None:
            host = str(user_input[CONF_HOST]).strip()
            port, unit_id = user_input[CONF_PORT], user_input[CONF_UNIT_ID]
            if not valid_host(host):
                errors[CONF_HOST] = "invalid_host"
            else:
                await self.async_set_unique_id(f"{host}:{port}")
                self._abort_if_unique_id_configured()
                if error := await _test_connection(self.hass, host, port, unit_id):
                    errors["base"] = error
                else:
                    return self.async_create_entry(
                        title=f"{host}:{port}",
                        data={CONF_HOST: host, CONF_PORT: port, CONF_UNIT_ID: unit_id},
                    )
        return self.async_show_form(
            step_id="user",
            data_schema=self.add_suggested_values_to_schema(_USER_SCHEMA, user_input),
            errors=errors,
        )

    async def async_step_reconfigure(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Move the hub to a new address (a new IP after a router change, say)."""
        entry = self._get_reconfigure_entry()
        errors: dict[str, str] = {}
        if user_input is not None:
            host = str(user_input[CONF_HOST]).strip()
            port = user_input[CONF_PORT]
            if not valid_host(host):
                errors[CONF_HOST] = "invalid_host"
            else:
                await self.async_set_unique_id(f"{host}:{port}")
                if entry.unique_id != self.unique_id:
                    self._abort_if_unique_id_configured()
                unit_id = entry.data[CONF_UNIT_ID]
                if error := await _test_connection(self.hass, host, port, unit_id):
                    errors["base"] = error
                else:
                    return self.async_update_reload_and_abort(
                        entry,
                        unique_id=f"{host}:{port}",
                        title=f"{host}:{port}",
                        data_updates={CONF_HOST: host, CONF_PORT: port},
                    )
        return self.async_show_form(
            step_id="reconfigure",
            data_schema=self.add_suggested_values_to_schema(
                _RECONFIGURE_SCHEMA, user_input or entry.data
            ),
            errors=errors,
        )


class EmsOptionsFlow(OptionsFlow):
    """Scan interval, time-out and the gateway's request limits."""

    async def async_step_init(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Show the options with the current values filled in."""
        if user_input is not None:
            return self.async_create_entry(data=user_input)
        return self.async_show_form(
            step_id="init",
            data_schema=self.add_suggested_values_to_schema(
                _OPTIONS_SCHEMA, self.config_entry.options
            ),
        )
