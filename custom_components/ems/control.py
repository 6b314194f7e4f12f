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

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
import math
from types import MappingProxyType

# Channel keys of a SunSpec storage device (profiles/sunspec.py).
STORAGE_CONTROL_MODE = "StorageControlMode"  # 124.StorCtl_Mod
CHARGE_RATE = "ChargeRate"  # 124.InWRte, % of WChaMax
DISCHARGE_RATE = "DischargeRate"  # 124.OutWRte, % of the maximum discharge power
REVERT_TIMEOUT = "RevertTimeout"  # 124.InOutWRte_RvrtTms, s
RESERVE_SOC = "ReserveSOC"  # 124.MinRsvPct, %

# StorCtl_Mod bits: bit 0 charge, bit 1 discharge; both with both rates 0 hold.
STORCTL_AUTO = 0
STORCTL_CHARGE = 1
STORCTL_DISCHARGE = 2
STORCTL_HOLD = STORCTL_CHARGE | STORCTL_DISCHARGE
# A write of any of these (re)starts the device's revert timer.
CONTROL_WRITE_KEYS = frozenset({STORAGE_CONTROL_MODE, CHARGE_RATE, DISCHARGE_RATE})
# InWRte, OutWRte and MinRsvPct have scale factor -2 on the simulated device (and commonly).
RATE_RESOLUTION = 0.01
MAX_REVERT_S = 0xFFFF
DEFAULT_TOLERANCE: Mapping[str, float] = MappingProxyType(
    {
        CHARGE_RATE: RATE_RESOLUTION / 2,
        DISCHARGE_RATE: RATE_RESOLUTION / 2,
        RESERVE_SOC: RATE_RESOLUTION / 2,
    }
)
_EXACT = 1e-9  # tolerance for every other key: float noise only
_POWER_EPSILON_W = 1e-6  # a power this close to a limit has not broken it

# Why a setpoint differs from what the command asked for.
REASON_DEVICE_MAX_CHARGE = "device_max_charge"
REASON_DEVICE_MAX_DISCHARGE = "device_max_discharge"
REASON_USER_MAX_CHARGE = "user_max_charge"
REASON_USER_MAX_DISCHARGE = "user_max_discharge"
REASON_RESERVE_SOC = "reserve_soc"
REASON_MAX_SOC = "max_soc"
REASON_NO_SOC = "no_soc"
REASON_TARGET_SOC_REACHED = "target_soc_reached"
REASON_MIN_SOC_REACHED = "min_soc_reached"
REASON_EXPIRED = "expired"
REASON_INVALID_COMMAND = "invalid_command"
REASON_INVALID_LIMITS = "invalid_limits"
REASON_NO_GRID_POWER = "no_grid_power"
REASON_NO_BATTERY_POWER = "no_battery_power"
REASON_NO_POWER_LIMIT = "no_power_limit"

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


def _finite(value: object) -> float | None:
    """The value as a float if it is a finite number (not a bool), else None."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


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
    number = _finite(value)
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
    reserve = _finite(limits.reserve_soc) if limits is not None else None
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


# --- resolve ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Bound:
    """One limit on the magnitude of charge or discharge power."""

    limit_w: float  # >= 0; inf = no limit
    reason: str


@dataclass(frozen=True, slots=True)
class _Envelope:
    """Step 1: every limit on charging and on discharging, before the mode is considered."""

    charge: tuple[_Bound, ...]
    discharge: tuple[_Bound, ...]

    def power_cap(self, *, charge: bool) -> float:
        """The lowest device or user power limit in one direction (SoC bounds aside)."""
        reasons = (
            {REASON_DEVICE_MAX_CHARGE, REASON_USER_MAX_CHARGE}
            if charge
            else {REASON_DEVICE_MAX_DISCHARGE, REASON_USER_MAX_DISCHARGE}
        )
        bounds = self.charge if charge else self.discharge
        return min((b.limit_w for b in bounds if b.reason in reasons), default=math.inf)

    def clamp(self, power_w: float) -> tuple[float, list[str]]:
        """Step 3: the power within every limit, and the limits it broke."""
        bounds = self.discharge if power_w > 0 else self.charge
        magnitude = abs(power_w)
        bitten = [b.reason for b in bounds if magnitude > b.limit_w + _POWER_EPSILON_W]
        magnitude = min((magnitude, *(b.limit_w for b in bounds)))
        return math.copysign(magnitude, power_w) + 0.0, bitten


def _envelope(
    limits: BatteryLimits, soc: float | None, observation: BatteryObservation
) -> _Envelope:
    charge: list[_Bound] = []
    discharge: list[_Bound] = []
    # A negative device maximum is nonsense: allow nothing in that direction.
    if (device_charge := _finite(observation.device_max_charge_w)) is not None:
        charge.append(_Bound(max(device_charge, 0.0), REASON_DEVICE_MAX_CHARGE))
    if (device_discharge := _finite(observation.device_max_discharge_w)) is not None:
        discharge.append(_Bound(max(device_discharge, 0.0), REASON_DEVICE_MAX_DISCHARGE))
    if limits.max_charge_w is not None:
        charge.append(_Bound(limits.max_charge_w, REASON_USER_MAX_CHARGE))
    if limits.max_discharge_w is not None:
        discharge.append(_Bound(limits.max_discharge_w, REASON_USER_MAX_DISCHARGE))
    if soc is None:
        if limits.max_soc < 100.0:
            charge.append(_Bound(0.0, REASON_NO_SOC))
        if limits.reserve_soc > 0.0:
            discharge.append(_Bound(0.0, REASON_NO_SOC))
    else:
        if soc >= limits.max_soc:
            charge.append(_Bound(0.0, REASON_MAX_SOC))
        if soc <= limits.reserve_soc:
            discharge.append(_Bound(0.0, REASON_RESERVE_SOC))
    return _Envelope(tuple(charge), tuple(discharge))


@dataclass(frozen=True, slots=True)
class _Wish:
    """Step 2: what the mode wants, before the final clamp."""

    mode: BatteryMode
    power_w: float | None
    reasons: tuple[str, ...] = ()


def _hold(*reasons: str) -> _Wish:
    return _Wish(BatteryMode.HOLD, 0.0, reasons)


def _force_charge(
    command: BatteryCommand, limits: BatteryLimits, soc: float | None, envelope: _Envelope
) -> _Wish:
    stop, stop_reason = limits.max_soc, REASON_MAX_SOC
    if command.target_soc is not None and command.target_soc <= stop:
        stop, stop_reason = command.target_soc, REASON_TARGET_SOC_REACHED
    if soc is None:
        if stop < 100.0:
            return _hold(REASON_NO_SOC)
    elif soc >= stop:
        return _hold(stop_reason)
    power = command.power_w
    if power is None:
        power = envelope.power_cap(charge=True)
        if math.isinf(power):
            return _hold(REASON_NO_POWER_LIMIT)
    return _Wish(BatteryMode.FORCE_CHARGE, -power)


def _force_discharge(
    command: BatteryCommand, limits: BatteryLimits, soc: float | None, envelope: _Envelope
) -> _Wish:
    floor, floor_reason = limits.reserve_soc, REASON_RESERVE_SOC
    if command.min_soc is not None and command.min_soc >= floor:
        floor, floor_reason = command.min_soc, REASON_MIN_SOC_REACHED
    if soc is None:
        if floor > 0.0:
            return _hold(REASON_NO_SOC)
    elif soc <= floor:
        return _hold(floor_reason)
    power = command.power_w
    if power is None:
        power = envelope.power_cap(charge=False)
        if math.isinf(power):
            return _hold(REASON_NO_POWER_LIMIT)
    return _Wish(BatteryMode.FORCE_DISCHARGE, power)


def _steering_inputs(observation: BatteryObservation) -> tuple[float, float] | _Wish:
    grid = _finite(observation.grid_power_w)
    battery = _finite(observation.battery_power_w)
    if grid is None:
        return _hold(REASON_NO_GRID_POWER)
    if battery is None:
        return _hold(REASON_NO_BATTERY_POWER)
    return grid, battery


def _self_consumption(command: BatteryCommand, observation: BatteryObservation) -> _Wish:
    inputs = _steering_inputs(observation)
    if isinstance(inputs, _Wish):
        return inputs
    grid, battery = inputs
    # The battery takes over the grid's deviation from the setpoint.
    return _Wish(BatteryMode.SELF_CONSUMPTION, battery + grid - command.grid_setpoint_w)


def _peak_shaving(command: BatteryCommand, observation: BatteryObservation) -> _Wish:
    inputs = _steering_inputs(observation)
    if isinstance(inputs, _Wish):
        return inputs
    grid, battery = inputs
    peak = command.peak_power_w if command.peak_power_w is not None else 0.0
    net = grid + battery  # the grid power the site would draw with the battery idle
    if net > peak:
        return _Wish(BatteryMode.PEAK_SHAVING, net - peak)
    surplus = max(-net, 0.0)
    from_grid = min(command.recharge_power_w or 0.0, peak - max(net, 0.0))
    return _Wish(BatteryMode.PEAK_SHAVING, -(surplus + from_grid))


def _wish(
    command: BatteryCommand,
    limits: BatteryLimits,
    soc: float | None,
    observation: BatteryObservation,
    envelope: _Envelope,
) -> _Wish:
    match BatteryMode(command.mode):
        case BatteryMode.AUTO:
            return _Wish(BatteryMode.AUTO, None)
        case BatteryMode.HOLD:
            return _hold()
        case BatteryMode.FORCE_CHARGE:
            return _force_charge(command, limits, soc, envelope)
        case BatteryMode.FORCE_DISCHARGE:
            return _force_discharge(command, limits, soc, envelope)
        case BatteryMode.SELF_CONSUMPTION:
            return _self_consumption(command, observation)
        case BatteryMode.PEAK_SHAVING:
            return _peak_shaving(command, observation)


def _unique(reasons: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(reasons))


def resolve(
    command: BatteryCommand, limits: BatteryLimits, observation: BatteryObservation
) -> Setpoint:
    """This cycle's setpoint: safety limits first, then the mode, then a final clamp.

    Never raises (it runs every cycle): invalid commands and limits give auto, with the reason.
    """
    if validate_command(command):
        return Setpoint(mode=BatteryMode.AUTO, power_w=None, clamped=(REASON_INVALID_COMMAND,))
    if [p for p in validate_limits(limits) if p != PROBLEM_RESERVE_ABOVE_MAX_SOC]:
        return Setpoint(mode=BatteryMode.AUTO, power_w=None, clamped=(REASON_INVALID_LIMITS,))
    now = _finite(observation.timestamp)
    # Without a usable clock an expiry cannot be checked: treat it as passed.
    if command.expires_at is not None and (now is None or now >= command.expires_at):
        return Setpoint(mode=BatteryMode.AUTO, power_w=None, clamped=(REASON_EXPIRED,))
    soc = _finite(observation.soc)
    envelope = _envelope(limits, soc, observation)  # 1. safety limits
    wish = _wish(command, limits, soc, observation, envelope)  # 2. the mode
    if wish.power_w is None:
        return Setpoint(mode=wish.mode, power_w=None, clamped=_unique(wish.reasons))
    power, bitten = envelope.clamp(wish.power_w)  # 3. the final clamp
    return Setpoint(mode=wish.mode, power_w=power, clamped=_unique((*wish.reasons, *bitten)))


# --- SunSpec model 124 -----------------------------------------------------------------------


def _rate_pct(power_w: float, max_w: float, name: str) -> float:
    if not math.isfinite(max_w) or max_w <= 0:
        raise ValueError(f"{name} must be a positive power to express {power_w} W as a rate")
    return round(min(power_w / max_w * 100.0, 100.0), 2)


def sunspec_124_writes(
    setpoint: Setpoint,
    *,
    max_charge_w: float,
    max_discharge_w: float,
    revert_s: int,
    reserve_soc: float | None = None,
) -> dict[str, float]:
    """The model 124 values that make the device follow `setpoint`, in write order.

    Physical values keyed by channel key. Charge: StorCtl_Mod 1 with InWRte = power as % of
    `max_charge_w` (WChaMax). Discharge: StorCtl_Mod 2 with OutWRte as % of `max_discharge_w`
    (802.WDisChaRteMax). Hold: StorCtl_Mod 3 with both rates 0. The rate not in use is 0, so
    a later change of the mode bits alone can never resurrect an old rate (a rate of 0 holds).
    Rates are rounded to the register's 0.01 % and capped at 100 %.

    Auto: StorCtl_Mod 0, both rates 0 and RevertTimeout 0. The device gets back its own logic
    with no stale rate and no timer of ours armed: another controller can then use the storage
    controls without our timer reverting it.

    Forced modes write RevertTimeout (`revert_s`) first, then the rates, then StorCtl_Mod: the
    timer is set before the control write that starts it, and the rates are in place before
    the bits act on them; every step in between charges, discharges at the old rate or holds,
    and never runs in a direction the old and new setpoints do not share.

    `reserve_soc`, when given, is written first as MinRsvPct, a device-side guard of the
    reserve in every mode (auto included).
    """
    if isinstance(revert_s, bool) or not isinstance(revert_s, int):
        raise TypeError("revert_s is a whole number of seconds")
    if not 0 <= revert_s <= MAX_REVERT_S:
        raise ValueError(f"revert_s must be within 0..{MAX_REVERT_S} s")
    writes: dict[str, float] = {}
    if reserve_soc is not None:
        reserve = _finite(reserve_soc)
        if reserve is None or not 0.0 <= reserve <= 100.0:
            raise ValueError("reserve_soc must be within 0..100 %")
        writes[RESERVE_SOC] = round(reserve, 2)
    power = setpoint.power_w
    if power is None:
        writes |= {
            REVERT_TIMEOUT: 0,
            CHARGE_RATE: 0.0,
            DISCHARGE_RATE: 0.0,
            STORAGE_CONTROL_MODE: STORCTL_AUTO,
        }
        return writes
    if not math.isfinite(power):
        raise ValueError(f"setpoint power {power} is not finite")
    charge = _rate_pct(-power, max_charge_w, "max_charge_w") if power < 0 else 0.0
    discharge = _rate_pct(power, max_discharge_w, "max_discharge_w") if power > 0 else 0.0
    if charge > 0:
        mode = STORCTL_CHARGE
    elif discharge > 0:
        mode = STORCTL_DISCHARGE
    else:
        mode = STORCTL_HOLD
    writes |= {
        REVERT_TIMEOUT: revert_s,
        CHARGE_RATE: charge,
        DISCHARGE_RATE: discharge,
        STORAGE_CONTROL_MODE: mode,
    }
    return writes


# --- what to write ---------------------------------------------------------------------------


def changed_writes(
    desired: Mapping[str, float],
    current: Mapping[str, float | None],
    *,
    tolerance: Mapping[str, float] | None = None,
) -> dict[str, float]:
    """The desired values that differ from this cycle's read-back, in `desired`'s order.

    A value that was not read (missing, None, not finite) is written. `tolerance` adds to or
    overrides DEFAULT_TOLERANCE (half a 0.01 % step for the rates and the reserve); other keys
    must match up to float noise.
    """
    tolerances = {**DEFAULT_TOLERANCE, **(tolerance or {})}
    writes: dict[str, float] = {}
    for key, value in desired.items():
        read = _finite(current.get(key))
        if read is None or abs(read - value) > tolerances.get(key, _EXACT):
            writes[key] = value
    return writes


def reassert_due(
    last_write_at: float | None, now: float, revert_s: int, margin: float = 0.5
) -> bool:
    """Whether to re-write the controls so the device's revert timer does not run out.

    True when nothing was written yet, when at least `margin` x `revert_s` has passed since
    the last control write, or when the clock went backwards. With `revert_s` 0 there is no
    timer to keep alive.
    """
    if not 0.0 < margin < 1.0:
        raise ValueError("margin must be between 0 and 1")
    if last_write_at is None:
        return True
    if revert_s <= 0:
        return False
    elapsed = now - last_write_at
    if not math.isfinite(elapsed) or elapsed < 0:
        return True
    return elapsed >= margin * revert_s


def cycle_writes(
    desired: Mapping[str, float],
    current: Mapping[str, float | None],
    *,
    last_write_at: float | None,
    now: float,
    revert_s: int,
    margin: float = 0.5,
    tolerance: Mapping[str, float] | None = None,
) -> dict[str, float]:
    """What to write this cycle: `changed_writes`, or all of `desired` to re-arm the timer.

    In a forced mode (StorCtl_Mod != 0) with a revert timer, the whole desired set is written
    when `reassert_due` says so and no control write is due anyway, or when RevertTimeout
    itself changes (the new time applies from the next control write). In auto there is
    nothing to keep alive. The caller sets `last_write_at = now` after writing anything in
    CONTROL_WRITE_KEYS.
    """
    writes = changed_writes(desired, current, tolerance=tolerance)
    if not desired.get(STORAGE_CONTROL_MODE, STORCTL_AUTO):
        return writes
    if REVERT_TIMEOUT in writes:
        return dict(desired)
    if (
        revert_s > 0
        and CONTROL_WRITE_KEYS.isdisjoint(writes)
        and reassert_due(last_write_at, now, revert_s, margin)
    ):
        return dict(desired)
    return writes
