"""Every supported SunSpec model becomes channels, from the Alliance's own definitions."""

from __future__ import annotations

import pytest

from custom_components.ems.engine.model import ChannelKind, DataType, DeviceType, PollGroup
from custom_components.ems.engine.profiles.sunspec import (
    INVERTER_MODELS,
    METER_MODELS,
    ModelInstance,
    build_profile,
    model_definition,
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
    """Models we do not map (e.g. 160 MPPT) add nothing and break nothing."""
    profile = build_profile(_chain(1, 103, 160))
    assert all(
        spec.origin is None or not spec.origin.startswith("160.") for spec in profile.channels
    )
