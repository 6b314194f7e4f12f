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
        reserve = finite(reserve_soc)
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
