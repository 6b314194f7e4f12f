"""The data model shared by every pure stage: devices, channels, registers and readings.

Everything here is plain data. Stages take these in and hand these out, so each stage can be
tested without Home Assistant and without a network.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Final

from .recipes import ControlRecipe

# The site's energy series, each a lifetime counter in kWh: what the books, statistics and
# Energy dashboard take. Consumption is the balance of the others, never metered.
SITE_SERIES: Final = (
    "grid_import",
    "grid_export",
    "production",
    "consumption",
    "battery_charge",
    "battery_discharge",
)


class DeviceType(StrEnum):
    """What a device is, in OpenEMS terms."""

    METER = "meter"
    INVERTER = "inverter"
    BATTERY = "battery"
    LOAD = "load"
    GRID = "grid"


class ChannelKind(StrEnum):
    """How a channel's value behaves over time."""

    MEASUREMENT = "measurement"
    COUNTER = "counter"
    STATE = "state"
    SETPOINT = "setpoint"
    IDENTITY = "identity"


class Access(StrEnum):
    """Whether a channel may be written; only `rw` channels are ever written."""

    READ_ONLY = "ro"
    READ_WRITE = "rw"


class RegisterFunction(StrEnum):
    """The Modbus register table a channel lives in."""

    HOLDING = "holding"
    INPUT = "input"


class DataType(StrEnum):
    """How the words of a register are interpreted."""

    INT16 = "int16"
    UINT16 = "uint16"
    INT32 = "int32"
    UINT32 = "uint32"
    INT64 = "int64"
    UINT64 = "uint64"
    FLOAT32 = "float32"
    FLOAT64 = "float64"
    STRING = "string"


class WordOrder(StrEnum):
    """Order of 16-bit words in a multi-register value."""

    BIG = "big"
    LITTLE = "little"


class PollGroup(StrEnum):
    """Fast channels are read every cycle; slow ones (identity, ratings) less often."""

    FAST = "fast"
    SLOW = "slow"


# Modbus addresses registers with 16 bits: nothing lies past 65535.
LAST_REGISTER = 0xFFFF

REGISTER_COUNT: dict[DataType, int] = {
    DataType.INT16: 1,
    DataType.UINT16: 1,
    DataType.INT32: 2,
    DataType.UINT32: 2,
    DataType.INT64: 4,
    DataType.UINT64: 4,
    DataType.FLOAT32: 2,
    DataType.FLOAT64: 4,
}


@dataclass(frozen=True, kw_only=True, slots=True)
class Register:
    """Where a channel's raw value lives and how to decode it."""

    function: RegisterFunction
    address: int
    data_type: DataType
    word_order: WordOrder = WordOrder.BIG
    byte_order: WordOrder = WordOrder.BIG
    # Strings have no fixed width; everything else derives its width from the type.
    length: int | None = None
    scale: float = 1.0
    # SunSpec-style scale factor: another register holds a power-of-ten exponent.
    scale_register: int | None = None
    sentinels: tuple[int, ...] = ()

    @property
    def count(self) -> int:
        """Number of 16-bit registers this value occupies."""
        if self.data_type is DataType.STRING:
            return self.length or 1
        return REGISTER_COUNT[self.data_type]


@dataclass(frozen=True, kw_only=True, slots=True)
class Symbols:
    """What an enumerated or bit-field point's values mean, as its standard names them.

    Names are state keys: lowercase letters, digits and underscores. Readings stay numbers;
    only what shows them (a sensor, an attribute) turns them into names.
    """

    names: tuple[tuple[int, str], ...]
    # A bit field names its bits (value = bit number); an enumeration names its values.
    bitfield: bool = False

    def state(self, value: float | str | None) -> str | None:
        """An enumerated value's name; `None` for a value the standard does not define."""
        if not isinstance(value, int | float) or value != int(value):
            return None
        return next((name for number, name in self.names if number == int(value)), None)

    def active(self, value: float | str | None) -> tuple[str, ...]:
        """A bit field's set bits, by name; a bit the standard leaves unnamed is `bit_<n>`."""
        if not isinstance(value, int | float) or value != int(value) or value < 0:
            return ()
        bits = int(value)
        named = dict(self.names)
        return tuple(
            named.get(bit, f"bit_{bit}") for bit in range(bits.bit_length()) if bits >> bit & 1
        )

    @property
    def options(self) -> list[str]:
        """Every name, in the standard's order."""
        return [name for _, name in self.names]


@dataclass(frozen=True, kw_only=True, slots=True)
class ChannelSpec:
    """One measurable or settable quantity of a device, as the profile defines it."""

    key: str
    unit: str | None
    kind: ChannelKind
    register: Register
    access: Access = Access.READ_ONLY
    poll: PollGroup = PollGroup.FAST
    device_class: str | None = None
    minimum: float | None = None
    maximum: float | None = None
    # Where the channel comes from in a standard map, e.g. "103.W" for a SunSpec point.
    origin: str | None = None
    # The names of an enumerated or bit-field channel's values.
    symbols: Symbols | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class Detection:
    """A register whose value identifies a device model (Eastron's meter code, say), or one of
    a family's models (Sungrow's device type codes)."""

    register: Register
    values: frozenset[int]

    def matches(self, value: float | str | None) -> bool:
        """Whether a decoded value names one of the profile's models."""
        return isinstance(value, int | float) and value in self.values


@dataclass(frozen=True, kw_only=True, slots=True)
class DeviceProfile:
    """A device model's register map, loaded from a YAML file or built from SunSpec models."""

    id: str
    manufacturer: str
    model: str
    device_type: DeviceType
    channels: tuple[ChannelSpec, ...]
    source: str = ""
    detect: Detection | None = None
    # An inverter whose AC output also carries the battery at its unit id (a hybrid: SunSpec
    # 103 with storage models 124/802 behind it). Its production is that output less the
    # battery's power, and its lifetime AC energy is no production counter.
    hybrid: bool = False
    # How the device is steered, when it is a battery ems can steer (engine/recipes.py).
    control: ControlRecipe | None = None

    def channel(self, key: str) -> ChannelSpec:
        """Return the channel with this key."""
        for spec in self.channels:
            if spec.key == key:
                return spec
        raise KeyError(key)


class DeviceRole(StrEnum):
    """Where a device sits on the site; the site sums place it by its role."""

    GRID = "grid"
    PRODUCTION = "production"
    BATTERY = "battery"
    LOAD = "load"
    SUBMETER = "submeter"


DEFAULT_ROLE: dict[DeviceType, DeviceRole] = {
    DeviceType.GRID: DeviceRole.GRID,
    DeviceType.METER: DeviceRole.GRID,
    DeviceType.INVERTER: DeviceRole.PRODUCTION,
    DeviceType.BATTERY: DeviceRole.BATTERY,
    DeviceType.LOAD: DeviceRole.LOAD,
}


@dataclass(frozen=True, kw_only=True, slots=True)
class Device:
    """A physical device on a hub, addressed by its Modbus unit id."""

    id: str
    name: str
    unit_id: int
    profile: DeviceProfile
    role: DeviceRole
    # Largest plausible power through the device; bounds how fast its counters may rise.
    rated_power_kw: float | None = None
    # A load is "on" above this power (runtime, status).
    on_threshold_w: float = 10.0
    # Installed the other way round: its power reads with the opposite sign.
    invert_power: bool = False
    # The device whose unit id this one shares (one logical device of a SunSpec chain, say).
    part_of: str | None = None


class Quality(StrEnum):
    """How far a reading can be trusted. Rejections carry their reason after a colon."""

    OK = "ok"
    ESTIMATED = "estimated"
    REJECTED = "rejected"
    MISSING = "missing"


@dataclass(frozen=True, kw_only=True, slots=True)
class Reading:
    """One value of one channel at one moment, with its quality."""

    device_id: str
    channel: str
    timestamp: datetime
    value: float | str | None
    quality: Quality
    reason: str | None = None
    unit: str | None = None

    @property
    def usable(self) -> bool:
        """Whether the value may reach an entity."""
        return self.value is not None and self.quality in (Quality.OK, Quality.ESTIMATED)

    @property
    def quality_label(self) -> str:
        """The quality as DESIGN.md writes it, e.g. `rejected:out_of_range`."""
        if self.quality is Quality.REJECTED and self.reason:
            return f"{self.quality}:{self.reason}"
        return str(self.quality)


@dataclass(frozen=True, kw_only=True, slots=True)
class DeviceState:
    """A device after one cycle: whether it answered, and its readings."""

    online: bool
    readings: dict[str, Reading]


@dataclass(frozen=True, kw_only=True, slots=True)
class CycleStats:
    """How one poll cycle went, for the diagnostic sensors."""

    requests: int
    failed_requests: int
    duration_s: float
    # (unit id, function, address) of registers the hub currently avoids
    quarantined: tuple[tuple[int, str, int], ...] = ()


@dataclass(frozen=True, kw_only=True, slots=True)
class SiteState:
    """The site as a whole: powers (W), flows (W), shares (%) and energy counters (kWh)."""

    power_w: dict[str, float | None]
    flows_w: dict[str, float] | None
    self_sufficiency_pct: float | None
    self_consumption_pct: float | None
    energy_kwh: dict[str, float]
    estimated: frozenset[str] = frozenset()
