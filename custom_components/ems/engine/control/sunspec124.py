"""The SunSpec 124 recipe: a setpoint as model 124's StorCtl_Mod, InWRte, OutWRte and
InOutWRte_RvrtTms, and which of those values a cycle writes (what changed, or everything again
when the device's revert timer needs re-arming).
"""

from __future__ import annotations

from collections.abc import Mapping
import math
from types import MappingProxyType

from ..numbers import FLOAT_TOLERANCE, finite
from .commands import Setpoint

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
    """
    if isinstance(revert_s, bool) or not isinstance(revert_s, int):
        raise TypeError("revert_s is a whole number of seconds")
    if not 0 <= revert_s <= MAX_REVERT_S:
        raise ValueError(f"revert_s must be within 0..{MAX_REVERT_S} s")
    power = setpoint.power_w
    if power is None:
        return {
            REVERT_TIMEOUT: 0,
            CHARGE_RATE: 0.0,
            DISCHARGE_RATE: 0.0,
            STORAGE_CONTROL_MODE: STORCTL_AUTO,
        }
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
    return {
        REVERT_TIMEOUT: revert_s,
        CHARGE_RATE: charge,
        DISCHARGE_RATE: discharge,
        STORAGE_CONTROL_MODE: mode,
    }


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
        read = finite(current.get(key))
        if read is None or abs(read - value) > tolerances.get(key, FLOAT_TOLERANCE):
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
