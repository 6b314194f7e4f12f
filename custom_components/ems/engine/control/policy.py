"""The policy: a battery's command, resolved every cycle into a setpoint within its limits.

One cycle:

1. `resolve(command, limits, observation)` gives a `Setpoint`:
   a. a command or limits that fail validation give `auto` (`invalid_command`,
      `invalid_limits`); an expired command gives `auto` (`expired`);
   b. safety limits first: the envelope of allowed powers from the device's allowed charge and
      discharge powers, the user's, the reserve SoC and the maximum SoC;
   c. then the mode computes the power it wants;
   d. a final clamp into the envelope. `Setpoint.clamped` names every limit that bit, and why
      the applied mode differs from the commanded one.
2. The device's control recipe (`recipe`, data from its profile) turns the setpoint into the
   values its control registers must hold, and picks what to write this cycle.

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
- **Auto hands the battery to the device.** Our limits are not enforced there.
- **The bounds are checked once a cycle,** so the SoC can pass a bound by one cycle's energy
  (5 kW for 10 s is 14 Wh, 0.14 % of 10 kWh).
- **Invalid inputs at run time.** `resolve` never raises: it is called every cycle. The services
  reject bad commands with `validate_command` first. A reserve above the maximum SoC is
  reported by `validate_limits` but is safe at run time: both bounds apply, which holds in
  between.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
import math

from ..numbers import finite
from .commands import (
    PROBLEM_RESERVE_ABOVE_MAX_SOC,
    BatteryCommand,
    BatteryLimits,
    BatteryMode,
    BatteryObservation,
    Setpoint,
    validate_command,
    validate_limits,
)

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
    if (device_charge := finite(observation.device_max_charge_w)) is not None:
        charge.append(_Bound(max(device_charge, 0.0), REASON_DEVICE_MAX_CHARGE))
    if (device_discharge := finite(observation.device_max_discharge_w)) is not None:
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
    grid = finite(observation.grid_power_w)
    battery = finite(observation.battery_power_w)
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
    now = finite(observation.timestamp)
    # Without a usable clock an expiry cannot be checked: treat it as passed.
    if command.expires_at is not None and (now is None or now >= command.expires_at):
        return Setpoint(mode=BatteryMode.AUTO, power_w=None, clamped=(REASON_EXPIRED,))
    soc = finite(observation.soc)
    envelope = _envelope(limits, soc, observation)  # 1. safety limits
    wish = _wish(command, limits, soc, observation, envelope)  # 2. the mode
    if wish.power_w is None:
        return Setpoint(mode=wish.mode, power_w=None, clamped=_unique(wish.reasons))
    power, bitten = envelope.clamp(wish.power_w)  # 3. the final clamp
    return Setpoint(mode=wish.mode, power_w=power, clamped=_unique((*wish.reasons, *bitten)))
