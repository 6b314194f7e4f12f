"""Decoding: every type, word order and byte order round-trips; scale and sentinels apply."""

from __future__ import annotations

import math
import struct

from hypothesis import given, strategies as st
import pytest

from custom_components.ems.engine.modbus.codec import (
    decode_channel,
    decode_words,
    encode_value,
    was_read,
)
from custom_components.ems.engine.model import (
    ChannelKind,
    ChannelSpec,
    DataType,
    Register,
    RegisterFunction,
    WordOrder,
)

_INTEGER_RANGES = {
    DataType.INT16: (-(2**15), 2**15 - 1),
    DataType.UINT16: (0, 2**16 - 1),
    DataType.INT32: (-(2**31), 2**31 - 1),
    DataType.UINT32: (0, 2**32 - 1),
    DataType.INT64: (-(2**63), 2**63 - 1),
    DataType.UINT64: (0, 2**64 - 1),
}
_orders = st.sampled_from(list(WordOrder))


def _register(data_type: DataType, words: WordOrder, byte: WordOrder, **extra: object) -> Register:
    return Register(
        function=RegisterFunction.INPUT,
        address=10,
        data_type=data_type,
        word_order=words,
        byte_order=byte,
        **extra,  # type: ignore[arg-type]
    )


@given(
    data=st.data(),
    data_type=st.sampled_from(list(_INTEGER_RANGES)),
    word_order=_orders,
    byte_order=_orders,
)
def test_integer_round_trip(
    data: st.DataObject, data_type: DataType, word_order: WordOrder, byte_order: WordOrder
) -> None:
    """Any integer of the type survives encode → decode in every word and byte order."""
    low, high = _INTEGER_RANGES[data_type]
    value = data.draw(st.integers(low, high))
    register = _register(data_type, word_order, byte_order)
    words = encode_value(register, value)
    assert len(words) == register.count
    assert all(0 <= word <= 0xFFFF for word in words)
    assert decode_words(register, words) == value


@given(
    value=st.floats(allow_nan=False, allow_infinity=False, width=32),
    word_order=_orders,
    byte_order=_orders,
)
def test_float32_round_trip(value: float, word_order: WordOrder, byte_order: WordOrder) -> None:
    """float32 values come back as the same float32, in its shortest decimal (231.4, not
    231.39999389648438)."""
    register = _register(DataType.FLOAT32, word_order, byte_order)
    decoded = decode_words(register, encode_value(register, value))
    assert isinstance(decoded, float)
    assert struct.pack(">f", decoded) == struct.pack(">f", value)
    assert len(repr(decoded)) <= len(repr(value))


@pytest.mark.parametrize(
    ("data_type", "words", "scale", "exponent", "expected"),
    [
        (DataType.FLOAT32, [0x4367, 0x6666], 1.0, 0, 231.4),  # 231.39999389648438 as float32
        (DataType.UINT16, [3], 0.1, 0, 0.3),  # 3 x 0.1 is 0.30000000000000004 in floats
        (DataType.INT16, [2314], 1.0, -1, 231.4),
        (DataType.UINT16, [7], 0.01, -1, 0.007),
        (DataType.UINT16, [12], 10.0, 2, 12000.0),
    ],
)
def test_states_keep_the_device_resolution(
    data_type: DataType, words: list[int], scale: float, exponent: int, expected: float
) -> None:
    """What the device means, without the noise of binary floats."""
    register = Register(
        function=RegisterFunction.HOLDING,
        address=10,
        data_type=data_type,
        scale=scale,
        scale_register=20 if exponent else None,
    )
    table = dict(enumerate(words, start=10)) | {20: exponent & 0xFFFF}
    spec = ChannelSpec(key="x", unit=None, kind=ChannelKind.MEASUREMENT, register=register)
    assert repr(decode_channel(spec, 1, {(1, RegisterFunction.HOLDING): table})) == repr(expected)


@given(value=st.floats(allow_nan=False, allow_infinity=False), word_order=_orders)
def test_float64_round_trip(value: float, word_order: WordOrder) -> None:
    """float64 values come back bit for bit."""
    register = _register(DataType.FLOAT64, word_order, WordOrder.BIG)
    assert decode_words(register, encode_value(register, value)) == value


@given(
    text=st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=126), max_size=16),
    word_order=_orders,
)
def test_string_round_trip(text: str, word_order: WordOrder) -> None:
    """Padded ASCII strings come back without their padding."""
    register = _register(DataType.STRING, word_order, WordOrder.BIG, length=8)
    assert decode_words(register, encode_value(register, text)) == (text or None)


@given(
    raw=st.integers(-(2**15), 2**15 - 1),
    scale=st.sampled_from([1.0, 0.1, 0.01, 10.0]),
    exponent=st.integers(-4, 4),
)
def test_scale_and_scale_factor(raw: int, scale: float, exponent: int) -> None:
    """A fixed scale and a SunSpec scale-factor register both apply."""
    register = _register(
        DataType.INT16, WordOrder.BIG, WordOrder.BIG, scale=scale, scale_register=20
    )
    spec = ChannelSpec(key="ActivePower", unit="W", kind=ChannelKind.MEASUREMENT, register=register)
    image = {(1, RegisterFunction.INPUT): {10: raw & 0xFFFF, 20: exponent & 0xFFFF}}
    value = decode_channel(spec, 1, image)
    assert value == pytest.approx(raw * scale * 10.0**exponent)


def test_sentinels_nan_and_missing_registers_give_none() -> None:
    """Not-implemented markers and NaN never become numbers; unread registers are not read."""
    sentinel = _register(DataType.UINT16, WordOrder.BIG, WordOrder.BIG, sentinels=(0xFFFF,))
    assert decode_words(sentinel, [0xFFFF]) is None
    assert decode_words(sentinel, [0xFFFE]) == 0xFFFE
    nan_words = list(struct.unpack(">HH", struct.pack(">f", math.nan)))
    assert (
        decode_words(_register(DataType.FLOAT32, WordOrder.BIG, WordOrder.BIG), nan_words) is None
    )
    spec = ChannelSpec(
        key="Frequency",
        unit="Hz",
        kind=ChannelKind.MEASUREMENT,
        register=_register(DataType.FLOAT32, WordOrder.BIG, WordOrder.BIG),
    )
    half_read = {(1, RegisterFunction.INPUT): {10: 0x4248}}
    assert not was_read(spec, 1, half_read)
    assert decode_channel(spec, 1, half_read) is None


def test_scale_factor_not_implemented() -> None:
    """A SunSpec scale factor of 0x8000 makes the value unknown, not scaled by 10^-32768."""
    register = _register(DataType.INT16, WordOrder.BIG, WordOrder.BIG, scale_register=20)
    spec = ChannelSpec(key="ActivePower", unit="W", kind=ChannelKind.MEASUREMENT, register=register)
    assert decode_channel(spec, 1, {(1, RegisterFunction.INPUT): {10: 5, 20: 0x8000}}) is None
