"""Config flow: a hub is tested over a real socket, and the device is asked what it is."""

from __future__ import annotations

import socket
from typing import Any
from unittest.mock import patch

from homeassistant.config_entries import SOURCE_RECONFIGURE, SOURCE_USER, ConfigFlowResult
from homeassistant.const import CONF_HOST, CONF_NAME, CONF_PORT
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType, InvalidData
from pymodbus import FramerType
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
import voluptuous as vol

from custom_components.ems.const import (
    CONF_BAUDRATE,
    CONF_PARITY,
    CONF_PROFILE,
    CONF_ROLE,
    CONF_SERIAL_PORT,
    CONF_STOPBITS,
    CONF_TRANSPORT,
    CONF_UNIT_ID,
    DOMAIN,
    SUBENTRY_DEVICE,
)
from custom_components.ems.glue.statistics import free_statistics_hub, statistics_hub
from simulator import SiteSimulator

FLOW = "custom_components.ems.config_flow"
DEVICE_STEPS = "custom_components.ems.glue.device_flow"


def _closed_port() -> int:
    """A loopback port nobody listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def _start(hass: HomeAssistant, how: str = "network") -> str:
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
    assert result["type"] is FlowResultType.MENU
    assert result["menu_options"] == ["network", "serial"]
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"next_step_id": how}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == how
    assert result["errors"] == {}
    return str(result["flow_id"])


def _hub(port: int, unit_id: int = 1) -> dict[str, Any]:
    return {CONF_HOST: "127.0.0.1", CONF_PORT: port, CONF_UNIT_ID: unit_id}


async def _reconfigure_device(
    hass: HomeAssistant, entry: MockConfigEntry, subentry_id: str
) -> ConfigFlowResult:
    """Start a device's reconfigure flow as the frontend does (the harness's own helper
    changed its signature between releases)."""
    return await hass.config_entries.subentries.async_init(
        (entry.entry_id, SUBENTRY_DEVICE),
        context={"source": SOURCE_RECONFIGURE, "subentry_id": subentry_id},
    )


def _suggested(result: Any, field: str) -> Any:
    for key in result["data_schema"].schema:
        if key == field:
            return key.default() if callable(key.default) else None
    raise KeyError(field)


async def test_user_flow_detects_the_grid_meter(
    hass: HomeAssistant, simulator: SiteSimulator
) -> None:
    """An SDM630 at unit 1 is recognised by its meter code and saved as the hub's device."""
    flow_id = await _start(hass)
    result = await hass.config_entries.flow.async_configure(flow_id, _hub(simulator.port))
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "device"
    assert _suggested(result, CONF_PROFILE) == "eastron_sdm630"
    assert _suggested(result, CONF_ROLE) == "grid"
    assert _suggested(result, CONF_NAME) == "SDM630 (unit 1)"

    result = await hass.config_entries.flow.async_configure(
        flow_id, {CONF_PROFILE: "eastron_sdm630", CONF_NAME: "Grid meter", CONF_ROLE: "grid"}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    entry = result["result"]
    assert entry.title == f"127.0.0.1:{simulator.port}"
    assert entry.unique_id == f"127.0.0.1:{simulator.port}"
    assert entry.data == {
        CONF_TRANSPORT: "tcp",
        CONF_HOST: "127.0.0.1",
        CONF_PORT: simulator.port,
        "statistics_hub": "site",  # its statistics are ems:site_<series>
    }
    (device,) = entry.subentries.values()
    assert device.subentry_type == SUBENTRY_DEVICE
    assert device.title == "Grid meter"
    assert device.unique_id == "1"
    assert dict(device.data) == {CONF_UNIT_ID: 1, CONF_PROFILE: "eastron_sdm630", CONF_ROLE: "grid"}


async def test_user_flow_finds_sunspec(hass: HomeAssistant, simulator: SiteSimulator) -> None:
    """A SunSpec inverter is found by its marker and its model chain is stored."""
    flow_id = await _start(hass)
    result = await hass.config_entries.flow.async_configure(flow_id, _hub(simulator.port, 2))
    assert result["step_id"] == "device"
    assert _suggested(result, CONF_PROFILE) == "sunspec"
    assert _suggested(result, CONF_ROLE) == "production"
    result = await hass.config_entries.flow.async_configure(
        flow_id, {CONF_PROFILE: "sunspec", CONF_NAME: "PV", CONF_ROLE: "production"}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    (device,) = result["result"].subentries.values()
    assert [model[0] for model in device.data["sunspec_models"]] == [1, 103]


@pytest.mark.parametrize("transport", ["rtu_over_tcp", "serial"])
async def test_rtu_hubs(hass: HomeAssistant, socket_enabled: None, transport: str) -> None:
    """RTU framing over TCP, and the serial transport (through pyserial's socket:// URL)."""
    site = SiteSimulator(framer=FramerType.RTU)
    await site.start(host="127.0.0.1", port=0)
    try:
        if transport == "serial":
            flow_id = await _start(hass, "serial")
            hub = {
                CONF_SERIAL_PORT: f"socket://127.0.0.1:{site.port}",
                CONF_BAUDRATE: "19200",
                CONF_PARITY: "E",
                CONF_STOPBITS: "1",
                CONF_UNIT_ID: 1,
            }
        else:
            flow_id = await _start(hass)
            hub = {**_hub(site.port), CONF_TRANSPORT: transport}
        result = await hass.config_entries.flow.async_configure(flow_id, hub)
        assert result["step_id"] == "device"
        assert _suggested(result, CONF_PROFILE) == "eastron_sdm630"
        result = await hass.config_entries.flow.async_configure(
            flow_id, {CONF_PROFILE: "eastron_sdm630", CONF_NAME: "Grid", CONF_ROLE: "grid"}
        )
        assert result["type"] is FlowResultType.CREATE_ENTRY
        entry = result["result"]
        await hass.async_block_till_done()
        assert entry.data[CONF_TRANSPORT] == transport
        if transport == "serial":
            assert entry.data[CONF_BAUDRATE] == 19200
            assert entry.unique_id == f"socket://127.0.0.1:{site.port}"
        power = hass.states.get("sensor.grid_active_power")
        assert float(power.state) == pytest.approx(site.device_values(1)["ActivePower"])
        assert await hass.config_entries.async_unload(entry.entry_id)
    finally:
        await site.stop()


async def test_serial_port_required(hass: HomeAssistant) -> None:
    """A blank serial port is refused before anything is opened."""
    flow_id = await _start(hass, "serial")
    result = await hass.config_entries.flow.async_configure(
        flow_id,
        {
            CONF_SERIAL_PORT: "  ",
            CONF_BAUDRATE: "9600",
            CONF_PARITY: "N",
            CONF_STOPBITS: "1",
            CONF_UNIT_ID: 1,
        },
    )
    assert result["errors"] == {CONF_SERIAL_PORT: "invalid_serial_port"}


async def test_cannot_connect_then_recovers(hass: HomeAssistant, socket_enabled: None) -> None:
    """Nothing listening → cannot_connect; once the simulator runs there, the flow goes on."""
    port = _closed_port()
    flow_id = await _start(hass)
    result = await hass.config_entries.flow.async_configure(flow_id, _hub(port))
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": "cannot_connect"}

    site = SiteSimulator()
    await site.start(host="127.0.0.1", port=port)
    try:
        result = await hass.config_entries.flow.async_configure(flow_id, _hub(port))
    finally:
        await site.stop()
    assert result["step_id"] == "device"


async def test_silent_unit_id_then_recovers(hass: HomeAssistant, simulator: SiteSimulator) -> None:
    """A unit id nobody answers on is reported as such; the right one then works."""
    flow_id = await _start(hass)
    result = await hass.config_entries.flow.async_configure(flow_id, _hub(simulator.port, 99))
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": "no_response"}
    result = await hass.config_entries.flow.async_configure(flow_id, _hub(simulator.port))
    assert result["step_id"] == "device"


@pytest.mark.parametrize(
    "host", ["", "http://10.0.0.1", "10.0.0.1:502", "bad host", "-x-", "999.1.1.1", "a/b"]
)
async def test_invalid_host_then_recovers(
    hass: HomeAssistant, simulator: SiteSimulator, host: str
) -> None:
    """A malformed host is refused before any connection; a good one then works."""
    flow_id = await _start(hass)
    result = await hass.config_entries.flow.async_configure(
        flow_id, {**_hub(simulator.port), CONF_HOST: host}
    )
    assert result["errors"] == {CONF_HOST: "invalid_host"}
    assert simulator.requests.total == 0
    result = await hass.config_entries.flow.async_configure(flow_id, _hub(simulator.port))
    assert result["step_id"] == "device"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        (CONF_PORT, 0),
        (CONF_PORT, 65536),
        (CONF_PORT, "http"),
        (CONF_UNIT_ID, 0),
        (CONF_UNIT_ID, 248),
        (CONF_UNIT_ID, -1),
        (CONF_TRANSPORT, "carrier_pigeon"),
    ],
)
async def test_out_of_range_fields_are_refused(
    hass: HomeAssistant, simulator: SiteSimulator, field: str, value: object
) -> None:
    """Fields outside their ranges never reach the connection test."""
    flow_id = await _start(hass)
    with pytest.raises((InvalidData, vol.Invalid)):
        await hass.config_entries.flow.async_configure(
            flow_id, {**_hub(simulator.port), field: value}
        )
    assert simulator.requests.total == 0


async def test_device_step_errors_then_recovers(
    hass: HomeAssistant, simulator: SiteSimulator
) -> None:
    """A blank name is refused; a profile the device does not offer never passes the form."""
    flow_id = await _start(hass)
    await hass.config_entries.flow.async_configure(flow_id, _hub(simulator.port))
    good = {CONF_PROFILE: "eastron_sdm630", CONF_NAME: "Grid", CONF_ROLE: "grid"}
    result = await hass.config_entries.flow.async_configure(flow_id, {**good, CONF_NAME: "  "})
    assert result["errors"] == {CONF_NAME: "name_required"}
    for bad in ({CONF_PROFILE: "sunspec"}, {CONF_PROFILE: "no_such"}, {CONF_ROLE: "boss"}):
        with pytest.raises((InvalidData, vol.Invalid)):
            await hass.config_entries.flow.async_configure(flow_id, {**good, **bad})
    result = await hass.config_entries.flow.async_configure(flow_id, good)
    assert result["type"] is FlowResultType.CREATE_ENTRY


async def test_duplicate_hub_aborts(
    hass: HomeAssistant, mock_config_entry: MockConfigEntry, simulator: SiteSimulator
) -> None:
    """The same host and port twice is refused."""
    mock_config_entry.add_to_hass(hass)
    flow_id = await _start(hass)
    result = await hass.config_entries.flow.async_configure(flow_id, _hub(simulator.port))
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"


async def _add_device(hass: HomeAssistant, entry: MockConfigEntry, unit_id: int) -> dict[str, Any]:
    result = await hass.config_entries.subentries.async_init(
        (entry.entry_id, SUBENTRY_DEVICE), context={"source": SOURCE_USER}
    )
    assert result["step_id"] == "user"
    return dict(
        await hass.config_entries.subentries.async_configure(
            result["flow_id"], {CONF_UNIT_ID: unit_id}
        )
    )


async def test_add_devices_as_subentries(
    hass: HomeAssistant, init_integration: MockConfigEntry
) -> None:
    """Storage, meter and heat pump are added to the hub and the hub reloads with them."""
    expected = {
        3: ("sunspec", "battery", [1, 124, 802]),
        4: ("sunspec", "grid", [1, 203]),
        5: ("eastron_sdm120", "grid", None),
    }
    for unit_id, (profile, role, models) in expected.items():
        result = await _add_device(hass, init_integration, unit_id)
        assert result["step_id"] == "device"
        assert _suggested(result, CONF_PROFILE) == profile
        # the hub has a grid meter already, so a second meter is proposed as a sub-meter
        assert _suggested(result, CONF_ROLE) == ("submeter" if role == "grid" else role)
        result = await hass.config_entries.subentries.async_configure(
            result["flow_id"],
            {CONF_PROFILE: profile, CONF_NAME: f"Unit {unit_id}", CONF_ROLE: "submeter"},
        )
        assert result["type"] is FlowResultType.CREATE_ENTRY
        if models is not None:
            assert [m[0] for m in result["data"]["sunspec_models"]] == models
        await hass.async_block_till_done()  # the hub reloads with each new device
    coordinator = init_integration.runtime_data.coordinator
    assert sorted(device.unit_id for device in coordinator.devices.values()) == [1, 3, 4, 5]
    assert all(state.online for state in coordinator.data.devices.values())


async def test_subentry_refuses_duplicates_and_second_grid(
    hass: HomeAssistant, init_integration: MockConfigEntry
) -> None:
    """A unit id already on the hub aborts; a second grid meter is refused with a reason."""
    result = await _add_device(hass, init_integration, 1)
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"

    result = await _add_device(hass, init_integration, 5)
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], {CONF_PROFILE: "eastron_sdm120", CONF_NAME: "HP", CONF_ROLE: "grid"}
    )
    assert result["errors"] == {CONF_ROLE: "grid_taken"}
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], {CONF_PROFILE: "eastron_sdm120", CONF_NAME: "HP", CONF_ROLE: "load"}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY


async def test_subentry_silent_unit(hass: HomeAssistant, init_integration: MockConfigEntry) -> None:
    """A unit id that does not answer is reported, and another one can be tried."""
    result = await _add_device(hass, init_integration, 42)
    assert result["errors"] == {"base": "no_response"}
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], {CONF_UNIT_ID: 5}
    )
    assert result["step_id"] == "device"


async def test_reconfigure_subentry(hass: HomeAssistant, init_integration: MockConfigEntry) -> None:
    """A device can be renamed and given another role."""
    (subentry_id,) = init_integration.subentries
    result = await _reconfigure_device(hass, init_integration, subentry_id)
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], {CONF_NAME: " ", CONF_ROLE: "grid"}
    )
    assert result["errors"] == {CONF_NAME: "name_required"}
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], {CONF_NAME: "Main meter", CONF_ROLE: "submeter"}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reconfigure_successful"
    subentry = init_integration.subentries[subentry_id]
    assert subentry.title == "Main meter"
    assert subentry.data[CONF_ROLE] == "submeter"


async def test_reconfigure_hub(
    hass: HomeAssistant, init_integration: MockConfigEntry, simulator: SiteSimulator
) -> None:
    """A new address is tested first: a dead one is refused, a live one is saved."""
    result = await init_integration.start_reconfigure_flow(hass)
    assert result["step_id"] == "reconfigure"
    dead = {CONF_TRANSPORT: "tcp", CONF_HOST: "127.0.0.1", CONF_PORT: _closed_port()}
    result = await hass.config_entries.flow.async_configure(result["flow_id"], dead)
    assert result["errors"] == {"base": "cannot_connect"}
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {**dead, CONF_HOST: "localhost", CONF_PORT: simulator.port}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reconfigure_successful"
    assert init_integration.data[CONF_HOST] == "localhost"
    assert init_integration.unique_id == f"localhost:{simulator.port}"


async def test_options_flow(hass: HomeAssistant, init_integration: MockConfigEntry) -> None:
    """Options are stored and the hub reloads with the new read plan."""
    result = await hass.config_entries.options.async_init(init_integration.entry_id)
    assert result["step_id"] == "init"
    with pytest.raises((InvalidData, vol.Invalid)):
        await hass.config_entries.options.async_configure(
            result["flow_id"],
            {"scan_interval": 10, "timeout": 3, "max_read": 500, "max_gap": 16},
        )
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {"scan_interval": 5, "timeout": 1.5, "max_read": 32, "max_gap": 4}
    )
    assert result["step_id"] == "tariff"
    result = await hass.config_entries.options.async_configure(result["flow_id"], {})
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()
    coordinator = init_integration.runtime_data.coordinator
    assert coordinator.update_interval is not None
    assert coordinator.update_interval.total_seconds() == 5
    # the SDM630's fast set no longer fits 4 requests when each may hold only 32 registers
    assert coordinator.data.stats.requests > 5


async def test_reconfigure_cannot_make_a_second_grid_meter(
    hass: HomeAssistant, site_entry: MockConfigEntry
) -> None:
    """A site has one grid meter: another device cannot take its role; it can take another."""
    site_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(site_entry.entry_id)
    await hass.async_block_till_done()
    pv_meter = next(
        subentry_id
        for subentry_id, subentry in site_entry.subentries.items()
        if subentry.title == "PV meter"
    )
    result = await _reconfigure_device(hass, site_entry, pv_meter)
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], {CONF_NAME: "PV meter", CONF_ROLE: "grid"}
    )
    assert result["errors"] == {CONF_ROLE: "grid_taken"}
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], {CONF_NAME: "PV meter", CONF_ROLE: "production"}
    )
    assert result["reason"] == "reconfigure_successful"
    assert site_entry.subentries[pv_meter].data[CONF_ROLE] == "production"


async def test_reconfigure_subentry_thresholds(
    hass: HomeAssistant, init_integration: MockConfigEntry
) -> None:
    """Rated power, load threshold and sign are per device, validated, and applied on reload."""
    (subentry_id,) = init_integration.subentries
    result = await _reconfigure_device(hass, init_integration, subentry_id)
    base = {CONF_NAME: "Grid", CONF_ROLE: "grid"}
    for bad in ({"rated_power_kw": 0}, {"rated_power_kw": "lots"}, {"on_threshold_w": -5}):
        with pytest.raises((InvalidData, vol.Invalid)):
            await hass.config_entries.subentries.async_configure(result["flow_id"], {**base, **bad})
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"],
        {**base, "rated_power_kw": 17.5, "on_threshold_w": 50, "invert_power": True},
    )
    assert result["reason"] == "reconfigure_successful"
    await hass.async_block_till_done()
    (device,) = init_integration.runtime_data.coordinator.devices.values()
    assert device.rated_power_kw == 17.5
    assert device.on_threshold_w == 50
    assert device.invert_power is True


async def test_each_hub_gets_its_own_statistics_name(hass: HomeAssistant) -> None:
    """`site` for the first hub, the next free `site_<n>` for others; hubs added before the
    name was stored keep their entry id."""
    older = MockConfigEntry(domain=DOMAIN, data={CONF_HOST: "10.0.0.1", CONF_PORT: 502})
    older.add_to_hass(hass)
    assert free_statistics_hub(hass) == "site"
    MockConfigEntry(domain=DOMAIN, data={"statistics_hub": "site"}).add_to_hass(hass)
    MockConfigEntry(domain=DOMAIN, data={"statistics_hub": "site_3"}).add_to_hass(hass)
    assert free_statistics_hub(hass) == "site_2"
    assert statistics_hub(older) == older.entry_id


async def test_an_unexpected_error_is_a_form_error_then_recovers(
    hass: HomeAssistant, simulator: SiteSimulator, caplog: pytest.LogCaptureFixture
) -> None:
    """A fault nobody foresaw while identifying the device ends in the form with `unknown`
    (its traceback in the log), never in a broken flow; the next try goes on."""
    flow_id = await _start(hass)
    with patch(f"{DEVICE_STEPS}.async_identify", side_effect=RuntimeError("injected")):
        result = await hass.config_entries.flow.async_configure(flow_id, _hub(simulator.port))
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": "unknown"}
    assert "Unexpected error while identifying unit 1" in caplog.text
    result = await hass.config_entries.flow.async_configure(flow_id, _hub(simulator.port))
    assert result["step_id"] == "device"


async def test_an_unexpected_error_adding_a_device_then_recovers(
    hass: HomeAssistant, init_integration: MockConfigEntry
) -> None:
    """The same in Add device: `unknown` on the form, and the next try finds the battery."""
    with patch(f"{DEVICE_STEPS}.async_identify", side_effect=RuntimeError("injected")):
        result = await _add_device(hass, init_integration, 3)
    assert result["errors"] == {"base": "unknown"}
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], {CONF_UNIT_ID: 3}
    )
    assert result["step_id"] == "device"
