"""A Sungrow SH10RT hybrid inverter with its battery and its grid meter, on one unit id.

Register map from Sungrow's "Communication Protocol of Residential Hybrid Inverter", V1.1.9
(2025-06-20). The document numbers registers from 1 and sends number - 1 on the wire; the
addresses here are the wire addresses (document number - 1). Running information is in input
registers (FC 4), parameters in holding registers (FC 3, written with FC 6 or FC 16).
32-bit values send the low word first; strings are UTF-8. Signs, as the document and the
site's physics give them: battery power (5214) > 0 discharges, meter power (5601) > 0
imports, export power (13010) > 0 exports.

Control (holding): EMS mode 13050 (0 self-consumption, 2 forced), charge/discharge command
13051 (0xAA charge, 0xBB discharge, 0xCC stop) and forced power 13052 in W. In forced mode
with 0xCC the battery neither charges nor discharges. The forced mode has no timeout of its
own: it stays until it is written again. The forced power is capped by the maximum charge and
discharge powers (33047, 33048, in 0.01 kW) and by the battery's rating.

Keys: the document's quantities in ems-neutral words ("BatteryPower", "EMSMode").
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from simulator.physics import (
    STORAGE_CHARGE,
    STORAGE_DISCHARGE,
    SiteModel,
    SiteState,
    grid_frequency_hz,
    phase_voltages,
    pv_dc_side,
)
from simulator.registers import DeviceMap, NumericType, RegisterDef, Value

SUNGROW_UNIT = 2
SH10RT = 0x0E03  # the device type code of an SH10RT (the document's appendix 1)
EMS_SELF_CONSUMPTION = 0
EMS_FORCED = 2
COMMAND_CHARGE = 0xAA
COMMAND_DISCHARGE = 0xBB
COMMAND_STOP = 0xCC
RUNNING = 0x0000
RUNNING_FORCED = 0x0800
_BATTERY_V = 51.2 * 4  # a high-voltage stack


def _input(
    address: int, data_type: NumericType, key: str, scale_exp: int = 0, *, counter: bool = False
) -> RegisterDef:
    # Sungrow sends a 32-bit value's low word first (the document's section 1.1).
    return RegisterDef(
        "input", address, data_type, key, scale_exp=scale_exp, counter=counter, word_order="little"
    )


def _holding(address: int, key: str, scale_exp: int = 0, *, writable: bool = True) -> RegisterDef:
    return RegisterDef("holding", address, "uint16", key, scale_exp=scale_exp, writable=writable)


REGISTERS = (
    RegisterDef("input", 4989, "string", "SerialNumber", length=10),  # 20 UTF-8 characters
    _input(4999, "uint16", "DeviceTypeCode"),
    _input(5000, "uint16", "NominalPower", -1),  # 0.1 kW
    _input(5003, "acc32", "TotalOutputEnergy", -1, counter=True),  # 0.1 kWh
    _input(5007, "int16", "InverterTemperature", -1),
    _input(5010, "uint16", "MPPT1Voltage", -1),
    _input(5011, "uint16", "MPPT1Current", -1),
    _input(5012, "uint16", "MPPT2Voltage", -1),
    _input(5013, "uint16", "MPPT2Current", -1),
    _input(5016, "uint32", "PVPower"),
    _input(5018, "uint16", "PhaseAVoltage", -1),
    _input(5019, "uint16", "PhaseBVoltage", -1),
    _input(5020, "uint16", "PhaseCVoltage", -1),
    _input(5213, "int32", "BatteryPower"),
    _input(5241, "uint16", "GridFrequency", -2),
    _input(5600, "int32", "MeterPower"),
    _input(5627, "uint16", "BDCRatedPower", -1),  # 0.1 kW
    _input(5630, "int16", "BatteryCurrent", -1),
    _input(12999, "uint16", "RunningState"),
    _input(13002, "acc32", "TotalPVGeneration", -1, counter=True),
    _input(13007, "int32", "LoadPower"),
    _input(13009, "int32", "ExportPower"),
    _input(13019, "uint16", "BatteryVoltage", -1),
    _input(13022, "uint16", "BatterySOC", -1),
    _input(13023, "uint16", "BatterySOH", -1),
    _input(13024, "int16", "BatteryTemperature", -1),
    _input(13026, "acc32", "TotalBatteryDischarge", -1, counter=True),
    _input(13033, "int32", "TotalActivePower"),
    _input(13036, "acc32", "TotalImportEnergy", -1, counter=True),
    _input(13040, "acc32", "TotalBatteryCharge", -1, counter=True),
    _input(13045, "acc32", "TotalExportEnergy", -1, counter=True),
    _holding(13049, "EMSMode"),
    _holding(13050, "ChargeCommand"),
    _holding(13051, "ForcedPower"),  # W
    _holding(13057, "MaxSOC", -1, writable=False),
    _holding(13058, "MinSOC", -1),
    _holding(13099, "BackupReserveSOC", writable=False),
    _holding(33046, "MaxChargePower", 1, writable=False),  # 0.01 kW = 10 W
    _holding(33047, "MaxDischargePower", 1, writable=False),
)


def _controls(state: SiteState) -> dict[str, float]:
    """The EMS mode, command and forced power, as the battery inverter's state holds them: the
    physics keep one state per site, so two simulators never share a setting."""
    controls = state.storage_controls
    config = state.config
    charge = bool(controls.mode & STORAGE_CHARGE)
    discharge = bool(controls.mode & STORAGE_DISCHARGE)
    if not controls.mode:
        return {"EMSMode": EMS_SELF_CONSUMPTION, "ChargeCommand": COMMAND_STOP, "ForcedPower": 0.0}
    if charge and not discharge:
        power = controls.charge_rate_pct * config.battery_max_charge_w / 100.0
        return {"EMSMode": EMS_FORCED, "ChargeCommand": COMMAND_CHARGE, "ForcedPower": power}
    if discharge and not charge:
        power = controls.discharge_rate_pct * config.battery_max_discharge_w / 100.0
        return {"EMSMode": EMS_FORCED, "ChargeCommand": COMMAND_DISCHARGE, "ForcedPower": power}
    return {"EMSMode": EMS_FORCED, "ChargeCommand": COMMAND_STOP, "ForcedPower": 0.0}


def _values(state: SiteState) -> dict[str, Value]:
    config = state.config
    flows = state.flows
    settings = _controls(state)
    dc_v, dc_a = pv_dc_side(flows.pv_w, config.pv_kwp)
    voltages = phase_voltages(state)
    counters = state.counters_kwh
    forced = settings["EMSMode"] == EMS_FORCED
    return {
        "SerialNumber": "A2231234567",
        "DeviceTypeCode": SH10RT,
        "NominalPower": 10.0,
        "TotalOutputEnergy": counters["pv"] + counters["battery_discharged"],
        "InverterTemperature": 30.0 + 15.0 * flows.pv_w / (config.pv_kwp * 1000.0),
        # Two equal strings, each half the array: the same voltage, half the current.
        "MPPT1Voltage": dc_v,
        "MPPT1Current": dc_a / 2,
        "MPPT2Voltage": dc_v,
        "MPPT2Current": dc_a / 2,
        "PVPower": flows.pv_w,
        "PhaseAVoltage": voltages[0],
        "PhaseBVoltage": voltages[1],
        "PhaseCVoltage": voltages[2],
        "BatteryPower": flows.battery_w,
        "GridFrequency": grid_frequency_hz(state),
        "MeterPower": flows.grid_w,
        "BDCRatedPower": config.battery_max_charge_w / 1000.0,
        "BatteryCurrent": -flows.battery_w / _BATTERY_V,
        "RunningState": RUNNING_FORCED if forced else RUNNING,
        "TotalPVGeneration": counters["pv"],
        "LoadPower": flows.load_w,
        "ExportPower": -flows.grid_w,
        "BatteryVoltage": _BATTERY_V,
        "BatterySOC": state.soc_pct,
        "BatterySOH": 98.0,
        "BatteryTemperature": 24.0,
        "TotalBatteryDischarge": counters["battery_discharged"],
        "TotalActivePower": flows.pv_w + flows.battery_w,
        "TotalImportEnergy": counters["grid_import"],
        "TotalBatteryCharge": counters["battery_charged"],
        "TotalExportEnergy": counters["grid_export"],
        **settings,
        "MinSOC": state.storage_controls.reserve_pct,
        "MaxSOC": 100.0,
        "BackupReserveSOC": 0.0,
        "MaxChargePower": config.battery_max_charge_w,
        "MaxDischargePower": config.battery_max_discharge_w,
    }


def _apply_writes(model: SiteModel, written: Mapping[str, Value]) -> None:
    """Parameter writes; the battery follows the EMS mode, command and power at once."""
    settings = _controls(model.state())
    reserve = model.storage_controls.reserve_pct
    for key, value in written.items():
        if not isinstance(value, int | float):
            raise ValueError(f"{key} takes a number")  # noqa: TRY004 - the bank maps ValueError to exception 3
        if key == "EMSMode" and value not in (EMS_SELF_CONSUMPTION, EMS_FORCED):
            raise ValueError(f"EMS mode {value} is not simulated")
        if key == "ChargeCommand" and value not in (
            COMMAND_CHARGE,
            COMMAND_DISCHARGE,
            COMMAND_STOP,
        ):
            raise ValueError(f"command {value:#x} is not defined")
        if key == "MinSOC":
            if not 0 <= value <= 50:
                raise ValueError("the minimum SoC is 0..50 %")
            reserve = float(value)
            continue
        settings[key] = float(value)
    controls = replace(model.storage_controls, revert_s=0.0, reserve_pct=reserve)
    config = model.config
    power = settings["ForcedPower"]
    command = settings["ChargeCommand"]
    if settings["EMSMode"] != EMS_FORCED:
        controls = replace(controls, mode=0)
    elif command == COMMAND_CHARGE:
        rate = min(power / config.battery_max_charge_w * 100.0, 100.0)
        controls = replace(
            controls, mode=STORAGE_CHARGE, charge_rate_pct=rate, discharge_rate_pct=0.0
        )
    elif command == COMMAND_DISCHARGE:
        rate = min(power / config.battery_max_discharge_w * 100.0, 100.0)
        controls = replace(
            controls, mode=STORAGE_DISCHARGE, discharge_rate_pct=rate, charge_rate_pct=0.0
        )
    else:
        both = STORAGE_CHARGE | STORAGE_DISCHARGE
        controls = replace(controls, mode=both, charge_rate_pct=0.0, discharge_rate_pct=0.0)
    model.set_storage_controls(controls, control_write=True)


SUNGROW_HYBRID = DeviceMap(
    "Sungrow SH10RT", SUNGROW_UNIT, REGISTERS, _values, apply_writes=_apply_writes
)
