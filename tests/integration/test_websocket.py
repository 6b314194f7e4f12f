"""`ems/subscribe_readings`: the current readings at once, then one event per cycle."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.typing import MockHAClientWebSocket, WebSocketGenerator

from custom_components.ems.compat import device_by_identifier
from custom_components.ems.const import DOMAIN
from simulator import SiteSimulator
from tests.conftest import same_float32

SEED_FIELDS = {"deviceId", "component", "parameter", "value", "unit", "timestamp"}


@pytest.fixture
async def site(
    hass: HomeAssistant, site_entry: MockConfigEntry, simulator: SiteSimulator
) -> MockConfigEntry:
    """The whole simulated site at noon: PV produces, the battery works."""
    simulator.advance(12 * 3600)
    site_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(site_entry.entry_id)
    await hass.async_block_till_done()
    return site_entry


def _device_id(hass: HomeAssistant, entry: MockConfigEntry, key: str | None) -> str:
    identifier = entry.entry_id if key is None else f"{entry.entry_id}_{key}"
    device = device_by_identifier(hass, (DOMAIN, identifier), entry.entry_id)
    assert device is not None, key
    return device.id


async def _subscribe(client: MockHAClientWebSocket, **filters: Any) -> list[dict[str, Any]]:
    """Subscribe; return the readings of the first event (sent with the subscription)."""
    await client.send_json_auto_id({"type": "ems/subscribe_readings", **filters})
    result = await _receive(client)
    assert result["success"], result
    return await _readings(client)


async def _receive(client: MockHAClientWebSocket) -> dict[str, Any]:
    async with asyncio.timeout(10):
        message: dict[str, Any] = await client.receive_json()
    return message


async def _readings(client: MockHAClientWebSocket) -> list[dict[str, Any]]:
    message = await _receive(client)
    assert message["type"] == "event", message
    readings: list[dict[str, Any]] = message["event"]["readings"]
    return readings


def _by_parameter(readings: list[dict[str, Any]], device_id: str) -> dict[str, dict[str, Any]]:
    return {r["parameter"]: r for r in readings if r["deviceId"] == device_id}


async def test_current_readings_in_the_seed_format(
    hass: HomeAssistant,
    hass_ws_client: WebSocketGenerator,
    site: MockConfigEntry,
    simulator: SiteSimulator,
) -> None:
    """The first event holds every usable number of every device and of the site."""
    client = await hass_ws_client(hass)
    readings = await _subscribe(client)

    assert readings
    assert all(set(reading) == SEED_FIELDS for reading in readings)
    assert all(isinstance(r["value"], int | float) for r in readings)
    for reading in readings:
        assert datetime.fromisoformat(reading["timestamp"]).utcoffset() == UTC.utcoffset(None)

    meter = _by_parameter(readings, _device_id(hass, site, "unit1"))
    assert "SerialNumber" not in meter  # identity text is not a reading to stream
    power = meter["ActivePower"]
    assert power["component"] == "meter"
    assert power["unit"] == "W"
    assert same_float32(power["value"], simulator.device_values(1)["ActivePower"])
    assert _by_parameter(readings, _device_id(hass, site, "unit3"))["SOC"]["component"] == (
        "battery"
    )

    site_readings = _by_parameter(readings, _device_id(hass, site, "site"))
    grid = site_readings["grid_power"]
    assert grid["component"] == "site"
    assert grid["unit"] == "W"
    assert grid["value"] == pytest.approx(float(hass.states.get("sensor.site_grid_power").state))
    assert site_readings["production_energy"]["unit"] == "kWh"
    assert site_readings["self_sufficiency"]["unit"] == "%"


async def test_an_event_per_cycle(
    hass: HomeAssistant,
    hass_ws_client: WebSocketGenerator,
    site: MockConfigEntry,
    simulator: SiteSimulator,
) -> None:
    """Each refresh of the hub sends its new readings; an update without a cycle does not."""
    client = await hass_ws_client(hass)
    meter_id = _device_id(hass, site, "unit1")
    first = await _subscribe(client, device_id=meter_id, parameter="ActivePower")

    simulator.advance(600)
    coordinator = site.runtime_data.coordinator
    coordinator.async_update_listeners()  # no new cycle: nothing to send
    await coordinator.async_refresh()
    (reading,) = await _readings(client)

    assert same_float32(reading["value"], simulator.device_values(1)["ActivePower"])
    assert reading["timestamp"] > first[0]["timestamp"]


async def test_filters(
    hass: HomeAssistant, hass_ws_client: WebSocketGenerator, site: MockConfigEntry
) -> None:
    """A device narrows the stream to it; the hub device keeps all of its hub; parameters
    narrow it to those channels."""
    client = await hass_ws_client(hass)
    battery_id = _device_id(hass, site, "unit3")
    battery = await _subscribe(client, device_id=battery_id)
    assert battery
    assert {r["deviceId"] for r in battery} == {battery_id}
    assert {r["component"] for r in battery} == {"battery"}

    site_id = _device_id(hass, site, "site")
    sums = await _subscribe(
        client, device_id=site_id, parameter=["grid_power", "consumption_power", "no_such"]
    )
    assert sorted(r["parameter"] for r in sums) == ["consumption_power", "grid_power"]

    everything = await _subscribe(client, device_id=_device_id(hass, site, None))
    assert len({r["deviceId"] for r in everything}) == 6  # five devices and the site

    powers = await _subscribe(client, parameter="ActivePower")
    assert {r["parameter"] for r in powers} == {"ActivePower"}
    assert len(powers) >= 3


async def test_unknown_device_is_refused(
    hass: HomeAssistant, hass_ws_client: WebSocketGenerator, site: MockConfigEntry
) -> None:
    """A device that is not an ems device, or none at all, is an error that says so."""
    other = MockConfigEntry(domain="other")
    other.add_to_hass(hass)
    foreign = dr.async_get(hass).async_get_or_create(
        config_entry_id=other.entry_id, identifiers={("other", "x")}
    )
    client = await hass_ws_client(hass)
    for device_id, text in (("nope", "not an ems device"), (foreign.id, "not an ems device")):
        await client.send_json_auto_id({"type": "ems/subscribe_readings", "device_id": device_id})
        reply = await _receive(client)
        assert not reply["success"]
        assert reply["error"]["code"] == "not_found"
        assert text in reply["error"]["message"]
        assert device_id in reply["error"]["message"]

    meter_id = _device_id(hass, site, "unit1")
    assert await hass.config_entries.async_unload(site.entry_id)
    await client.send_json_auto_id({"type": "ems/subscribe_readings", "device_id": meter_id})
    reply = await _receive(client)
    assert reply["error"]["message"] == f"The hub of device {meter_id} is not loaded"


async def test_read_only_user_may_subscribe(
    hass: HomeAssistant,
    hass_ws_client: WebSocketGenerator,
    hass_read_only_access_token: str,
    site: MockConfigEntry,
) -> None:
    """Readings are what every dashboard shows: no admin needed."""
    client = await hass_ws_client(hass, hass_read_only_access_token)
    assert await _subscribe(client, parameter="grid_power")


async def test_stream_follows_a_reload_and_ends_with_the_subscription(
    hass: HomeAssistant, hass_ws_client: WebSocketGenerator, site: MockConfigEntry
) -> None:
    """A reload replaces the coordinator; the stream moves to the new one. Unsubscribing
    leaves no listener behind."""
    client = await hass_ws_client(hass)
    site_id = _device_id(hass, site, "site")
    await _subscribe(client, device_id=site_id, parameter="grid_power")
    old = site.runtime_data.coordinator

    assert await hass.config_entries.async_reload(site.entry_id)
    await hass.async_block_till_done()
    assert not old._listeners  # the entities' and the stream's
    (after_reload,) = await _readings(client)  # the new hub's first cycle
    assert after_reload["deviceId"] == site_id

    await site.runtime_data.coordinator.async_refresh()
    (reading,) = await _readings(client)
    assert reading["parameter"] == "grid_power"

    coordinator = site.runtime_data.coordinator
    listeners = len(coordinator._listeners)
    await client.send_json_auto_id({"type": "unsubscribe_events", "subscription": 1})
    assert (await _receive(client))["success"]
    assert len(coordinator._listeners) == listeners - 1
