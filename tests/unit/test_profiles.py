"""Profiles load from YAML; a broken one names the file, the channel and the field."""

from __future__ import annotations

from pathlib import Path

import pytest

from custom_components.ems.engine.model import ChannelKind, DataType, PollGroup, RegisterFunction
from custom_components.ems.engine.normalization import canonical_unit
from custom_components.ems.engine.profiles.loader import (
    BUILTIN_DIR,
    ProfileError,
    builtin_profiles,
    load_profile,
    load_profiles,
)

_VALID = """
id: my_meter
manufacturer: Acme
model: M1
device_type: meter
defaults: {function: input, type: float32}
channels:
  ActivePower: {address: 12, unit: kW, min: -50, max: 50}
  EnergyImport: {address: 0x48, unit: Wh}
  SerialNumber: {function: holding, address: 0xFC00, type: uint32, kind: identity, poll: slow}
"""


def test_every_shipped_profile_loads() -> None:
    """Shipped profiles are valid, and every unit they use has a canonical unit."""
    profiles = builtin_profiles()
    assert len(profiles) == len(list(BUILTIN_DIR.glob("*.yaml")))
    for profile in profiles.values():
        for spec in profile.channels:
            canonical_unit(spec.unit)


def test_sdm630_is_a_full_three_phase_set() -> None:
    """The grid meter profile has every phase value and both energy directions."""
    sdm630 = builtin_profiles()["eastron_sdm630"]
    keys = {spec.key for spec in sdm630.channels}
    for quantity in (
        "Voltage",
        "Current",
        "ActivePower",
        "ReactivePower",
        "ApparentPower",
        "PowerFactor",
    ):
        assert {f"{quantity}_L{phase}" for phase in (1, 2, 3)} <= keys
    assert sdm630.channel("EnergyImport").kind is ChannelKind.COUNTER
    assert sdm630.channel("EnergyImport").register.address == 0x48
    assert sdm630.channel("SerialNumber").poll is PollGroup.SLOW


def test_user_profile_with_defaults(tmp_path: Path) -> None:
    """Defaults fill what a channel leaves out, and kinds follow units."""
    (tmp_path / "my_meter.yaml").write_text(_VALID, encoding="utf-8")
    profiles, errors = load_profiles(tmp_path)
    assert errors == []
    power = profiles["my_meter"].channel("ActivePower")
    assert power.register.function is RegisterFunction.INPUT
    assert power.register.data_type is DataType.FLOAT32
    assert power.kind is ChannelKind.MEASUREMENT
    assert profiles["my_meter"].channel("EnergyImport").kind is ChannelKind.COUNTER


@pytest.mark.parametrize(
    ("replace", "with_", "expected"),
    [
        ("address: 12,", "address: -1,", "my_meter.yaml, channel 'ActivePower', field 'address'"),
        ("address: 12,", "address: twelve,", "channel 'ActivePower', field 'address'"),
        ("type: float32}", "type: float128}", "field 'defaults'"),
        ("min: -50, max: 50", "min: 50, max: -50", "channel 'ActivePower', field 'min'"),
        ("device_type: meter", "device_type: toaster", "field 'device_type'"),
        ("id: my_meter", "id: My Meter", "field 'id'"),
        ("kind: identity", "kind: gauge", "channel 'SerialNumber', field 'kind'"),
        ("ActivePower: {", "Active Power: {", "channel 'Active Power': is not a channel name"),
        ("  ActivePower: {address: 12,", "  ActivePower: {adress: 12,", "field 'adress'"),
        ("address: 0xFC00", "address: 0xFFFF", "channel 'SerialNumber', field 'address'"),
    ],
)
def test_broken_profile_names_file_channel_and_field(
    tmp_path: Path, replace: str, with_: str, expected: str
) -> None:
    """Each mistake gives one readable message, not a traceback."""
    path = tmp_path / "my_meter.yaml"
    path.write_text(_VALID.replace(replace, with_), encoding="utf-8")
    with pytest.raises(ProfileError) as caught:
        load_profile(path)
    assert expected in str(caught.value)
    assert str(caught.value).startswith("my_meter.yaml")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (": : :", "is not valid YAML"),
        ("- just\n- a list", "must be a mapping"),
        ("", "must be a mapping"),
    ],
)
def test_unparseable_profile(tmp_path: Path, text: str, expected: str) -> None:
    """Garbage files are reported by name."""
    path = tmp_path / "garbage.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ProfileError, match=expected):
        load_profile(path)


def test_one_broken_file_does_not_hide_the_others(tmp_path: Path) -> None:
    """A folder with a broken profile still loads the good ones and reports the bad one."""
    (tmp_path / "good.yaml").write_text(_VALID, encoding="utf-8")
    (tmp_path / "bad.yaml").write_text("id: [", encoding="utf-8")
    (tmp_path / "twin.yaml").write_text(_VALID, encoding="utf-8")
    profiles, errors = load_profiles(tmp_path)
    assert list(profiles) == ["my_meter"]
    assert sorted(error.file for error in errors) == ["bad.yaml", "twin.yaml"]
