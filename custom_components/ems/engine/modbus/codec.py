"""The Modbus stage: a read plan, the decoding of register words, and a serialized transport.

Channels are read in as few requests as the gateway allows: neighbours are merged into blocks
of at most `max_read` registers across gaps of at most `max_gap`. What a block returns is kept
in a register image per unit and function, and every channel is decoded from that image.
"""

from __future__ import annotations

import math
import struct
from typing import Any

from ..model import ChannelSpec, DataType, Register, WordOrder
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
    return value


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
    exponent = 0
    if register.scale_register is not None:
        raw_exponent = table.get(register.scale_register)
        if raw_exponent is None:
            return None
        exponent = struct.unpack(">h", raw_exponent.to_bytes(2, "big"))[0]
        if abs(exponent) > _SCALE_FACTOR_LIMIT:  # 0x8000 ("not implemented") included
            return None
    if register.scale == 1.0 and exponent == 0:
        return value
    scaled = value * register.scale * 10.0**exponent
    # A float64 near its limit times a scale overflows: that is no reading, not infinity.
    return scaled if math.isfinite(scaled) else None
