"""What a battery is told: the mode and its parameters (`BatteryCommand`), the user's limits
(`BatteryLimits`), what a cycle observes (`BatteryObservation`) and what it resolves to
(`Setpoint`); and the checks that a command or limits make sense.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from ..numbers import finite

# Validation problem codes are "<field>_<problem>" with these problems, plus the two below.
# The largest power (W) a command, limit or setting may name: far above any home battery or
# inverter, and low enough that kW typed as W is refused rather than taken.
MAX_POWER_W: Final = 100_000.0

PROBLEM_INVALID = "invalid"  # not a number, or not finite
PROBLEM_NEGATIVE = "negative"
PROBLEM_OUT_OF_RANGE = "out_of_range"  # a SoC outside 0..100 %
PROBLEM_MISSING = "missing"
PROBLEM_TARGET_BELOW_RESERVE = "target_soc_below_reserve"
PROBLEM_EXPIRES_IN_PAST = "expires_at_in_past"
PROBLEM_RESERVE_ABOVE_MAX_SOC = "reserve_soc_above_max_soc"


class BatteryMode(StrEnum):
    """What the battery is told to do."""

    AUTO = "auto"  # the device's own logic
    SELF_CONSUMPTION = "self_consumption"  # drive the grid power to a setpoint
    FORCE_CHARGE = "force_charge"
    FORCE_DISCHARGE = "force_discharge"
    HOLD = "hold"  # neither charge nor discharge
    PEAK_SHAVING = "peak_shaving"


@dataclass(frozen=True, kw_only=True, slots=True)
class BatteryCommand:
    """The user's (or an automation's) command for one battery."""

    mode: BatteryMode = BatteryMode.AUTO
    power_w: float | None = None  # force modes: magnitude (>= 0); None = as fast as allowed
    target_soc: float | None = None  # force_charge stops here (never above max_soc anyway)
    min_soc: float | None = None  # force_discharge stops here (never below the reserve anyway)
    grid_setpoint_w: float = 0.0  # self_consumption: the grid power to reach (+ import)
    peak_power_w: float | None = None  # peak_shaving: the highest grid import allowed
    recharge_power_w: float | None = None  # peak_shaving: grid charging, below the peak
    expires_at: float | None = None  # epoch seconds; None = until replaced


@dataclass(frozen=True, kw_only=True, slots=True)
class BatteryLimits:
    """The user's limits (number entities, ems.set_limits); None = no user limit."""

    max_charge_w: float | None = None
    max_discharge_w: float | None = None
    reserve_soc: float = 10.0
    max_soc: float = 100.0


@dataclass(frozen=True, kw_only=True, slots=True)
class BatteryObservation:
    """This cycle's fresh readings; None (or a non-finite value) = unknown."""

    timestamp: float  # epoch seconds
    soc: float | None
    battery_power_w: float | None  # + discharge
    grid_power_w: float | None  # + import, at the site's grid meter
    device_max_charge_w: float | None
    device_max_discharge_w: float | None


@dataclass(frozen=True, kw_only=True, slots=True)
class Setpoint:
    """What the battery should do this cycle."""

    mode: BatteryMode  # the mode applied: auto after expiry, hold at a force target, ...
    power_w: float | None  # + discharge / - charge; None in auto (the device decides)
    clamped: tuple[str, ...] = ()  # REASON_* codes: every limit that bit, and mode changes


# --- validation ------------------------------------------------------------------------------


def _check(
    problems: list[str],
    name: str,
    value: object,
    *,
    optional: bool = True,
    non_negative: bool = False,
    soc: bool = False,
) -> bool:
    """Append the value's problem, if any; True when it is usable (a valid number or None)."""
    if value is None:
        if optional:
            return True
        problems.append(f"{name}_{PROBLEM_MISSING}")
        return False
    number = finite(value)
    if number is None:
        problems.append(f"{name}_{PROBLEM_INVALID}")
    elif soc and not 0.0 <= number <= 100.0:
        problems.append(f"{name}_{PROBLEM_OUT_OF_RANGE}")
    elif non_negative and number < 0:
        problems.append(f"{name}_{PROBLEM_NEGATIVE}")
    else:
        return True
    return False


def validate_command(
    command: BatteryCommand, *, limits: BatteryLimits | None = None, now: float | None = None
) -> list[str]:
    """Schema-level problems of a command as translation-key-like codes; empty = valid.

    Codes are `<field>_invalid` (not a finite number), `<field>_negative`,
    `<field>_out_of_range` (a SoC outside 0..100 %), `<field>_missing` (peak_shaving without
    `peak_power_w`), `mode_invalid`; with `limits`, `target_soc_below_reserve` (force_charge);
    with `now`, `expires_at_in_past`. Values beyond the live device limits are not problems:
    `resolve` clamps them and says so.
    """
    problems: list[str] = []
    try:
        mode: BatteryMode | None = BatteryMode(command.mode)
    except ValueError:
        mode = None
        problems.append(f"mode_{PROBLEM_INVALID}")
    _check(problems, "power_w", command.power_w, non_negative=True)
    target_ok = _check(problems, "target_soc", command.target_soc, soc=True)
    _check(problems, "min_soc", command.min_soc, soc=True)
    _check(problems, "grid_setpoint_w", command.grid_setpoint_w, optional=False)
    _check(
        problems,
        "peak_power_w",
        command.peak_power_w,
        optional=mode is not BatteryMode.PEAK_SHAVING,
        non_negative=True,
    )
    _check(problems, "recharge_power_w", command.recharge_power_w, non_negative=True)
    expiry_ok = _check(problems, "expires_at", command.expires_at)
    reserve = finite(limits.reserve_soc) if limits is not None else None
    if (
        mode is BatteryMode.FORCE_CHARGE
        and target_ok
        and command.target_soc is not None
        and reserve is not None
        and command.target_soc < reserve
    ):
        problems.append(PROBLEM_TARGET_BELOW_RESERVE)
    if (
        expiry_ok
        and command.expires_at is not None
        and now is not None
        and command.expires_at <= now
    ):
        problems.append(PROBLEM_EXPIRES_IN_PAST)
    return problems


def validate_limits(limits: BatteryLimits) -> list[str]:
    """Problems of the user's limits as codes; empty = valid."""
    problems: list[str] = []
    _check(problems, "max_charge_w", limits.max_charge_w, non_negative=True)
    _check(problems, "max_discharge_w", limits.max_discharge_w, non_negative=True)
    _check(problems, "reserve_soc", limits.reserve_soc, optional=False, soc=True)
    _check(problems, "max_soc", limits.max_soc, optional=False, soc=True)
    if not problems and limits.reserve_soc > limits.max_soc:
        problems.append(PROBLEM_RESERVE_ABOVE_MAX_SOC)
    return problems
