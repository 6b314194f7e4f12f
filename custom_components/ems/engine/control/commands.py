"""Battery control: one vendor-neutral command, resolved every cycle into a setpoint and mapped
onto a device's control registers.

Signs follow DESIGN.md section 3: battery power > 0 discharges and < 0 charges; grid power > 0
imports.

One cycle:

1. `resolve(command, limits, observation)` gives a `Setpoint`:
   a. a command or limits that fail validation give `auto` (`invalid_command`,
      `invalid_limits`); an expired command gives `auto` (`expired`);
   b. safety limits first: the envelope of allowed powers from the device's allowed charge and
      discharge powers, the user's, the reserve SoC and the maximum SoC;
   c. then the mode computes the power it wants;
   d. a final clamp into the envelope. `Setpoint.clamped` names every limit that bit, and why
      the applied mode differs from the commanded one.
2. `sunspec_124_writes(setpoint, ...)` gives the physical values to hold in model 124, keyed by
   the profile's channel keys, in the order they are to be written.
3. `cycle_writes(desired, readback, ...)` picks what to write this cycle: what differs from this
   cycle's read-back (`changed_writes`), or the whole set when the device's revert timer needs
   re-arming (`reassert_due`).

Choices:

- **Target reached -> hold, not auto.** `force_charge` holds once SoC >= its target (or the
  maximum SoC); `force_discharge` holds once SoC <= max(min_soc, reserve). The command stays in
  force until it expires or is replaced, and only then returns to auto. Auto would let the
  device's own logic spend the energy just charged (or fill the room just made) before the
  user's command is over, and at the boundary it would flip between auto and forced every
  cycle, with a burst of writes each time. Hold is stable and costs nothing.
- **SoC unknown.** A bound that needs the SoC is enforced by refusing the direction it guards:
  no discharge while the reserve is above 0 %, no charge while the maximum SoC is below 100 %
  (`no_soc`). A bound of 0 % or 100 % holds for any SoC, so it does not need one; the BMS
  guards the physical ends. A force mode whose own stop level needs the SoC (a target below
  100 %, a floor above 0 %) holds.
- **Missing grid or battery power.** Self-consumption and peak shaving steer on the grid meter
  and the battery's own power; without either they hold (`no_grid_power`, `no_battery_power`)
  rather than guess. Hold never breaks a limit and resumes on the next good reading.
- **Peak shaving.** With `net = grid + battery` (the import without the battery): if
  `net > peak_power_w`, discharge `net - peak_power_w`. Otherwise charge
  `max(0, -net) + min(recharge_power_w, peak_power_w - max(net, 0))`: all PV surplus (free)
  plus at most `recharge_power_w` from the grid, and never so much that the import exceeds the
  peak. Without `recharge_power_w` the battery charges from surplus only and otherwise holds,
  keeping its energy for the next peak.
- **A force mode without `power_w`** runs at the lowest of the device's and the user's maximum
  powers; with neither known it holds (`no_power_limit`).
- **Auto hands the battery to the device.** Our limits are not enforced there, except the
  reserve when the glue passes `reserve_soc=` to `sunspec_124_writes` (MinRsvPct, which the
  device obeys in every mode). It is opt-in, because it overwrites the device's own setting.
- **The bounds are checked once a cycle,** so the SoC can pass a bound by one cycle's energy
  (5 kW for 10 s is 14 Wh, 0.14 % of 10 kWh); the device's MinRsvPct closes that gap for the
  reserve.
- **Invalid inputs at run time.** `resolve` never raises: it is called every cycle. The services
  reject bad commands with `validate_command` first. A reserve above the maximum SoC is
  reported by `validate_limits` but is safe at run time: both bounds apply, which holds in
  between.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from ..numbers import finite

# Validation problem codes are "<field>_<problem>" with these problems, plus the two below.
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
