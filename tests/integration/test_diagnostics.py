"""Diagnostics: every reading in the seed's format, hosts and serials redacted."""

from __future__ import annotations

from homeassistant.components.diagnostics import REDACTED
from homeassistant.core import HomeAssistant
from homeassistant.setup import async_setup_component
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.components.diagnostics import (
    get_diagnostics_for_config_entry,
)
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from custom_components.ems.profiles import builtin_profiles
from simulator import SiteSimulator


async def test_diagnostics(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    init_integration: MockConfigEntry,
    simulator: SiteSimulator,
) -> None:
    """The dump describes the hub, its devices and each channel, and leaks no address."""
    assert await async_setup_component(hass, "diagnostics", {})
    dump = await get_diagnostics_for_config_entry(hass, hass_client, init_integration)

    assert dump["entry"]["data"]["host"] == REDACTED
    assert "127.0.0.1" not in str(dump)
    assert str(int(simulator.device_values(1)["SerialNumber"])) not in str(dump)

    assert dump["hub"]["requests_per_cycle"] == 5
    assert {"unit": 1, "function": "input", "start": 0, "count": 80} in dump["hub"]["read_plan"]
    assert {"unit": 1, "function": "holding", "start": 0xFC00, "count": 3} in dump["hub"][
        "read_plan"
    ]
    (device,) = dump["devices"]
    assert device["deviceId"] == "unit1"
    assert device["role"] == "grid"
    assert device["online"] is True

    channels = {spec.key for spec in builtin_profiles()["eastron_sdm630"].channels}
    readings = {reading["parameter"]: reading for reading in dump["readings"]}
    assert set(readings) == channels
    power = readings["ActivePower"]
    assert set(power) == {
        "deviceId", "component", "parameter", "value", "unit", "timestamp", "quality"
    }  # fmt: skip
    assert power["component"] == "meter"
    assert power["unit"] == "W"
    assert power["quality"] == "ok"
    assert power["value"] == simulator.device_values(1)["ActivePower"]
    assert readings["SerialNumber"]["value"] == REDACTED
