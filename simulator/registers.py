"""Register encoding and the register maps of the simulated devices, as data.

Addresses are 0-based protocol addresses (what goes on the wire), taken from the
manufacturers' documentation, independently of the integration's profiles.

Units served:
- 1: Eastron SDM630 grid meter (input registers, float32, + import);
- 2: PV inverter (simple holding map, to be replaced by SunSpec);
- 3: battery inverter (simple holding map with writable control registers);
- 5: Eastron SDM120 metering the heat pump.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
import struct
from typing import Literal

from simulator.physics import (
    BatteryMode,
    SiteModel,
    SiteState,
    grid_frequency_hz,
    grid_phase_readings,
    heat_pump_reading,
    line_to_line_voltages,
    neutral_current_a,
    pv_dc_side,
)

Function = Literal["input", "holding"]
DataType = Literal["uint16", "int16", "uint32", "int32", "float32"]
WordOrder = Literal["big", "little"]

_STRUCT_FORMATS: dict[DataType, str] = {
    "uint16": ">H",
    "int16": ">h",
    "uint32": ">I",
    "int32": ">i",
    "float32": ">f",
}
_INTEGER_RANGES: dict[DataType, tuple[int, int]] = {
    "uint16": (0, 0xFFFF),
    "int16": (-0x8000, 0x7FFF),
    "uint32": (0, 0xFFFF_FFFF),
    "int32": (-0x8000_0000, 0x7FFF_FFFF),
}


def word_count(data_type: DataType) -> int:
    """Number of 16-bit registers a value of this type occupies."""
    return struct.calcsize(_STRUCT_FORMATS[data_type]) // 2


def encode(value: float, data_type: DataType, word_order: WordOrder = "big") -> list[int]:
    """Raw value to 16-bit words; integer types saturate like a device clamping its reading."""
    if data_type == "float32":
        packed = struct.pack(">f", value)
    else:
        low, high = _INTEGER_RANGES[data_type]
        packed = struct.pack(_STRUCT_FORMATS[data_type], min(max(round(value), low), high))
    words = [int.from_bytes(packed[i : i + 2]) for i in range(0, len(packed), 2)]
    return words[::-1] if word_order == "little" else words


def decode(words: Sequence[int], data_type: DataType, word_order: WordOrder = "big") -> float:
    """16-bit words back to the raw value."""
    ordered = list(words)[::-1] if word_order == "little" else list(words)
    packed = b"".join(word.to_bytes(2) for word in ordered)
    value: float = struct.unpack(_STRUCT_FORMATS[data_type], packed)[0]
    return value


@dataclass(frozen=True, slots=True)
class RegisterDef:
    """One value in a device's register map: physical value = raw x 10**scale_exp."""

    function: Function
    address: int
    data_type: DataType
    key: str
    scale_exp: int = 0
    counter: bool = False  # an energy total that only grows; a meter reset zeroes it
    writable: bool = False
    word_order: WordOrder = "big"

    @property
    def addresses(self) -> range:
        """The register addresses this value occupies."""
        return range(self.address, self.address + word_count(self.data_type))

    def quantize(self, value: float) -> float:
        """The value as the register can express it: float32 precision or integer steps."""
        return self._from_raw(self._to_raw(value))

    def to_words(self, value: float) -> list[int]:
        """Physical value to the words on the wire."""
        return encode(self._to_raw(value), self.data_type, self.word_order)

    def from_words(self, words: Sequence[int]) -> float:
        """Words on the wire to the physical value."""
        return self._from_raw(decode(words, self.data_type, self.word_order))

    def _to_raw(self, value: float) -> float:
        if self.data_type == "float32":
            return float(struct.unpack(">f", struct.pack(">f", value))[0])
        low, high = _INTEGER_RANGES[self.data_type]
        return min(max(round(value / 10.0**self.scale_exp), low), high)

    def _from_raw(self, raw: float) -> float:
        if self.data_type == "float32":
            return raw
        # Dividing by a power of ten gives the closest double to e.g. 50.3; multiplying by
        # 0.1 would not.
        factor = int(10 ** abs(self.scale_exp))
        if self.scale_exp < 0:
            return raw / factor
        return int(raw) * factor


ValueSource = Callable[[SiteState], dict[str, float]]
WriteSink = Callable[[SiteModel, Mapping[str, float]], None]


class DeviceMap:
    """A device: its register layout and how its values follow from the site state.

    `dense` lists address ranges the device answers in full, holes reading 0 (Eastron meters
    do that over their input range). Elsewhere only addresses of defined registers answer.
    """

    def __init__(
        self,
        model: str,
        unit_id: int,
        registers: Sequence[RegisterDef],
        read_values: ValueSource,
        *,
        dense: Mapping[Function, range] | None = None,
        apply_writes: WriteSink | None = None,
    ) -> None:
        """Index the registers by key and by address."""
        self.model = model
        self.unit_id = unit_id
        self.registers = tuple(registers)
        self.read_values = read_values
        self.apply_writes = apply_writes
        self._by_key = {register.key: register for register in self.registers}
        self._owners: dict[tuple[Function, int], RegisterDef] = {
            (register.function, address): register
            for register in self.registers
            for address in register.addresses
        }
        dense = dense or {}
        self._served: dict[Function, frozenset[int]] = {
            function: frozenset(dense.get(function, ()))
            | {address for (owner_function, address) in self._owners if owner_function == function}
            for function in ("input", "holding")
        }

    def register(self, key: str) -> RegisterDef:
        """The register serving `key`."""
        try:
            return self._by_key[key]
        except KeyError:
            raise KeyError(f"{self.model} has no register {key!r}") from None

    def serves(self, function: Function, addresses: range) -> bool:
        """Whether the device answers a request for all of `addresses`."""
        return self._served[function].issuperset(addresses)

    def span(self, function: Function, address: int) -> range:
        """Addresses of the register starting at `address`, else just that address."""
        register = self._owners.get((function, address))
        if register is not None and register.address == address:
            return register.addresses
        return range(address, address + 1)

    def words(self, values: Mapping[str, float], function: Function, addresses: range) -> list[int]:
        """The words a read of `addresses` returns; holes read 0."""
        encoded: dict[str, list[int]] = {}
        words: list[int] = []
        for address in addresses:
            register = self._owners.get((function, address))
            if register is None:
                words.append(0)
                continue
            if register.key not in encoded:
                encoded[register.key] = register.to_words(values[register.key])
            words.append(encoded[register.key][address - register.address])
        return words

    def decode_write(self, addresses: range, words: Sequence[int]) -> dict[str, float] | None:
        """Values written to whole writable holding registers; None if the write is illegal."""
        written: dict[str, float] = {}
        for register in {self._owners.get(("holding", address)) for address in addresses}:
            if register is None or not register.writable:
                return None
            if not set(register.addresses).issubset(addresses):
                return None
            offset = register.address - addresses.start
            written[register.key] = register.from_words(
                words[offset : offset + len(register.addresses)]
            )
        return written


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


# Operating states as SunSpec numbers them, so the later SunSpec map keeps the meaning.
PV_STATUS_SLEEPING = 2
PV_STATUS_MPPT = 4

_PV_REGISTERS = (
    RegisterDef("holding", 0, "uint32", "AC_Power"),
    RegisterDef("holding", 2, "uint32", "EnergyGenerated", counter=True),
    RegisterDef("holding", 4, "uint16", "DC_Voltage", scale_exp=-1),
    RegisterDef("holding", 5, "uint16", "DC_Current", scale_exp=-2),
    RegisterDef("holding", 6, "uint16", "Status"),
)


def _pv_inverter_values(state: SiteState) -> dict[str, float]:
    pv_w = state.flows.pv_w
    dc_voltage, dc_current = pv_dc_side(pv_w, state.config.pv_kwp)
    return {
        "AC_Power": pv_w,
        "EnergyGenerated": state.counters_kwh["pv"] * 1000.0,
        "DC_Voltage": dc_voltage,
        "DC_Current": dc_current,
        "Status": PV_STATUS_MPPT if pv_w > 0 else PV_STATUS_SLEEPING,
    }


BATTERY_STATUS_IDLE = 0
BATTERY_STATUS_CHARGING = 1
BATTERY_STATUS_DISCHARGING = 2
BATTERY_MODE_CODES: Mapping[BatteryMode, int] = {
    BatteryMode.AUTO: 0,
    BatteryMode.CHARGE: 1,
    BatteryMode.DISCHARGE: 2,
    BatteryMode.HOLD: 3,
}

_BATTERY_REGISTERS = (
    RegisterDef("holding", 0, "int32", "ActivePower"),
    RegisterDef("holding", 2, "uint16", "SOC", scale_exp=-1),
    RegisterDef("holding", 3, "uint32", "EnergyCharged", counter=True),
    RegisterDef("holding", 5, "uint32", "EnergyDischarged", counter=True),
    RegisterDef("holding", 7, "uint16", "Capacity", scale_exp=1),
    RegisterDef("holding", 8, "uint16", "Status"),
    RegisterDef("holding", 100, "uint16", "ControlMode", writable=True),
    RegisterDef("holding", 101, "uint16", "ControlPower", writable=True),
)


def _battery_values(state: SiteState) -> dict[str, float]:
    battery_w = state.flows.battery_w
    # Below the 1 W register resolution the battery reads as idle.
    if battery_w <= -0.5:
        status = BATTERY_STATUS_CHARGING
    elif battery_w >= 0.5:
        status = BATTERY_STATUS_DISCHARGING
    else:
        status = BATTERY_STATUS_IDLE
    counters = state.counters_kwh
    return {
        "ActivePower": battery_w,
        "SOC": state.soc_pct,
        "EnergyCharged": counters["battery_charged"] * 1000.0,
        "EnergyDischarged": counters["battery_discharged"] * 1000.0,
        "Capacity": state.config.battery_capacity_kwh * 1000.0,
        "Status": status,
        "ControlMode": BATTERY_MODE_CODES[state.battery_command.mode],
        "ControlPower": state.battery_command.power_w,
    }


def _apply_battery_writes(model: SiteModel, written: Mapping[str, float]) -> None:
    """Pass control register writes to the battery; a mode write keeps the power and back."""
    command = model.battery_command
    mode = command.mode
    if "ControlMode" in written:
        modes = {code: mode for mode, code in BATTERY_MODE_CODES.items()}
        code = int(written["ControlMode"])
        if code not in modes:
            raise ValueError(f"unknown battery control mode {code}")
        mode = modes[code]
    model.set_battery_command(mode, written.get("ControlPower", command.power_w))


DEVICES: Mapping[int, DeviceMap] = {
    device.unit_id: device
    for device in (
        DeviceMap(
            "Eastron SDM630",
            1,
            [*_float_registers(_SDM630_INPUTS, counters=_SDM630_COUNTERS), *_EASTRON_IDENTITY],
            _grid_meter_values,
            dense={"input": range(0x0180)},
        ),
        DeviceMap("PV inverter", 2, _PV_REGISTERS, _pv_inverter_values),
        DeviceMap(
            "Battery inverter",
            3,
            _BATTERY_REGISTERS,
            _battery_values,
            apply_writes=_apply_battery_writes,
        ),
        DeviceMap(
            "Eastron SDM120",
            5,
            [*_float_registers(_SDM120_INPUTS, counters=_SDM120_COUNTERS), *_EASTRON_IDENTITY],
            _heat_pump_meter_values,
            dense={"input": range(0x015A)},
        ),
    )
}
