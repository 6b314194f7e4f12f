"""A SunSpec chain splits into the logical devices it describes."""

from __future__ import annotations

from hypothesis import given, strategies as st
import pytest

from custom_components.ems.engine.model import DeviceType
from custom_components.ems.engine.profiles.sunspec import ModelInstance, build_profile
from custom_components.ems.engine.profiles.sunspec_chain import primary_index, split_chain
from tests.unit.test_sunspec_profile import _chain

INVERTER, METER, BATTERY = DeviceType.INVERTER, DeviceType.METER, DeviceType.BATTERY


def _layout(*model_ids: int) -> list[tuple[DeviceType, str]]:
    return [(part.device_type, part.label) for part in split_chain(_chain(*model_ids))]


@pytest.mark.parametrize(
    ("models", "expected", "primary"),
    [
        # SolarEdge: the inverter, then a common model and a meter model per meter.
        (
            (1, 103, 1, 203, 1, 203),
            [(INVERTER, "1+103"), (METER, "1+203"), (METER, "1+203")],
            0,
        ),
        # A hybrid: the unit's identity goes to the battery, as the whole chain was one.
        (
            (1, 103, 120, 121, 122, 123, 124, 160, 802),
            [(INVERTER, "103+120+121+122+123+160"), (BATTERY, "1+124+802")],
            1,
        ),
        ((1, 103, 124, 802), [(INVERTER, "103"), (BATTERY, "1+124+802")], 1),
        ((1, 124, 802), [(BATTERY, "1+124+802")], 0),
        ((1, 203), [(METER, "1+203")], 0),
        ((1, 113), [(INVERTER, "1+113")], 0),
        # The simulator's SunSpec meter's inverter-less chain and the bare common model.
        ((1,), [(METER, "1")], 0),
        # Two batteries: a repeated storage model starts the next one.
        ((1, 802, 802), [(BATTERY, "1+802"), (BATTERY, "802")], 0),
        # A meter behind the battery, without a common model of its own.
        ((1, 124, 802, 203), [(BATTERY, "1+124+802"), (METER, "203")], 0),
        # An unknown model stays with the device it follows; a repeated detail model is dropped.
        ((1, 103, 64001, 160, 160), [(INVERTER, "1+103+64001+160")], 0),
    ],
)
def test_chain_layouts(
    models: tuple[int, ...], expected: list[tuple[DeviceType, str]], primary: int
) -> None:
    """The layouts real devices serve, and the odd ones."""
    assert _layout(*models) == expected
    assert primary_index(split_chain(_chain(*models))) == primary


def test_no_point_is_shared_between_logical_devices() -> None:
    """The meter's W is the meter's power, the inverter's W the inverter's: every channel of a
    part comes from one of the part's own models."""
    parts = split_chain(_chain(1, 103, 1, 203, 1, 203))
    profiles = [build_profile(list(part.models)) for part in parts]
    assert profiles[0].channel("AC_Power").origin == "103.W"
    assert "ActivePower" not in {spec.key for spec in profiles[0].channels}
    for part, profile in zip(parts, profiles, strict=True):
        own = {
            address
            for model in part.models
            for address in range(model.address, model.address + 2 + model.length)
        }
        assert all(spec.register.address in own for spec in profile.channels)
    meters = [profile.channel("ActivePower").register.address for profile in profiles[1:]]
    assert meters[0] != meters[1]


_MODEL_IDS = st.sampled_from([1, 101, 103, 113, 120, 123, 124, 160, 201, 203, 213, 802, 9999])


@given(models=st.lists(st.tuples(_MODEL_IDS, st.integers(min_value=0, max_value=300)), max_size=12))
def test_any_chain_splits_into_parts_that_cover_it(models: list[tuple[int, int]]) -> None:
    """Whatever a device reports (unknown, repeated, too short or too long models), the split
    keeps every device model once, in chain order, and every part builds a profile."""
    chain, address = [], 40002
    for model_id, length in models:
        chain.append(ModelInstance(model_id=model_id, address=address, length=length))
        address += 2 + length
    parts = split_chain(chain)
    device_models = [m for m in chain if m.model_id in {101, 103, 113, 124, 201, 203, 213, 802}]
    in_parts = sorted(
        (m for part in parts for m in part.models if m in device_models),
        key=lambda m: m.address,
    )
    assert in_parts == device_models
    assert len({m for part in parts for m in part.models}) == sum(len(p.models) for p in parts)
    if chain:
        assert parts
        assert 0 <= primary_index(parts) < len(parts)
    for part in parts:
        ids = [m.model_id for m in part.models]
        assert len(ids) == len(set(ids))  # no model of a part shadows another's points
        build_profile(list(part.models))  # never raises
