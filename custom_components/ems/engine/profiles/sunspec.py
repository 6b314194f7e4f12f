"""SunSpec: turn a discovered model chain into a device profile.

The point layout (offsets, types, scale factors, units) comes from the SunSpec Alliance's own
model definitions shipped in `pysunspec2`; this module only says which points become which
channels, in the seed's parameter names.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import cache
from importlib import resources
import json
from typing import Any

from ..model import (
    Access,
    ChannelKind,
    ChannelSpec,
    DataType,
    DeviceProfile,
    DeviceType,
    PollGroup,
    Register,
    RegisterFunction,
)
from .loader import COUNTER_UNITS

SUNSPEC_BASES = (40000, 0, 50000)
SUNSPEC_MARKER = (0x5375, 0x6E53)  # "SunS"
END_OF_CHAIN = 0xFFFF
COMMON_MODEL = 1
INVERTER_MODELS = frozenset({101, 102, 103, 111, 112, 113})
METER_MODELS = frozenset({201, 202, 203, 204, 211, 212, 213, 214})
STORAGE_CONTROL_MODEL = 124
BATTERY_MODEL = 802
SUPPORTED_MODELS = frozenset(
    {COMMON_MODEL, STORAGE_CONTROL_MODEL, BATTERY_MODEL} | INVERTER_MODELS | METER_MODELS
)

_TYPES: dict[str, tuple[DataType, tuple[int, ...]]] = {
    # SunSpec type: (how to decode, the values that mean "not implemented")
    "int16": (DataType.INT16, (0x8000,)),
    "uint16": (DataType.UINT16, (0xFFFF,)),
    "acc16": (DataType.UINT16, (0,)),
    "enum16": (DataType.UINT16, (0xFFFF,)),
    "bitfield16": (DataType.UINT16, (0xFFFF,)),
    "int32": (DataType.INT32, (0x80000000,)),
    "uint32": (DataType.UINT32, (0xFFFFFFFF,)),
    "acc32": (DataType.UINT32, (0,)),
    "enum32": (DataType.UINT32, (0xFFFFFFFF,)),
    "bitfield32": (DataType.UINT32, (0xFFFFFFFF,)),
    "int64": (DataType.INT64, (0x8000000000000000,)),
    "uint64": (DataType.UINT64, (0xFFFFFFFFFFFFFFFF,)),
    "acc64": (DataType.UINT64, (0,)),
    "float32": (DataType.FLOAT32, (0x7FC00000,)),
    "float64": (DataType.FLOAT64, ()),
    "string": (DataType.STRING, ()),
}
# "PF" (float meters 211-214) is a plain ratio, as Eastron's power factor; pint would read it as
# petafarad.
_UNITS: dict[str, str | None] = {
    "C": "°C", "Secs": "s", "AH": "Ah", "VAr": "var", "Pct": "%", "PF": None
}  # fmt: skip

# Which points become channels. Later models in a chain do not override a key that an
# earlier, more specific one already gave (802's SoC wins over 124's ChaState).
_IDENTITY = {"Mn": "Manufacturer", "Md": "Model", "Vr": "Version", "SN": "SerialNumber"}
_INVERTER = {
    "A": "Current", "AphA": "Current_L1", "AphB": "Current_L2", "AphC": "Current_L3",
    "PPVphAB": "Voltage_L1_L2", "PPVphBC": "Voltage_L2_L3", "PPVphCA": "Voltage_L3_L1",
    "PhVphA": "Voltage_L1", "PhVphB": "Voltage_L2", "PhVphC": "Voltage_L3",
    "W": "AC_Power", "Hz": "Frequency", "VA": "ApparentPower", "VAr": "ReactivePower",
    "PF": "PowerFactor", "WH": "EnergyGenerated", "DCA": "DC_Current", "DCV": "DC_Voltage",
    "DCW": "DC_Power", "TmpCab": "Temperature", "St": "Status", "Evt1": "Fault",
}  # fmt: skip
_METER = {
    "A": "Current", "AphA": "Current_L1", "AphB": "Current_L2", "AphC": "Current_L3",
    "PhV": "Voltage", "PhVphA": "Voltage_L1", "PhVphB": "Voltage_L2", "PhVphC": "Voltage_L3",
    "PhVphAB": "Voltage_L1_L2", "PhVphBC": "Voltage_L2_L3", "PhVphCA": "Voltage_L3_L1",
    # Models 201 and 211-214 name the line-to-line voltages as the inverter models do.
    "PPVphAB": "Voltage_L1_L2", "PPVphBC": "Voltage_L2_L3", "PPVphCA": "Voltage_L3_L1",
    "Hz": "Frequency", "W": "ActivePower", "WphA": "ActivePower_L1", "WphB": "ActivePower_L2",
    "WphC": "ActivePower_L3", "VA": "ApparentPower", "VAphA": "ApparentPower_L1",
    "VAphB": "ApparentPower_L2", "VAphC": "ApparentPower_L3", "VAR": "ReactivePower",
    "VARphA": "ReactivePower_L1", "VARphB": "ReactivePower_L2", "VARphC": "ReactivePower_L3",
    "PF": "PowerFactor", "PFphA": "PowerFactor_L1", "PFphB": "PowerFactor_L2",
    "PFphC": "PowerFactor_L3", "TotWhExp": "EnergyExport", "TotWhImp": "EnergyImport",
    "Evt": "Fault",
}  # fmt: skip
_STORAGE_CONTROL = {
    "WChaMax": "MaxChargePower", "StorCtl_Mod": "StorageControlMode", "MinRsvPct": "ReserveSOC",
    "ChaState": "SOC", "InBatV": "DC_Voltage", "ChaSt": "ChargeStatus",
    "OutWRte": "DischargeRate", "InWRte": "ChargeRate", "InOutWRte_RvrtTms": "RevertTimeout",
}  # fmt: skip
_BATTERY = {
    "WHRtg": "Capacity", "WChaRteMax": "MaxChargePower", "WDisChaRteMax": "MaxDischargePower",
    "SoC": "SOC", "SoH": "SOH", "ChaSt": "ChargeStatus", "V": "DC_Voltage", "A": "DC_Current",
    "W": "ActivePower", "Evt1": "Fault",
}  # fmt: skip
# Ratings and identity never change while a device runs.
_SLOW_KEYS = frozenset(
    {"Capacity", "MaxChargePower", "MaxDischargePower", "SOH", *_IDENTITY.values()}
)
_STATE_KEYS = frozenset({"Status", "Fault", "ChargeStatus", "StorageControlMode"})
_RANGES: dict[str, tuple[float, float]] = {
    "SOC": (0, 100),
    "SOH": (0, 100),
    "ReserveSOC": (0, 100),
    "Frequency": (40, 70),
    "PowerFactor": (-100, 100),
}


@dataclass(frozen=True, kw_only=True, slots=True)
class ModelInstance:
    """One model found on a device: its id, where its ID register is, and its length."""

    model_id: int
    address: int
    length: int


def _points_for(model_id: int) -> dict[str, str]:
    if model_id == COMMON_MODEL:
        return _IDENTITY
    if model_id in INVERTER_MODELS:
        return _INVERTER
    if model_id in METER_MODELS:
        return _METER
    if model_id == STORAGE_CONTROL_MODEL:
        return _STORAGE_CONTROL
    if model_id == BATTERY_MODEL:
        return _BATTERY
    return {}


@cache
def model_definition(model_id: int) -> dict[str, Any]:
    """The SunSpec Alliance's definition of a model (from pysunspec2)."""
    path = resources.files("sunspec2") / "models" / "json" / f"model_{model_id}.json"
    definition: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))["group"]
    return definition


def preload_definitions() -> None:
    """Read every supported model's definition now: they are files, and a caller on an event
    loop must not wait on a disk (Home Assistant runs this in its executor)."""
    for model_id in SUPPORTED_MODELS:
        model_definition(model_id)


def _offsets(definition: dict[str, Any]) -> dict[str, tuple[int, dict[str, Any]]]:
    """Each top-level point's offset from the model's ID register."""
    offsets: dict[str, tuple[int, dict[str, Any]]] = {}
    offset = 0
    for point in definition["points"]:
        offsets[point["name"]] = (offset, point)
        offset += int(point["size"])
    return offsets


def device_type_for(chain: list[ModelInstance]) -> DeviceType:
    """What kind of device a chain describes."""
    ids = {model.model_id for model in chain}
    if ids & {STORAGE_CONTROL_MODEL, BATTERY_MODEL}:
        return DeviceType.BATTERY
    if ids & INVERTER_MODELS:
        return DeviceType.INVERTER
    return DeviceType.METER


def build_profile(chain: list[ModelInstance]) -> DeviceProfile:
    """A profile for exactly the supported models a device reported."""
    ordered = sorted(chain, key=lambda model: (model.model_id != BATTERY_MODEL, model.address))
    channels: dict[str, ChannelSpec] = {}
    for model in ordered:
        for spec in _channels(model):
            channels.setdefault(spec.key, spec)
    models = "+".join(str(model.model_id) for model in chain)
    return DeviceProfile(
        id=f"sunspec_{models.replace('+', '_')}",
        manufacturer="SunSpec",
        model=f"SunSpec {models}",
        device_type=device_type_for(chain),
        channels=tuple(channels.values()),
        source="sunspec",
    )


def _channels(model: ModelInstance) -> list[ChannelSpec]:
    mapping = _points_for(model.model_id)
    if not mapping:
        return []
    offsets = _offsets(model_definition(model.model_id))
    specs: list[ChannelSpec] = []
    for point_name, key in mapping.items():
        if point_name not in offsets:
            continue
        offset, point = offsets[point_name]
        if offset + int(point["size"]) > model.length + 2:
            continue  # a shorter (older) revision of the model ends before this point
        scale_register = None
        if sf_name := point.get("sf"):
            if not isinstance(sf_name, str) or sf_name not in offsets:
                continue
            scale_register = model.address + offsets[sf_name][0]
        spec = _spec(key, model.address + offset, point, scale_register)
        specs.append(replace(spec, origin=f"{model.model_id}.{point_name}"))
    return specs


def _spec(key: str, address: int, point: dict[str, Any], scale_register: int | None) -> ChannelSpec:
    data_type, sentinels = _TYPES[point["type"]]
    unit = _unit(point.get("units"))
    if data_type is DataType.STRING:
        kind = ChannelKind.IDENTITY
    elif key in _STATE_KEYS:
        kind = ChannelKind.STATE
    elif point["type"].startswith("acc") or unit in COUNTER_UNITS:
        # Float models (111-113, 211-214) keep their energy totals in float32, not acc32.
        kind = ChannelKind.COUNTER
    else:
        kind = ChannelKind.MEASUREMENT
    minimum, maximum = _RANGES.get(key, (None, None))
    return ChannelSpec(
        key=key,
        unit=None if kind is ChannelKind.STATE else unit,
        kind=kind,
        register=Register(
            function=RegisterFunction.HOLDING,
            address=address,
            data_type=data_type,
            length=int(point["size"]) if data_type is DataType.STRING else None,
            scale_register=scale_register,
            sentinels=sentinels,
        ),
        access=Access.READ_WRITE if point.get("access") == "RW" else Access.READ_ONLY,
        poll=PollGroup.SLOW if key in _SLOW_KEYS else PollGroup.FAST,
        minimum=minimum,
        maximum=maximum,
    )


def _unit(raw: object) -> str | None:
    if not isinstance(raw, str) or not raw.strip():
        return None
    unit = raw.strip()
    if unit.startswith("%"):
        return "%"
    return _UNITS.get(unit, unit)
