"""Eastron SDM630 (grid meter) and SDM120 (heat pump meter) register maps.

Input registers, float32, high word first, addresses from Eastron's Modbus protocol documents,
independently of the integration's profiles. Active power > 0 imports. Both meters answer
their whole input range, holes reading 0, as Eastron meters do.
"""

from __future__ import annotations

from collections.abc import Sequence

from simulator.physics import (
    SiteState,
    grid_frequency_hz,
    grid_phase_readings,
    heat_pump_reading,
    line_to_line_voltages,
    neutral_current_a,
)
from simulator.registers import DeviceMap, Function, RegisterDef


def _float_registers(
    layout: Sequence[tuple[int, str]], *, counters: frozenset[str] = frozenset()
) -> list[RegisterDef]:
    return [
        RegisterDef("input", address, "float32", key, counter=key in counters)
        for address, key in layout
    ]


def _per_phase(first_address: int, name: str) -> list[tuple[int, str]]:
    return [(first_address + 2 * phase, f"{name}_L{phase + 1}") for phase in range(3)]


def _serial_number(state: SiteState, unit_id: int) -> int:
    return 26_000_000 + 1000 * unit_id + state.config.seed % 1000


_EASTRON_IDENTITY = (
    RegisterDef("holding", 0xFC00, "uint32", "SerialNumber"),
    RegisterDef("holding", 0xFC02, "uint16", "MeterCode"),
)

# Eastron SDM630 Modbus protocol, input registers (float32, high word first).
_SDM630_COUNTERS = frozenset(
    {
        "EnergyImport",
        "EnergyExport",
        "ReactiveEnergyImport",
        "ReactiveEnergyExport",
        "TotalEnergy",
        *(
            f"Energy{direction}_L{phase}"
            for direction in ("Import", "Export")
            for phase in (1, 2, 3)
        ),
    }
)
_SDM630_INPUTS = (
    *_per_phase(0x0000, "Voltage"),
    *_per_phase(0x0006, "Current"),
    *_per_phase(0x000C, "ActivePower"),
    *_per_phase(0x0012, "ApparentPower"),
    *_per_phase(0x0018, "ReactivePower"),
    *_per_phase(0x001E, "PowerFactor"),
    (0x002A, "Voltage"),
    (0x002E, "Current"),
    (0x0030, "CurrentSum"),
    (0x0034, "ActivePower"),
    (0x0038, "ApparentPower"),
    (0x003C, "ReactivePower"),
    (0x003E, "PowerFactor"),
    (0x0046, "Frequency"),
    (0x0048, "EnergyImport"),
    (0x004A, "EnergyExport"),
    (0x004C, "ReactiveEnergyImport"),
    (0x004E, "ReactiveEnergyExport"),
    (0x00C8, "Voltage_L1_L2"),
    (0x00CA, "Voltage_L2_L3"),
    (0x00CC, "Voltage_L3_L1"),
    (0x00E0, "Current_N"),
    (0x0156, "TotalEnergy"),
    *_per_phase(0x015A, "EnergyImport"),
    *_per_phase(0x0160, "EnergyExport"),
)


def _grid_meter_values(state: SiteState) -> dict[str, float]:
    phases = grid_phase_readings(state)
    counters = state.counters_kwh
    values: dict[str, float] = {"SerialNumber": _serial_number(state, 1), "MeterCode": 0x0070}
    for number, phase in enumerate(phases, start=1):
        values[f"Voltage_L{number}"] = phase.voltage_v
        values[f"Current_L{number}"] = phase.current_a
        values[f"ActivePower_L{number}"] = phase.active_w
        values[f"ApparentPower_L{number}"] = phase.apparent_va
        values[f"ReactivePower_L{number}"] = phase.reactive_var
        values[f"PowerFactor_L{number}"] = phase.power_factor
        values[f"EnergyImport_L{number}"] = counters[f"grid_import_l{number}"]
        values[f"EnergyExport_L{number}"] = counters[f"grid_export_l{number}"]
    voltages = (phases[0].voltage_v, phases[1].voltage_v, phases[2].voltage_v)
    currents = [phase.current_a for phase in phases]
    active = sum(phase.active_w for phase in phases)
    # The meter's total VA is the arithmetic sum of the phase VA, not |sum of phasors|.
    apparent = sum(phase.apparent_va for phase in phases)
    l1_l2, l2_l3, l3_l1 = line_to_line_voltages(voltages)
    values |= {
        "Voltage": sum(voltages) / 3,
        "Current": sum(currents) / 3,
        "CurrentSum": sum(currents),
        "ActivePower": active,
        "ApparentPower": apparent,
        "ReactivePower": sum(phase.reactive_var for phase in phases),
        "PowerFactor": active / apparent if apparent > 0 else 1.0,
        "Frequency": grid_frequency_hz(state),
        "EnergyImport": counters["grid_import"],
        "EnergyExport": counters["grid_export"],
        "ReactiveEnergyImport": counters["reactive_import"],
        "ReactiveEnergyExport": counters["reactive_export"],
        "Voltage_L1_L2": l1_l2,
        "Voltage_L2_L3": l2_l3,
        "Voltage_L3_L1": l3_l1,
        "Current_N": neutral_current_a(phases),
        "TotalEnergy": counters["grid_import"] + counters["grid_export"],
    }
    return values


# Eastron SDM120 Modbus protocol, input registers (float32, high word first).
_SDM120_COUNTERS = frozenset({"EnergyImport", "EnergyExport", "TotalEnergy"})
_SDM120_INPUTS = (
    (0x0000, "Voltage"),
    (0x0006, "Current"),
    (0x000C, "ActivePower"),
    (0x0012, "ApparentPower"),
    (0x0018, "ReactivePower"),
    (0x001E, "PowerFactor"),
    (0x0046, "Frequency"),
    (0x0048, "EnergyImport"),
    (0x004A, "EnergyExport"),
    (0x0156, "TotalEnergy"),
)


def _heat_pump_meter_values(state: SiteState) -> dict[str, float]:
    reading = heat_pump_reading(state)
    energy = state.counters_kwh["heat_pump"]
    return {
        "Voltage": reading.voltage_v,
        "Current": reading.current_a,
        "ActivePower": reading.active_w,
        "ApparentPower": reading.apparent_va,
        "ReactivePower": reading.reactive_var,
        "PowerFactor": reading.power_factor,
        "Frequency": grid_frequency_hz(state),
        "EnergyImport": energy,
        "EnergyExport": 0.0,
        "TotalEnergy": energy,
        "SerialNumber": _serial_number(state, 5),
        "MeterCode": 0x0020,
    }


_SDM630_REGISTERS = (
    *_float_registers(_SDM630_INPUTS, counters=_SDM630_COUNTERS),
    *_EASTRON_IDENTITY,
)
_SDM630_DENSE: dict[Function, range] = {"input": range(0x0180)}

SDM630_GRID_METER = DeviceMap(
    "Eastron SDM630", 1, _SDM630_REGISTERS, _grid_meter_values, dense=_SDM630_DENSE
)


def sdm630_grid_meter_copy(unit_id: int) -> DeviceMap:
    """Another SDM630 serving the grid meter's readings under a serial number of its own.

    For load tests that need many devices: each copy costs a reader as much as the grid meter,
    and the site's physics stay those of one grid connection.
    """

    def values(state: SiteState) -> dict[str, float]:
        return _grid_meter_values(state) | {"SerialNumber": _serial_number(state, unit_id)}

    return DeviceMap("Eastron SDM630", unit_id, _SDM630_REGISTERS, values, dense=_SDM630_DENSE)


SDM120_HEAT_PUMP_METER = DeviceMap(
    "Eastron SDM120",
    5,
    [*_float_registers(_SDM120_INPUTS, counters=_SDM120_COUNTERS), *_EASTRON_IDENTITY],
    _heat_pump_meter_values,
    dense={"input": range(0x015A)},
)
