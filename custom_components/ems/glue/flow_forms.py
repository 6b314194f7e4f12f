"""The forms of ems's flows: fields, selectors and their checks, shared by the hub flow, the
device subentry flow and the options flow."""

from __future__ import annotations

from collections.abc import Callable, Mapping
import ipaddress
import re
from typing import Any

from homeassistant.const import CONF_HOST, CONF_NAME, CONF_PORT, CONF_SCAN_INTERVAL
from homeassistant.helpers import selector
import voluptuous as vol

from ..const import (
    CONF_ALLOW_CONTROL,
    CONF_BAUDRATE,
    CONF_INVERT_POWER,
    CONF_MAX_GAP,
    CONF_MAX_READ,
    CONF_ON_THRESHOLD,
    CONF_PARITY,
    CONF_RATED_POWER,
    CONF_ROLE,
    CONF_SERIAL_PORT,
    CONF_STOPBITS,
    CONF_TIMEOUT,
    CONF_TRANSPORT,
    CONF_UNIT_ID,
    DEFAULT_PORT,
    DEFAULT_SCAN_INTERVAL,
    DEFAULT_UNIT_ID,
)
from ..engine.modbus.plan import DEFAULT_MAX_GAP, DEFAULT_MAX_READ
from ..engine.modbus.transport import DEFAULT_TIMEOUT, Transport
from ..engine.model import DeviceRole
from ..engine.site.loads import DEFAULT_ON_THRESHOLD_W
from ..engine.tariffs.options import (
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
)

_HOSTNAME = re.compile(r"^(?=.{1,253}$)([A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.?)+$")
_NETWORK_TRANSPORTS = [Transport.TCP.value, Transport.RTU_OVER_TCP.value]
_BAUDRATES = (1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200)


def number_box(
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


def choice(options: list[str], key: str) -> selector.SelectSelector:
    return selector.SelectSelector(
        selector.SelectSelectorConfig(
            options=options, translation_key=key, mode=selector.SelectSelectorMode.DROPDOWN
        )
    )


ADDRESS_FIELDS: dict[vol.Marker, Any] = {
    vol.Required(CONF_TRANSPORT, default=Transport.TCP.value): choice(
        _NETWORK_TRANSPORTS, CONF_TRANSPORT
    ),
    vol.Required(CONF_HOST): selector.TextSelector(),
    vol.Required(CONF_PORT, default=DEFAULT_PORT): number_box(1, 65535),
}
UNIT_FIELD: dict[vol.Marker, Any] = {
    vol.Required(CONF_UNIT_ID, default=DEFAULT_UNIT_ID): number_box(1, 247),
}
SERIAL_FIELDS: dict[vol.Marker, Any] = {
    vol.Required(CONF_SERIAL_PORT): selector.TextSelector(),
    vol.Required(CONF_BAUDRATE, default="9600"): vol.All(
        choice([str(rate) for rate in _BAUDRATES], CONF_BAUDRATE), vol.Coerce(int)
    ),
    vol.Required(CONF_PARITY, default="N"): choice(["N", "E", "O"], CONF_PARITY),
    vol.Required(CONF_STOPBITS, default="1"): vol.All(
        choice(["1", "2"], CONF_STOPBITS), vol.Coerce(int)
    ),
}
NETWORK_SCHEMA = vol.Schema({**ADDRESS_FIELDS, **UNIT_FIELD})
SERIAL_SCHEMA = vol.Schema({**SERIAL_FIELDS, **UNIT_FIELD})
OPTIONS_SCHEMA = vol.Schema(
    {
        vol.Required(CONF_SCAN_INTERVAL, default=DEFAULT_SCAN_INTERVAL.total_seconds()): number_box(
            1, 3600, unit="s"
        ),
        vol.Required(CONF_TIMEOUT, default=DEFAULT_TIMEOUT): number_box(
            0.2, 60, step=0.1, unit="s"
        ),
        vol.Required(CONF_MAX_READ, default=DEFAULT_MAX_READ): number_box(1, 125),
        vol.Required(CONF_MAX_GAP, default=DEFAULT_MAX_GAP): number_box(0, 100),
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


def address_fields_of(user_input: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
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


def as_form(data: Mapping[str, Any]) -> dict[str, Any]:
    """Stored numbers, shown in the select fields that hold them as text."""
    return {
        key: str(value) if key in (CONF_BAUDRATE, CONF_STOPBITS) else value
        for key, value in data.items()
    }


TUNING = (CONF_RATED_POWER, CONF_ON_THRESHOLD, CONF_INVERT_POWER)
DEVICE_RECONFIGURE_SCHEMA = vol.Schema(
    {
        vol.Required(CONF_NAME): selector.TextSelector(),
        vol.Required(CONF_ROLE): choice([role.value for role in DeviceRole], CONF_ROLE),
        # Empty means "from the profile": the largest power its ranges call plausible.
        vol.Optional(CONF_RATED_POWER): number_box(0.1, 1000, step=0.1, unit="kW"),
        vol.Required(CONF_ON_THRESHOLD, default=DEFAULT_ON_THRESHOLD_W): number_box(
            0, 100000, unit="W"
        ),
        vol.Required(CONF_INVERT_POWER, default=False): selector.BooleanSelector(),
    }
)


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
TARIFF_SCHEMA = vol.Schema(
    {
        vol.Required(CONF_PRICE_MODE, default=PriceMode.NONE.value): choice(
            [mode.value for mode in PriceMode], CONF_PRICE_MODE
        ),
        vol.Optional(CONF_IMPORT_PRICE): _amount(100, "/kWh"),
        vol.Optional(CONF_TOU_SCHEDULE): selector.TextSelector(
            selector.TextSelectorConfig(multiline=True)
        ),
        vol.Optional(CONF_PRICE_ENTITY): _entity_choice("sensor", "input_number"),
        vol.Required(CONF_EXPORT_MODE, default=ExportMode.NONE.value): choice(
            [mode.value for mode in ExportMode], CONF_EXPORT_MODE
        ),
        vol.Optional(CONF_EXPORT_PRICE): _amount(100, "/kWh"),
        vol.Optional(CONF_EXPORT_PRICE_ENTITY): _entity_choice("sensor", "input_number"),
        vol.Required(CONF_FEE_AMOUNT, default=0): _amount(100000),
        vol.Required(CONF_FEE_PERIOD, default="month"): choice(["day", "month"], CONF_FEE_PERIOD),
        vol.Required(CONF_DEMAND_CHARGE, default=0): _amount(10000, "/kW"),
        vol.Required(CONF_CO2_MODE, default=Co2Mode.NONE.value): choice(
            [mode.value for mode in Co2Mode], CONF_CO2_MODE
        ),
        vol.Required(CONF_CO2_FACTOR, default=DEFAULT_CO2_FACTOR): _amount(2, "kg/kWh"),
        vol.Optional(CONF_CO2_ENTITY): _entity_choice("sensor", "input_number"),
        vol.Required(CONF_CO2_EXPORT_AVOIDED, default=False): selector.BooleanSelector(),
    }
)
