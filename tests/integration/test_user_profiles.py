"""User profiles from `<config>/ems_profiles/`: offered in the flow, and a lost one is a repair."""

from __future__ import annotations

from collections.abc import AsyncIterator

from homeassistant.config_entries import SOURCE_USER, ConfigEntryState
from homeassistant.const import CONF_NAME
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers import issue_registry as ir
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.ems.const import CONF_PROFILE, CONF_ROLE, CONF_UNIT_ID, SUBENTRY_DEVICE
from simulator import SiteSimulator
from tests.conftest import same_float32

from .conftest import device_subentry
from .user_profile_files import remove_profiles, write_profile

# The heat-pump meter, described by the user in their own words (kW instead of W).
USER_PROFILE = """
id: my_heat_pump_meter
manufacturer: Acme
model: HP meter
device_type: load
defaults: {function: input, type: float32}
channels:
  ActivePower: {address: 0x000C, unit: W}
  EnergyImport: {address: 0x0048, unit: kWh}
"""


@pytest.fixture(autouse=True)
async def leave_no_profiles(hass: HomeAssistant) -> AsyncIterator[None]:
    """The test config folder outlives the test: a file left there (a broken one raises a
    repair) would change what later tests see."""
    yield
    await hass.async_add_executor_job(remove_profiles, hass, "my_meter.yaml", "broken.yaml")


async def test_user_profile_is_offered_and_read(
    hass: HomeAssistant, init_integration: MockConfigEntry, simulator: SiteSimulator
) -> None:
    """A user's YAML profile can be picked for a device and its channels are read."""
    await hass.async_add_executor_job(write_profile, hass, "my_meter.yaml", USER_PROFILE)
    await hass.async_add_executor_job(write_profile, hass, "broken.yaml", "id: [")
    result = await hass.config_entries.subentries.async_init(
        (init_integration.entry_id, SUBENTRY_DEVICE), context={"source": SOURCE_USER}
    )
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], {CONF_UNIT_ID: 5}
    )
    options = result["data_schema"].schema[CONF_PROFILE].config["options"]
    assert "my_heat_pump_meter" in {option["value"] for option in options}
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"],
        {CONF_PROFILE: "my_heat_pump_meter", CONF_NAME: "Heat pump", CONF_ROLE: "load"},
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()
    power = hass.states.get("sensor.heat_pump_active_power")
    assert same_float32(float(power.state), simulator.device_values(5)["ActivePower"])


async def test_missing_profile_raises_a_repair(
    hass: HomeAssistant, simulator: SiteSimulator, issue_registry: ir.IssueRegistry
) -> None:
    """A device whose profile file is gone is left out, and the user is told what to do."""
    entry = MockConfigEntry(
        domain="ems",
        version=2,
        title="hub",
        unique_id=f"127.0.0.1:{simulator.port}",
        data={"host": "127.0.0.1", "port": simulator.port},
        subentries_data=[
            device_subentry(1, "eastron_sdm630", "grid", "Grid"),
            device_subentry(5, "deleted_profile", "load", "Heat pump"),
        ],
    )
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.LOADED
    assert [d.unit_id for d in entry.runtime_data.coordinator.devices.values()] == [1]
    (issue,) = [i for i in issue_registry.issues.values() if i.domain == "ems"]
    assert issue.translation_key == "profile_missing"
    assert issue.translation_placeholders == {"device": "Heat pump", "profile": "deleted_profile"}
