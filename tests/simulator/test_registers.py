"""Register encoding and the device maps, without sockets."""

from __future__ import annotations

import math
import struct

from hypothesis import given, strategies as st
import pytest

from simulator.devices import DEVICES
from simulator.physics import SiteConfig, SiteModel
from simulator.registers import (
    NumericType,
    RegisterDef,
    WordOrder,
    decode,
    decode_string,
    encode,
    encode_string,
)

INTEGER_RANGES: dict[NumericType, tuple[int, int]] = {
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
        (0x1_0000_0005, "acc32", "big", [0x0000, 0x0005]),  # an accumulator rolls over
    ],
)
def test_encode_known_values(
    value: float, data_type: NumericType, word_order: WordOrder, words: list[int]
) -> None:
    assert encode(value, data_type, word_order) == words


@given(st.sampled_from(list(INTEGER_RANGES)), st.sampled_from(["big", "little"]), st.data())
def test_integers_round_trip(
    data_type: NumericType, word_order: WordOrder, data: st.DataObject
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


def test_strings_are_nul_padded_register_pairs() -> None:
    assert encode_string("SunS", 2) == [0x5375, 0x6E53]
    assert encode_string("EMS", 3) == [0x454D, 0x5300, 0x0000]
    assert decode_string([0x454D, 0x5300, 0x0000]) == "EMS"
    with pytest.raises(ValueError, match="does not fit"):
        encode_string("too long", 2)


def test_not_implemented_values() -> None:
    power = RegisterDef("holding", 0, "int16", "W", not_implemented=-0x8000)
    assert power.to_words(None) == [0x8000]
    assert power.from_words([0x8000]) is None
    assert power.to_words(-40_000) == [0x8001]  # saturates one step short of "not implemented"
    status = RegisterDef("holding", 0, "uint16", "St", not_implemented=0xFFFF)
    assert status.to_words(70_000) == [0xFFFE]
    energy = RegisterDef("holding", 0, "acc32", "WH", counter=True, not_implemented=0)
    assert energy.to_words(None) == [0, 0]
    assert energy.from_words([0, 0]) == 0  # a count, unlike other types' sentinels
    name = RegisterDef("holding", 0, "string", "Md", length=4)
    assert name.to_words(None) == [0] * 4
    assert name.from_words([0] * 4) is None
    assert name.quantize("Sim") == "Sim"
    with pytest.raises(ValueError, match="always has a value"):
        RegisterDef("holding", 0, "uint16", "ID").to_words(None)


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
        # SunSpec: marker, model 1 (68 registers with ID and L), then the next models.
        (2, "SunS", 40000),
        (2, "1.ID", 40002),
        (2, "1.SN", 40002 + 50),
        (2, "103.ID", 40070),
        (2, "103.W", 40070 + 14),
        (2, "103.WH", 40070 + 24),
        (2, "103.St", 40070 + 38),
        (2, "end.ID", 40070 + 52),
        (3, "124.ID", 40070),
        (3, "124.StorCtl_Mod", 40070 + 5),
        (3, "124.InWRte", 40070 + 13),
        (3, "124.InOutWRte_SF", 40070 + 25),
        (3, "802.ID", 40096),
        (3, "802.SoC", 40096 + 11),
        (3, "802.W", 40096 + 47),
        (3, "end.ID", 40096 + 64),
        (4, "SunS", 50000),
        (4, "203.ID", 50070),
        (4, "203.W", 50070 + 18),
        (4, "203.TotWhExp", 50070 + 38),
        (4, "203.TotWhImp", 50070 + 46),
        (4, "end.ID", 50070 + 107),
    ],
)
def test_register_addresses_follow_the_manuals(unit_id: int, key: str, address: int) -> None:
    assert DEVICES[unit_id].register(key).address == address


def test_every_value_source_covers_its_registers() -> None:
    state = SiteModel(SiteConfig()).state()
    for device in DEVICES.values():
        values = device.read_values(state)
        assert {register.key for register in device.registers} <= set(values), device.model


def test_eastron_holes_read_zero_and_sunspec_maps_have_none() -> None:
    meter = DEVICES[1]
    assert meter.serves("input", range(0x0180))
    assert meter.words({}, "input", range(0x0024, 0x002A)) == [0] * 6
    assert not meter.serves("input", range(0x017F, 0x0181))
    assert not meter.serves("holding", range(0x0002))
    for unit_id, base in [(2, 40000), (3, 40000), (4, 50000)]:
        device = DEVICES[unit_id]
        end = device.register("end.L").address + 1
        assert device.serves("holding", range(base, end)), unit_id
        assert not device.serves("holding", range(base - 1, base + 1)), unit_id
        assert not device.serves("holding", range(end - 1, end + 1)), unit_id
        assert not device.serves("input", range(base, base + 1)), unit_id


def test_writes_must_hit_whole_writable_registers() -> None:
    battery = DEVICES[3]
    rates = battery.register("124.OutWRte").address
    assert battery.decode_write(range(rates, rates + 5), [2500, 0, 0, 60, 0]) == {
        "124.OutWRte": 25.0,
        "124.InWRte": 0.0,
        "124.InOutWRte_WinTms": 0,
        "124.InOutWRte_RvrtTms": 60,
        "124.InOutWRte_RmpTms": 0,
    }
    assert list(battery.decode_write(range(rates, rates + 2), [1, 2]) or {}) == [
        "124.OutWRte",
        "124.InWRte",
    ]  # in address order
    soc = battery.register("802.SoC").address
    assert battery.decode_write(range(soc, soc + 1), [500]) is None  # read-only
    mode = battery.register("124.StorCtl_Mod").address
    assert battery.decode_write(range(mode, mode + 2), [1, 2]) is None  # VAChaMax is read-only
    assert battery.decode_write(range(rates + 4, rates + 6), [0, 1]) is None  # ChaGriSet too
