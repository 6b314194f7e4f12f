"""A hybrid inverter: PV inverter, nameplate, settings, status, controls, MPPT and battery on
one unit id (simulator.hybrid), set up through the flow as a user would."""

from __future__ import annotations

from collections.abc import AsyncIterator

from homeassistant.config_entries import SOURCE_USER
from homeassistant.const import CONF_HOST, CONF_NAME, CONF_PORT
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers import entity_registry as er
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.ems.const import CONF_PROFILE, CONF_ROLE, CONF_UNIT_ID, DOMAIN
from custom_components.ems.coordinator import EmsCoordinator
from custom_components.ems.engine.model import DeviceType
from simulator import SiteSimulator
from simulator.hybrid import HYBRID_UNIT
from tests.integration.conftest import device_subentry
from tests.integration.sunspec_states import assert_shows, live_state

FOUND = "inverter (103+120+121+122+123+160) + battery (1+124+802)"


@pytest.fixture
async def hybrid(socket_enabled: None) -> AsyncIterator[SiteSimulator]:
    """The site with a hybrid inverter and its battery on unit 2, a grid meter on unit 1."""
    site = SiteSimulator(layout="hybrid")
    await site.start(host="127.0.0.1", port=0)
    site.advance(8 * 3600)  # morning: PV produces and charges the battery
    yield site
    await site.stop()


async def _add(hass: HomeAssistant, site: SiteSimulator) -> MockConfigEntry:
    """The hub with its grid meter, then the hybrid, as the flows add them."""
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"next_step_id": "network"}
    )
    flow_id = result["flow_id"]
    result = await hass.config_entries.flow.async_configure(
        flow_id, {CONF_HOST: "127.0.0.1", CONF_PORT: site.port, CONF_UNIT_ID: HYBRID_UNIT}
    )
    assert result["step_id"] == "device"
    assert result["description_placeholders"]["found"] == FOUND
    result = await hass.config_entries.flow.async_configure(
        flow_id, {CONF_PROFILE: "sunspec", CONF_NAME: "Battery", CONF_ROLE: "battery"}
    )
    assert result["step_id"] == "part"
    assert result["description_placeholders"]["models"] == "103+120+121+122+123+160"
    result = await hass.config_entries.flow.async_configure(
        flow_id, {CONF_NAME: "Hybrid", CONF_ROLE: "production"}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    entry: MockConfigEntry = result["result"]
    await hass.async_block_till_done()
    return entry


async def test_the_flow_splits_a_hybrid_into_inverter_and_battery(
    hass: HomeAssistant, hybrid: SiteSimulator
) -> None:
    """The battery keeps the unit's own device; the inverter with its detail models is the
    second device, a hybrid; model 160 gives each PV string its sensors."""
    entry = await _add(hass, hybrid)
    coordinator: EmsCoordinator = entry.runtime_data.coordinator
    kinds = {device.profile.device_type: device for device in coordinator.devices.values()}
    assert set(kinds) == {DeviceType.BATTERY, DeviceType.INVERTER}
    inverter = kinds[DeviceType.INVERTER]
    assert inverter.profile.hybrid
    assert not kinds[DeviceType.BATTERY].profile.hybrid
    assert inverter.part_of == kinds[DeviceType.BATTERY].id
    keys = {spec.key for spec in inverter.profile.channels}
    assert {"PV1_Power", "PV2_Power", "PV1_Energy", "120.WRtg", "122.Ris", "160.2.DCSt"} <= keys
    served = hybrid.device_values(HYBRID_UNIT)
    state = hass.states.get("sensor.hybrid_pv1_power")
    assert state is not None
    assert float(state.state) == served["160.1.DCW"]
    assert state.attributes["unit_of_measurement"] == "W"
    assert hass.states.get("sensor.hybrid_pv2_voltage") is not None
    status = hass.states.get("sensor.hybrid_operating_state")
    assert status is not None
    assert status.state == "mppt"


@pytest.mark.usefixtures("entity_registry_enabled_by_default")
async def test_every_point_of_the_hybrid_equals_the_simulator(
    hass: HomeAssistant, hybrid: SiteSimulator, entity_registry: er.EntityRegistry
) -> None:
    """Every sensor of both devices shows the point the unit serves, read from its own
    model: the MPPT modules, the nameplate, the settings, the status and the battery."""
    entry = await _add(hass, hybrid)
    coordinator: EmsCoordinator = entry.runtime_data.coordinator
    # The entities enabled by the fixture report from the next cycle on.
    await coordinator.async_refresh()
    await hass.async_block_till_done()
    served = hybrid.device_values(HYBRID_UNIT)
    checked = 0
    for device in coordinator.devices.values():
        for spec in device.profile.channels:
            assert spec.origin is not None
            state = live_state(hass, entry.entry_id, device.id, spec)
            assert_shows(spec, served[spec.origin], state)
            checked += 1
    assert checked > 190  # every point of the nine models


async def test_the_site_counts_the_battery_once(hass: HomeAssistant, hybrid: SiteSimulator) -> None:
    """The hybrid's AC output carries PV and battery: production is that output less the
    battery's power, so PV is not short by the charging power, nor a discharge counted twice,
    and consumption is the house's."""
    added = await _add(hass, hybrid)
    (unit,) = added.subentries.values()
    await hass.config_entries.async_remove(added.entry_id)
    # The same hub with the site's grid meter on unit 1 beside the hybrid.
    hybrid_subentry = device_subentry(HYBRID_UNIT, "sunspec", "battery", "Battery")
    hybrid_subentry["data"] = dict(unit.data)
    entry = MockConfigEntry(
        domain=DOMAIN,
        version=added.version,
        minor_version=added.minor_version,
        title="site",
        unique_id=added.unique_id,
        data=dict(added.data),
        subentries_data=[device_subentry(1, "eastron_sdm630", "grid", "Grid"), hybrid_subentry],
    )
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    coordinator: EmsCoordinator = entry.runtime_data.coordinator
    served = hybrid.device_values(HYBRID_UNIT)
    truth = hybrid.truth
    ac_w, battery_w = served["103.W"], served["802.W"]
    assert isinstance(ac_w, int | float)
    assert isinstance(battery_w, int | float)
    assert battery_w < -100  # charging at midday: the AC output is below the PV's
    power = coordinator.data.site.power_w
    assert power["battery"] == pytest.approx(battery_w, abs=1)
    assert power["production"] == pytest.approx(ac_w - battery_w, abs=1)
    assert power["production"] == pytest.approx(truth.pv_power_w, abs=2)
    assert power["consumption"] == pytest.approx(truth.load_power_w, abs=5)
