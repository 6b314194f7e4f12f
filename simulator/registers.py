"""Register encoding and device register maps as data (`RegisterDef`, `DeviceMap`).

Addresses are 0-based protocol addresses (what goes on the wire). The devices themselves are
in simulator.eastron and simulator.sunspec_devices; simulator.devices lists them by unit id.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
import math
import struct
from typing import Literal

from simulator.physics import SiteModel, SiteState

Function = Literal["input", "holding"]
NumericType = Literal["uint16", "int16", "uint32", "int32", "float32", "acc32", "acc64"]
DataType = NumericType | Literal["string"]
WordOrder = Literal["big", "little"]
# What a register serves: a number, text, or None where the device has no value (a SunSpec
# point it does not implement).
Value = float | str | None

_STRUCT_FORMATS: dict[NumericType, str] = {
    "uint16": ">H",
    "int16": ">h",
    "uint32": ">I",
    "int32": ">i",
    "float32": ">f",
    "acc32": ">I",
    "acc64": ">Q",
}
# Accumulators roll over at their width; their "not implemented" 0 is also a count.
_ACCUMULATOR_MODULUS: dict[NumericType, int] = {"acc32": 1 << 32, "acc64": 1 << 64}
_INTEGER_RANGES: dict[NumericType, tuple[int, int]] = {
    "uint16": (0, 0xFFFF),
    "int16": (-0x8000, 0x7FFF),
    "uint32": (0, 0xFFFF_FFFF),
    "int32": (-0x8000_0000, 0x7FFF_FFFF),
    "acc32": (0, 0xFFFF_FFFF),
    "acc64": (0, 0xFFFF_FFFF_FFFF_FFFF),
}


def word_count(data_type: NumericType) -> int:
    """Number of 16-bit registers a value of this type occupies."""
    return struct.calcsize(_STRUCT_FORMATS[data_type]) // 2


def encode(value: float, data_type: NumericType, word_order: WordOrder = "big") -> list[int]:
    """Raw value to 16-bit words. Integer types saturate like a device clamping its reading;
    an accumulator (acc32, acc64) rolls over."""
    if data_type == "float32":
        packed = struct.pack(">f", value)
    elif data_type in _ACCUMULATOR_MODULUS:
        modulus = _ACCUMULATOR_MODULUS[data_type]
        packed = struct.pack(_STRUCT_FORMATS[data_type], round(value) % modulus)
    else:
        low, high = _INTEGER_RANGES[data_type]
        packed = struct.pack(_STRUCT_FORMATS[data_type], min(max(round(value), low), high))
    words = [int.from_bytes(packed[i : i + 2]) for i in range(0, len(packed), 2)]
    return words[::-1] if word_order == "little" else words


def decode(words: Sequence[int], data_type: NumericType, word_order: WordOrder = "big") -> float:
    """16-bit words back to the raw value."""
    ordered = list(words)[::-1] if word_order == "little" else list(words)
    packed = b"".join(word.to_bytes(2) for word in ordered)
    value: float = struct.unpack(_STRUCT_FORMATS[data_type], packed)[0]
    return value


def encode_string(text: str, length: int) -> list[int]:
    """Text as `length` registers, two bytes each, padded with NUL (SunSpec strings)."""
    data = text.encode()
    if len(data) > 2 * length:
        raise ValueError(f"{text!r} does not fit in {length} registers")
    data = data.ljust(2 * length, b"\0")
    return [int.from_bytes(data[i : i + 2]) for i in range(0, len(data), 2)]


def decode_string(words: Sequence[int]) -> str:
    """Registers back to text, without the NUL padding."""
    return b"".join(word.to_bytes(2) for word in words).rstrip(b"\0").decode()


@dataclass(frozen=True, slots=True)
class RegisterDef:
    """One value in a device's register map: physical value = raw x 10**scale_exp.

    A register with a `not_implemented` raw value serves it when the device has no value
    (None); an implemented value never encodes to it, it saturates one step short instead.
    Strings are `length` registers long and serve NUL bytes when not implemented.
    """

    function: Function
    address: int
    data_type: DataType
    key: str
    scale_exp: int = 0
    counter: bool = False  # an energy total that only grows; a meter reset zeroes it
    writable: bool = False
    word_order: WordOrder = "big"
    length: int = 0  # registers, for strings only
    not_implemented: int | None = None

    def __post_init__(self) -> None:
        """Strings need a length; nothing else has one."""
        if (self.data_type == "string") != (self.length > 0):
            raise ValueError(f"{self.key}: a length is given for strings, and only for them")

    @property
    def addresses(self) -> range:
        """The register addresses this value occupies."""
        width = self.length if self.data_type == "string" else word_count(self.data_type)
        return range(self.address, self.address + width)

    def quantize(self, value: Value) -> Value:
        """The value as the register can express it: float32 precision or integer steps."""
        if value is None or isinstance(value, str):
            return value
        return self._from_raw(self._to_raw(value))

    def to_words(self, value: Value) -> list[int]:
        """Physical value to the words on the wire."""
        if self.data_type == "string":
            return encode_string("" if value is None else str(value), self.length)
        if value is None:
            if self.not_implemented is None:
                raise ValueError(f"{self.key} always has a value")
            if self.data_type == "float32":
                # A float's "not implemented" is a bit pattern (NaN), not a number to encode.
                words = [self.not_implemented >> 16 & 0xFFFF, self.not_implemented & 0xFFFF]
                return words[::-1] if self.word_order == "little" else words
            return encode(self.not_implemented, self.data_type, self.word_order)
        if isinstance(value, str):
            raise TypeError(f"{self.key} is a number, not {value!r}")
        return encode(self._to_raw(value), self.data_type, self.word_order)

    def from_words(self, words: Sequence[int]) -> Value:
        """Words on the wire to the physical value; None for the not-implemented value, except
        for an accumulator, whose not-implemented 0 is also a count."""
        if self.data_type == "string":
            return decode_string(words) or None
        raw = decode(words, self.data_type, self.word_order)
        if self.data_type == "float32" and self.not_implemented is not None and math.isnan(raw):
            return None
        if raw == self.not_implemented and self.data_type not in _ACCUMULATOR_MODULUS:
            return None
        return self._from_raw(raw)

    def _to_raw(self, value: float) -> float:
        data_type = self.data_type
        if data_type == "float32":
            return float(struct.unpack(">f", struct.pack(">f", value))[0])
        if data_type == "string":
            raise TypeError(f"{self.key} is a string")
        raw = round(value / 10.0**self.scale_exp)
        if data_type in _ACCUMULATOR_MODULUS:
            return raw % _ACCUMULATOR_MODULUS[data_type]
        low, high = _INTEGER_RANGES[data_type]
        if self.not_implemented == low:
            low += 1
        elif self.not_implemented == high:
            high -= 1
        return min(max(raw, low), high)

    def _from_raw(self, raw: float) -> float:
        if self.data_type == "float32":
            return raw
        # Dividing by a power of ten gives the closest double to e.g. 50.3; multiplying by
        # 0.1 would not.
        factor = int(10 ** abs(self.scale_exp))
        if self.scale_exp < 0:
            return raw / factor
        return int(raw) * factor


ValueSource = Callable[[SiteState], Mapping[str, Value]]
WriteSink = Callable[[SiteModel, Mapping[str, Value]], None]


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

    def words(self, values: Mapping[str, Value], function: Function, addresses: range) -> list[int]:
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

    def decode_write(self, addresses: range, words: Sequence[int]) -> dict[str, Value] | None:
        """Values written to whole writable holding registers, in address order; None if the
        write is illegal."""
        written: dict[str, Value] = {}
        owners = [self._owners.get(("holding", address)) for address in addresses]
        for register in dict.fromkeys(owners):
            if register is None or not register.writable:
                return None
            if not set(register.addresses).issubset(addresses):
                return None
            offset = register.address - addresses.start
            written[register.key] = register.from_words(
                words[offset : offset + len(register.addresses)]
            )
        return written
