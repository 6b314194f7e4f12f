"""SunSpec chains as vendors lay them out: a SolarEdge inverter with its two meters on one
unit id becomes three devices, each read from its own models, each counted once on the site."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from homeassistant.config_entries import SOURCE_RECONFIGURE, SOURCE_USER
from homeassistant.const import CONF_HOST, CONF_NAME, CONF_PORT
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers import device_registry as dr, entity_registry as er
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.ems.const import (
    CONF_PARTS,
    CONF_PROFILE,
    CONF_ROLE,
    CONF_UNIT_ID,
    DOMAIN,
    SUBENTRY_DEVICE,
)
from custom_components.ems.coordinator import EmsCoordinator
from custom_components.ems.engine.model import Device
from simulator import SiteSimulator
from simulator.solaredge import SOLAREDGE_UNIT
from tests.integration.conftest import device_subentry
from tests.integration.sunspec_states import assert_shows, live_state

# The chain as the SolarEdge-style unit serves it (the addresses are the document's).
SOLAREDGE_CHAIN = [
    [1, 40002, 65],
    [103, 40069, 50],
    [1, 40121, 65],
    [203, 40188, 105],
    [1, 40295, 65],
    [203, 40362, 105],
]
GRID_METER = f"unit{SOLAREDGE_UNIT}_203_40188"
CONSUMPTION_METER = f"unit{SOLAREDGE_UNIT}_203_40362"


@pytest.fixture
async def solaredge(socket_enabled: None) -> AsyncIterator[SiteSimulator]:
    """The site wired SolarEdge-style: inverter, grid meter and consumption meter on unit 2."""
    site = SiteSimulator(layout="solaredge")
    await site.start(host="127.0.0.1", port=0)
    site.advance(12 * 3600)  # midday: the inverter produces, every point is live
    yield site
    await site.stop()


def _entry(site: SiteSimulator, parts: dict[str, Any] | None) -> MockConfigEntry:
    subentry = device_subentry(SOLAREDGE_UNIT, "sunspec", "production", "SolarEdge")
    subentry["data"] = {**subentry["data"], "sunspec_models": SOLAREDGE_CHAIN}
    if parts is not None:
        subentry["data"][CONF_PARTS] = parts
    return MockConfigEntry(
        domain=DOMAIN,
        version=2,
        minor_version=1 if parts is None else 2,
        title="site",
        unique_id=f"127.0.0.1:{site.port}",
        data={CONF_HOST: "127.0.0.1", CONF_PORT: site.port},
        subentries_data=[subentry],
    )


async def _set_up(hass: HomeAssistant, entry: MockConfigEntry) -> EmsCoordinator:
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    coordinator: EmsCoordinator = entry.runtime_data.coordinator
    return coordinator


def _served_key(site: SiteSimulator, device: Device, origin: str, address: int) -> str:
    """The simulator's key for the point a channel reads: its model instance is the one whose
    ID register comes last before the channel's register."""
    models = site.sunspec_models(device.unit_id)
    start = max(start for start in models if start <= address)
    return f"{models[start]}.{origin.split('.', 1)[1]}"


async def test_the_flow_proposes_one_device_per_model_group(
    hass: HomeAssistant, solaredge: SiteSimulator
) -> None:
    """Discovery shows the split; the user names and places the two meters after the
    inverter; the hub then has three devices at unit 2."""
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"next_step_id": "network"}
    )
    flow_id = result["flow_id"]
    result = await hass.config_entries.flow.async_configure(
        flow_id, {CONF_HOST: "127.0.0.1", CONF_PORT: solaredge.port, CONF_UNIT_ID: 2}
    )
    assert result["step_id"] == "device"
    assert result["description_placeholders"]["found"] == (
        "inverter (1+103) + meter (1+203) + meter (1+203)"
    )
    result = await hass.config_entries.flow.async_configure(
        flow_id, {CONF_PROFILE: "sunspec", CONF_NAME: "SolarEdge", CONF_ROLE: "production"}
    )
    assert result["step_id"] == "part"
    assert result["description_placeholders"]["models"] == "1+203"
    # The grid role is taken already by nobody: the first meter is proposed as the grid meter.
    assert _default(result, CONF_ROLE) == "grid"
    result = await hass.config_entries.flow.async_configure(
        flow_id, {CONF_NAME: " ", CONF_ROLE: "grid"}
    )
    assert result["errors"] == {CONF_NAME: "name_required"}
    result = await hass.config_entries.flow.async_configure(
        flow_id, {CONF_NAME: "Grid meter", CONF_ROLE: "grid"}
    )
    assert result["step_id"] == "part"
    assert _default(result, CONF_ROLE) == "submeter"
    result = await hass.config_entries.flow.async_configure(
        flow_id, {CONF_NAME: "House", CONF_ROLE: "grid"}
    )
    assert result["errors"] == {CONF_ROLE: "grid_taken"}
    result = await hass.config_entries.flow.async_configure(
        flow_id, {CONF_NAME: "House", CONF_ROLE: "load"}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    entry = result["result"]
    (subentry,) = entry.subentries.values()
    assert subentry.data[CONF_PARTS] == {
        "40188": {CONF_NAME: "Grid meter", CONF_ROLE: "grid"},
        "40362": {CONF_NAME: "House", CONF_ROLE: "load"},
    }
    await hass.async_block_till_done()
    devices = dr.async_entries_for_config_entry(dr.async_get(hass), entry.entry_id)
    names = {device.name for device in devices}
    assert {"SolarEdge", "Grid meter", "House"} <= names
    grid = next(device for device in devices if device.name == "Grid meter")
    assert grid.serial_number == "SEM-0001"  # from the meter's own common model
    # Its entities belong to the unit's subentry (the registry's field for a device's own
    # subentry differs between releases; an entity's does not).
    entities = er.async_entries_for_device(er.async_get(hass), grid.id)
    assert entities
    assert {entity.config_subentry_id for entity in entities} == {subentry.subentry_id}


def _default(result: Any, field: str) -> Any:
    for key in result["data_schema"].schema:
        if key == field:
            return key.default()
    raise KeyError(field)


@pytest.mark.usefixtures("entity_registry_enabled_by_default")
async def test_every_point_reads_its_own_model(
    hass: HomeAssistant, solaredge: SiteSimulator, entity_registry: er.EntityRegistry
) -> None:
    """Each logical device's sensors show the points of its own models: the meters' currents,
    voltages, frequency, VA, var, PF and events included, each meter its own."""
    parts = {
        "40188": {CONF_NAME: "Grid meter", CONF_ROLE: "grid"},
        "40362": {CONF_NAME: "House", CONF_ROLE: "submeter"},
    }
    entry = _entry(solaredge, parts)
    coordinator = await _set_up(hass, entry)
    assert set(coordinator.devices) == {"unit2", GRID_METER, CONSUMPTION_METER}
    served = solaredge.device_values(SOLAREDGE_UNIT)
    checked: dict[str, int] = {}
    for device in coordinator.devices.values():
        for spec in device.profile.channels:
            assert spec.origin is not None
            state = live_state(hass, entry.entry_id, device.id, spec)
            key = _served_key(solaredge, device, spec.origin, spec.register.address)
            assert_shows(spec, served[key], state)
            checked[device.id] = checked.get(device.id, 0) + 1
    # Each meter shows the 15 points that the single device of old dropped, and more.
    assert checked[GRID_METER] >= 30
    assert checked[CONSUMPTION_METER] >= 30
    grid_power = served["203@grid.W"]
    assert isinstance(grid_power, int | float)
    assert grid_power != served["203@consumption.W"]


async def test_the_site_counts_each_device_once_in_its_role(
    hass: HomeAssistant, solaredge: SiteSimulator
) -> None:
    """The grid meter gives the site's grid power; the inverter its production; the
    consumption meter, a submeter, adds to neither."""
    parts = {
        "40188": {CONF_NAME: "Grid meter", CONF_ROLE: "grid"},
        "40362": {CONF_NAME: "House", CONF_ROLE: "submeter"},
    }
    coordinator = await _set_up(hass, _entry(solaredge, parts))
    served = solaredge.device_values(SOLAREDGE_UNIT)
    power = coordinator.data.site.power_w
    grid_w, production_w = served["203@grid.W"], served["103.W"]
    assert isinstance(grid_w, int | float)
    assert isinstance(production_w, int | float)
    assert production_w > 1000
    assert power["grid"] == pytest.approx(grid_w, abs=1)
    assert power["production"] == pytest.approx(production_w, abs=1)


async def test_an_entry_of_one_device_per_chain_is_split(
    hass: HomeAssistant, solaredge: SiteSimulator, entity_registry: er.EntityRegistry
) -> None:
    """An entry stored before chains split (config entry 2.1) gets its meters as devices of
    their own; a sensor whose point moved keeps its entity id and history; the hub's device
    and the inverter's own sensors stay where they were."""
    entry = _entry(solaredge, None)
    entry.add_to_hass(hass)
    own = f"{entry.entry_id}_unit{SOLAREDGE_UNIT}"
    # As ems made them of the whole chain: the inverter's power and the first meter's.
    inverter_power = entity_registry.async_get_or_create(
        "sensor", DOMAIN, f"{own}_AC_Power", config_entry=entry, suggested_object_id="se_ac"
    )
    meter_power = entity_registry.async_get_or_create(
        "sensor", DOMAIN, f"{own}_ActivePower", config_entry=entry, suggested_object_id="se_w"
    )
    coordinator = await _set_up(hass, entry)

    assert entry.minor_version == 2
    (subentry,) = entry.subentries.values()
    assert subentry.data[CONF_ROLE] == "production"
    assert subentry.data[CONF_PARTS] == {
        "40188": {CONF_NAME: f"SunSpec 1+203 (unit {SOLAREDGE_UNIT})", CONF_ROLE: "grid"},
        "40362": {CONF_NAME: f"SunSpec 1+203 (unit {SOLAREDGE_UNIT})", CONF_ROLE: "submeter"},
    }
    moved = entity_registry.async_get(meter_power.entity_id)
    assert moved is not None
    assert moved.unique_id == f"{entry.entry_id}_{GRID_METER}_ActivePower"
    stayed = entity_registry.async_get(inverter_power.entity_id)
    assert stayed is not None
    assert stayed.unique_id == f"{own}_AC_Power"
    state = hass.states.get(meter_power.entity_id)
    assert state is not None
    assert float(state.state) == pytest.approx(solaredge.device_values(2)["203@grid.W"])
    assert coordinator.devices[GRID_METER].part_of == f"unit{SOLAREDGE_UNIT}"


async def test_each_logical_device_is_reconfigured_in_turn(
    hass: HomeAssistant, solaredge: SiteSimulator
) -> None:
    """Reconfiguring the unit walks through the inverter, then each meter."""
    parts = {
        "40188": {CONF_NAME: "Grid meter", CONF_ROLE: "grid"},
        "40362": {CONF_NAME: "House", CONF_ROLE: "submeter"},
    }
    entry = _entry(solaredge, parts)
    await _set_up(hass, entry)
    (subentry_id,) = entry.subentries
    result = await hass.config_entries.subentries.async_init(
        (entry.entry_id, SUBENTRY_DEVICE),
        context={"source": SOURCE_RECONFIGURE, "subentry_id": subentry_id},
    )
    assert result["step_id"] == "reconfigure"
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], {CONF_NAME: "Inverter", CONF_ROLE: "production"}
    )
    assert result["step_id"] == "reconfigure_part"
    assert result["description_placeholders"] == {"name": "Grid meter", "address": "40188"}
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], {CONF_NAME: "Grid", CONF_ROLE: "grid", "rated_power_kw": 20.0}
    )
    assert result["step_id"] == "reconfigure_part"
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], {CONF_NAME: "House", CONF_ROLE: "grid"}
    )
    assert result["errors"] == {CONF_ROLE: "grid_taken"}
    result = await hass.config_entries.subentries.async_configure(
        result["flow_id"], {CONF_NAME: "House", CONF_ROLE: "load"}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reconfigure_successful"
    subentry = entry.subentries[subentry_id]
    assert subentry.title == "Inverter"
    assert subentry.data[CONF_PARTS]["40188"] == {
        CONF_NAME: "Grid",
        CONF_ROLE: "grid",
        "rated_power_kw": 20.0,
        "invert_power": False,
        "on_threshold_w": 10,
    }
    assert subentry.data[CONF_PARTS]["40362"][CONF_ROLE] == "load"
    await hass.async_block_till_done()
    coordinator: EmsCoordinator = entry.runtime_data.coordinator
    assert coordinator.devices[GRID_METER].name == "Grid"
    assert coordinator.devices[GRID_METER].rated_power_kw == 20.0


async def test_a_hub_adds_the_unit_as_a_device_with_its_meters(
    hass: HomeAssistant, solaredge: SiteSimulator
) -> None:
    """The device subentry flow asks for each meter too, and knows the roles the hub's other
    devices hold."""
    entry = MockConfigEntry(
        domain=DOMAIN,
        version=2,
        minor_version=2,
        title="site",
        unique_id=f"127.0.0.1:{solaredge.port}",
        data={CONF_HOST: "127.0.0.1", CONF_PORT: solaredge.port},
        subentries_data=[device_subentry(5, "eastron_sdm120", "grid", "Heat pump")],
    )
    await _set_up(hass, entry)
    manager = hass.config_entries.subentries
    result = await manager.async_init(
        (entry.entry_id, SUBENTRY_DEVICE), context={"source": SOURCE_USER}
    )
    result = await manager.async_configure(result["flow_id"], {CONF_UNIT_ID: SOLAREDGE_UNIT})
    assert result["step_id"] == "device"
    result = await manager.async_configure(
        result["flow_id"], {CONF_PROFILE: "sunspec", CONF_NAME: "SolarEdge", CONF_ROLE: "grid"}
    )
    assert result["errors"] == {CONF_ROLE: "grid_taken"}
    result = await manager.async_configure(
        result["flow_id"],
        {CONF_PROFILE: "sunspec", CONF_NAME: "SolarEdge", CONF_ROLE: "production"},
    )
    assert result["step_id"] == "part"
    assert _default(result, CONF_ROLE) == "submeter"  # the heat pump's meter holds "grid"
    result = await manager.async_configure(
        result["flow_id"], {CONF_NAME: "Meter", CONF_ROLE: "grid"}
    )
    assert result["errors"] == {CONF_ROLE: "grid_taken"}
    result = await manager.async_configure(
        result["flow_id"], {CONF_NAME: "Meter", CONF_ROLE: "submeter"}
    )
    result = await manager.async_configure(
        result["flow_id"], {CONF_NAME: "House", CONF_ROLE: "load"}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    added = next(s for s in entry.subentries.values() if s.unique_id == str(SOLAREDGE_UNIT))
    assert set(added.data[CONF_PARTS]) == {"40188", "40362"}
    await hass.async_block_till_done()
    assert GRID_METER in entry.runtime_data.coordinator.devices
