"""Every sensor shows what the simulated meter serves over the socket."""

from __future__ import annotations

from homeassistant.components.sensor import SensorDeviceClass, SensorStateClass
from homeassistant.const import ATTR_DEVICE_CLASS, ATTR_UNIT_OF_MEASUREMENT, EntityCategory
from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr, entity_registry as er
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.ems.compat import device_by_identifier
from custom_components.ems.engine.profiles.loader import builtin_profiles
from simulator import SiteSimulator

SDM630 = builtin_profiles()["eastron_sdm630"]


def _entity_id(registry: er.EntityRegistry, entry: MockConfigEntry, key: str) -> str:
    entity_id = registry.async_get_entity_id("sensor", "ems", f"{entry.entry_id}_unit1_{key}")
    assert entity_id is not None, key
    return entity_id


@pytest.mark.usefixtures("entity_registry_enabled_by_default")
async def test_every_channel_equals_the_simulator(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    simulator: SiteSimulator,
    entity_registry: er.EntityRegistry,
) -> None:
    """Each of the meter's channels is a sensor whose state is the served value."""
    served = simulator.device_values(1)
    for spec in SDM630.channels:
        state = hass.states.get(_entity_id(entity_registry, init_integration, spec.key))
        assert state is not None, spec.key
        assert float(state.state) == pytest.approx(float(served[spec.key]), rel=1e-6), spec.key


async def test_sensor_metadata(
    hass: HomeAssistant, init_integration: MockConfigEntry, entity_registry: er.EntityRegistry
) -> None:
    """Names are translated; classes and units fit the Energy dashboard."""
    energy = hass.states.get(_entity_id(entity_registry, init_integration, "EnergyImport"))
    assert energy.attributes[ATTR_DEVICE_CLASS] == SensorDeviceClass.ENERGY
    assert energy.attributes["state_class"] == SensorStateClass.TOTAL_INCREASING
    assert energy.attributes[ATTR_UNIT_OF_MEASUREMENT] == "kWh"
    assert energy.attributes["friendly_name"] == "SDM630 (unit 1) Energy import"

    voltage = hass.states.get(_entity_id(entity_registry, init_integration, "Voltage_L2"))
    assert voltage.attributes["friendly_name"] == "SDM630 (unit 1) Voltage L2"
    assert voltage.attributes[ATTR_UNIT_OF_MEASUREMENT] == "V"
    assert voltage.attributes["state_class"] == SensorStateClass.MEASUREMENT

    pf = hass.states.get(_entity_id(entity_registry, init_integration, "PowerFactor"))
    assert pf.attributes[ATTR_DEVICE_CLASS] == SensorDeviceClass.POWER_FACTOR

    serial = entity_registry.async_get(
        _entity_id(entity_registry, init_integration, "SerialNumber")
    )
    assert serial.entity_category is EntityCategory.DIAGNOSTIC
    assert serial.disabled_by is er.RegistryEntryDisabler.INTEGRATION
    per_phase_energy = entity_registry.async_get(
        _entity_id(entity_registry, init_integration, "EnergyImport_L1")
    )
    assert per_phase_energy.disabled_by is er.RegistryEntryDisabler.INTEGRATION


async def test_device_info(
    hass: HomeAssistant,
    init_integration: MockConfigEntry,
    simulator: SiteSimulator,
    device_registry: dr.DeviceRegistry,
) -> None:
    """The meter is a device behind the hub, with the serial number it reports."""
    meter = device_by_identifier(
        hass, ("ems", f"{init_integration.entry_id}_unit1"), init_integration.entry_id
    )
    assert meter is not None
    assert meter.manufacturer == "Eastron"
    assert meter.model == "SDM630"
    assert meter.serial_number == str(int(simulator.device_values(1)["SerialNumber"]))
    hub = device_registry.async_get(meter.via_device_id)
    assert hub.identifiers == {("ems", init_integration.entry_id)}


async def test_hub_diagnostics(
    hass: HomeAssistant, init_integration: MockConfigEntry, entity_registry: er.EntityRegistry
) -> None:
    """The hub reports its requests per cycle: the batched plan, not one per entity."""
    entity_id = entity_registry.async_get_entity_id(
        "sensor", "ems", f"{init_integration.entry_id}_requests_per_cycle"
    )
    assert entity_id is not None
    # four fast blocks plus two slow blocks (serial, meter code) on the first cycle
    assert int(hass.states.get(entity_id).state) == 5
