"""Config flow: a Modbus hub (tested before it is saved) and its devices as subentries."""

from __future__ import annotations

from collections.abc import Callable, Mapping
import ipaddress
import logging
import math
import re
from typing import Any

from homeassistant.config_entries import (
    ConfigEntry,
    ConfigFlow,
    ConfigFlowResult,
    ConfigSubentryFlow,
    OptionsFlow,
    SubentryFlowResult,
)
from homeassistant.const import CONF_HOST, CONF_NAME, CONF_PORT, CONF_SCAN_INTERVAL
from homeassistant.core import callback
from homeassistant.helpers import selector
import voluptuous as vol

from .const import (
    CONF_ALLOW_CONTROL,
    CONF_BAUDRATE,
    CONF_INVERT_POWER,
    CONF_MAX_GAP,
    CONF_MAX_READ,
    CONF_ON_THRESHOLD,
    CONF_PARITY,
    CONF_PROFILE,
    CONF_RATED_POWER,
    CONF_ROLE,
    CONF_SERIAL_PORT,
    CONF_STATISTICS_HUB,
    CONF_STOPBITS,
    CONF_TIMEOUT,
    CONF_TRANSPORT,
    CONF_UNIT_ID,
    DEFAULT_PORT,
    DEFAULT_SCAN_INTERVAL,
    DEFAULT_UNIT_ID,
    DOMAIN,
    SUBENTRY_DEVICE,
    SUNSPEC_PROFILE,
)
from .engine.modbus.plan import DEFAULT_MAX_GAP, DEFAULT_MAX_READ
from .engine.modbus.transport import DEFAULT_TIMEOUT, HubSettings, ModbusTransportError, Transport
from .engine.model import DEFAULT_ROLE, DeviceRole, DeviceType
from .engine.site.loads import DEFAULT_ON_THRESHOLD_W
from .engine.tariffs.errors import ERROR_ENTITY_NOT_FOUND, ERROR_ENTITY_NOT_NUMERIC
from .engine.tariffs.options import (
    CONF_CO2_ENTITY,
    CONF_CO2_EXPORT_AVOIDED,
    CONF_CO2_FACTOR,
    CONF_CO2_MODE,
    CONF_DEMAND_CHARGE,
    CONF_EXPORT_MODE,
    CONF_EXPORT_PRICE,
    CONF_EXPORT_PRICE_ENTITY,
    CONF_FEE_AMOUNT,
    CONF_FEE_PERIOD,
    CONF_IMPORT_PRICE,
    CONF_PRICE_ENTITY,
    CONF_PRICE_MODE,
    CONF_TOU_SCHEDULE,
    DEFAULT_CO2_FACTOR,
    Co2Mode,
    ExportMode,
    PriceMode,
    problems,
)
from .engine.tariffs.schedule import parse_schedule
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
from .glue.statistics import free_statistics_hub

_LOGGER = logging.getLogger(__name__)

_HOSTNAME = re.compile(r"^(?=.{1,253}$)([A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.?)+$")
_NETWORK_TRANSPORTS = [Transport.TCP.value, Transport.RTU_OVER_TCP.value]
_BAUDRATES = (1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200)


def _number(
    minimum: float, maximum: float, *, step: float = 1, unit: str | None = None
) -> Callable[[Any], Any]:
    """A number box that also rejects out-of-range input sent past the frontend."""
    box = selector.NumberSelectorConfig(
        min=minimum, max=maximum, step=step, mode=selector.NumberSelectorMode.BOX
    )
    if unit is not None:
        box["unit_of_measurement"] = unit
    coerce = vol.Coerce(int) if step == 1 else vol.Coerce(float)
    return vol.All(
        _Bounded(min=minimum, max=maximum),
        selector.NumberSelector(box),
        coerce,
        vol.Range(min=minimum, max=maximum),
    )


class _Bounded(vol.Range):
    """A range checked before the selector's float(), which 10**400 overflows.

    Text passes on to the selector, which reads numbers sent as text. Being a vol.Range, the
    form still serializes for the frontend.
    """

    def __call__(self, value: Any) -> Any:
        """Refuse numbers out of range; leave text to the selector."""
        if isinstance(value, str):
            return value
        return super().__call__(value)  # type: ignore[no-untyped-call,unused-ignore]  # voluptuous is untyped, probatio is not


def _choice(options: list[str], key: str) -> selector.SelectSelector:
    return selector.SelectSelector(
        selector.SelectSelectorConfig(
            options=options, translation_key=key, mode=selector.SelectSelectorMode.DROPDOWN
        )
    )


_ADDRESS_FIELDS: dict[vol.Marker, Any] = {
    vol.Required(CONF_TRANSPORT, default=Transport.TCP.value): _choice(
        _NETWORK_TRANSPORTS, CONF_TRANSPORT
    ),
    vol.Required(CONF_HOST): selector.TextSelector(),
    vol.Required(CONF_PORT, default=DEFAULT_PORT): _number(1, 65535),
}
_UNIT_FIELD: dict[vol.Marker, Any] = {
    vol.Required(CONF_UNIT_ID, default=DEFAULT_UNIT_ID): _number(1, 247),
}
_SERIAL_FIELDS: dict[vol.Marker, Any] = {
    vol.Required(CONF_SERIAL_PORT): selector.TextSelector(),
    vol.Required(CONF_BAUDRATE, default="9600"): vol.All(
        _choice([str(rate) for rate in _BAUDRATES], CONF_BAUDRATE), vol.Coerce(int)
    ),
    vol.Required(CONF_PARITY, default="N"): _choice(["N", "E", "O"], CONF_PARITY),
    vol.Required(CONF_STOPBITS, default="1"): vol.All(
        _choice(["1", "2"], CONF_STOPBITS), vol.Coerce(int)
    ),
}
_NETWORK_SCHEMA = vol.Schema({**_ADDRESS_FIELDS, **_UNIT_FIELD})
_SERIAL_SCHEMA = vol.Schema({**_SERIAL_FIELDS, **_UNIT_FIELD})
_OPTIONS_SCHEMA = vol.Schema(
    {
        vol.Required(CONF_SCAN_INTERVAL, default=DEFAULT_SCAN_INTERVAL.total_seconds()): _number(
            1, 3600, unit="s"
        ),
        vol.Required(CONF_TIMEOUT, default=DEFAULT_TIMEOUT): _number(0.2, 60, step=0.1, unit="s"),
        vol.Required(CONF_MAX_READ, default=DEFAULT_MAX_READ): _number(1, 125),
        vol.Required(CONF_MAX_GAP, default=DEFAULT_MAX_GAP): _number(0, 100),
        # Off until the user says so: ems never writes to a device it was only asked to read.
        vol.Required(CONF_ALLOW_CONTROL, default=False): selector.BooleanSelector(),
    }
)


def valid_host(host: str) -> bool:
    """An IP address or a DNS name; no scheme, port or path."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return bool(_HOSTNAME.match(host)) and not host.replace(".", "").isdigit()
    return True


def _address(user_input: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """The hub's address fields, cleaned, and any field errors."""
    if CONF_SERIAL_PORT in user_input:
        port = str(user_input[CONF_SERIAL_PORT]).strip()
        data = {
            CONF_TRANSPORT: Transport.SERIAL.value,
            CONF_SERIAL_PORT: port,
            CONF_BAUDRATE: user_input[CONF_BAUDRATE],
            CONF_PARITY: user_input[CONF_PARITY],
            CONF_STOPBITS: user_input[CONF_STOPBITS],
        }
        return data, ({} if port else {CONF_SERIAL_PORT: "invalid_serial_port"})
    host = str(user_input[CONF_HOST]).strip()
    data = {
        CONF_TRANSPORT: user_input.get(CONF_TRANSPORT, Transport.TCP.value),
        CONF_HOST: host,
        CONF_PORT: user_input[CONF_PORT],
    }
    return data, ({} if valid_host(host) else {CONF_HOST: "invalid_host"})


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
                vol.Required(CONF_ROLE, default=role.value): _choice(
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
        return await self._hub_step("network", _NETWORK_SCHEMA, user_input)

    async def async_step_serial(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Ask for the serial port, its settings and the first unit id."""
        return await self._hub_step("serial", _SERIAL_SCHEMA, user_input)

    async def _hub_step(
        self, step_id: str, schema: vol.Schema, user_input: dict[str, Any] | None
    ) -> ConfigFlowResult:
        """Check the address, then ask the device at the unit id what it is."""
        errors: dict[str, str] = {}
        if user_input is not None:
            self.hub_data, errors = _address(user_input)
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
            data, errors = _address(user_input)
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
        schema = vol.Schema(_SERIAL_FIELDS if serial else _ADDRESS_FIELDS)
        return self.async_show_form(
            step_id="reconfigure",
            data_schema=self.add_suggested_values_to_schema(
                schema, user_input or _as_form(entry.data)
            ),
            errors=errors,
        )


def _as_form(data: Mapping[str, Any]) -> dict[str, Any]:
    """Stored numbers, shown in the select fields that hold them as text."""
    return {
        key: str(value) if key in (CONF_BAUDRATE, CONF_STOPBITS) else value
        for key, value in data.items()
    }


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
            data_schema=self.add_suggested_values_to_schema(vol.Schema(_UNIT_FIELD), user_input),
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
                updates = {key: user_input[key] for key in _TUNING if key in user_input}
                return self.async_update_and_abort(
                    entry,
                    subentry,
                    title=name,
                    data_updates={CONF_ROLE: user_input[CONF_ROLE], **updates},
                )
        current = {
            CONF_NAME: subentry.title,
            CONF_ROLE: subentry.data[CONF_ROLE],
            **{key: subentry.data[key] for key in _TUNING if key in subentry.data},
        }
        return self.async_show_form(
            step_id="reconfigure",
            data_schema=self.add_suggested_values_to_schema(
                _DEVICE_RECONFIGURE_SCHEMA, user_input or current
            ),
            errors=errors,
        )


_TUNING = (CONF_RATED_POWER, CONF_ON_THRESHOLD, CONF_INVERT_POWER)
_DEVICE_RECONFIGURE_SCHEMA = vol.Schema(
    {
        vol.Required(CONF_NAME): selector.TextSelector(),
        vol.Required(CONF_ROLE): _choice([role.value for role in DeviceRole], CONF_ROLE),
        # Empty means "from the profile": the largest power its ranges call plausible.
        vol.Optional(CONF_RATED_POWER): _number(0.1, 1000, step=0.1, unit="kW"),
        vol.Required(CONF_ON_THRESHOLD, default=DEFAULT_ON_THRESHOLD_W): _number(
            0, 100000, unit="W"
        ),
        vol.Required(CONF_INVERT_POWER, default=False): selector.BooleanSelector(),
    }
)


def _roles(entry: ConfigEntry) -> set[DeviceRole]:
    return {
        DeviceRole(subentry.data[CONF_ROLE])
        for subentry in entry.subentries.values()
        if subentry.subentry_type == SUBENTRY_DEVICE
    }


def _amount(maximum: float, unit: str | None = None) -> Callable[[Any], Any]:
    """A price or factor box: any precision (a step below 0.001 is refused by HA's selector)."""
    box = selector.NumberSelectorConfig(
        min=0, max=maximum, step="any", mode=selector.NumberSelectorMode.BOX
    )
    if unit is not None:
        box["unit_of_measurement"] = unit
    return vol.All(
        _Bounded(min=0, max=maximum),
        selector.NumberSelector(box),
        vol.Coerce(float),
        vol.Range(min=0, max=maximum),
    )


def _entity_choice(*domains: str) -> selector.EntitySelector:
    return selector.EntitySelector(selector.EntitySelectorConfig(domain=list(domains)))


# Prices are in HA's currency (the form's description says which); selectors show "/kWh".
_TARIFF_SCHEMA = vol.Schema(
    {
        vol.Required(CONF_PRICE_MODE, default=PriceMode.NONE.value): _choice(
            [mode.value for mode in PriceMode], CONF_PRICE_MODE
        ),
        vol.Optional(CONF_IMPORT_PRICE): _amount(100, "/kWh"),
        vol.Optional(CONF_TOU_SCHEDULE): selector.TextSelector(
            selector.TextSelectorConfig(multiline=True)
        ),
        vol.Optional(CONF_PRICE_ENTITY): _entity_choice("sensor", "input_number"),
        vol.Required(CONF_EXPORT_MODE, default=ExportMode.NONE.value): _choice(
            [mode.value for mode in ExportMode], CONF_EXPORT_MODE
        ),
        vol.Optional(CONF_EXPORT_PRICE): _amount(100, "/kWh"),
        vol.Optional(CONF_EXPORT_PRICE_ENTITY): _entity_choice("sensor", "input_number"),
        vol.Required(CONF_FEE_AMOUNT, default=0): _amount(100000),
        vol.Required(CONF_FEE_PERIOD, default="month"): _choice(["day", "month"], CONF_FEE_PERIOD),
        vol.Required(CONF_DEMAND_CHARGE, default=0): _amount(10000, "/kW"),
        vol.Required(CONF_CO2_MODE, default=Co2Mode.NONE.value): _choice(
            [mode.value for mode in Co2Mode], CONF_CO2_MODE
        ),
        vol.Required(CONF_CO2_FACTOR, default=DEFAULT_CO2_FACTOR): _amount(2, "kg/kWh"),
        vol.Optional(CONF_CO2_ENTITY): _entity_choice("sensor", "input_number"),
        vol.Required(CONF_CO2_EXPORT_AVOIDED, default=False): selector.BooleanSelector(),
    }
)
# The entity each mode reads, checked against the state machine when the form is sent.
_MODE_ENTITIES = (
    (CONF_PRICE_MODE, PriceMode.ENTITY.value, CONF_PRICE_ENTITY),
    (CONF_EXPORT_MODE, ExportMode.ENTITY.value, CONF_EXPORT_PRICE_ENTITY),
    (CONF_CO2_MODE, Co2Mode.ENTITY.value, CONF_CO2_ENTITY),
)


def _schedule_lines(user_input: Mapping[str, Any], code: str) -> str:
    """The schedule's line numbers with the shown problem, for the error's {line}."""
    text = user_input.get(CONF_TOU_SCHEDULE)
    _, line_problems = parse_schedule(text if isinstance(text, str) else "")
    return ", ".join(str(line) for line, problem in line_problems if problem == code)


class EmsOptionsFlow(OptionsFlow):
    """Scan interval, time-out and the gateway's request limits; then tariff and CO2."""

    _init_input: dict[str, Any]

    async def async_step_init(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Show the options with the current values filled in."""
        if user_input is not None:
            self._init_input = user_input
            return await self.async_step_tariff()
        return self.async_show_form(
            step_id="init",
            data_schema=self.add_suggested_values_to_schema(
                _OPTIONS_SCHEMA, self.config_entry.options
            ),
        )

    async def async_step_tariff(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Prices, fees and CO2; stored with the first step's options."""
        errors: dict[str, str] = {}
        placeholders = {"currency": self.hass.config.currency, "line": ""}
        if user_input is not None:
            errors = problems(user_input)
            for mode_key, mode, entity_key in _MODE_ENTITIES:
                if user_input.get(mode_key) == mode and entity_key not in errors:
                    error = self._entity_error(str(user_input.get(entity_key, "")))
                    if error is not None:
                        errors.setdefault(entity_key, error)
            if CONF_TOU_SCHEDULE in errors:
                placeholders["line"] = _schedule_lines(user_input, errors[CONF_TOU_SCHEDULE])
            if not errors:
                return self.async_create_entry(data={**self._init_input, **user_input})
        return self.async_show_form(
            step_id="tariff",
            data_schema=self.add_suggested_values_to_schema(
                _TARIFF_SCHEMA, user_input or self.config_entry.options
            ),
            errors=errors,
            description_placeholders=placeholders,
        )

    def _entity_error(self, entity_id: str) -> str | None:
        """The entity must exist and hold a number now (a price, or an intensity in g/kWh)."""
        state = self.hass.states.get(entity_id)
        if state is None:
            return ERROR_ENTITY_NOT_FOUND
        try:
            value = float(state.state)
        except ValueError:
            return ERROR_ENTITY_NOT_NUMERIC
        return None if math.isfinite(value) else ERROR_ENTITY_NOT_NUMERIC
