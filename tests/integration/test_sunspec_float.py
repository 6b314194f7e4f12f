"""SunSpec's float models: an inverter serving 113 and a meter serving 213 (simulator.float_models),
discovered, set up and read as a user's would be."""

from __future__ import annotations

from collections.abc import AsyncIterator
import time

from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.ems.engine.modbus.discovery import discover_sunspec
from custom_components.ems.engine.modbus.transport import HubSettings, ModbusHub
from custom_components.ems.engine.model import DataType
from simulator import SiteSimulator
from simulator.float_models import FLOAT_INVERTER_UNIT, FLOAT_METER_UNIT
from tests.integration.conftest import device_subentry
from tests.integration.sunspec_states import assert_shows, live_state


@pytest.fixture
async def float_site(socket_enabled: None) -> AsyncIterator[SiteSimulator]:
    """The standard site with its PV inverter and PV meter in the float models."""
    site = SiteSimulator(layout="float")
    await site.start(host="127.0.0.1", port=0)
    site.advance(12 * 3600)  # midday: the inverter produces, every point is live
    yield site
    await site.stop()


async def _chain(site: SiteSimulator, unit_id: int) -> list[list[int]]:
    hub = ModbusHub(settings=HubSettings(host="127.0.0.1", port=site.port), clock=time.monotonic)
    try:
        found = await discover_sunspec(hub, unit_id)
    finally:
        await hub.close()
    return [[model.model_id, model.address, model.length] for model in found]


async def _set_up(hass: HomeAssistant, site: SiteSimulator) -> MockConfigEntry:
    def sunspec(unit_id: int, role: str, title: str, chain: list[list[int]]) -> dict[str, object]:
        subentry = device_subentry(unit_id, "sunspec", role, title)
        subentry["data"] = {**subentry["data"], "sunspec_models": chain}  # type: ignore[dict-item]
        return subentry

    entry = MockConfigEntry(
        domain="ems",
        version=2,
        minor_version=2,
        title="site",
        unique_id=f"127.0.0.1:{site.port}",
        data={"host": "127.0.0.1", "port": site.port},
        subentries_data=[
            device_subentry(1, "eastron_sdm630", "grid", "Grid meter"),
            sunspec(
                FLOAT_INVERTER_UNIT,
                "production",
                "PV inverter",
                await _chain(site, FLOAT_INVERTER_UNIT),
            ),
            sunspec(FLOAT_METER_UNIT, "submeter", "PV meter", await _chain(site, FLOAT_METER_UNIT)),
        ],
    )
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    return entry


async def test_discovery_finds_the_float_models(float_site: SiteSimulator) -> None:
    """Model lengths as the definitions give them: 113 is 60 registers, 213 is 124."""
    assert await _chain(float_site, FLOAT_INVERTER_UNIT) == [[1, 40002, 66], [113, 40070, 60]]
    assert await _chain(float_site, FLOAT_METER_UNIT) == [[1, 50002, 66], [213, 50070, 124]]


@pytest.mark.usefixtures("entity_registry_enabled_by_default")
async def test_every_float_point_equals_the_simulator(
    hass: HomeAssistant, float_site: SiteSimulator, entity_registry: er.EntityRegistry
) -> None:
    """Every point of 113 and 213 shows the served float, in its shortest decimal; the
    not-implemented NaNs show as unknown; the 213 power factors stay ratios."""
    entry = await _set_up(hass, float_site)
    coordinator = entry.runtime_data.coordinator
    checked = 0
    for unit_id in (FLOAT_INVERTER_UNIT, FLOAT_METER_UNIT):
        device = next(d for d in coordinator.devices.values() if d.unit_id == unit_id)
        served = float_site.device_values(unit_id)
        for spec in device.profile.channels:
            assert spec.origin is not None
            state = live_state(hass, entry.entry_id, device.id, spec)
            assert_shows(spec, served[spec.origin], state)
            checked += spec.register.data_type is DataType.FLOAT32
    assert checked > 60
    meter = next(d for d in coordinator.devices.values() if d.unit_id == FLOAT_METER_UNIT)
    factor = live_state(hass, entry.entry_id, meter.id, meter.profile.channel("PowerFactor"))
    assert -1.0 <= float(factor.state) <= 1.0


async def test_the_site_counts_the_float_inverter_as_production(
    hass: HomeAssistant, float_site: SiteSimulator
) -> None:
    """Production is 113.W; the PV meter, a submeter, adds to nothing."""
    entry = await _set_up(hass, float_site)
    power = entry.runtime_data.coordinator.data.site.power_w
    production_w = float_site.device_values(FLOAT_INVERTER_UNIT)["113.W"]
    assert isinstance(production_w, float)
    assert production_w > 1000
    assert power["production"] == pytest.approx(production_w, abs=1)
