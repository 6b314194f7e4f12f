"""SunSpec register maps built from the SunSpec Alliance's own model definitions.

Point names, types, sizes, order and scale-factor references are read at run time from the
JSON model definitions that pysunspec2 ships (`sunspec2/models/json/model_<id>.json`), so the
offsets are the specification's, never hand-typed. A device serves holding registers from its
base address on: the "SunS" marker (0x5375 0x6E53), its models one after another (ID, L, then
the points), and the end marker (ID 0xFFFF, L 0). Anything outside answers exception 2.

Encoding: integers with a scale factor that is fixed per device (a `sunssf` point holds the
exponent). A point the device does not implement serves its type's "not implemented" value:
int16 and sunssf 0x8000, uint16/enum16/bitfield16/count 0xFFFF, int32 0x80000000,
uint32/enum32/bitfield32 0xFFFFFFFF, acc32 and acc64 0, float32 NaN (0x7FC00000), string all
NUL. An implemented value
never encodes to that value (it saturates one step short), except an acc32 counter, whose 0 is
a count; a reader tells an implemented accumulator by its scale factor, which is implemented.
A pad point serves 0 (pysunspec2 reads it as 0 too).

`device_values` keys are "<model id>.<point name>" (e.g. "103.W", "1.SN"; a further instance
of a model on the same device "<model id>@<instance>.<point name>", e.g. "203@grid.W"; a point of
a repeating group "<model id>.<repeat>.<point name>", e.g. "160.2.DCW"), plus "SunS",
"end.ID" and "end.L". Numbers are physical values (scale factor applied), text is str, and a
point that is not implemented is None.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
import functools
import importlib.resources
import json
from typing import Any

from simulator.physics import SiteState
from simulator.registers import (
    DeviceMap,
    NumericType,
    RegisterDef,
    Value,
    ValueSource,
    WriteSink,
)

SUNS_KEY = "SunS"
END_KEYS = ("end.ID", "end.L")
END_MODEL_ID = 0xFFFF

# SunSpec point type -> register type and its "not implemented" raw value.
_POINT_TYPES: Mapping[str, tuple[NumericType, int]] = {
    "int16": ("int16", -0x8000),
    "sunssf": ("int16", -0x8000),
    "uint16": ("uint16", 0xFFFF),
    "enum16": ("uint16", 0xFFFF),
    "bitfield16": ("uint16", 0xFFFF),
    "count": ("uint16", 0xFFFF),
    "int32": ("int32", -0x8000_0000),
    "uint32": ("uint32", 0xFFFF_FFFF),
    "enum32": ("uint32", 0xFFFF_FFFF),
    "bitfield32": ("uint32", 0xFFFF_FFFF),
    "acc32": ("acc32", 0),
    "acc64": ("acc64", 0),
    "float32": ("float32", 0x7FC0_0000),  # a quiet NaN's bits; see RegisterDef.not_implemented
}


@dataclass(frozen=True, slots=True)
class PointDef:
    """One point of a model definition."""

    name: str
    type: str
    size: int  # registers
    offset: int  # registers from the model's ID point
    sf: str | int | None  # the scale-factor point's name, or a fixed exponent
    access: str  # "R" or "RW"
    mandatory: bool


@dataclass(frozen=True, slots=True)
class ModelDef:
    """A SunSpec model as its definition lays it out: its fixed points, then at most one
    repeating group (model 160's module), whose offsets count from the group's start."""

    model_id: int
    name: str
    points: tuple[PointDef, ...]
    repeating: tuple[PointDef, ...] = ()

    @property
    def length(self) -> int:
        """The model's L without repeats: its fixed registers after ID and L."""
        return sum(point.size for point in self.points) - 2

    @property
    def repeat_size(self) -> int:
        """Registers per repeat of the group."""
        return sum(point.size for point in self.repeating)

    def point(self, name: str) -> PointDef:
        """The point called `name`, fixed or in the group."""
        for point in (*self.points, *self.repeating):
            if point.name == name:
                return point
        raise KeyError(f"model {self.model_id} has no point {name!r}")


@functools.cache
def model_definition(model_id: int) -> ModelDef:
    """Model `model_id` from pysunspec2's JSON definitions."""
    resource = importlib.resources.files("sunspec2").joinpath(
        "models", "json", f"model_{model_id}.json"
    )
    document: dict[str, Any] = json.loads(resource.read_text(encoding="utf-8"))
    group = document["group"]
    groups = group.get("groups") or []
    if len(groups) > 1 or any(int(sub.get("count") or 0) != 0 for sub in groups):
        raise ValueError(f"model {model_id}: the simulator serves one repeating group at most")
    points = _points(group["points"])
    if [point.name for point in points[:2]] != ["ID", "L"]:
        raise ValueError(f"model {model_id} does not start with ID and L")
    repeating = _points(groups[0]["points"]) if groups else ()
    return ModelDef(int(document["id"]), group["name"], points, repeating)


def _points(raw: Sequence[Mapping[str, Any]]) -> tuple[PointDef, ...]:
    points: list[PointDef] = []
    offset = 0
    for point in raw:
        size = int(point["size"])
        points.append(
            PointDef(
                name=point["name"],
                type=point["type"],
                size=size,
                offset=offset,
                sf=point.get("sf"),
                access=point.get("access", "R"),
                mandatory=point.get("mandatory") == "M",
            )
        )
        offset += size
    return tuple(points)


@dataclass(frozen=True, slots=True)
class ServedModel:
    """How a device serves one model: its scale factors and the points it implements.

    ID, L and the scale factors listed are always served; the scale factors not listed and the
    points not in `implemented` serve "not implemented".
    """

    model_id: int
    scale_factors: Mapping[str, int] = field(default_factory=dict)
    implemented: frozenset[str] = frozenset()
    writable: frozenset[str] = frozenset()
    counters: frozenset[str] = frozenset()
    # A second instance of a model on one device (SolarEdge's common model per meter) names
    # its points "<model id>@<instance>.<point>".
    instance: str = ""
    # The length the device reports, when shorter than the definition's: the points past it
    # are not served (SolarEdge's common models stop before the pad, at 65).
    length: int | None = None
    # How often the repeating group is served (model 160's modules); its points are keyed
    # "<model id>.<repeat>.<point>", counting from 1 ("160.2.DCW").
    repeats: int = 0

    @property
    def key_prefix(self) -> str:
        """What the keys of this model's points start with."""
        return f"{self.model_id}@{self.instance}" if self.instance else str(self.model_id)

    def served_length(self, definition: ModelDef) -> int:
        """The L register's value."""
        if self.length is not None:
            return self.length
        return definition.length + self.repeats * definition.repeat_size

    def check(self, definition: ModelDef) -> None:
        """Reject names the definition lacks, and inconsistent settings."""
        full = definition.length + self.repeats * definition.repeat_size
        if not 0 <= self.served_length(definition) <= full:
            raise ValueError(f"model {self.model_id}: length past the definition's")
        if self.repeats and not definition.repeating:
            raise ValueError(f"model {self.model_id} has no repeating group")
        fixed = {point.name for point in definition.points}
        for name in (*self.scale_factors, *self.implemented, *self.writable, *self.counters):
            point = definition.point(name)
            if name in fixed and point.offset + point.size > 2 + self.served_length(definition):
                raise ValueError(f"{self.model_id}.{name} lies past the served length")
        for name in self.scale_factors:
            if definition.point(name).type != "sunssf":
                raise ValueError(f"{self.model_id}.{name} is not a scale factor")
        for name in self.implemented:
            point = definition.point(name)
            header = name in ("ID", "L") and all(p.name != name for p in definition.repeating)
            if point.type in ("sunssf", "pad") or header:
                raise ValueError(f"{self.model_id}.{name} is served without being implemented")
            if isinstance(point.sf, str) and point.sf not in self.scale_factors:
                raise ValueError(f"{self.model_id}.{name} needs its scale factor {point.sf}")
        for name in self.writable:
            if name not in self.implemented or definition.point(name).access != "RW":
                raise ValueError(f"{self.model_id}.{name} cannot be writable")
        if not self.counters <= self.implemented:
            raise ValueError(f"model {self.model_id}: counters must be implemented")


def _register(point: PointDef, key: str, address: int, served: ServedModel) -> RegisterDef:
    writable = point.name in served.writable
    if point.type == "string":
        return RegisterDef("holding", address, "string", key, writable=writable, length=point.size)
    if point.type == "pad":
        return RegisterDef("holding", address, "uint16", key)
    try:
        data_type, not_implemented = _POINT_TYPES[point.type]
    except KeyError:
        raise ValueError(f"{key}: point type {point.type} is not supported") from None
    scale_exp = 0
    if point.name in served.implemented and point.sf is not None:
        scale_exp = point.sf if isinstance(point.sf, int) else served.scale_factors[point.sf]
    return RegisterDef(
        "holding",
        address,
        data_type,
        key,
        scale_exp=scale_exp,
        counter=point.name in served.counters,
        writable=writable,
        not_implemented=not_implemented,
    )


class _SunSpecValues:
    """A device's value source completed with the fixed values: marker, IDs, lengths, scale
    factors, end marker and None for every point not implemented."""

    def __init__(
        self,
        fixed: Mapping[str, Value],
        implemented: frozenset[str],
        source: Callable[[SiteState], Mapping[str, Value]],
    ) -> None:
        self._fixed = dict(fixed)
        self._implemented = implemented
        self._source = source

    def __call__(self, state: SiteState) -> dict[str, Value]:
        values = self._source(state)
        if values.keys() != self._implemented:
            missing = sorted(self._implemented - values.keys())
            extra = sorted(values.keys() - self._implemented)
            raise KeyError(f"SunSpec values: missing {missing}, not implemented {extra}")
        return self._fixed | dict(values)


def _layout(
    definition: ModelDef, served: ServedModel, address: int, length: int
) -> list[tuple[PointDef, str, int]]:
    """(point, key, address) of every point the model serves within its length: the fixed
    points, then each repeat of the group."""
    end = address + 2 + length
    laid: list[tuple[PointDef, str, int]] = [
        (point, f"{served.key_prefix}.{point.name}", address + point.offset)
        for point in definition.points
    ]
    start = address + 2 + definition.length
    for repeat in range(1, served.repeats + 1):
        laid += [
            (point, f"{served.key_prefix}.{repeat}.{point.name}", start + point.offset)
            for point in definition.repeating
        ]
        start += definition.repeat_size
    return [(point, key, at) for point, key, at in laid if at + point.size <= end]


def sunspec_device(
    name: str,
    unit_id: int,
    base_address: int,
    models: Sequence[ServedModel],
    read_values: Callable[[SiteState], Mapping[str, Value]],
    *,
    apply_writes: WriteSink | None = None,
) -> DeviceMap:
    """A SunSpec device serving `models` from `base_address`; `read_values` gives exactly the
    implemented points, keyed "<model id>.<point>"."""
    registers = [RegisterDef("holding", base_address, "string", SUNS_KEY, length=2)]
    fixed: dict[str, Value] = {SUNS_KEY: "SunS"}
    implemented: set[str] = set()
    address = base_address + 2
    for served in models:
        definition = model_definition(served.model_id)
        served.check(definition)
        length = served.served_length(definition)
        for point, key, at in _layout(definition, served, address, length):
            registers.append(_register(point, key, at, served))
            if point.name == "ID" and at == address:
                fixed[key] = served.model_id
            elif point.name == "L" and at == address + 1:
                fixed[key] = length
            elif point.type == "sunssf":
                fixed[key] = served.scale_factors.get(point.name)
            elif point.type == "pad":
                fixed[key] = 0
            elif point.name in served.implemented:
                implemented.add(key)
            else:
                fixed[key] = None
        address += 2 + length
    end_id, end_length = END_KEYS
    registers += [
        RegisterDef("holding", address, "uint16", end_id),
        RegisterDef("holding", address + 1, "uint16", end_length),
    ]
    fixed |= {end_id: END_MODEL_ID, end_length: 0}
    values: ValueSource = _SunSpecValues(fixed, frozenset(implemented), read_values)
    return DeviceMap(name, unit_id, registers, values, apply_writes=apply_writes)
