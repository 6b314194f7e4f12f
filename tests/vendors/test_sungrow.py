"""Sungrow SH hybrid (profiles/sungrow_sh.yaml) against the simulator's SH10RT twin
(simulator/sungrow.py, written from Sungrow's protocol V1.1.9), over a real socket."""

from __future__ import annotations

from collections.abc import AsyncIterator

from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers import entity_registry as er, issue_registry as ir
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.ems.compat import device_by_identifier
from custom_components.ems.const import DOMAIN
from custom_components.ems.coordinator import EmsCoordinator
from custom_components.ems.engine.modbus.transport import HubSettings
from custom_components.ems.engine.profiles.loader import builtin_profiles
from custom_components.ems.glue.devices import Catalogue, async_identify
from simulator import SiteSimulator
from simulator.sungrow import (
    COMMAND_CHARGE,
    COMMAND_DISCHARGE,
    COMMAND_STOP,
    EMS_FORCED,
    EMS_SELF_CONSUMPTION,
    SUNGROW_UNIT,
)
from tests.integration.conftest import device_subentry, run_cycles, start_site
from tests.integration.sunspec_states import live_state

# Each profile channel and the twin's quantity it shows (the twin's names are the document's).
SERVED = {
    "SerialNumber": "SerialNumber",
    "DeviceTypeCode": "DeviceTypeCode",
    "NominalPower": "NominalPower",
    "BatteryRatedPower": "BDCRatedPower",
    "SOC": "BatterySOC",
    "ActivePower": "BatteryPower",
    "BatteryVoltage": "BatteryVoltage",
    "BatteryCurrent": "BatteryCurrent",
    "SOH": "BatterySOH",
    "BatteryTemperature": "BatteryTemperature",
    "EnergyCharged": "TotalBatteryCharge",
    "EnergyDischarged": "TotalBatteryDischarge",
    "PVPower": "PVPower",
    "PV1_Voltage": "MPPT1Voltage",
    "PV1_Current": "MPPT1Current",
    "PV2_Voltage": "MPPT2Voltage",
    "PV2_Current": "MPPT2Current",
    "PVEnergy": "TotalPVGeneration",
    "InverterPower": "TotalActivePower",
    "OutputEnergy": "TotalOutputEnergy",
    "Voltage_L1": "PhaseAVoltage",
    "Voltage_L2": "PhaseBVoltage",
    "Voltage_L3": "PhaseCVoltage",
    "Frequency": "GridFrequency",
    "Temperature": "InverterTemperature",
    "RunningState": "RunningState",
    "GridPower": "MeterPower",
    "LoadPower": "LoadPower",
    "GridEnergyImport": "TotalImportEnergy",
    "GridEnergyExport": "TotalExportEnergy",
    "EMSMode": "EMSMode",
    "ChargeCommand": "ChargeCommand",
    "ForcedPower": "ForcedPower",
    "MaxSOC": "MaxSOC",
    "MinSOC": "MinSOC",
    "MaxChargePower": "MaxChargePower",
    "MaxDischargePower": "MaxDischargePower",
}
# The twin gives these in kW (its registers' 0.1 kW); the sensors show W.
_KILO = {"NominalPower", "BatteryRatedPower"}


@pytest.fixture
async def sungrow(socket_enabled: None) -> AsyncIterator[SiteSimulator]:
    """The site with a Sungrow SH10RT and its battery on unit 2, the grid meter on unit 1."""
    site = SiteSimulator(layout="sungrow")
    await site.start(host="127.0.0.1", port=0)
    yield site
    await site.stop()


def _entry(site: SiteSimulator) -> MockConfigEntry:
    return MockConfigEntry(
        domain=DOMAIN,
        version=2,
        minor_version=2,
        title="site",
        unique_id=f"127.0.0.1:{site.port}",
        data={"host": "127.0.0.1", "port": site.port},
        subentries_data=[
            device_subentry(1, "eastron_sdm630", "grid", "Grid meter"),
            device_subentry(SUNGROW_UNIT, "sungrow_sh", "battery", "Sungrow"),
        ],
    )


async def _battery(hass: HomeAssistant, entry: MockConfigEntry) -> str:
    device = device_by_identifier(hass, (DOMAIN, f"{entry.entry_id}_unit2"), entry.entry_id)
    assert device is not None
    return device.id


async def test_detection_proposes_the_sungrow_profile(sungrow: SiteSimulator) -> None:
    """No SunSpec marker; the device type code 0x0E03 (SH10RT) names the profile."""
    catalogue = Catalogue(profiles=dict(builtin_profiles()), errors=[])
    settings = HubSettings(host="127.0.0.1", port=sungrow.port)
    identified = await async_identify(settings, SUNGROW_UNIT, catalogue)
    assert identified.sunspec_models == []
    assert identified.profile is not None
    assert identified.profile.id == "sungrow_sh"


@pytest.mark.usefixtures("entity_registry_enabled_by_default")
async def test_every_channel_equals_the_simulator(
    hass: HomeAssistant, sungrow: SiteSimulator, entity_registry: er.EntityRegistry
) -> None:
    """Each of the 37 channels shows the twin's value, in the canonical unit."""
    entry = _entry(sungrow)
    coordinator = await start_site(hass, entry, sungrow, hours=9)
    device = coordinator.devices[f"unit{SUNGROW_UNIT}"]
    served = sungrow.device_values(SUNGROW_UNIT)
    assert {spec.key for spec in device.profile.channels} == set(SERVED)
    for spec in device.profile.channels:
        state = live_state(hass, entry.entry_id, device.id, spec)
        value = served[SERVED[spec.key]]
        if isinstance(value, str):
            assert state.state == value
            continue
        assert isinstance(value, int | float)
        expected = value * 1000 if spec.key in _KILO else value
        assert float(state.state) == pytest.approx(expected, abs=1e-6), spec.key
    assert served["PVPower"] > 1000


async def _call(hass: HomeAssistant, service: str, data: dict[str, object]) -> None:
    await hass.services.async_call(DOMAIN, service, data, blocking=True)


async def test_each_mode_moves_the_battery_and_stop_releases_it(
    hass: HomeAssistant, sungrow: SiteSimulator
) -> None:
    """Forced charge and discharge at 3 kW and 2 kW, hold at 0 W, auto back to
    self-consumption; unloading writes the release sequence (the forced mode has no timeout)."""
    entry = _entry(sungrow)
    coordinator = await start_site(hass, entry, sungrow, hours=3)
    battery = await _battery(hass, entry)

    await _call(hass, "force_charge", {"device_id": battery, "power": 3000})
    await run_cycles(hass, coordinator, sungrow, 2)
    values = sungrow.device_values(SUNGROW_UNIT)
    assert (values["EMSMode"], values["ChargeCommand"]) == (EMS_FORCED, COMMAND_CHARGE)
    assert sungrow.truth.battery_power_w == pytest.approx(-3000, abs=1)

    await _call(hass, "force_discharge", {"device_id": battery, "power": 2000})
    await run_cycles(hass, coordinator, sungrow, 2)
    assert sungrow.device_values(SUNGROW_UNIT)["ChargeCommand"] == COMMAND_DISCHARGE
    assert sungrow.truth.battery_power_w == pytest.approx(2000, abs=1)

    await _call(hass, "hold", {"device_id": battery})
    await run_cycles(hass, coordinator, sungrow, 2)
    assert sungrow.device_values(SUNGROW_UNIT)["ChargeCommand"] == COMMAND_STOP
    assert sungrow.truth.battery_power_w == pytest.approx(0, abs=1)

    await _call(hass, "force_charge", {"device_id": battery, "power": 1000})
    await run_cycles(hass, coordinator, sungrow, 1)
    assert sungrow.truth.battery_power_w == pytest.approx(-1000, abs=1)
    assert await hass.config_entries.async_unload(entry.entry_id)
    values = sungrow.device_values(SUNGROW_UNIT)
    assert (values["EMSMode"], values["ChargeCommand"], values["ForcedPower"]) == (
        EMS_SELF_CONSUMPTION,
        COMMAND_STOP,
        0,
    )


async def test_a_steady_forced_mode_writes_nothing_after_it_is_set(
    hass: HomeAssistant, sungrow: SiteSimulator
) -> None:
    """With no fallback timer to keep armed, 100 cycles of a steady forced charge write
    nothing after the first; the persisted EMS mode is written once."""
    entry = _entry(sungrow)
    coordinator: EmsCoordinator = await start_site(hass, entry, sungrow, hours=3)
    battery = await _battery(hass, entry)
    await _call(hass, "force_charge", {"device_id": battery, "power": 2500})
    state = coordinator.control.states[f"unit{SUNGROW_UNIT}"]
    after_command = dict(state.writes_by_register)
    assert after_command == {"EMSMode": 1, "ChargeCommand": 1, "ForcedPower": 1}
    await run_cycles(hass, coordinator, sungrow, 100)
    assert state.writes_by_register == after_command
    assert state.persisted_writes == 1
    assert sungrow.truth.battery_power_w == pytest.approx(-2500, abs=1)


async def test_diagnostics_hold_the_register_dump_for_a_report(
    hass: HomeAssistant, sungrow: SiteSimulator
) -> None:
    """The words a Sungrow sent, by function and address, to confirm a model with; the serial
    number's registers are left out."""
    from custom_components.ems.diagnostics import async_get_config_entry_diagnostics

    entry = _entry(sungrow)
    await start_site(hass, entry, sungrow, hours=9)
    dump = await async_get_config_entry_diagnostics(hass, entry)
    (device,) = [d for d in dump["devices"] if d["key"] == f"unit{SUNGROW_UNIT}"]
    registers = device["registers"]
    assert registers["input 4999"] == 0x0E03  # SH10RT
    assert registers["holding 13049"] == EMS_SELF_CONSUMPTION
    assert not any(f"input {address}" in registers for address in range(4989, 4999))


async def test_a_refused_register_releases_the_battery_and_raises_the_repair(
    hass: HomeAssistant, sungrow: SiteSimulator, issue_registry: ir.IssueRegistry
) -> None:
    """The device refuses the forced power (exception 4): the action says so, and after three
    failed cycles ems writes the release sequence (every step it can) and asks the user to
    look; the battery is back in self-consumption. Once the register is accepted again, the
    release completes and the repair goes."""
    entry = _entry(sungrow)
    coordinator = await start_site(hass, entry, sungrow, hours=3)
    battery = await _battery(hass, entry)
    sungrow.faults.exception(SUNGROW_UNIT, "holding", 13051, code=4)
    with pytest.raises(HomeAssistantError) as caught:
        await _call(hass, "force_charge", {"device_id": battery, "power": 3000})
    assert caught.value.translation_key == "write_failed"
    await run_cycles(hass, coordinator, sungrow, 3)
    assert (DOMAIN, f"write_failed_unit{SUNGROW_UNIT}") in issue_registry.issues
    values = sungrow.device_values(SUNGROW_UNIT)
    assert (values["EMSMode"], values["ChargeCommand"]) == (EMS_SELF_CONSUMPTION, COMMAND_STOP)
    assert coordinator.control.states[f"unit{SUNGROW_UNIT}"].command.mode == "auto"
    assert sungrow.truth.battery_mode == "auto"

    sungrow.faults.clear()
    await run_cycles(hass, coordinator, sungrow, 2)
    assert (DOMAIN, f"write_failed_unit{SUNGROW_UNIT}") not in issue_registry.issues
    assert coordinator.control.states[f"unit{SUNGROW_UNIT}"].last_result == "ok"
    assert sungrow.device_values(SUNGROW_UNIT)["EMSMode"] == EMS_SELF_CONSUMPTION
