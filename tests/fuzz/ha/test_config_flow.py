"""Fuzzing the flows: whatever a user (or an API client) sends, the answer is a form with a
translated error, a translated abort, an entry, or Home Assistant's own schema refusal
(`InvalidData`, a 400 over HTTP) — never an unhandled exception.

The pure schemas take many examples in a synchronous test; the real flows replay fewer through
`hass.config_entries`, with one Home Assistant shared by a test's examples (each example
starts its own flow). The device is whatever the example says it is: identification is replaced
by a fake that answers like a meter, a SunSpec inverter, an unknown device or a failure.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
import json
from pathlib import Path
from typing import Any
from unittest.mock import patch

from homeassistant.config_entries import SOURCE_USER
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType, InvalidData
from hypothesis import HealthCheck, given, settings, strategies as st
from pytest_homeassistant_custom_component.common import MockConfigEntry
import voluptuous as vol

from custom_components.ems import config_flow
from custom_components.ems.const import DOMAIN, SUBENTRY_DEVICE
from custom_components.ems.engine.modbus.transport import (
    HubSettings,
    ModbusErrorKind,
    ModbusTransportError,
)
from custom_components.ems.engine.profiles.sunspec import ModelInstance, build_profile
from custom_components.ems.engine.profiles.sunspec_chain import primary_index, split_chain
from custom_components.ems.engine.tariffs.options import Co2Mode, ExportMode, PriceMode, problems
from custom_components.ems.glue import device_flow, flow_forms
from custom_components.ems.glue.devices import Catalogue, Identified

from ...integration.conftest import device_subentry

STRINGS: dict[str, Any] = json.loads(
    (Path(config_flow.__file__).parent / "translations" / "en.json").read_text(encoding="utf-8")
)
HUB_STRINGS = STRINGS["config"]
DEVICE_STRINGS = STRINGS["config_subentries"]["device"]
OPTION_STRINGS = STRINGS["options"]

SCHEMAS = settings(max_examples=300, deadline=None)
# Each flow example drives a real flow through Home Assistant; a few dozen cover every branch.
FLOWS = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

# -- what users send ---------------------------------------------------------------------------

SCALARS = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12)
NUMBERS = (
    st.sampled_from(
        [
            0,
            1,
            2,
            247,
            248,
            502,
            65535,
            65536,
            -1,
            10**400,
            -(10**400),
            0.1,
            0.2,
            60,
            60.5,
            3600,
            125,
            126,
            100,
            101,
            float("nan"),
            float("inf"),
            "502",
            "1e400",
            True,
            None,
        ]
    )
    | st.integers(-(2**70), 2**70)
    | st.floats()
    | st.text(max_size=6)
)
HOSTS = (
    st.sampled_from(
        [
            "127.0.0.1",
            "::1",
            "fe80::1%eth0",
            "gateway.local",
            "192.168.1.50",
            "http://gw",
            "gw:502",
            "gw/modbus",
            "a" * 254,
            " 10.0.0.2 ",
            "",
            " ",
            "1.2.3",
            "999.1.1.1",
            "gw_1",
            "-gw",
            "gw.",
            "é.local",
            "\x00",
            "1" * 300,
        ]
    )
    | st.text(max_size=30)
    | SCALARS
)


type Field = tuple[st.SearchStrategy[Any], st.SearchStrategy[Any]]


@st.composite
def _form(draw: st.DrawFn, fields: dict[str, Field]) -> dict[str, Any]:
    submitted: dict[str, Any] = draw(st.dictionaries(st.text(max_size=6), SCALARS, max_size=1))
    for name, (right, wrong) in fields.items():
        # Mostly right, so that flows get past their first step; sometimes wrong or left out.
        roll = draw(st.integers(0, 19))
        if roll < 17:
            submitted[name] = draw(right)
        elif roll < 19:
            submitted[name] = draw(wrong)
    return submitted


def form(fields: dict[str, Field]) -> st.SearchStrategy[dict[str, Any]]:
    """A submitted form: each field right, wrong or missing, and now and then a stray one."""
    return _form(fields)


def choice(values: list[Any]) -> Field:
    """A select field: its own options, or anything."""
    return st.sampled_from(values), SCALARS | st.text(max_size=8)


def number(low: float, high: float, *, integer: bool = True) -> Field:
    """A number box: in range (as a number or as text), or anything."""
    inside = st.integers(int(low), int(high)) if integer else st.floats(low, high)
    return inside | st.sampled_from([low, high]) | inside.map(str), NUMBERS


NETWORK = form(
    {
        "transport": choice(["tcp", "rtu_over_tcp"]),
        "host": (HOSTS.filter(lambda host: isinstance(host, str)), SCALARS),
        "port": number(1, 65535),
        "unit_id": number(1, 247),
    }
)
SERIAL = form(
    {
        "serial_port": (
            st.sampled_from(["/dev/ttyUSB0", "", " ", "rfc2217://gw:4001"]) | st.text(max_size=20),
            SCALARS,
        ),
        "baudrate": choice(["1200", "9600", "19200", "115200"]),
        "parity": choice(["N", "E", "O"]),
        "stopbits": choice(["1", "2"]),
        "unit_id": number(1, 247),
    }
)
DEVICE_NAME: Field = (
    st.sampled_from(["Grid meter", " ", "", "x" * 300]) | st.text(max_size=20),
    SCALARS,
)
ROLES = ["grid", "production", "battery", "load", "submeter"]
DEVICE = form(
    {
        "profile": choice(["eastron_sdm630", "eastron_sdm120", "sunspec"]),
        "name": DEVICE_NAME,
        "role": choice(ROLES),
    }
)
UNIT = form({"unit_id": number(1, 247)})
OPTIONS = form(
    {
        "scan_interval": number(1, 3600),
        "timeout": number(0.2, 60, integer=False),
        "max_read": number(1, 125),
        "max_gap": number(0, 100),
        "allow_control": choice([True, False]),
    }
)
ENTITIES = choice(
    [
        "sensor.price",
        "sensor.co2",
        "sensor.words",
        "sensor.nan",
        "sensor.missing",
        "input_number.price",
        "light.kitchen",
    ]
)
SCHEDULES = (
    st.sampled_from(
        [
            "all 00:00-00:00 0.30",
            "weekday 07:00-22:00 0.35\nweekday 22:00-07:00 0.22\nweekend 00:00-00:00 0.25",
            "all 00:00-12:00 0.30 months 4-9",
            "all 00:07-12:00 0.3",
            "all 10:00-10:00 0.3",
            "all 00:00-00:00 -1",
            "all 00:00-00:00 nan",
            "all 00:00-00:00 1e400",
            "all 00:00-00:00 0.3 months 0-13",
            "all 00:00-12:00 0.3\nall 06:00-18:00 0.4",
            "sometimes 00:00-00:00 0.3",
            "all 25:00-26:00 0.3",
            "all 00:00-00:00 0,30 # comma",
            "# only a comment",
        ]
    )
    | st.text(alphabet="alweekdy 0123456789:-.,#\nmonths", max_size=60)
    | st.text(max_size=30)
)
TARIFF = form(
    {
        "price_mode": choice([mode.value for mode in PriceMode]),
        "import_price": number(0, 100, integer=False),
        "tou_schedule": (SCHEDULES, SCALARS),
        "price_entity": ENTITIES,
        "export_mode": choice([mode.value for mode in ExportMode]),
        "export_price": number(0, 100, integer=False),
        "export_price_entity": ENTITIES,
        "fee_amount": number(0, 100000, integer=False),
        "fee_period": choice(["day", "month"]),
        "demand_charge": number(0, 10000, integer=False),
        "co2_mode": choice([mode.value for mode in Co2Mode]),
        "co2_factor": number(0, 2, integer=False),
        "co2_entity": ENTITIES,
        "co2_export_avoided": choice([True, False]),
    }
)
RECONFIGURE_DEVICE = form(
    {
        "name": DEVICE_NAME,
        "role": choice(ROLES),
        "rated_power_kw": number(0.1, 1000, integer=False),
        "on_threshold_w": number(0, 100000),
        "invert_power": choice([True, False]),
    }
)
ANSWERS = st.sampled_from(["meter", "sunspec", "unknown", *ModbusErrorKind])

# -- the pure schemas --------------------------------------------------------------------------


def _validate(schema: vol.Schema, user_input: dict[str, Any]) -> dict[str, Any] | None:
    """A form's schema either cleans the input or refuses it with vol.Invalid."""
    try:
        cleaned: dict[str, Any] = schema(user_input)
    except vol.Invalid:
        return None
    return cleaned


@SCHEMAS
@given(user_input=NETWORK)
def test_network_schema(user_input: dict[str, Any]) -> None:
    """Address fields: a clean address with a port and unit id in range, or vol.Invalid."""
    cleaned = _validate(flow_forms.NETWORK_SCHEMA, user_input)
    if cleaned is None:
        return
    assert isinstance(cleaned["port"], int)
    assert 1 <= cleaned["port"] <= 65535
    assert isinstance(cleaned["unit_id"], int)
    assert 1 <= cleaned["unit_id"] <= 247
    data, errors = flow_forms.address_fields_of(cleaned)
    assert set(errors.values()) <= set(HUB_STRINGS["error"])
    if not errors:
        assert flow_forms.valid_host(data["host"])
        assert data["host"] == data["host"].strip()


@SCHEMAS
@given(user_input=SERIAL)
def test_serial_schema(user_input: dict[str, Any]) -> None:
    """Serial fields: known baud rates, parities and stop bits, or vol.Invalid."""
    cleaned = _validate(flow_forms.SERIAL_SCHEMA, user_input)
    if cleaned is not None:
        _, errors = flow_forms.address_fields_of(cleaned)
        assert set(errors.values()) <= set(HUB_STRINGS["error"])


@SCHEMAS
@given(user_input=OPTIONS)
def test_options_schema(user_input: dict[str, Any]) -> None:
    """Polling options are numbers in their ranges, or vol.Invalid."""
    cleaned = _validate(flow_forms.OPTIONS_SCHEMA, user_input)
    if cleaned is not None:
        assert 0.2 <= cleaned["timeout"] <= 60
        assert isinstance(cleaned["max_read"], int)
        assert 1 <= cleaned["max_read"] <= 125


@SCHEMAS
@given(user_input=TARIFF)
def test_tariff_schema_and_problems(user_input: dict[str, Any]) -> None:
    """Tariff fields pass the schema or not; what passes gets only translated problems."""
    cleaned = _validate(flow_forms.TARIFF_SCHEMA, user_input)
    if cleaned is not None:
        found = problems(cleaned)
        assert set(found.values()) <= set(OPTION_STRINGS["error"]), found
        assert set(found) <= {str(key) for key in flow_forms.TARIFF_SCHEMA.schema} | {"base"}


@SCHEMAS
@given(user_input=RECONFIGURE_DEVICE)
def test_device_reconfigure_schema(user_input: dict[str, Any]) -> None:
    """A device's tuning: a rating and a threshold in range, or vol.Invalid."""
    _validate(flow_forms.DEVICE_RECONFIGURE_SCHEMA, user_input)


@SCHEMAS
@given(host=HOSTS)
def test_valid_host(host: Any) -> None:
    """Any text is a host or not; nothing in between raises."""
    assert flow_forms.valid_host(str(host)) in {True, False}


# -- the flows ---------------------------------------------------------------------------------


@contextmanager
def devices_answer(answer: str) -> Iterator[list[tuple[HubSettings, int]]]:
    """Identification answers as `answer` says; what it was asked is recorded."""
    asked: list[tuple[HubSettings, int]] = []

    async def identify(settings: HubSettings, unit_id: int, catalogue: Catalogue) -> Identified:
        asked.append((settings, unit_id))
        if answer in set(ModbusErrorKind):
            raise ModbusTransportError(ModbusErrorKind(answer), "fuzz")
        if answer == "meter":
            return Identified(profile=catalogue.profiles["eastron_sdm630"], sunspec_models=[])
        if answer == "sunspec":  # SolarEdge-style: the device step, then one part step
            chain = [
                ModelInstance(model_id=1, address=40002, length=65),
                ModelInstance(model_id=103, address=40069, length=50),
                ModelInstance(model_id=1, address=40121, length=65),
                ModelInstance(model_id=203, address=40188, length=105),
            ]
            parts = split_chain(chain)
            profile = build_profile(list(parts[primary_index(parts)].models))
            return Identified(profile=profile, sunspec_models=chain, parts=parts)
        return Identified(profile=None, sunspec_models=[])

    # A created hub is stored but not started: the fuzz is about the flow, not a live socket.
    with (
        patch.object(device_flow, "async_identify", identify),
        patch("custom_components.ems.async_setup_entry", return_value=True),
        patch("custom_components.ems.async_unload_entry", return_value=True),
    ):
        yield asked


def check_sane_request(asked: list[tuple[HubSettings, int]]) -> None:
    """Only a validated address and unit id ever reach the network."""
    for hub, unit_id in asked:
        assert isinstance(unit_id, int)
        assert 1 <= unit_id <= 247
        if hub.serial_port:
            assert hub.serial_port == hub.serial_port.strip()
        else:
            assert flow_forms.valid_host(hub.host)
            assert isinstance(hub.port, int)
            assert 1 <= hub.port <= 65535


def check_result(result: Any, strings: dict[str, Any]) -> None:
    """A form shows translated errors, an abort a translated reason."""
    kind = result["type"]
    assert kind in {
        FlowResultType.FORM,
        FlowResultType.ABORT,
        FlowResultType.CREATE_ENTRY,
        FlowResultType.MENU,
    }, result
    if kind is FlowResultType.FORM:
        assert result["step_id"] in strings["step"], result["step_id"]
        for field, error in (result["errors"] or {}).items():
            assert error in strings["error"], (field, error)
    if kind is FlowResultType.ABORT:
        assert result["reason"] in strings["abort"], result["reason"]


async def send_device(
    manager: Any, flow_id: str, device: dict[str, Any], strings: dict[str, Any]
) -> None:
    """The device step, then each further logical device's step with the same name and role."""
    result = await send(manager, flow_id, device, strings)
    part = {key: value for key, value in device.items() if key in {"name", "role"}}
    while result is not None and result.get("step_id") == "part":
        if (result := await send(manager, flow_id, part, strings)) and result["errors"]:
            break


async def send(
    manager: Any, flow_id: str, user_input: dict[str, Any], strings: dict[str, Any]
) -> Any | None:
    """One submission; None when Home Assistant's schema check refused it before our step."""
    try:
        result = await manager.async_configure(flow_id, user_input)
    except InvalidData as err:
        refused = err
    else:
        check_result(result, strings)
        return result
    assert refused.schema_errors, refused
    return None


@asynccontextmanager
async def one_flow(manager: Any, result: Any) -> AsyncIterator[Any]:
    """A flow that is aborted after the example if it is still open, so none pile up."""
    try:
        yield result
    finally:
        if result["flow_id"] in {flow["flow_id"] for flow in manager.async_progress()}:
            manager.async_abort(result["flow_id"])


async def _forget_hubs(hass: HomeAssistant) -> None:
    for entry in hass.config_entries.async_entries(DOMAIN):
        await hass.config_entries.async_remove(entry.entry_id)


@FLOWS
@given(hub=NETWORK, answer=ANSWERS, device=DEVICE)
async def test_network_flow(
    hass: HomeAssistant, hub: dict[str, Any], answer: str, device: dict[str, Any]
) -> None:
    """Menu → network → device: every step ends in a translated outcome."""
    manager = hass.config_entries.flow
    start = await manager.async_init(DOMAIN, context={"source": SOURCE_USER})
    with devices_answer(answer) as asked:
        async with one_flow(manager, start):
            result = await send(manager, start["flow_id"], {"next_step_id": "network"}, HUB_STRINGS)
            result = await send(manager, start["flow_id"], hub, HUB_STRINGS)
            if result is not None and result.get("step_id") == "device":
                await send_device(manager, start["flow_id"], device, HUB_STRINGS)
        check_sane_request(asked)
        await _forget_hubs(hass)


@FLOWS
@given(hub=SERIAL, answer=ANSWERS, device=DEVICE)
async def test_serial_flow(
    hass: HomeAssistant, hub: dict[str, Any], answer: str, device: dict[str, Any]
) -> None:
    """Menu → serial → device."""
    manager = hass.config_entries.flow
    start = await manager.async_init(DOMAIN, context={"source": SOURCE_USER})
    with devices_answer(answer) as asked:
        async with one_flow(manager, start):
            await send(manager, start["flow_id"], {"next_step_id": "serial"}, HUB_STRINGS)
            result = await send(manager, start["flow_id"], hub, HUB_STRINGS)
            if result is not None and result.get("step_id") == "device":
                await send_device(manager, start["flow_id"], device, HUB_STRINGS)
        check_sane_request(asked)
        await _forget_hubs(hass)


def _hub_entry() -> MockConfigEntry:
    return MockConfigEntry(
        domain=DOMAIN,
        version=2,
        title="127.0.0.1:1502",
        unique_id="127.0.0.1:1502",
        data={"host": "127.0.0.1", "port": 1502},
        subentries_data=[device_subentry(1, "eastron_sdm630", "grid", "Grid meter")],
    )


@FLOWS
@given(unit=UNIT, answer=ANSWERS, device=DEVICE, tuning=RECONFIGURE_DEVICE)
async def test_device_subentry_flow(
    hass: HomeAssistant,
    unit: dict[str, Any],
    answer: str,
    device: dict[str, Any],
    tuning: dict[str, Any],
) -> None:
    """Add a device (unit id → device step) and reconfigure the existing one."""
    entry = _hub_entry()
    entry.add_to_hass(hass)
    manager = hass.config_entries.subentries
    with devices_answer(answer) as asked:
        start = await manager.async_init(
            (entry.entry_id, SUBENTRY_DEVICE), context={"source": SOURCE_USER}
        )
        async with one_flow(manager, start):
            result = await send(manager, start["flow_id"], unit, DEVICE_STRINGS)
            if result is not None and result.get("step_id") == "device":
                await send_device(manager, start["flow_id"], device, DEVICE_STRINGS)
        check_sane_request(asked)
        grid = next(iter(entry.subentries))
        start = await manager.async_init(
            (entry.entry_id, SUBENTRY_DEVICE),
            context={"source": "reconfigure", "subentry_id": grid},
        )
        async with one_flow(manager, start):
            await send(manager, start["flow_id"], tuning, DEVICE_STRINGS)
        await _forget_hubs(hass)


@FLOWS
@given(options=OPTIONS, tariff=TARIFF)
async def test_options_and_tariff_flow(
    hass: HomeAssistant, options: dict[str, Any], tariff: dict[str, Any]
) -> None:
    """Polling options, then prices and CO2 against entities that exist or not."""
    for entity_id, state in (
        ("sensor.price", "0.31"),
        ("sensor.co2", "187"),
        ("sensor.words", "cheap"),
        ("sensor.nan", "nan"),
        ("input_number.price", "-0.02"),
    ):
        hass.states.async_set(entity_id, state)
    entry = _hub_entry()
    entry.add_to_hass(hass)
    manager = hass.config_entries.options
    start = await manager.async_init(entry.entry_id)
    check_result(start, OPTION_STRINGS)
    async with one_flow(manager, start):
        result = await send(manager, start["flow_id"], options, OPTION_STRINGS)
        if result is not None and result.get("step_id") == "tariff":
            result = await send(manager, start["flow_id"], tariff, OPTION_STRINGS)
    await _forget_hubs(hass)
