"""Battery control: one command model, safety limits first, SunSpec 124 writes, closed loops."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
import itertools
import math
from typing import Any

from hypothesis import assume, given, settings, strategies as st
import pytest

from custom_components.ems.engine.control.commands import (
    BatteryCommand,
    BatteryLimits,
    BatteryMode,
    BatteryObservation,
    Setpoint,
    validate_command,
    validate_limits,
)
from custom_components.ems.engine.control.policy import resolve
from custom_components.ems.engine.control.recipe import (
    changed_writes,
    cycle_writes,
    desired_values,
    rearm_channels,
    reassert_due,
)
from custom_components.ems.engine.profiles.sunspec import (
    ModelInstance,
    build_profile,
    model_definition,
)
from custom_components.ems.engine.recipes import ControlRecipe, Readback, SetpointKind
from simulator.physics import SiteConfig, SiteModel, StorageControls
from simulator.sunspec_devices import BATTERY_STORAGE

T0 = 1_780_000_000.0
REASONS = {
    "device_max_charge",
    "device_max_discharge",
    "user_max_charge",
    "user_max_discharge",
    "reserve_soc",
    "max_soc",
    "no_soc",
    "target_soc_reached",
    "min_soc_reached",
    "expired",
    "invalid_command",
    "invalid_limits",
    "no_grid_power",
    "no_battery_power",
    "no_power_limit",
}
M = BatteryMode


def _obs(**changes: Any) -> BatteryObservation:
    base = BatteryObservation(
        timestamp=T0,
        soc=50.0,
        battery_power_w=0.0,
        grid_power_w=0.0,
        device_max_charge_w=5000.0,
        device_max_discharge_w=5000.0,
    )
    return replace(base, **changes)


# --- table tests per mode --------------------------------------------------------------------

_CASES: list[tuple[str, BatteryCommand, BatteryLimits, BatteryObservation, Setpoint]] = [
    ("auto", BatteryCommand(), BatteryLimits(), _obs(), Setpoint(mode=M.AUTO, power_w=None)),
    (
        "hold",
        BatteryCommand(mode=M.HOLD),
        BatteryLimits(),
        _obs(grid_power_w=3000.0),
        Setpoint(mode=M.HOLD, power_w=0.0),
    ),
    (
        "force charge",
        BatteryCommand(mode=M.FORCE_CHARGE, power_w=3000.0),
        BatteryLimits(),
        _obs(),
        Setpoint(mode=M.FORCE_CHARGE, power_w=-3000.0),
    ),
    (
        "force charge beyond the device",
        BatteryCommand(mode=M.FORCE_CHARGE, power_w=8000.0),
        BatteryLimits(),
        _obs(),
        Setpoint(mode=M.FORCE_CHARGE, power_w=-5000.0, clamped=("device_max_charge",)),
    ),
    (
        "force charge beyond device and user",
        BatteryCommand(mode=M.FORCE_CHARGE, power_w=8000.0),
        BatteryLimits(max_charge_w=4000.0),
        _obs(),
        Setpoint(
            mode=M.FORCE_CHARGE,
            power_w=-4000.0,
            clamped=("device_max_charge", "user_max_charge"),
        ),
    ),
    (
        "force charge at full power",
        BatteryCommand(mode=M.FORCE_CHARGE),
        BatteryLimits(max_charge_w=3500.0),
        _obs(),
        Setpoint(mode=M.FORCE_CHARGE, power_w=-3500.0),
    ),
    (
        "force charge without any power limit",
        BatteryCommand(mode=M.FORCE_CHARGE),
        BatteryLimits(),
        _obs(device_max_charge_w=None),
        Setpoint(mode=M.HOLD, power_w=0.0, clamped=("no_power_limit",)),
    ),
    (
        "force charge reaches its target",
        BatteryCommand(mode=M.FORCE_CHARGE, power_w=3000.0, target_soc=80.0),
        BatteryLimits(),
        _obs(soc=80.0),
        Setpoint(mode=M.HOLD, power_w=0.0, clamped=("target_soc_reached",)),
    ),
    (
        "force charge stops at the max SoC before its target",
        BatteryCommand(mode=M.FORCE_CHARGE, power_w=3000.0, target_soc=95.0),
        BatteryLimits(max_soc=90.0),
        _obs(soc=90.0),
        Setpoint(mode=M.HOLD, power_w=0.0, clamped=("max_soc",)),
    ),
    (
        "force charge, device refuses charging (max 0)",
        BatteryCommand(mode=M.FORCE_CHARGE, power_w=3000.0),
        BatteryLimits(),
        _obs(device_max_charge_w=0.0),
        Setpoint(mode=M.FORCE_CHARGE, power_w=0.0, clamped=("device_max_charge",)),
    ),
    (
        "force charge, nonsense negative device max counts as 0",
        BatteryCommand(mode=M.FORCE_CHARGE, power_w=3000.0),
        BatteryLimits(),
        _obs(device_max_charge_w=-10.0),
        Setpoint(mode=M.FORCE_CHARGE, power_w=0.0, clamped=("device_max_charge",)),
    ),
    (
        "force discharge",
        BatteryCommand(mode=M.FORCE_DISCHARGE, power_w=2000.0),
        BatteryLimits(),
        _obs(),
        Setpoint(mode=M.FORCE_DISCHARGE, power_w=2000.0),
    ),
    (
        "force discharge beyond the user limit",
        BatteryCommand(mode=M.FORCE_DISCHARGE, power_w=4000.0),
        BatteryLimits(max_discharge_w=2500.0),
        _obs(),
        Setpoint(mode=M.FORCE_DISCHARGE, power_w=2500.0, clamped=("user_max_discharge",)),
    ),
    (
        "force discharge at the reserve",
        BatteryCommand(mode=M.FORCE_DISCHARGE, power_w=2000.0),
        BatteryLimits(reserve_soc=10.0),
        _obs(soc=10.0),
        Setpoint(mode=M.HOLD, power_w=0.0, clamped=("reserve_soc",)),
    ),
    (
        "force discharge reaches its min SoC",
        BatteryCommand(mode=M.FORCE_DISCHARGE, power_w=2000.0, min_soc=30.0),
        BatteryLimits(),
        _obs(soc=29.9),
        Setpoint(mode=M.HOLD, power_w=0.0, clamped=("min_soc_reached",)),
    ),
    (
        "force discharge: a min SoC below the reserve stops at the reserve",
        BatteryCommand(mode=M.FORCE_DISCHARGE, power_w=2000.0, min_soc=5.0),
        BatteryLimits(reserve_soc=10.0),
        _obs(soc=10.0),
        Setpoint(mode=M.HOLD, power_w=0.0, clamped=("reserve_soc",)),
    ),
    (
        "self-consumption covers an import",
        BatteryCommand(mode=M.SELF_CONSUMPTION),
        BatteryLimits(),
        _obs(grid_power_w=1000.0, battery_power_w=0.0),
        Setpoint(mode=M.SELF_CONSUMPTION, power_w=1000.0),
    ),
    (
        "self-consumption absorbs an export",
        BatteryCommand(mode=M.SELF_CONSUMPTION),
        BatteryLimits(),
        _obs(grid_power_w=-2000.0, battery_power_w=-500.0),
        Setpoint(mode=M.SELF_CONSUMPTION, power_w=-2500.0),
    ),
    (
        "self-consumption to a setpoint",
        BatteryCommand(mode=M.SELF_CONSUMPTION, grid_setpoint_w=500.0),
        BatteryLimits(),
        _obs(grid_power_w=1000.0, battery_power_w=200.0),
        Setpoint(mode=M.SELF_CONSUMPTION, power_w=700.0),
    ),
    (
        "self-consumption at the reserve does not discharge",
        BatteryCommand(mode=M.SELF_CONSUMPTION),
        BatteryLimits(reserve_soc=20.0),
        _obs(soc=19.0, grid_power_w=1000.0),
        Setpoint(mode=M.SELF_CONSUMPTION, power_w=0.0, clamped=("reserve_soc",)),
    ),
    (
        "self-consumption at the reserve still charges",
        BatteryCommand(mode=M.SELF_CONSUMPTION),
        BatteryLimits(reserve_soc=20.0),
        _obs(soc=19.0, grid_power_w=-800.0),
        Setpoint(mode=M.SELF_CONSUMPTION, power_w=-800.0),
    ),
    (
        "self-consumption at the max SoC does not charge",
        BatteryCommand(mode=M.SELF_CONSUMPTION),
        BatteryLimits(max_soc=90.0),
        _obs(soc=90.0, grid_power_w=-3000.0, battery_power_w=-1000.0),
        Setpoint(mode=M.SELF_CONSUMPTION, power_w=0.0, clamped=("max_soc",)),
    ),
    (
        "self-consumption without the grid meter holds",
        BatteryCommand(mode=M.SELF_CONSUMPTION),
        BatteryLimits(),
        _obs(grid_power_w=None),
        Setpoint(mode=M.HOLD, power_w=0.0, clamped=("no_grid_power",)),
    ),
    (
        "self-consumption without the battery power holds",
        BatteryCommand(mode=M.SELF_CONSUMPTION),
        BatteryLimits(),
        _obs(battery_power_w=math.nan),
        Setpoint(mode=M.HOLD, power_w=0.0, clamped=("no_battery_power",)),
    ),
    (
        "peak shaving shaves the excess",
        BatteryCommand(mode=M.PEAK_SHAVING, peak_power_w=4000.0),
        BatteryLimits(),
        _obs(grid_power_w=5000.0, battery_power_w=1000.0),
        Setpoint(mode=M.PEAK_SHAVING, power_w=2000.0),
    ),
    (
        "peak shaving below the peak holds without recharge power",
        BatteryCommand(mode=M.PEAK_SHAVING, peak_power_w=5000.0),
        BatteryLimits(),
        _obs(grid_power_w=3000.0, battery_power_w=1000.0),
        Setpoint(mode=M.PEAK_SHAVING, power_w=0.0),
    ),
    (
        "peak shaving recharges from the grid only up to the peak",
        BatteryCommand(mode=M.PEAK_SHAVING, peak_power_w=5000.0, recharge_power_w=2000.0),
        BatteryLimits(),
        _obs(grid_power_w=3000.0, battery_power_w=1000.0),
        Setpoint(mode=M.PEAK_SHAVING, power_w=-1000.0),
    ),
    (
        "peak shaving recharges with its recharge power under the peak",
        BatteryCommand(mode=M.PEAK_SHAVING, peak_power_w=5000.0, recharge_power_w=2000.0),
        BatteryLimits(),
        _obs(grid_power_w=1000.0, battery_power_w=0.0),
        Setpoint(mode=M.PEAK_SHAVING, power_w=-2000.0),
    ),
    (
        "peak shaving absorbs PV surplus",
        BatteryCommand(mode=M.PEAK_SHAVING, peak_power_w=5000.0),
        BatteryLimits(),
        _obs(grid_power_w=-1500.0, battery_power_w=0.0),
        Setpoint(mode=M.PEAK_SHAVING, power_w=-1500.0),
    ),
    (
        "peak shaving absorbs PV surplus plus grid recharge",
        BatteryCommand(mode=M.PEAK_SHAVING, peak_power_w=5000.0, recharge_power_w=1000.0),
        BatteryLimits(),
        _obs(grid_power_w=-1000.0, battery_power_w=-500.0),
        Setpoint(mode=M.PEAK_SHAVING, power_w=-2500.0),
    ),
    (
        "peak shaving at the reserve cannot shave",
        BatteryCommand(mode=M.PEAK_SHAVING, peak_power_w=4000.0),
        BatteryLimits(reserve_soc=30.0),
        _obs(soc=30.0, grid_power_w=6000.0),
        Setpoint(mode=M.PEAK_SHAVING, power_w=0.0, clamped=("reserve_soc",)),
    ),
    (
        "peak shaving at the max SoC does not recharge",
        BatteryCommand(mode=M.PEAK_SHAVING, peak_power_w=5000.0, recharge_power_w=2000.0),
        BatteryLimits(max_soc=80.0),
        _obs(soc=80.0, grid_power_w=1000.0),
        Setpoint(mode=M.PEAK_SHAVING, power_w=0.0, clamped=("max_soc",)),
    ),
    (
        "an expired command returns to auto",
        BatteryCommand(mode=M.FORCE_CHARGE, power_w=3000.0, expires_at=T0),
        BatteryLimits(),
        _obs(),
        Setpoint(mode=M.AUTO, power_w=None, clamped=("expired",)),
    ),
    (
        "a command before its expiry runs",
        BatteryCommand(mode=M.FORCE_CHARGE, power_w=3000.0, expires_at=T0 + 1),
        BatteryLimits(),
        _obs(),
        Setpoint(mode=M.FORCE_CHARGE, power_w=-3000.0),
    ),
    (
        "without a clock an expiry counts as passed",
        BatteryCommand(mode=M.FORCE_CHARGE, power_w=3000.0, expires_at=T0 + 1),
        BatteryLimits(),
        _obs(timestamp=math.nan),
        Setpoint(mode=M.AUTO, power_w=None, clamped=("expired",)),
    ),
    (
        "an invalid command gives auto",
        BatteryCommand(mode=M.FORCE_CHARGE, power_w=-3000.0),
        BatteryLimits(),
        _obs(),
        Setpoint(mode=M.AUTO, power_w=None, clamped=("invalid_command",)),
    ),
    (
        "invalid limits give auto",
        BatteryCommand(mode=M.FORCE_CHARGE, power_w=3000.0),
        BatteryLimits(reserve_soc=math.nan),
        _obs(),
        Setpoint(mode=M.AUTO, power_w=None, clamped=("invalid_limits",)),
    ),
    (
        "a reserve above the max SoC holds in between",
        BatteryCommand(mode=M.SELF_CONSUMPTION),
        BatteryLimits(reserve_soc=60.0, max_soc=40.0),
        _obs(soc=50.0, grid_power_w=-2000.0),
        Setpoint(mode=M.SELF_CONSUMPTION, power_w=0.0, clamped=("max_soc",)),
    ),
]


@pytest.mark.parametrize(
    ("command", "limits", "observation", "expected"),
    [case[1:] for case in _CASES],
    ids=[case[0] for case in _CASES],
)
def test_resolve_table(
    command: BatteryCommand,
    limits: BatteryLimits,
    observation: BatteryObservation,
    expected: Setpoint,
) -> None:
    """Each mode, each limit and each fallback gives the documented setpoint and reasons."""
    assert resolve(command, limits, observation) == expected


_UNKNOWN_SOC: list[tuple[str, BatteryCommand, BatteryLimits, float | None, tuple[str, ...]]] = [
    # (case, command, limits, expected power, expected reasons)
    (
        "discharge refused while a reserve needs the SoC",
        BatteryCommand(mode=M.FORCE_DISCHARGE, power_w=2000.0),
        BatteryLimits(reserve_soc=10.0),
        0.0,
        ("no_soc",),
    ),
    (
        "discharge allowed with a 0 % reserve",
        BatteryCommand(mode=M.FORCE_DISCHARGE, power_w=2000.0),
        BatteryLimits(reserve_soc=0.0),
        2000.0,
        (),
    ),
    (
        "discharge refused with a min SoC",
        BatteryCommand(mode=M.FORCE_DISCHARGE, power_w=2000.0, min_soc=20.0),
        BatteryLimits(reserve_soc=0.0),
        0.0,
        ("no_soc",),
    ),
    (
        "charge allowed up to a 100 % max SoC",
        BatteryCommand(mode=M.FORCE_CHARGE, power_w=2000.0),
        BatteryLimits(),
        -2000.0,
        (),
    ),
    (
        "charge refused with a target below 100 %",
        BatteryCommand(mode=M.FORCE_CHARGE, power_w=2000.0, target_soc=80.0),
        BatteryLimits(),
        0.0,
        ("no_soc",),
    ),
    (
        "charge refused with a max SoC below 100 %",
        BatteryCommand(mode=M.FORCE_CHARGE, power_w=2000.0),
        BatteryLimits(max_soc=90.0),
        0.0,
        ("no_soc",),
    ),
    (
        "self-consumption does not discharge",
        BatteryCommand(mode=M.SELF_CONSUMPTION),
        BatteryLimits(reserve_soc=10.0),
        0.0,
        ("no_soc",),
    ),
]


@pytest.mark.parametrize(
    ("command", "limits", "power", "reasons"),
    [case[1:] for case in _UNKNOWN_SOC],
    ids=[case[0] for case in _UNKNOWN_SOC],
)
@pytest.mark.parametrize("soc", [None, math.nan, math.inf])
def test_unknown_soc_refuses_the_guarded_direction(
    command: BatteryCommand,
    limits: BatteryLimits,
    power: float,
    reasons: tuple[str, ...],
    soc: float | None,
) -> None:
    """Without a SoC, a bound below 100 % / above 0 % blocks its direction; 0 and 100 % do not."""
    setpoint = resolve(command, limits, _obs(soc=soc, grid_power_w=1500.0))
    assert setpoint.power_w == power
    assert setpoint.clamped == reasons


# --- properties ------------------------------------------------------------------------------

_finite_or_garbage = st.one_of(
    st.none(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(min_value=-20_000, max_value=20_000),
)
_power = st.one_of(st.none(), st.floats(min_value=0, max_value=20_000))
_soc = st.floats(min_value=0, max_value=100)
_modes = st.sampled_from(list(BatteryMode))

_valid_commands = st.builds(
    BatteryCommand,
    mode=_modes,
    power_w=_power,
    target_soc=st.one_of(st.none(), _soc),
    min_soc=st.one_of(st.none(), _soc),
    grid_setpoint_w=st.floats(min_value=-10_000, max_value=10_000),
    peak_power_w=st.floats(min_value=0, max_value=20_000),
    recharge_power_w=_power,
    expires_at=st.one_of(st.none(), st.floats(min_value=T0 - 100, max_value=T0 + 100)),
)
_any_commands = st.builds(
    BatteryCommand,
    mode=_modes,
    power_w=_finite_or_garbage,
    target_soc=_finite_or_garbage,
    min_soc=_finite_or_garbage,
    grid_setpoint_w=st.floats(),
    peak_power_w=_finite_or_garbage,
    recharge_power_w=_finite_or_garbage,
    expires_at=_finite_or_garbage,
)
_valid_limits = st.builds(
    BatteryLimits,
    max_charge_w=_power,
    max_discharge_w=_power,
    reserve_soc=_soc,
    max_soc=_soc,
)
_observations = st.builds(
    BatteryObservation,
    timestamp=st.one_of(st.just(T0), st.floats()),
    soc=st.one_of(st.none(), st.floats(min_value=-5, max_value=105), st.just(math.nan)),
    battery_power_w=_finite_or_garbage,
    grid_power_w=_finite_or_garbage,
    device_max_charge_w=_finite_or_garbage,
    device_max_discharge_w=_finite_or_garbage,
)


def _cap(*limits: float | None) -> float:
    known = [max(limit, 0.0) for limit in limits if limit is not None and math.isfinite(limit)]
    return min(known, default=math.inf)


@settings(max_examples=1000)
@given(command=_valid_commands, limits=_valid_limits, observation=_observations)
def test_setpoint_never_breaks_a_limit(
    command: BatteryCommand, limits: BatteryLimits, observation: BatteryObservation
) -> None:
    """No discharge at or below the reserve, no charge at or above the max SoC, never beyond
    min(device, user) power, whatever the command and the readings."""
    setpoint = resolve(command, limits, observation)
    assert set(setpoint.clamped) <= REASONS
    if setpoint.power_w is None:
        assert setpoint.mode is M.AUTO
        return
    power = setpoint.power_w
    assert math.isfinite(power)
    assert power <= _cap(observation.device_max_discharge_w, limits.max_discharge_w) + 1e-6
    assert -power <= _cap(observation.device_max_charge_w, limits.max_charge_w) + 1e-6
    soc = observation.soc
    if soc is not None and math.isfinite(soc):
        if soc <= limits.reserve_soc:
            assert power <= 0
        if soc >= limits.max_soc:
            assert power >= 0
    else:
        if limits.reserve_soc > 0:
            assert power <= 0
        if limits.max_soc < 100:
            assert power >= 0
    if command.mode is M.HOLD:
        assert power == 0


@given(command=_valid_commands, limits=_valid_limits, observation=_observations)
def test_expired_commands_give_auto(
    command: BatteryCommand, limits: BatteryLimits, observation: BatteryObservation
) -> None:
    """Once its expiry has passed, any command gives auto."""
    observation = replace(observation, timestamp=T0)
    command = replace(command, expires_at=T0 - 0.001)
    assert resolve(command, limits, observation) == Setpoint(
        mode=M.AUTO, power_w=None, clamped=("expired",)
    )


@given(command=_any_commands, limits=_valid_limits, observation=_observations)
def test_resolve_is_total_and_garbage_gives_auto(
    command: BatteryCommand, limits: BatteryLimits, observation: BatteryObservation
) -> None:
    """`resolve` runs every cycle: it never raises, and a command that fails validation
    gives auto."""
    setpoint = resolve(command, limits, observation)
    if validate_command(command):
        assert setpoint == Setpoint(mode=M.AUTO, power_w=None, clamped=("invalid_command",))


@given(command=_valid_commands)
def test_valid_commands_pass_validation(command: BatteryCommand) -> None:
    """Finite, non-negative powers and SoCs within 0..100 % are valid."""
    assert validate_command(command) == []


_GARBAGE_FIELDS = {
    "power_w": st.one_of(st.floats(max_value=-1e-9), st.just(math.nan), st.just(math.inf)),
    "target_soc": st.one_of(
        st.floats(min_value=100.000001), st.floats(max_value=-1e-9), st.just(math.nan)
    ),
    "min_soc": st.one_of(st.floats(min_value=100.000001), st.floats(max_value=-1e-9)),
    "grid_setpoint_w": st.one_of(st.just(math.nan), st.just(-math.inf)),
    "peak_power_w": st.one_of(st.floats(max_value=-1e-9), st.just(math.nan)),
    "recharge_power_w": st.one_of(st.floats(max_value=-1e-9), st.just(math.inf)),
    "expires_at": st.one_of(st.just(math.nan), st.just(math.inf)),
}


@given(
    command=_valid_commands,
    garbage=st.sampled_from(sorted(_GARBAGE_FIELDS)).flatmap(
        lambda name: st.tuples(st.just(name), _GARBAGE_FIELDS[name])
    ),
)
def test_validate_command_rejects_garbage(
    command: BatteryCommand, garbage: tuple[str, float]
) -> None:
    """NaN, infinities, negative powers and SoCs outside 0..100 % are named by field."""
    name, value = garbage
    changes: dict[str, Any] = {name: value}
    problems = validate_command(replace(command, **changes))
    assert problems
    assert all(problem.startswith(f"{name}_") for problem in problems)


@pytest.mark.parametrize(
    ("command", "kwargs", "problems"),
    [
        (BatteryCommand(mode=M.PEAK_SHAVING), {}, ["peak_power_w_missing"]),
        (BatteryCommand(mode="boost"), {}, ["mode_invalid"]),  # type: ignore[arg-type]
        (BatteryCommand(power_w=True), {}, ["power_w_invalid"]),
        (BatteryCommand(power_w="3000"), {}, ["power_w_invalid"]),  # type: ignore[arg-type]
        (BatteryCommand(target_soc=101.0), {}, ["target_soc_out_of_range"]),
        (BatteryCommand(power_w=-1.0), {}, ["power_w_negative"]),
        (
            BatteryCommand(mode=M.FORCE_CHARGE, target_soc=5.0),
            {"limits": BatteryLimits(reserve_soc=10.0)},
            ["target_soc_below_reserve"],
        ),
        (
            BatteryCommand(mode=M.FORCE_DISCHARGE, min_soc=5.0),
            {"limits": BatteryLimits(reserve_soc=10.0)},
            [],
        ),
        (BatteryCommand(expires_at=T0), {"now": T0}, ["expires_at_in_past"]),
        (BatteryCommand(expires_at=T0 + 1), {"now": T0}, []),
        (BatteryCommand(mode="force_charge", power_w=1.0), {}, []),  # type: ignore[arg-type]
    ],
)
def test_validate_command_codes(
    command: BatteryCommand, kwargs: dict[str, Any], problems: list[str]
) -> None:
    """Each problem has its own code, for translated service errors."""
    assert validate_command(command, **kwargs) == problems


def test_validate_limits() -> None:
    """Limits: non-negative finite powers, SoCs within 0..100 %, reserve <= max SoC."""
    assert validate_limits(BatteryLimits()) == []
    assert validate_limits(BatteryLimits(max_charge_w=-1.0)) == ["max_charge_w_negative"]
    assert validate_limits(BatteryLimits(max_discharge_w=math.inf)) == ["max_discharge_w_invalid"]
    assert validate_limits(BatteryLimits(reserve_soc=-1.0)) == ["reserve_soc_out_of_range"]
    assert validate_limits(BatteryLimits(max_soc=math.nan)) == ["max_soc_invalid"]
    assert validate_limits(BatteryLimits(reserve_soc=50.0, max_soc=40.0)) == [
        "reserve_soc_above_max_soc"
    ]


# --- pure closed loops -----------------------------------------------------------------------


@given(
    load=st.floats(min_value=0, max_value=8000),
    pv=st.floats(min_value=0, max_value=10_000),
    setpoint=st.floats(min_value=-3000, max_value=3000),
    battery=st.floats(min_value=-5000, max_value=5000),
)
def test_self_consumption_converges(
    load: float, pv: float, setpoint: float, battery: float
) -> None:
    """grid = load - pv - battery; with headroom, |grid - setpoint| < 100 W within 2 cycles."""
    assume(abs(load - pv - setpoint) <= 4900)  # the battery can take the whole deviation
    command = BatteryCommand(mode=M.SELF_CONSUMPTION, grid_setpoint_w=setpoint)
    for _ in range(2):
        grid = load - pv - battery
        result = resolve(command, BatteryLimits(), _obs(battery_power_w=battery, grid_power_w=grid))
        assert result.power_w is not None
        battery = result.power_w
    assert abs(load - pv - battery - setpoint) < 100


def test_peak_shaving_shaves_a_load_step() -> None:
    """A load step above the peak is shaved to the peak while the SoC allows, then not."""
    command = BatteryCommand(mode=M.PEAK_SHAVING, peak_power_w=4000.0)
    limits = BatteryLimits(reserve_soc=20.0)
    battery, grids = 0.0, []
    for load, soc in [(2000, 50), (7000, 50), (7000, 45), (9500, 30), (7000, 20), (3000, 20)]:
        grid = load - battery
        setpoint = resolve(
            command, limits, _obs(soc=soc, battery_power_w=battery, grid_power_w=grid)
        )
        assert setpoint.power_w is not None
        battery = setpoint.power_w
        grids.append((load - battery, setpoint.clamped))
    assert grids == [
        (2000, ()),
        (4000, ()),
        (4000, ()),
        (4500, ("device_max_discharge",)),  # 5.5 kW to shave, the device gives 5 kW
        (7000, ("reserve_soc",)),
        (3000, ()),
    ]


# --- SunSpec model 124 -----------------------------------------------------------------------

# Channel keys of a SunSpec storage device (profiles/sunspec.py), as its recipe writes them.
STORAGE_CONTROL_MODE = "StorageControlMode"  # 124.StorCtl_Mod
CHARGE_RATE = "ChargeRate"  # 124.InWRte
DISCHARGE_RATE = "DischargeRate"  # 124.OutWRte
REVERT_TIMEOUT = "RevertTimeout"  # 124.InOutWRte_RvrtTms
RESERVE_SOC = "ReserveSOC"  # 124.MinRsvPct


def _sp(power: float | None) -> Setpoint:
    return Setpoint(mode=M.AUTO if power is None else M.HOLD, power_w=power)


def _recipe_124() -> ControlRecipe:
    """Model 124's recipe as the profile builder attaches it (profiles/recipes/sunspec_124.yaml)."""
    recipe = build_profile(_sunspec_chain(1, 124, 802)).control
    assert recipe is not None
    return recipe


def sunspec_124_writes(
    setpoint: Setpoint, *, max_charge_w: float, max_discharge_w: float, revert_s: int
) -> dict[str, float]:
    """The 124 recipe's values for a setpoint, in write order."""
    return desired_values(
        _recipe_124(),
        setpoint,
        charge_rating_w=max_charge_w,
        discharge_rating_w=max_discharge_w,
        fallback_s=revert_s,
    )[1]


def test_124_force_charge() -> None:
    """3000 W with WChaMax 5000 is InWRte 60 % with the charge bit, timer first, mode last."""
    writes = sunspec_124_writes(
        _sp(-3000.0), max_charge_w=5000.0, max_discharge_w=5000.0, revert_s=60
    )
    assert writes == {
        "RevertTimeout": 60,
        "ChargeRate": 60.0,
        "DischargeRate": 0.0,
        "StorageControlMode": 1,
    }
    assert list(writes) == [REVERT_TIMEOUT, CHARGE_RATE, DISCHARGE_RATE, STORAGE_CONTROL_MODE]


def test_124_discharge_hold_and_auto() -> None:
    """Discharge uses OutWRte of the discharge maximum; hold is both bits; auto clears all."""
    kwargs: dict[str, Any] = {"max_charge_w": 5000.0, "max_discharge_w": 4000.0, "revert_s": 30}
    assert sunspec_124_writes(_sp(1000.0), **kwargs) == {
        "RevertTimeout": 30,
        "ChargeRate": 0.0,
        "DischargeRate": 25.0,
        "StorageControlMode": 2,
    }
    assert sunspec_124_writes(_sp(0.0), **kwargs) == {
        "RevertTimeout": 30,
        "ChargeRate": 0.0,
        "DischargeRate": 0.0,
        "StorageControlMode": 3,
    }
    assert sunspec_124_writes(_sp(None), **kwargs) == {
        "RevertTimeout": 0,
        "ChargeRate": 0.0,
        "DischargeRate": 0.0,
        "StorageControlMode": 0,
    }


def test_124_rounding_and_caps() -> None:
    """Rates round to 0.01 %, cap at 100 %, a rate that rounds to 0 holds."""
    kwargs: dict[str, Any] = {"max_charge_w": 5000.0, "max_discharge_w": 5000.0, "revert_s": 60}
    assert sunspec_124_writes(_sp(-1234.0), **kwargs)["ChargeRate"] == 24.68
    assert sunspec_124_writes(_sp(9000.0), **kwargs)["DischargeRate"] == 100.0
    assert sunspec_124_writes(_sp(-0.2), **kwargs)["StorageControlMode"] == 3


def test_124_rejects_what_it_cannot_express() -> None:
    """No maximum to scale by, a bad timer or a non-finite power raise; hold needs no maximum."""
    with pytest.raises(ValueError, match="rating"):
        sunspec_124_writes(_sp(-100.0), max_charge_w=0.0, max_discharge_w=5000.0, revert_s=60)
    with pytest.raises(ValueError, match="fallback_s"):
        sunspec_124_writes(_sp(0.0), max_charge_w=1.0, max_discharge_w=1.0, revert_s=70_000)
    fractional: Any = 1.5
    with pytest.raises(TypeError):
        sunspec_124_writes(_sp(0.0), max_charge_w=1.0, max_discharge_w=1.0, revert_s=fractional)
    with pytest.raises(ValueError, match="finite"):
        sunspec_124_writes(_sp(math.inf), max_charge_w=1.0, max_discharge_w=1.0, revert_s=0)
    assert (
        sunspec_124_writes(_sp(0.0), max_charge_w=0.0, max_discharge_w=0.0, revert_s=0)[
            STORAGE_CONTROL_MODE
        ]
        == 3
    )


def _controls(writes: dict[str, float], base: StorageControls) -> StorageControls:
    return StorageControls(
        mode=int(writes.get(STORAGE_CONTROL_MODE, base.mode)),
        charge_rate_pct=writes.get(CHARGE_RATE, base.charge_rate_pct),
        discharge_rate_pct=writes.get(DISCHARGE_RATE, base.discharge_rate_pct),
        revert_s=writes.get(REVERT_TIMEOUT, base.revert_s),
    )


def _power_of(writes: dict[str, float]) -> float:
    forced = _controls(writes, StorageControls()).forced_power_w(5000.0, 5000.0)
    assert forced is not None
    return forced


_setpoint_powers = st.one_of(st.none(), st.just(0.0), st.floats(min_value=-5000, max_value=5000))


@given(power=_setpoint_powers)
def test_124_writes_make_the_simulated_inverter_follow(power: float | None) -> None:
    """The simulator's model 124 semantics turn the writes back into the setpoint (0.01 %)."""
    writes = sunspec_124_writes(_sp(power), max_charge_w=5000, max_discharge_w=5000, revert_s=60)
    forced = _controls(writes, StorageControls()).forced_power_w(5000.0, 5000.0)
    if power is None:
        assert forced is None
    else:
        assert forced is not None
        assert forced == pytest.approx(power, abs=0.26)


@given(old=_setpoint_powers, new=_setpoint_powers)
def test_124_every_intermediate_write_is_safe(old: float | None, new: float | None) -> None:
    """Written one register at a time (only the changed ones), every state on the way runs at
    the old power, the new one, 0 W or auto (only when one side is auto)."""
    kwargs: dict[str, Any] = {"max_charge_w": 5000.0, "max_discharge_w": 5000.0, "revert_s": 60}
    before = sunspec_124_writes(_sp(old), **kwargs)
    after = sunspec_124_writes(_sp(new), **kwargs)
    controls = _controls(before, StorageControls())
    allowed = {0.0}
    for power in (old, new):
        if power is not None:
            allowed.add(_power_of(sunspec_124_writes(_sp(power), **kwargs)))
    for key, value in changed_writes(_recipe_124(), after, before, {}).items():
        controls = _controls({key: value}, controls)
        forced = controls.forced_power_w(5000.0, 5000.0)
        if forced is None:
            assert old is None or new is None
        else:
            assert any(forced == pytest.approx(power, abs=1e-6) for power in allowed)
    assert controls.forced_power_w(5000.0, 5000.0) == (None if new is None else _power_of(after))


# --- what to write ---------------------------------------------------------------------------


def test_changed_writes() -> None:
    """Only changed values, in the desired order; rates within half a 0.01 % step match."""
    recipe = _recipe_124()
    desired = {
        "RevertTimeout": 60,
        "ChargeRate": 60.0,
        "DischargeRate": 0.0,
        "StorageControlMode": 1,
    }

    def changed(current: dict[str, Any], on: ControlRecipe = recipe) -> dict[str, float]:
        return changed_writes(on, desired, current, {})

    assert changed(dict(desired)) == {}
    assert changed({**desired, "ChargeRate": 60.004}) == {}
    assert changed({**desired, "ChargeRate": 60.01}) == {"ChargeRate": 60.0}
    assert changed({**desired, "StorageControlMode": 0}) == {"StorageControlMode": 1}
    assert list(changed({"ChargeRate": 60.0, "DischargeRate": None})) == [
        "RevertTimeout",
        "DischargeRate",
        "StorageControlMode",
    ]
    assert changed({**desired, "RevertTimeout": math.nan}) == {"RevertTimeout": 60}
    tolerant = replace(
        recipe, readback={"RevertTimeout": Readback(channel="RevertTimeout", tolerance=1)}
    )
    assert changed({**desired, "RevertTimeout": 61}, tolerant) == {}


def test_a_write_only_register_is_compared_with_what_was_written() -> None:
    """With `readback: none` the device cannot say what it holds: ems's last write stands in."""
    recipe = replace(_recipe_124(), readback={"RevertTimeout": None})
    desired = {"RevertTimeout": 60, "ChargeRate": 60.0}
    read = {"RevertTimeout": 0, "ChargeRate": 60.0}  # a register that reads 0 whatever it holds
    assert changed_writes(recipe, desired, read, {}) == {"RevertTimeout": 60}
    assert changed_writes(recipe, desired, read, {"RevertTimeout": 60}) == {}


def test_reassert_due() -> None:
    """Re-write before the revert timer runs out; nothing to keep alive without a timer."""
    assert reassert_due(None, T0, 60)
    assert reassert_due(None, T0, 0)
    assert not reassert_due(T0, T0 + 1000, 0)
    assert not reassert_due(T0, T0 + 29.9, 60)
    assert reassert_due(T0, T0 + 30, 60)
    assert not reassert_due(T0, T0 + 40, 60, margin=0.8)
    assert reassert_due(T0, T0 - 5, 60)  # the clock went backwards
    with pytest.raises(ValueError, match="margin"):
        reassert_due(T0, T0, 60, margin=1.0)


def test_cycle_writes() -> None:
    """Changes are written at once; an unchanged forced mode is re-asserted by its re-arming
    write alone (the rate in use) when due; a new timer time rewrites the whole sequence;
    auto is never re-asserted."""
    recipe = _recipe_124()
    forced = sunspec_124_writes(_sp(-3000.0), max_charge_w=5000, max_discharge_w=5000, revert_s=60)
    auto = sunspec_124_writes(_sp(None), max_charge_w=5000, max_discharge_w=5000, revert_s=60)
    charge: dict[str, Any] = {"kind": SetpointKind.CHARGE, "last_written": {}, "window_s": 60}
    timing: dict[str, Any] = {**charge, "last_rearm_at": T0}

    def plan(desired: dict[str, float], current: dict[str, Any], **kwargs: Any) -> dict[str, float]:
        return cycle_writes(recipe, desired, current, **kwargs)

    assert plan(forced, forced, now=T0 + 10, **timing) == {}
    assert plan(forced, forced, now=T0 + 30, **timing) == {"ChargeRate": 60.0}
    assert plan(forced, {**forced, "ChargeRate": 50.0}, now=T0 + 30, **timing) == {
        "ChargeRate": 60.0
    }
    assert plan(forced, {**forced, "RevertTimeout": 0}, now=T0 + 10, **timing) == forced
    auto_timing = {**timing, "kind": SetpointKind.AUTO}
    assert plan(auto, auto, now=T0 + 1000, **auto_timing) == {}
    assert plan(auto, forced, now=T0 + 10, **auto_timing) == {
        "RevertTimeout": 0,
        "ChargeRate": 0.0,
        "StorageControlMode": 0,
    }
    assert plan(forced, forced, now=T0, last_rearm_at=None, **charge) == {"ChargeRate": 60.0}
    assert rearm_channels(recipe, SetpointKind.DISCHARGE) == ("DischargeRate",)


# --- closed loop against the simulator's physics (no sockets) ---------------------------------


def _sunspec_chain(*model_ids: int) -> list[ModelInstance]:
    chain, address = [], 40002
    for model_id in model_ids:
        length = sum(int(p["size"]) for p in model_definition(model_id)["points"]) - 2
        chain.append(ModelInstance(model_id=model_id, address=address, length=length))
        address += 2 + length
    return chain


# The battery's channel keys and the simulator's points, from the profile the hub builds.
_PROFILE = build_profile(_sunspec_chain(1, 124, 802))
_POINT = {
    spec.key: spec.origin
    for spec in _PROFILE.channels
    if spec.origin is not None and spec.key != "SOC"  # 802.SoC, checked below
}
REVERT_S = 60
CYCLE_S = 10.0


@dataclass
class _Loop:
    """The coordinator's control cycle in miniature: read, resolve, map, write changes."""

    command: BatteryCommand
    limits: BatteryLimits = field(default_factory=BatteryLimits)
    config: SiteConfig = field(default_factory=SiteConfig)
    model: SiteModel = field(init=False)
    last_write_at: float | None = None
    setpoints: list[Setpoint] = field(default_factory=list)
    written: list[dict[str, float]] = field(default_factory=list)
    read_grids: list[float] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.model = SiteModel(self.config)

    def readback(self) -> dict[str, float | None]:
        served = BATTERY_STORAGE.read_values(self.model.state())
        values: dict[str, float | None] = {}
        for key, point in {**_POINT, "SOC": "802.SoC"}.items():
            value = BATTERY_STORAGE.register(point).quantize(served[point])
            values[key] = value if isinstance(value, float | int) else None
        return values

    def cycle(self) -> Setpoint:
        read = self.readback()
        now = self.model.now.timestamp()
        observation = BatteryObservation(
            timestamp=now,
            soc=read["SOC"],
            battery_power_w=read["ActivePower"],
            grid_power_w=self.model.state().flows.grid_w,
            device_max_charge_w=read["MaxChargePower"],
            device_max_discharge_w=read["MaxDischargePower"],
        )
        self.read_grids.append(self.model.state().flows.grid_w)
        setpoint = resolve(self.command, self.limits, observation)
        assert read["MaxChargePower"] is not None
        assert read["MaxDischargePower"] is not None
        desired = sunspec_124_writes(
            setpoint,
            max_charge_w=read["MaxChargePower"],
            max_discharge_w=read["MaxDischargePower"],
            revert_s=REVERT_S,
        )
        kind, _ = desired_values(
            _PROFILE.control,
            setpoint,
            charge_rating_w=read["MaxChargePower"],
            discharge_rating_w=read["MaxDischargePower"],
            fallback_s=REVERT_S,
        )
        writes = cycle_writes(
            _PROFILE.control,
            desired,
            read,
            kind=kind,
            last_written={},
            last_rearm_at=self.last_write_at,
            now=now,
            window_s=REVERT_S,
        )
        for key, value in writes.items():  # one register per request, as the hub writes them
            point = _POINT[key]
            assert BATTERY_STORAGE.apply_writes is not None
            BATTERY_STORAGE.apply_writes(
                self.model, {point: BATTERY_STORAGE.register(point).quantize(value)}
            )
        if not set(rearm_channels(_PROFILE.control, kind)).isdisjoint(writes):
            self.last_write_at = now
        self.setpoints.append(setpoint)
        self.written.append(writes)
        return setpoint

    def run(self, cycles: int) -> list[tuple[float, float, float]]:
        """(battery W, SoC %, grid W) right after each cycle's writes."""
        trace = []
        for _ in range(cycles):
            self.cycle()
            state = self.model.state()
            trace.append((state.flows.battery_w, state.soc_pct, state.flows.grid_w))
            assert self.model.storage_controls.mode != 0 or self.setpoints[-1].power_w is None
            self.model.advance(CYCLE_S)
        return trace


def test_profile_keys_match_the_control_mapping() -> None:
    """The keys control.py writes are the profile's writable model 124 channels."""
    assert _POINT[STORAGE_CONTROL_MODE] == "124.StorCtl_Mod"
    assert _POINT[CHARGE_RATE] == "124.InWRte"
    assert _POINT[DISCHARGE_RATE] == "124.OutWRte"
    assert _POINT[REVERT_TIMEOUT] == "124.InOutWRte_RvrtTms"
    assert _POINT[RESERVE_SOC] == "124.MinRsvPct"
    assert _PROFILE.channel("SOC").origin == "802.SoC"


def test_closed_loop_force_charge_to_target() -> None:
    """Force charge 3000 W: -3000 W +- 5 %, the SoC rises, stops at the target and holds,
    and re-assertion keeps the device's revert timer from firing."""
    loop = _Loop(
        BatteryCommand(mode=M.FORCE_CHARGE, power_w=3000.0, target_soc=60.0),
        config=SiteConfig(initial_soc=55.0),
    )
    trace = loop.run(90)  # 900 s; 5 % of 10 kWh at 3 kW takes 600 s
    charging = [
        (w, soc)
        for (w, soc, _), sp in zip(trace, loop.setpoints, strict=True)
        if sp.mode is M.FORCE_CHARGE
    ]
    assert len(charging) >= 55
    assert all(w == pytest.approx(-3000.0, rel=0.05) for w, _ in charging)
    socs = [soc for _, soc, _ in trace]
    assert all(b >= a - 1e-9 for a, b in itertools.pairwise(socs))  # never falls
    assert loop.setpoints[-1] == Setpoint(mode=M.HOLD, power_w=0.0, clamped=("target_soc_reached",))
    # 802.SoC reads in 0.1 % steps; one cycle's energy (0.08 %) past the target at most.
    assert 59.95 <= socs[-1] <= 60.1
    assert trace[-1][0] == 0.0
    assert loop.model.storage_controls.mode == 3
    # Steady state: a re-assertion about every 30 s, nothing in between; it writes only the
    # register that re-arms the revert timer (the recipe's `rearm`), not all four.
    steady = loop.written[-20:]
    assert sum(1 for w in steady if w) in {6, 7}
    assert all(not w or set(w) == {"ChargeRate"} for w in steady)


def test_closed_loop_revert_timer_guards_a_dead_controller() -> None:
    """When the cycle stops, the device returns to auto after RevertTimeout by itself."""
    loop = _Loop(BatteryCommand(mode=M.FORCE_DISCHARGE, power_w=2000.0))
    loop.run(3)
    assert loop.model.battery_command.power_w == pytest.approx(2000.0)
    loop.model.advance(REVERT_S)
    assert loop.model.storage_controls.mode == 0


def test_closed_loop_expiry_returns_to_auto_and_clears_the_controls() -> None:
    """After the expiry the device is back on its own logic, with no rate or timer of ours."""
    start = SiteConfig().start.timestamp()
    loop = _Loop(BatteryCommand(mode=M.FORCE_DISCHARGE, power_w=2000.0, expires_at=start + 35))
    loop.run(6)
    assert [sp.mode for sp in loop.setpoints] == [M.FORCE_DISCHARGE] * 4 + [M.AUTO] * 2
    controls = loop.model.storage_controls
    assert (controls.mode, controls.charge_rate_pct, controls.discharge_rate_pct) == (0, 0.0, 0.0)
    assert controls.revert_s == 0
    assert loop.model.revert_at_s is None
    assert loop.written[-1] == {}


def test_closed_loop_force_discharge_respects_the_reserve() -> None:
    """Force discharge at 5 kW stops at the reserve, by our check: one cycle's energy past
    it at most."""
    loop = _Loop(
        BatteryCommand(mode=M.FORCE_DISCHARGE, power_w=5000.0),
        limits=BatteryLimits(reserve_soc=45.0),
        config=SiteConfig(initial_soc=50.0),
    )
    trace = loop.run(60)  # 5 % at 5 kW takes 360 s
    socs = [soc for _, soc, _ in trace]
    assert min(socs) >= 45.0 - 0.14
    assert loop.setpoints[-1].mode is M.HOLD
    assert loop.setpoints[-1].clamped == ("reserve_soc",)
    assert trace[-1][0] == 0.0


def test_closed_loop_self_consumption_settles_the_grid() -> None:
    """Midsummer noon, PV surplus: the grid settles at the setpoint (-1000 W, export) and
    stays within +-100 W at the meter's readings, apart from a few load steps."""
    loop = _Loop(
        BatteryCommand(mode=M.SELF_CONSUMPTION, grid_setpoint_w=-1000.0),
        config=SiteConfig(start=datetime(2026, 6, 21, 10, 30, tzinfo=UTC)),
    )
    trace = loop.run(60)
    after_write = [grid for _, _, grid in trace[1:]]
    assert all(grid == pytest.approx(-1000.0, abs=5.0) for grid in after_write)
    # What each cycle reads: the grid after 10 s of the house load wandering on.
    errors = [abs(grid + 1000.0) for grid in loop.read_grids[2:]]
    assert sum(error >= 100.0 for error in errors) <= 3
    assert all(sp.mode is M.SELF_CONSUMPTION and not sp.clamped for sp in loop.setpoints)


def test_closed_loop_peak_shaving() -> None:
    """Evening with the heat pump: the import stays at or below the peak while the SoC lasts."""
    loop = _Loop(
        BatteryCommand(mode=M.PEAK_SHAVING, peak_power_w=1500.0),
        config=SiteConfig(start=datetime(2026, 1, 15, 17, 0, tzinfo=UTC), initial_soc=60.0),
    )
    trace = loop.run(180)
    grids = [grid for _, _, grid in trace]
    assert max(grids) <= 1500.0 + 5.0
    assert any(w > 0 for w, _, _ in trace)  # it did shave
    assert all(w >= 0 for w, _, _ in trace)  # and never recharged from the grid
