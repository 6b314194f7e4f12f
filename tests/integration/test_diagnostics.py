"""Diagnostics: every reading in the seed's format, hosts and serials redacted."""

from __future__ import annotations

from homeassistant.components.diagnostics import REDACTED
from homeassistant.core import HomeAssistant
from homeassistant.setup import async_setup_component
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.components.diagnostics import (
    get_diagnostics_for_config_entry,
)
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from custom_components.ems.compat import device_by_identifier
from custom_components.ems.const import DOMAIN
from custom_components.ems.engine.profiles.loader import builtin_profiles
from custom_components.ems.sensor import SITE_SENSORS
from simulator import SiteSimulator
from tests.conftest import same_float32


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
    entry_id = init_integration.entry_id
    meter = device_by_identifier(hass, (DOMAIN, f"{entry_id}_unit1"), entry_id)
    site = device_by_identifier(hass, (DOMAIN, f"{entry_id}_site"), entry_id)
    assert meter is not None
    assert site is not None
    (device,) = dump["devices"]
    assert device["deviceId"] == meter.id
    assert device["key"] == "unit1"
    assert device["role"] == "grid"
    assert device["online"] is True

    channels = {spec.key for spec in builtin_profiles()["eastron_sdm630"].channels}
    readings = {r["parameter"]: r for r in dump["readings"] if r["deviceId"] == meter.id}
    assert set(readings) == channels
    power = readings["ActivePower"]
    assert set(power) == {
        "deviceId", "component", "parameter", "value", "unit", "timestamp", "quality"
    }  # fmt: skip
    assert power["component"] == "meter"
    assert power["unit"] == "W"
    assert power["quality"] == "ok"
    assert same_float32(power["value"], simulator.device_values(1)["ActivePower"])
    assert readings["SerialNumber"]["value"] == REDACTED

    # The site's sums, in the same format, named as the Site device's sensors are keyed.
    sums = {r["parameter"]: r for r in dump["readings"] if r["deviceId"] == site.id}
    site_keys = {description.key for description in SITE_SENSORS}
    assert set(sums) <= site_keys
    assert {"grid_power", "consumption_power", "grid_import_energy"} <= set(sums)
    assert {r["component"] for r in sums.values()} == {"site"}
    grid = sums["grid_power"]
    assert grid["value"] == pytest.approx(power["value"])
    assert grid["unit"] == "W"
    assert grid["quality"] == "ok"
    assert sums["grid_import_energy"]["unit"] == "kWh"
