"""Config flow: a hub is tested over a real socket before it is saved."""

from __future__ import annotations

import socket

from homeassistant.config_entries import SOURCE_USER
from homeassistant.const import CONF_HOST, CONF_PORT
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType, InvalidData
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
import voluptuous as vol

from custom_components.ems.const import CONF_UNIT_ID, DOMAIN
from simulator import SiteSimulator


def _closed_port() -> int:
    """A loopback port nobody listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def _start(hass: HomeAssistant) -> str:
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "user"
    assert result["errors"] == {}
    return str(result["flow_id"])


async def test_user_flow_creates_entry(hass: HomeAssistant, simulator: SiteSimulator) -> None:
    """A reachable SDM630 gives an entry named after the hub."""
    flow_id = await _start(hass)
    result = await hass.config_entries.flow.async_configure(
        flow_id, {CONF_HOST: "127.0.0.1", CONF_PORT: simulator.port, CONF_UNIT_ID: 1}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["title"] == f"127.0.0.1:{simulator.port}"
    assert result["data"] == {CONF_HOST: "127.0.0.1", CONF_PORT: simulator.port, CONF_UNIT_ID: 1}
    assert result["result"].unique_id == f"127.0.0.1:{simulator.port}"


async def test_cannot_connect_then_recovers(hass: HomeAssistant, socket_enabled: None) -> None:
    """Nothing listening → cannot_connect; once the simulator runs there, the entry is made."""
    port = _closed_port()
    flow_id = await _start(hass)
    user_input = {CONF_HOST: "127.0.0.1", CONF_PORT: port, CONF_UNIT_ID: 1}
    result = await hass.config_entries.flow.async_configure(flow_id, user_input)
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": "cannot_connect"}

    site = SiteSimulator()
    await site.start(host="127.0.0.1", port=port)
    try:
        result = await hass.config_entries.flow.async_configure(flow_id, user_input)
    finally:
        await site.stop()
    assert result["type"] is FlowResultType.CREATE_ENTRY


async def test_silent_unit_id_then_recovers(hass: HomeAssistant, simulator: SiteSimulator) -> None:
    """A unit id nobody answers on is reported as such; the right one then works."""
    flow_id = await _start(hass)
    result = await hass.config_entries.flow.async_configure(
        flow_id, {CONF_HOST: "127.0.0.1", CONF_PORT: simulator.port, CONF_UNIT_ID: 99}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": "no_response"}
    result = await hass.config_entries.flow.async_configure(
        flow_id, {CONF_HOST: "127.0.0.1", CONF_PORT: simulator.port, CONF_UNIT_ID: 1}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY


@pytest.mark.parametrize(
    "host", ["", "http://10.0.0.1", "10.0.0.1:502", "bad host", "-x-", "999.1.1.1", "a/b"]
)
async def test_invalid_host_then_recovers(
    hass: HomeAssistant, simulator: SiteSimulator, host: str
) -> None:
    """A malformed host is refused before any connection; a good one then works."""
    flow_id = await _start(hass)
    result = await hass.config_entries.flow.async_configure(
        flow_id, {CONF_HOST: host, CONF_PORT: simulator.port, CONF_UNIT_ID: 1}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {CONF_HOST: "invalid_host"}
    result = await hass.config_entries.flow.async_configure(
        flow_id, {CONF_HOST: "127.0.0.1", CONF_PORT: simulator.port, CONF_UNIT_ID: 1}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY


@pytest.mark.parametrize(
    ("field", "value"),
    [
        (CONF_PORT, 0),
        (CONF_PORT, 65536),
        (CONF_PORT, "http"),
        (CONF_UNIT_ID, 0),
        (CONF_UNIT_ID, 248),
        (CONF_UNIT_ID, -1),
    ],
)
async def test_out_of_range_fields_are_refused(
    hass: HomeAssistant, simulator: SiteSimulator, field: str, value: object
) -> None:
    """Port and unit id outside their ranges never reach the connection test."""
    flow_id = await _start(hass)
    user_input: dict[str, object] = {
        CONF_HOST: "127.0.0.1",
        CONF_PORT: simulator.port,
        CONF_UNIT_ID: 1,
    }
    user_input[field] = value
    with pytest.raises((InvalidData, vol.Invalid)):
        await hass.config_entries.flow.async_configure(flow_id, user_input)
    assert simulator.requests.total == 0


async def test_duplicate_hub_aborts(
    hass: HomeAssistant, mock_config_entry: MockConfigEntry, simulator: SiteSimulator
) -> None:
    """The same host and port twice is refused."""
    mock_config_entry.add_to_hass(hass)
    flow_id = await _start(hass)
    result = await hass.config_entries.flow.async_configure(
        flow_id, {CONF_HOST: "127.0.0.1", CONF_PORT: simulator.port, CONF_UNIT_ID: 1}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"
