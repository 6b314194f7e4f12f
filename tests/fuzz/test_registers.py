"""Fuzzing what devices send: any register words, decoded by every channel of every shipped
profile and cleaned, never raise and never reach an entity as NaN, infinity, an out-of-range
number or a 0 standing in for a rejected reading."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
import math
import random
from typing import Any

from hypothesis import example, given, settings, strategies as st

from custom_components.ems.engine.cleaning import CounterGuard, CounterState, assess, check_rating
from custom_components.ems.engine.modbus.codec import decode_channel, was_read
from custom_components.ems.engine.model import (
    ChannelKind,
    ChannelSpec,
    DataType,
    Device,
    DeviceRole,
    Reading,
    Register,
    RegisterFunction,
    WordOrder,
)
from custom_components.ems.engine.normalization import conversion_for, normalize
from custom_components.ems.engine.pipeline import SitePipeline
from custom_components.ems.engine.profiles.loader import builtin_profiles
from custom_components.ems.engine.profiles.sunspec import (
    SUPPORTED_MODELS,
    ModelInstance,
    build_profile,
    model_definition,
)

from .usable import check_reading

FUZZ = settings(max_examples=200, deadline=None)
UNIT = 1
NOW = datetime(2025, 6, 1, 12, tzinfo=UTC)


def _sunspec_profiles() -> list[Any]:
    """One profile per supported SunSpec model, at its full length."""
    profiles = []
    for model_id in sorted(SUPPORTED_MODELS):
        length = sum(int(p["size"]) for p in model_definition(model_id)["points"]) - 2
        profiles.append(
            build_profile([ModelInstance(model_id=model_id, address=40002, length=length)])
        )
    return profiles


PROFILES = [*builtin_profiles().values(), *_sunspec_profiles()]
SPECS: list[ChannelSpec] = [spec for profile in PROFILES for spec in profile.channels]
# Words that mean something to a decoder: sentinels, NaN and infinity in both float widths,
# the largest float64 (overflows when scaled), sign bits, and SunSpec scale-factor extremes.
SPECIAL_WORDS = [
    0x0000,
    0xFFFF,
    0x8000,
    0x7FFF,
    0x7FC0,
    0x7F80,
    0xFF80,
    0xFFC0,
    0x7FF8,
    0x7FF0,
    0xFFF0,
    0x7FEF,
    0x0001,
    0x000A,
    0x000B,
    0xFFF6,
    0xFFF5,
    0x4142,
]
WORDS = st.sampled_from(SPECIAL_WORDS) | st.integers(0, 0xFFFF)


def _image(spec: ChannelSpec, words: list[int], scale_word: int) -> dict[Any, dict[int, int]]:
    register = spec.register
    addresses = range(register.address, register.address + register.count)
    table = dict(zip(addresses, words, strict=True))
    if register.scale_register is not None:
        table[register.scale_register] = scale_word
    return {(UNIT, register.function): table}


def _judge(spec: ChannelSpec, decoded: float | str | None) -> Reading:
    """decode → assess → normalize → rating check, as the pipeline does it."""
    reading = normalize(assess("d", spec, decoded, was_read=True, timestamp=NOW))
    return check_rating(reading, 10.0)


@FUZZ
@given(
    spec=st.sampled_from(SPECS),
    words=st.lists(WORDS, min_size=125, max_size=125),
    scale_word=WORDS,
)
@example(  # a SunSpec scale factor of 0x4142 once raised OverflowError (10.0 ** 16706)
    spec=next(s for s in SPECS if s.register.scale_register is not None),
    words=[0x0001] * 125,
    scale_word=0x4142,
)
def test_decode_any_words(spec: ChannelSpec, words: list[int], scale_word: int) -> None:
    """Any words decode to text, a finite number or None; a usable reading is in range."""
    image = _image(spec, words[: spec.register.count], scale_word)
    assert was_read(spec, UNIT, image)
    decoded = decode_channel(spec, UNIT, image)
    assert decoded is None or isinstance(decoded, str) or math.isfinite(decoded)
    reading = _judge(spec, decoded)
    check_reading(reading)
    if reading.usable and not isinstance(reading.value, str):
        assert isinstance(decoded, float | int)
        # The value shown is the device's own, converted: never a substitute.
        assert reading.value == conversion_for(spec.unit).apply(decoded)
        raw_in_range = (spec.minimum is None or decoded >= spec.minimum) and (
            spec.maximum is None or decoded <= spec.maximum
        )
        assert raw_in_range
    if decoded is None:
        assert not reading.usable


@FUZZ
@given(
    data_type=st.sampled_from([t for t in DataType if t is not DataType.STRING]),
    words=st.lists(WORDS, min_size=4, max_size=4),
    scale=st.sampled_from([1.0, 0.001, 1e300, -1e300, 1e-320]),
    word_order=st.sampled_from(["big", "little"]),
    unit=st.sampled_from(["W", "kW", "MWh", "mA", "degF"]),
)
@example(
    data_type=DataType.FLOAT64,
    words=[0x7FEF, 0xFFFF, 0xFFFF, 0xFFFF],
    scale=1e300,
    word_order="big",
    unit="W",
)
@example(
    data_type=DataType.FLOAT64,
    words=[0x7FEF, 0xFFFF, 0xFFFF, 0xFFFF],
    scale=1.0,
    word_order="big",
    unit="kW",
)
def test_decode_every_type_and_scale(
    data_type: DataType, words: list[int], scale: float, word_order: str, unit: str
) -> None:
    """Every width and order, with scales and units a profile allows: finite or no value."""
    spec = ChannelSpec(
        key="ActivePower",
        unit=unit,
        kind=ChannelKind.MEASUREMENT,
        register=Register(
            function=RegisterFunction.INPUT,
            address=0,
            data_type=data_type,
            word_order=WordOrder(word_order),
            byte_order=WordOrder(word_order),
            scale=scale,
        ),
    )
    decoded = decode_channel(spec, UNIT, _image(spec, words[: spec.register.count], 0))
    assert decoded is None or (isinstance(decoded, float | int) and math.isfinite(decoded))
    check_reading(_judge(spec, decoded))


# The simulated site: every device type and both profile families, with the roles it has.
SITE = [
    (1, builtin_profiles()["eastron_sdm630"], DeviceRole.GRID),
    (
        2,
        build_profile(
            [
                ModelInstance(model_id=1, address=40002, length=66),
                ModelInstance(model_id=103, address=40070, length=50),
            ]
        ),
        DeviceRole.PRODUCTION,
    ),
    (
        3,
        build_profile(
            [
                ModelInstance(model_id=1, address=40002, length=66),
                ModelInstance(model_id=124, address=40070, length=24),
                ModelInstance(model_id=802, address=40096, length=62),
            ]
        ),
        DeviceRole.BATTERY,
    ),
    (
        4,
        build_profile(
            [
                ModelInstance(model_id=1, address=50002, length=66),
                ModelInstance(model_id=203, address=50070, length=105),
            ]
        ),
        DeviceRole.SUBMETER,
    ),
    (5, builtin_profiles()["eastron_sdm120"], DeviceRole.LOAD),
]
DEVICES = {
    f"unit{unit}": Device(
        id=f"unit{unit}",
        name=f"unit {unit}",
        unit_id=unit,
        profile=profile,
        role=role,
        rated_power_kw=10.0,
    )
    for unit, profile, role in SITE
}
REGISTERS = sorted(
    {
        (device.unit_id, spec.register.function, address)
        for device in DEVICES.values()
        for spec in device.profile.channels
        for address in (
            *range(spec.register.address, spec.register.address + spec.register.count),
            *([spec.register.scale_register] if spec.register.scale_register is not None else []),
        )
    }
)


@st.composite
def cycle_image(draw: st.DrawFn) -> dict[Any, dict[int, int]]:
    """One cycle's image: some registers unread, the rest random or meaningful words.

    A whole site is ~1000 registers, too many to draw one by one within hypothesis's budget;
    a drawn seed spreads the drawn mix over them (per-channel shrinking is test_decode_any_words).
    """
    rng = random.Random(draw(st.integers(0, 2**32)))
    unread = draw(st.sampled_from([0.0, 0.1, 1.0]))
    special = draw(st.sampled_from([0.0, 0.3, 1.0]))
    image: dict[Any, dict[int, int]] = {}
    for unit, function, address in REGISTERS:
        if rng.random() < unread:
            continue
        word = rng.choice(SPECIAL_WORDS) if rng.random() < special else rng.randrange(0x10000)
        image.setdefault((unit, function), {})[address] = word
    return image


@settings(FUZZ, max_examples=25)
@given(images=st.lists(cycle_image(), min_size=2, max_size=5))
def test_site_pipeline_on_garbage(images: list[dict[Any, dict[int, int]]]) -> None:
    """Cycles of garbage through the whole pipeline: no exception, no NaN or infinity shown,
    and a channel whose own reading is rejected shows nothing or its last good value."""
    pipeline = SitePipeline(devices=DEVICES)
    shown: dict[tuple[str, str], Reading] = {}
    for cycle, image in enumerate(images):
        timestamp = NOW + timedelta(seconds=10 * cycle)
        states, site = pipeline.process(image, timestamp)
        for device in DEVICES.values():
            for spec in device.profile.channels:
                output = states[device.id].readings[spec.key]
                check_reading(output)
                fresh = _judge(spec, decode_channel(spec, device.unit_id, image))
                if output.usable and not fresh.usable:
                    held = shown.get((device.id, spec.key))
                    assert held is not None, (device.id, spec.key, output)
                    assert output.value == held.value
                    assert output.timestamp < timestamp
                if output.usable:
                    shown[(device.id, spec.key)] = output
        for value in (*site.power_w.values(), *site.energy_kwh.values()):
            assert value is None or math.isfinite(value)


@FUZZ
@given(
    steps=st.lists(
        st.tuples(
            st.sampled_from([0.0, -1.0, math.nan, math.inf, -math.inf, 65535.0, 1e308])
            | st.floats(0, 1e6),
            st.floats(-60, 3600),
        ),
        min_size=1,
        max_size=30,
    ),
    rated=st.sampled_from([None, 0.1, 10.0]),
    modulus=st.sampled_from([None, 65536.0, 4294967.296]),
    restart_at=st.integers(0, 30),
)
def test_counter_guard_on_garbage(
    steps: list[tuple[float, float]],
    rated: float | None,
    modulus: float | None,
    restart_at: int,
) -> None:
    """Counters see zeros, steps back, NaN and spikes: the total is finite and never falls,
    and a rejected reading has no value at all (never 0), across a restart too."""
    guard = CounterGuard(max_power_kw=rated, modulus=modulus)
    clock = 1_700_000_000.0
    last_total: float | None = None
    for index, (raw, elapsed) in enumerate(steps):
        if index == restart_at:
            stored = CounterState.from_dict(guard.state.as_dict())
            guard = CounterGuard(max_power_kw=rated, modulus=modulus, state=stored)
        clock += elapsed
        verdict = guard.update(raw, clock)
        if verdict.value is None:
            assert verdict.reason is not None
            continue
        assert verdict.reason is None
        assert math.isfinite(verdict.value)
        if last_total is not None:
            assert verdict.value >= last_total
        last_total = verdict.value
