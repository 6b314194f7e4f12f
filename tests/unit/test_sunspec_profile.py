"""Every supported SunSpec model becomes channels, from the Alliance's own definitions."""

from __future__ import annotations

import pytest

from custom_components.ems.engine.model import (
    ChannelKind,
    DataType,
    DeviceType,
    PollGroup,
    Symbols,
)
from custom_components.ems.engine.profiles.sunspec import (
    INVERTER_MODELS,
    METER_MODELS,
    MPPT_MODEL,
    SUPPORTED_MODELS,
    ModelInstance,
    build_profile,
    model_definition,
    standard_translation,
    symbol_name,
)


def _chain(*model_ids: int) -> list[ModelInstance]:
    chain, address = [], 40002
    for model_id in model_ids:
        length = sum(int(p["size"]) for p in model_definition(model_id)["points"]) - 2
        chain.append(ModelInstance(model_id=model_id, address=address, length=length))
        address += 2 + length
    return chain


@pytest.mark.parametrize("model_id", sorted(INVERTER_MODELS))
def test_inverter_models(model_id: int) -> None:
    """Integer models use scale-factor registers; float models (111-113) do not."""
    profile = build_profile(_chain(1, model_id))
    assert profile.device_type is DeviceType.INVERTER
    power = profile.channel("AC_Power")
    assert power.unit == "W"
    if model_id >= 111:
        assert power.register.data_type is DataType.FLOAT32
        assert power.register.scale_register is None
    else:
        assert power.register.scale_register is not None
    assert profile.channel("EnergyGenerated").kind is ChannelKind.COUNTER
    assert profile.channel("Status").kind is ChannelKind.STATE
    assert profile.channel("SerialNumber").poll is PollGroup.SLOW


@pytest.mark.parametrize("model_id", sorted(METER_MODELS))
def test_meter_models(model_id: int) -> None:
    """Every meter model gives power, frequency and both energy directions."""
    profile = build_profile(_chain(1, model_id))
    assert profile.device_type is DeviceType.METER
    keys = {spec.key for spec in profile.channels}
    assert {"ActivePower", "Frequency", "EnergyImport", "EnergyExport"} <= keys
    assert profile.channel("EnergyImport").unit == "Wh"
    # Every meter model has the line-to-line voltages, whichever name its model gives them.
    assert {"Voltage_L1_L2", "Voltage_L2_L3", "Voltage_L3_L1"} <= keys


def test_storage_chain_prefers_the_battery_model() -> None:
    """With 124 and 802, the state of charge comes from 802; control points come from 124."""
    profile = build_profile(_chain(1, 124, 802))
    assert profile.device_type is DeviceType.BATTERY
    assert profile.channel("SOC").origin == "802.SoC"
    assert profile.channel("StorageControlMode").origin == "124.StorCtl_Mod"
    assert profile.channel("ChargeRate").access.value == "rw"
    assert profile.channel("Capacity").poll is PollGroup.SLOW


def test_short_model_revision_drops_points_past_its_end() -> None:
    """An older, shorter revision of a model only yields the points it contains."""
    (common, inverter) = _chain(1, 103)
    short = ModelInstance(model_id=103, address=inverter.address, length=20)
    keys = {spec.key for spec in build_profile([common, short]).channels}
    assert "Current" in keys
    assert "Temperature" not in keys


def test_unsupported_models_are_ignored() -> None:
    """Models ems does not read (a DER model, 701) add nothing and break nothing."""
    profile = build_profile(_chain(1, 103, 701))
    assert all(not (spec.origin or "").startswith("701.") for spec in profile.channels)
    assert profile.channel("AC_Power").origin == "103.W"


def _channel_points(model_id: int) -> set[str]:
    """Every point of a model's top level but its header, scale factors and pads."""
    return {
        f"{model_id}.{point['name']}"
        for point in model_definition(model_id)["points"]
        if point["type"] not in ("sunssf", "pad") and point["name"] not in ("ID", "L")
    }


@pytest.mark.parametrize("model_id", sorted(SUPPORTED_MODELS - {1, MPPT_MODEL}))
def test_every_point_of_every_supported_model_is_a_channel(model_id: int) -> None:
    """No point is left out and none is read twice: each is its own channel, with its origin."""
    profile = build_profile(_chain(1, model_id))
    origins = [spec.origin for spec in profile.channels]
    assert len(origins) == len(set(origins)) == len({spec.key for spec in profile.channels})
    assert set(origins) == _channel_points(1) | _channel_points(model_id)
    for spec in profile.channels:
        assert spec.key == spec.origin or "." not in spec.key, spec.key


def test_points_without_an_engineering_name_keep_the_standards() -> None:
    """103's sink temperature is "103.TmpSnk"; when 802 takes "SOC", 124's stays "124.ChaState"."""
    inverter = build_profile(_chain(1, 103))
    assert inverter.channel("103.TmpSnk").unit == "°C"
    assert inverter.channel("103.TmpSnk").kind is ChannelKind.MEASUREMENT
    storage = build_profile(_chain(1, 124, 802))
    assert storage.channel("124.ChaState").unit == "%"
    assert storage.channel("124.StorAval").unit == "Ah"
    assert storage.channel("802.CellVMax").unit == "V"
    assert storage.channel("802.NCyc").kind is ChannelKind.COUNTER  # cycles only grow
    assert storage.channel("802.Hb").kind is ChannelKind.STATE  # a heartbeat: no quantity


def test_units_kinds_and_polling_of_the_new_points() -> None:
    """Ratings are levels, not meters; apparent energy keeps its own unit; settings are slow."""
    chain = _chain(1, 103, 120, 121, 122, 123)
    profile = build_profile(chain)
    assert profile.channel("120.WHRtg").kind is ChannelKind.MEASUREMENT
    assert profile.channel("120.PFRtgQ1").unit is None  # "cos()"
    assert profile.channel("122.Ris").unit == "Ω"
    assert profile.channel("122.ActWh").kind is ChannelKind.COUNTER
    assert profile.channel("122.ActWh").register.data_type is DataType.UINT64
    assert profile.channel("122.ActVAh").unit == "VAh"
    assert profile.channel("121.WGra").unit == "%"
    for origin in ("120.WRtg", "121.WMax", "122.PVConn", "123.Conn"):
        assert profile.channel(origin).poll is PollGroup.SLOW, origin
    assert profile.channel("AC_Power").poll is PollGroup.FAST
    meter = build_profile(_chain(1, 203))
    assert meter.channel("203.TotVAhExp").kind is ChannelKind.COUNTER
    assert meter.channel("203.TotVAhExp").unit == "VAh"
    assert build_profile(_chain(1, 802)).channel("Capacity").kind is ChannelKind.MEASUREMENT


def _mppt(modules: int, *, extra: int = 0) -> list[ModelInstance]:
    common, inverter, _ = _chain(1, 103, 1)
    address = inverter.address + 2 + inverter.length
    return [common, inverter, ModelInstance(model_id=160, address=address,
                                            length=8 + 20 * modules + extra)]  # fmt: skip


def test_model_160_gives_each_string_its_voltage_current_power_and_energy() -> None:
    """Each module of the repeating group is a PV string; its values scale by the top-level
    scale factors, and its other points keep the standard's names, numbered."""
    chain = _mppt(3)
    mppt = chain[2]
    profile = build_profile(chain)
    for string in (1, 2, 3):
        module = mppt.address + 10 + 20 * (string - 1)
        voltage = profile.channel(f"PV{string}_Voltage")
        assert voltage.origin == f"160.{string}.DCV"
        assert voltage.register.address == module + 10
        assert voltage.register.scale_register == mppt.address + 3  # DCV_SF
        assert voltage.unit == "V"
        assert profile.channel(f"PV{string}_Current").register.address == module + 9
        assert profile.channel(f"PV{string}_Power").unit == "W"
        energy = profile.channel(f"PV{string}_Energy")
        assert energy.kind is ChannelKind.COUNTER
        assert energy.register.data_type is DataType.UINT32
        assert profile.channel(f"160.{string}.IDStr").register.length == 8
        state = profile.channel(f"160.{string}.DCSt")
        assert state.symbols is not None
        assert state.symbols.state(4) == "mppt"
    assert "PV4_Voltage" not in {spec.key for spec in profile.channels}
    assert profile.channel("160.Evt").symbols is not None


def test_model_160_leaves_out_a_module_cut_short() -> None:
    """A length that ends inside a module reads only the whole ones."""
    profile = build_profile(_mppt(2, extra=7))
    keys = {spec.key for spec in profile.channels}
    assert {"PV1_Voltage", "PV2_Voltage"} <= keys
    assert "PV3_Voltage" not in keys
    assert "160.3.ID" not in keys


def test_a_garbage_module_count_is_bounded() -> None:
    """A length claiming thousands of modules does not make thousands of channels."""
    profile = build_profile(_mppt(1, extra=20 * 5000))
    strings = [spec for spec in profile.channels if spec.key.startswith("PV")]
    assert sum(spec.key.endswith("_Voltage") for spec in strings) == 64


def test_enumerations_and_bit_fields_carry_the_standards_names() -> None:
    """103.St names its states; Evt1 names its bits; other bits are numbered."""
    profile = build_profile(_chain(1, 103))
    status = profile.channel("Status").symbols
    assert status is not None
    assert not status.bitfield
    assert status.state(4) == "mppt"
    assert status.state(6) == "shutting_down"
    assert status.state(42) is None
    assert status.state(None) is None
    events = profile.channel("Fault").symbols
    assert events is not None
    assert events.bitfield
    assert events.active(0b101) == ("ground_fault", "ac_disconnect")
    assert events.active(1 << 31) == ("bit_31",)
    assert events.active(0) == ()
    assert profile.channel("103.Evt2").symbols == Symbols(names=(), bitfield=True)
    assert profile.channel("103.StVnd").symbols is None  # vendor-defined: a number
    assert profile.channel("103.StVnd").kind is ChannelKind.STATE


def test_symbol_names_are_state_keys() -> None:
    """Spaces, dashes and model 111's "gg" typo become plain state keys."""
    assert symbol_name("SOC PROTECTION") == "soc_protection"
    assert symbol_name("Freq-Watt-Param") == "freq_watt_param"
    assert symbol_name("ggSHUTTING_DOWN") == "shutting_down"
    assert build_profile(_chain(1, 111)).channel("Status").symbols.state(4) == "mppt"  # type: ignore[union-attr]


def test_standard_translation_keys() -> None:
    """Where a point's name comes from: its model and point, or its group's."""
    assert standard_translation("103.TmpSnk") == ("sunspec_103_tmpsnk", {})
    assert standard_translation("160.2.DCSt") == ("sunspec_160_module_dcst", {"module": "2"})
