"""Register encoding and the device maps, without sockets."""

from __future__ import annotations

import math
import struct

from hypothesis import given, strategies as st
import pytest

from simulator.physics import SiteConfig, SiteModel
from simulator.registers import DEVICES, DataType, RegisterDef, WordOrder, decode, encode

INTEGER_RANGES: dict[DataType, tuple[int, int]] = {
    "uint16": (0, 0xFFFF),
    "int16": (-0x8000, 0x7FFF),
    "uint32": (0, 0xFFFF_FFFF),
    "int32": (-0x8000_0000, 0x7FFF_FFFF),
}


@pytest.mark.parametrize(
    ("value", "data_type", "word_order", "words"),
    [
        (230.0, "float32", "big", [0x4366, 0x0000]),
        (230.0, "float32", "little", [0x0000, 0x4366]),
        (-1, "int32", "big", [0xFFFF, 0xFFFF]),
        (0x12345678, "uint32", "big", [0x1234, 0x5678]),
        (0x12345678, "uint32", "little", [0x5678, 0x1234]),
        (-2, "int16", "big", [0xFFFE]),
        (70_000, "uint16", "big", [0xFFFF]),  # saturates like a device clamping its reading
        (-5, "uint32", "big", [0x0000, 0x0000]),
    ],
)
def test_encode_known_values(
    value: float, data_type: DataType, word_order: WordOrder, words: list[int]
) -> None:
    assert encode(value, data_type, word_order) == words


@given(st.sampled_from(list(INTEGER_RANGES)), st.sampled_from(["big", "little"]), st.data())
def test_integers_round_trip(
    data_type: DataType, word_order: WordOrder, data: st.DataObject
) -> None:
    low, high = INTEGER_RANGES[data_type]
    value = data.draw(st.integers(min_value=low, max_value=high))
    words = encode(value, data_type, word_order)
    assert all(0 <= word <= 0xFFFF for word in words)
    assert decode(words, data_type, word_order) == value


@given(st.floats(width=32, allow_nan=False), st.sampled_from(["big", "little"]))
def test_float32_round_trips(value: float, word_order: WordOrder) -> None:
    assert decode(encode(value, "float32", word_order), "float32", word_order) == value


def test_nan_words_decode_to_nan() -> None:
    assert math.isnan(decode([0x7FC0, 0x0000], "float32"))


def test_scaled_registers_quantize_to_their_resolution() -> None:
    soc = RegisterDef("holding", 2, "uint16", "SOC", scale_exp=-1)
    assert soc.quantize(50.34) == 50.3
    assert soc.to_words(50.34) == [503]
    assert soc.from_words([503]) == 50.3
    capacity = RegisterDef("holding", 7, "uint16", "Capacity", scale_exp=1)
    assert capacity.quantize(10_004.0) == 10_000
    assert capacity.to_words(10_000.0) == [1000]
    voltage = RegisterDef("input", 0, "float32", "Voltage")
    assert voltage.quantize(230.1) == struct.unpack(">f", struct.pack(">f", 230.1))[0]


@pytest.mark.parametrize(
    ("unit_id", "key", "address"),
    [
        (1, "Voltage_L1", 0x0000),
        (1, "Current_L3", 0x000A),
        (1, "ActivePower_L2", 0x000E),
        (1, "PowerFactor_L3", 0x0022),
        (1, "ActivePower", 0x0034),
        (1, "Frequency", 0x0046),
        (1, "EnergyImport", 0x0048),
        (1, "ReactiveEnergyExport", 0x004E),
        (1, "Voltage_L3_L1", 0x00CC),
        (1, "Current_N", 0x00E0),
        (1, "TotalEnergy", 0x0156),
        (1, "EnergyExport_L3", 0x0164),
        (1, "SerialNumber", 0xFC00),
        (1, "MeterCode", 0xFC02),
        (5, "PowerFactor", 0x001E),
        (5, "TotalEnergy", 0x0156),
        (2, "DC_Current", 5),
        (3, "EnergyDischarged", 5),
        (3, "ControlPower", 101),
    ],
)
def test_register_addresses_follow_the_manuals(unit_id: int, key: str, address: int) -> None:
    assert DEVICES[unit_id].register(key).address == address


def test_every_value_source_covers_its_registers() -> None:
    state = SiteModel(SiteConfig()).state()
    for device in DEVICES.values():
        values = device.read_values(state)
        assert {register.key for register in device.registers} <= set(values), device.model


def test_eastron_holes_read_zero_and_simple_maps_have_none() -> None:
    meter = DEVICES[1]
    assert meter.serves("input", range(0x0180))
    assert meter.words({}, "input", range(0x0024, 0x002A)) == [0] * 6
    assert not meter.serves("input", range(0x017F, 0x0181))
    assert not meter.serves("holding", range(0x0002))
    battery = DEVICES[3]
    assert battery.serves("holding", range(9))
    assert not battery.serves("holding", range(8, 10))
    assert not battery.serves("input", range(1))


def test_writes_must_hit_whole_writable_registers() -> None:
    battery = DEVICES[3]
    assert battery.decode_write(range(100, 102), [1, 2500]) == {
        "ControlMode": 1,
        "ControlPower": 2500,
    }
    assert battery.decode_write(range(2, 3), [500]) is None  # SOC is read-only
    assert battery.decode_write(range(101, 103), [1, 2]) is None  # 102 is not a register
