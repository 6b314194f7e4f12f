"""A setpoint through a device's control recipe (engine/recipes.py): which battery modes the
device can run, the values its registers must hold for a setpoint, and which of them a cycle
writes.

Re-assertion writes only what keeps the device's fallback armed (the recipe's `rearm` steps),
never a persisted register: a steady forced mode costs one write per re-assertion, not a whole
sequence.
"""

from __future__ import annotations

from collections.abc import Mapping
import math

from ..normalization import conversion_for
from ..numbers import FLOAT_TOLERANCE, finite
from ..recipes import ControlRecipe, PowerSign, SetpointKind, ValueSource, WriteStep
from .commands import BatteryMode, Setpoint

# Why a mode is not offered on a device (translation keys of `mode_not_supported`).
LACKS_HOLD = "no_hold"
LACKS_CHARGE = "no_charge"
LACKS_DISCHARGE = "no_discharge"
LACKS_POWER_SETPOINT = "no_power_setpoint"

_PERCENT = "%"
_POWERS = (ValueSource.POWER, ValueSource.SIGNED_POWER)


def setpoint_kind(setpoint: Setpoint) -> SetpointKind:
    """Auto, or the direction of the setpoint's power (0 holds)."""
    power = setpoint.power_w
    if power is None:
        return SetpointKind.AUTO
    if power < 0:
        return SetpointKind.CHARGE
    return SetpointKind.DISCHARGE if power > 0 else SetpointKind.HOLD


def why_not(recipe: ControlRecipe, mode: BatteryMode) -> str | None:
    """Why the device cannot run `mode`, or None when it can.

    Every forced mode needs hold: the policy holds at a target, without a SoC or without a
    power limit. Self-consumption and peak shaving steer both ways at a power every cycle.
    """
    if mode is BatteryMode.AUTO:
        return None
    if not recipe.takes(SetpointKind.HOLD):
        return LACKS_HOLD
    if mode is BatteryMode.FORCE_CHARGE and not recipe.takes(SetpointKind.CHARGE):
        return LACKS_CHARGE
    if mode is BatteryMode.FORCE_DISCHARGE and not recipe.takes(SetpointKind.DISCHARGE):
        return LACKS_DISCHARGE
    steering = mode in (BatteryMode.SELF_CONSUMPTION, BatteryMode.PEAK_SHAVING)
    if steering and not (
        recipe.at_power(SetpointKind.CHARGE) and recipe.at_power(SetpointKind.DISCHARGE)
    ):
        return LACKS_POWER_SETPOINT
    return None


def offered_modes(recipe: ControlRecipe) -> tuple[BatteryMode, ...]:
    """The modes the device can run, in BatteryMode's order."""
    return tuple(mode for mode in BatteryMode if why_not(recipe, mode) is None)


def desired_values(
    recipe: ControlRecipe,
    setpoint: Setpoint,
    *,
    charge_rating_w: float,
    discharge_rating_w: float,
    fallback_s: int,
) -> tuple[SetpointKind, dict[str, float]]:
    """The kind of setpoint the device runs, and the values its control registers must hold
    for it, in write order.

    A power that rounds to nothing in its register (0.2 W as 0.004 % of 5 kW) holds: a charge
    at 0 % would tell the device to charge, at no rate. Raises ValueError for what the recipe
    cannot express: a kind it has no sequence for, a power in % without a positive rating, a
    fallback time the register does not take.
    """
    if isinstance(fallback_s, bool) or not isinstance(fallback_s, int):
        raise TypeError("fallback_s is a whole number of seconds")
    limit = recipe.fallback.max_s
    if fallback_s < 0 or (limit and fallback_s > limit):
        raise ValueError(f"fallback_s must be within 0..{limit} s")
    kind = setpoint_kind(setpoint)
    if kind not in recipe.sequences:
        raise ValueError(f"the device takes no {kind} setpoint")
    power = 0.0 if setpoint.power_w is None else setpoint.power_w
    if not math.isfinite(power):
        raise ValueError(f"setpoint power {power} is not finite")
    rating = charge_rating_w if power < 0 else discharge_rating_w
    values = {
        step.channel: _value(step, recipe.sign, power, rating, fallback_s)
        for step in recipe.sequences[kind]
    }
    powers = [values[step.channel] for step in recipe.sequences[kind] if step.source in _POWERS]
    if powers and not any(powers) and recipe.takes(SetpointKind.HOLD):
        hold = Setpoint(mode=BatteryMode.HOLD, power_w=0.0)
        return desired_values(
            recipe,
            hold,
            charge_rating_w=charge_rating_w,
            discharge_rating_w=discharge_rating_w,
            fallback_s=fallback_s,
        )
    return kind, values


def _value(step: WriteStep, sign: PowerSign, power: float, rating: float, fallback: int) -> float:
    if step.source is None:
        assert step.value is not None  # noqa: S101 - the schema gives every step one or the other
        return step.value
    if step.source is ValueSource.FALLBACK:
        return _rounded(_from_canonical(float(fallback), step.unit), step.resolution, up=True)
    signed = power if sign is PowerSign.DISCHARGE_POSITIVE else -power
    amount = abs(power) if step.source is ValueSource.POWER else signed
    if step.unit == _PERCENT:
        if not math.isfinite(rating) or rating <= 0:
            raise ValueError(f"{step.channel}: a power in % needs a positive rating")
        share = min(abs(amount) / rating * 100.0, 100.0)
        return _rounded(math.copysign(share, amount) + 0.0, step.resolution)
    return _rounded(_from_canonical(amount, step.unit), step.resolution)


def _from_canonical(value: float, unit: str | None) -> float:
    """A value in the canonical unit (W, s) in the register's unit (kW, min)."""
    conversion = conversion_for(unit)
    return (value - conversion.offset) / conversion.factor


def _rounded(value: float, resolution: float | None, *, up: bool = False) -> float:
    if resolution is None:
        return value
    steps = value / resolution
    steps = math.ceil(steps - 1e-9) if up else round(steps)
    decimals = max(0, -math.floor(math.log10(resolution)))
    return round(steps * resolution, decimals) + 0.0


def changed_writes(
    recipe: ControlRecipe,
    desired: Mapping[str, float],
    current: Mapping[str, float | None],
    last_written: Mapping[str, float],
) -> dict[str, float]:
    """The desired values the device does not hold, in `desired`'s order.

    A readable register is compared with this cycle's readback (within the recipe's tolerance,
    or half a step of the write's resolution); a write-only one with what ems wrote last. A
    value that was not read is written.
    """
    resolutions: dict[str, float] = {}
    for steps in recipe.sequences.values():
        for step in steps:
            if step.resolution is not None:
                resolutions[step.channel] = max(step.resolution, resolutions.get(step.channel, 0))
    writes: dict[str, float] = {}
    for key, value in desired.items():
        readback = recipe.readback.get(key, ...)
        if readback is None:
            held = finite(last_written.get(key))
        else:
            source = key if readback is ... else readback.channel
            held = finite(current.get(source))
        tolerance = FLOAT_TOLERANCE
        if readback is not None and readback is not ...:
            tolerance = max(tolerance, readback.tolerance)
        tolerance = max(tolerance, resolutions.get(key, 0.0) / 2)
        if held is None or abs(held - value) > tolerance:
            writes[key] = value
    return writes


def reassert_due(
    last_rearm_at: float | None, now: float, window_s: float, margin: float = 0.5
) -> bool:
    """Whether to write the re-arming steps again so the device's fallback does not run out.

    True when nothing was written yet, when at least `margin` x `window_s` has passed since
    the last re-arming write, or when the clock went backwards. With a window of 0 there is
    nothing to keep alive.
    """
    if not 0.0 < margin < 1.0:
        raise ValueError("margin must be between 0 and 1")
    if last_rearm_at is None:
        return True
    if window_s <= 0:
        return False
    elapsed = now - last_rearm_at
    if not math.isfinite(elapsed) or elapsed < 0:
        return True
    return elapsed >= margin * window_s


def rearm_channels(recipe: ControlRecipe, kind: SetpointKind) -> tuple[str, ...]:
    """The writes of a kind's sequence that restart the device's fallback timer."""
    return tuple(step.channel for step in recipe.sequences.get(kind, ()) if step.rearm)


def cycle_writes(
    recipe: ControlRecipe,
    desired: Mapping[str, float],
    current: Mapping[str, float | None],
    *,
    kind: SetpointKind,
    last_written: Mapping[str, float],
    last_rearm_at: float | None,
    now: float,
    window_s: float,
    margin: float = 0.5,
) -> dict[str, float]:
    """What to write this cycle: what changed, plus the re-arming steps when they are due.

    In auto there is nothing to keep alive. When the fallback time itself changes, every
    volatile value is written again: the new time applies from the next control write. The
    caller sets `last_rearm_at = now` after writing any of `rearm_channels`.
    """
    writes = changed_writes(recipe, desired, current, last_written)
    if kind is SetpointKind.AUTO:
        return writes
    timing = {
        step.channel for step in recipe.sequences[kind] if step.source is ValueSource.FALLBACK
    }
    rearm = rearm_channels(recipe, kind)
    due: set[str] = set()
    if not timing.isdisjoint(writes):
        due = {key for key in desired if key not in recipe.persisted}
    elif (
        rearm
        and set(rearm).isdisjoint(writes)
        and reassert_due(last_rearm_at, now, window_s, margin)
    ):
        due = set(rearm)
    return {key: value for key, value in desired.items() if key in writes or key in due}
