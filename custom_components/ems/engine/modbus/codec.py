"""Register words into values and back: data types, word and byte order, fixed scales and
SunSpec scale-factor registers, and the "not implemented" sentinels.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from functools import cache
import math
import struct
from typing import Any

from ..model import ChannelSpec, DataType, Register, WordOrder
from ..numbers import without_float_noise
from .plan import RegisterImage

_STRUCT_FORMAT: dict[DataType, str] = {
    DataType.INT16: ">h",
    DataType.UINT16: ">H",
    DataType.INT32: ">i",
    DataType.UINT32: ">I",
    DataType.INT64: ">q",
    DataType.UINT64: ">Q",
    DataType.FLOAT32: ">f",
    DataType.FLOAT64: ">d",
}
# SunSpec defines scale factors from -10 to 10 and 0x8000 as "not implemented"; anything beyond
# is a garbled word, and 10**400 would not even be a float.
_SCALE_FACTOR_LIMIT = 10


def _words_to_bytes(words: list[int], register: Register) -> bytes:
    if register.word_order is WordOrder.LITTLE:
        words = list(reversed(words))
    byteorder: Any = "big" if register.byte_order is WordOrder.BIG else "little"
    return b"".join(word.to_bytes(2, byteorder) for word in words)


def _bytes_to_words(raw: bytes, register: Register) -> list[int]:
    byteorder: Any = "big" if register.byte_order is WordOrder.BIG else "little"
    words = [int.from_bytes(raw[i : i + 2], byteorder) for i in range(0, len(raw), 2)]
    if register.word_order is WordOrder.LITTLE:
        words.reverse()
    return words


def decode_words(register: Register, words: list[int]) -> float | str | None:
    """Decode raw words into a value before scaling; `None` for "not implemented"."""
    raw = _words_to_bytes(words, register)
    if register.data_type is DataType.STRING:
        return raw.replace(b"\x00", b" ").decode("ascii", errors="replace").strip() or None
    if int.from_bytes(raw, "big") in register.sentinels:
        return None
    value: float = struct.unpack(_STRUCT_FORMAT[register.data_type], raw)[0]
    if math.isnan(value) or math.isinf(value):
        return None
    if register.data_type is DataType.FLOAT32:
        return _shortest_float32(raw, value)
    return value


def _shortest_float32(raw: bytes, value: float) -> float:
    """The shortest decimal that is the same float32: what the device meant (231.4, not the
    231.39999389648438 a float64 makes of it)."""
    for digits in range(6, 10):
        candidate = float(f"{value:.{digits}g}")
        if struct.pack(">f", candidate) == raw:
            return candidate
    return value


@cache
def _scale_decimals(scale: float) -> int:
    """How many decimals a fixed scale adds (0.01 adds 2; 10 adds none)."""
    exponent = Decimal(repr(scale)).normalize().as_tuple().exponent
    return max(0, -exponent) if isinstance(exponent, int) else 0


def encode_value(register: Register, value: float | str) -> list[int]:
    """Encode a value (already divided by its scale) into the words a device holds."""
    if register.data_type is DataType.STRING:
        text = str(value).encode("ascii")[: register.count * 2]
        return _bytes_to_words(text.ljust(register.count * 2, b"\x00"), register)
    number: float | int = value if isinstance(value, int) else float(value)
    if register.data_type not in (DataType.FLOAT32, DataType.FLOAT64):
        number = round(number)
    return _bytes_to_words(struct.pack(_STRUCT_FORMAT[register.data_type], number), register)


def was_read(spec: ChannelSpec, unit_id: int, image: RegisterImage) -> bool:
    """Whether every register the channel needs is in the image."""
    register = spec.register
    table = image.get((unit_id, register.function), {})
    needed = range(register.address, register.address + register.count)
    if any(address not in table for address in needed):
        return False
    return register.scale_register is None or register.scale_register in table


def scale_exponent(register: Register, table: Mapping[int, int]) -> int | None:
    """The power of ten a scale-factor register (SunSpec's `sunssf`) puts on the value: 0
    without one; None while it is unread, or outside -10..10 (0x8000 is "not implemented", and
    10**-32768 would divide by zero)."""
    if register.scale_register is None:
        return 0
    raw = table.get(register.scale_register)
    if raw is None:
        return None
    exponent = raw - 0x10000 if raw & 0x8000 else raw
    return exponent if abs(exponent) <= _SCALE_FACTOR_LIMIT else None


def decode_channel(spec: ChannelSpec, unit_id: int, image: RegisterImage) -> float | str | None:
    """Decode one channel from the register image; `None` when it was not read or is unset."""
    register = spec.register
    table = image.get((unit_id, register.function), {})
    words = [table.get(register.address + offset) for offset in range(register.count)]
    if any(word is None for word in words):
        return None
    value = decode_words(register, [word for word in words if word is not None])
    if value is None or isinstance(value, str):
        return value
    exponent = scale_exponent(register, table)
    if exponent is None:
        return None
    if register.scale == 1.0 and exponent == 0:
        return value
    return _scaled(register, value, exponent)


def _scaled(register: Register, value: float, exponent: int) -> float | None:
    scaled = value * register.scale * 10.0**exponent
    # A float64 near its limit times a scale overflows: that is no reading, not infinity.
    if not math.isfinite(scaled):
        return None
    if register.data_type in (DataType.FLOAT32, DataType.FLOAT64):
        return without_float_noise(scaled)
    # An integer register's resolution is its scale: 2314 x 0.1 is 231.4, to the digit.
    return round(scaled, max(0, _scale_decimals(register.scale) - exponent)) + 0.0
