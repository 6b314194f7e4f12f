"""SunSpec: turn a discovered model chain into a device profile.

The point layout (offsets, types, scale factors, units) comes from the SunSpec Alliance's own
model definitions shipped in `pysunspec2`; this module only says which points become which
channels, in the seed's parameter names.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from dataclasses import dataclass
from functools import cache
from importlib import resources
import json
import re
from typing import Any

import yaml

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
    Symbols,
)
from .loader import COUNTER_UNITS, recipe_of

SUNSPEC_BASES = (40000, 0, 50000)
SUNSPEC_MARKER = (0x5375, 0x6E53)  # "SunS"
END_OF_CHAIN = 0xFFFF
COMMON_MODEL = 1
INVERTER_MODELS = frozenset({101, 102, 103, 111, 112, 113})
METER_MODELS = frozenset({201, 202, 203, 204, 211, 212, 213, 214})
STORAGE_CONTROL_MODEL = 124
BATTERY_MODEL = 802
# Nameplate (120), basic settings (121), extended status (122) and immediate controls (123).
INVERTER_DETAIL_MODELS = frozenset({120, 121, 122, 123})
MPPT_MODEL = 160
SUPPORTED_MODELS = frozenset(
    {COMMON_MODEL, STORAGE_CONTROL_MODEL, BATTERY_MODEL, MPPT_MODEL}
    | INVERTER_MODELS
    | METER_MODELS
    | INVERTER_DETAIL_MODELS
)
# A generous bound on model 160's repeating module: a chain whose length claims more is
# garbage, and its first modules are still read.
MAX_MPPT_MODULES = 64

_TYPES: dict[str, tuple[DataType, tuple[int, ...]]] = {
    # SunSpec type: (how to decode, the values that mean "not implemented")
    "int16": (DataType.INT16, (0x8000,)),
    "uint16": (DataType.UINT16, (0xFFFF,)),
    "count": (DataType.UINT16, (0xFFFF,)),
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
# "cos()" (the power-factor settings of 120, 121 and 123) is a ratio as well.
_UNITS: dict[str, str | None] = {
    "C": "°C", "Secs": "s", "AH": "Ah", "VAr": "var", "Pct": "%", "PF": None, "cos()": None,
    "ohms": "Ω",
}  # fmt: skip

# Every point becomes a channel. These maps give the ones ems computes with their
# engineering names; the others keep the standard's, "<model>.<point>" ("103.TmpSnk"). A
# later model in a chain does not take a name that an earlier, more specific one already gave
# (802's SoC wins over 124's ChaState, which stays "124.ChaState").
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
# Model 160's module points with engineering names: "PV2_Voltage".
_MPPT_MODULE = {"DCV": "Voltage", "DCA": "Current", "DCW": "Power", "DCWH": "Energy"}
# Ratings and identity never change while a device runs; nameplate, settings and extended
# status change rarely, and a slow read of them keeps the fast cycle short.
_SLOW_KEYS = frozenset(
    {"Capacity", "MaxChargePower", "MaxDischargePower", "SOH", *_IDENTITY.values()}
)
# Plain counts that only grow: a battery's charge cycles.
_COUNTS = frozenset({"NCyc"})
_SLOW_MODELS = frozenset({COMMON_MODEL, *INVERTER_DETAIL_MODELS})
_SLOW_POINTS = frozenset({"AHRtg", "WHRtg", "WChaRteMax", "WDisChaRteMax", "WarrDt", "Typ",
                          "IDStr"})  # fmt: skip
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
    _storage_recipe()


@dataclass(frozen=True, slots=True)
class _Point:
    """One point where a model instance lays it out."""

    name: str
    origin: str  # "103.TmpSnk"; a repeating group's point "160.2.DCV"
    offset: int  # registers from the model's ID register
    definition: dict[str, Any]
    scale_offset: int | None  # the scale-factor point's offset, when it has one
    module: int | None = None  # the repeat's number (1, 2, ...) in a repeating group


def _sizes(points: list[dict[str, Any]]) -> int:
    return sum(int(point["size"]) for point in points)


def _offsets(points: list[dict[str, Any]], start: int = 0) -> dict[str, tuple[int, dict[str, Any]]]:
    """Each point's offset from the model's ID register."""
    offsets: dict[str, tuple[int, dict[str, Any]]] = {}
    offset = start
    for point in points:
        offsets[point["name"]] = (offset, point)
        offset += int(point["size"])
    return offsets


def _layout(model: ModelInstance) -> Iterator[_Point]:
    """Every point the instance holds within its length, groups repeated as the length says.

    A point past the length belongs to a newer revision than the device's, and is left out; a
    scale factor is looked up in the point's own group, then at the top level.
    """
    definition = model_definition(model.model_id)
    end = model.length + 2
    top = _offsets(definition["points"])
    for name, (offset, point) in top.items():
        if offset + int(point["size"]) <= end:
            yield _Point(name, f"{model.model_id}.{name}", offset, point, _scale(point, top))
    start = _sizes(definition["points"])
    for group in definition.get("groups", ()):
        size = _sizes(group["points"])
        repeats = int(group.get("count") or 0) or min((end - start) // size, MAX_MPPT_MODULES)
        for module in range(1, repeats + 1):
            points = _offsets(group["points"], start)
            if start + size > end:
                return
            for name, (offset, point) in points.items():
                origin = f"{model.model_id}.{module}.{name}"
                scale = _scale(point, points) or _scale(point, top)
                yield _Point(name, origin, offset, point, scale, module)
            start += size


def _scale(point: dict[str, Any], offsets: dict[str, tuple[int, dict[str, Any]]]) -> int | None:
    sf_name = point.get("sf")
    if isinstance(sf_name, str) and sf_name in offsets:
        return offsets[sf_name][0]
    return None


def device_type_for(chain: list[ModelInstance]) -> DeviceType:
    """What kind of device a chain describes."""
    ids = {model.model_id for model in chain}
    if ids & {STORAGE_CONTROL_MODEL, BATTERY_MODEL}:
        return DeviceType.BATTERY
    if ids & INVERTER_MODELS:
        return DeviceType.INVERTER
    return DeviceType.METER


def build_profile(chain: list[ModelInstance], *, with_storage: bool = False) -> DeviceProfile:
    """A profile for exactly the supported models a device reported: every point of them.
    `with_storage`: the unit also serves storage models, so an inverter here is a hybrid."""
    ordered = sorted(chain, key=lambda model: (model.model_id != BATTERY_MODEL, model.address))
    channels: dict[str, ChannelSpec] = {}
    for model in ordered:
        for spec in _channels(model, taken=channels.keys()):
            channels.setdefault(spec.key, spec)
    models = "+".join(str(model.model_id) for model in chain)
    device_type = device_type_for(chain)
    control = None
    if channels.keys() >= _STORAGE_CONTROLS:
        control = recipe_of(_storage_recipe(), channels.values(), source=STORAGE_RECIPE_FILE)
    return DeviceProfile(
        id=f"sunspec_{models.replace('+', '_')}",
        manufacturer="SunSpec",
        model=f"SunSpec {models}",
        device_type=device_type,
        channels=tuple(channels.values()),
        source="sunspec",
        hybrid=with_storage and device_type is DeviceType.INVERTER,
        control=control,
    )


STORAGE_RECIPE_FILE = "recipes/sunspec_124.yaml"
# What model 124's recipe writes: a storage chain without them (a short revision) is read only.
_STORAGE_CONTROLS = frozenset(
    {"StorageControlMode", "ChargeRate", "DischargeRate", "RevertTimeout"}
)


@cache
def _storage_recipe() -> Any:
    """Model 124's control recipe as data (profiles/recipes/sunspec_124.yaml)."""
    text = (resources.files(__package__) / STORAGE_RECIPE_FILE).read_text(encoding="utf-8")
    return yaml.safe_load(text)


def _channels(model: ModelInstance, taken: Collection[str]) -> list[ChannelSpec]:
    if model.model_id not in SUPPORTED_MODELS:
        return []
    semantic = _points_for(model.model_id)
    specs: list[ChannelSpec] = []
    for point in _layout(model):
        kind_of_point = point.definition["type"]
        if kind_of_point in ("sunssf", "pad") or kind_of_point not in _TYPES:
            continue
        if point.module is None and point.name in ("ID", "L"):
            continue
        if point.definition.get("sf") is not None and point.scale_offset is None:
            continue  # a fixed exponent or a missing scale factor: no supported model has one
        key = _key(point, semantic)
        if key is None or key in taken:
            key = point.origin
        scale_register = None if point.scale_offset is None else model.address + point.scale_offset
        specs.append(_spec(key, model, point, scale_register))
    return specs


def _key(point: _Point, semantic: dict[str, str]) -> str | None:
    if point.module is not None:
        quantity = _MPPT_MODULE.get(point.name)
        return None if quantity is None else f"PV{point.module}_{quantity}"
    return semantic.get(point.name)


def _spec(key: str, model: ModelInstance, point: _Point, scale_register: int | None) -> ChannelSpec:
    raw = point.definition
    data_type, sentinels = _TYPES[raw["type"]]
    unit = _unit(raw.get("units"))
    symbols = _symbols(raw)
    generic = key == point.origin
    if data_type is DataType.STRING:
        kind = ChannelKind.IDENTITY
    elif key in _STATE_KEYS or raw["type"].startswith(("enum", "bitfield")):
        kind = ChannelKind.STATE
    elif (
        raw["type"].startswith("acc")
        or point.name in _COUNTS
        or (data_type in (DataType.FLOAT32, DataType.FLOAT64) and unit in COUNTER_UNITS)
    ):
        # Float models (111-113, 211-214) keep their energy totals in float32, not acc32; an
        # integer in Wh elsewhere is a rating (120.WHRtg, 802.WHRtg), not a meter.
        kind = ChannelKind.COUNTER
    elif unit is None and generic:
        kind = ChannelKind.STATE  # a number without a unit: an address, a count, a heartbeat
    else:
        kind = ChannelKind.MEASUREMENT
    minimum, maximum = _RANGES.get(key, (None, None))
    slow = key in _SLOW_KEYS or model.model_id in _SLOW_MODELS or point.name in _SLOW_POINTS
    return ChannelSpec(
        key=key,
        unit=None if kind is ChannelKind.STATE else unit,
        kind=kind,
        register=Register(
            function=RegisterFunction.HOLDING,
            address=model.address + point.offset,
            data_type=data_type,
            length=int(raw["size"]) if data_type is DataType.STRING else None,
            scale_register=scale_register,
            sentinels=sentinels,
        ),
        access=Access.READ_WRITE if raw.get("access") == "RW" else Access.READ_ONLY,
        poll=PollGroup.SLOW if slow else PollGroup.FAST,
        minimum=minimum,
        maximum=maximum,
        origin=point.origin,
        symbols=symbols,
    )


# pysunspec2's definition of model 111 prefixes its St symbols with "gg" ("ggOFF"), a typo:
# the values are model 101's, whose names are "OFF" and so on.
_SYMBOL_TYPO = re.compile(r"^gg(?=[A-Z])")


def symbol_name(raw: str) -> str:
    """A SunSpec symbol as a state key: "SOC PROTECTION" → "soc_protection"."""
    return re.sub(r"[^a-z0-9]+", "_", _SYMBOL_TYPO.sub("", raw).lower()).strip("_")


def _symbols(point: dict[str, Any]) -> Symbols | None:
    bitfield = point["type"].startswith("bitfield")
    raw = point.get("symbols") or []
    if not raw and not bitfield:
        return None
    names = tuple((int(symbol["value"]), symbol_name(symbol["name"])) for symbol in raw)
    return Symbols(names=names, bitfield=bitfield)


def _unit(raw: object) -> str | None:
    if not isinstance(raw, str) or not raw.strip():
        return None
    unit = raw.strip()
    if unit.startswith("%"):
        return "%"
    return _UNITS.get(unit, unit)


def standard_translation(origin: str) -> tuple[str, dict[str, str]]:
    """The translation key and placeholders of a point named as the standard names it:
    "103.TmpSnk" → sunspec_103_tmpsnk; a repeating group's "160.2.DCSt" →
    sunspec_160_module_dcst, module 2. `scripts/sunspec_strings.py` writes the names."""
    model, *rest = origin.split(".")
    if len(rest) == 2:
        module, point = rest
        return f"sunspec_{model}_module_{point.lower()}", {"module": module}
    return f"sunspec_{model}_{rest[-1].lower()}", {}
