"""The site's powers: each device's power with its role's sign, summed as OpenEMS's `_sum`."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final

from ..model import DeviceRole, DeviceType
from ..numbers import finite

# ---------------------------------------------------------------------------------------------
# 1. Site powers
# ---------------------------------------------------------------------------------------------

# The channel that carries a device's active power, by device type.
POWER_CHANNEL: Final[Mapping[DeviceType, str]] = MappingProxyType(
    {
        DeviceType.METER: "ActivePower",  # Eastron ActivePower, SunSpec 20x W
        DeviceType.GRID: "ActivePower",
        DeviceType.LOAD: "ActivePower",
        DeviceType.INVERTER: "AC_Power",  # SunSpec 10x/11x W
        DeviceType.BATTERY: "ActivePower",  # SunSpec 802 W
    }
)

# The factor that turns a device's power reading into its role's OpenEMS sign:
#   grid: + import; production: + produced; battery: + discharge; load/submeter: + consumed.
#
# Meters (Eastron, SunSpec 201-204/211-214) read + for power flowing INTO the metered circuit
# from the supply side (TotWhImp grows), - for power flowing out of it (TotWhExp grows):
# - at the grid connection the metered circuit is the site, so + is import: +1;
# - on a PV inverter's output the circuit feeds out while it produces, so the meter reads
#   -PV (and +standby draw at night): -1;
# - on a battery inverter's output it reads + while the battery charges: -1 for + discharge;
# - on a consumer (load, submeter) it reads + consumption: +1.
# Inverters report their AC output (SunSpec 103.W) as + produced: +1, also for a battery
# inverter, whose output is + while it discharges. Batteries report SunSpec 802.W, + while
# discharging, which is already OpenEMS's sign: +1.
# Pairs not listed take the reading as it is; SiteInput.invert flips any device that is
# installed the other way round.
ROLE_SIGN: Final[Mapping[tuple[DeviceType, DeviceRole], int]] = MappingProxyType(
    {
        (DeviceType.METER, DeviceRole.GRID): +1,
        (DeviceType.GRID, DeviceRole.GRID): +1,
        (DeviceType.METER, DeviceRole.PRODUCTION): -1,
        (DeviceType.INVERTER, DeviceRole.PRODUCTION): +1,
        (DeviceType.METER, DeviceRole.BATTERY): -1,
        (DeviceType.INVERTER, DeviceRole.BATTERY): +1,
        (DeviceType.BATTERY, DeviceRole.BATTERY): +1,
        (DeviceType.METER, DeviceRole.LOAD): +1,
        (DeviceType.LOAD, DeviceRole.LOAD): +1,
        (DeviceType.METER, DeviceRole.SUBMETER): +1,
        (DeviceType.LOAD, DeviceRole.SUBMETER): +1,
    }
)


def power_sign(device_type: DeviceType, role: DeviceRole) -> int:
    """The factor from a device's own power reading to its role's sign (+1 when unlisted)."""
    return ROLE_SIGN.get((device_type, role), +1)


def _positive(value: float) -> float:
    """max(value, 0) without a -0.0."""
    return value if value > 0.0 else 0.0


@dataclass(frozen=True, kw_only=True, slots=True)
class SiteInput:
    """One device as the site sums see it: its role, its type and its canonical readings.

    `readings` maps channel keys to canonical values, None where a reading is unusable.
    """

    role: DeviceRole
    device_type: DeviceType
    readings: Mapping[str, float | None]
    invert: bool = False  # the device is installed the other way round
    # A hybrid inverter's AC output carries the battery behind it too: that battery's power
    # (+ discharge) is taken off the output, which leaves the production. None while the
    # battery has no reading, 0 for every other device.
    battery_behind_w: float | None = 0.0

    @property
    def raw_power_w(self) -> float | None:
        """The device's own power reading, after `invert`; None when unusable."""
        channel = POWER_CHANNEL.get(self.device_type, "ActivePower")
        value = finite(self.readings.get(channel))
        if value is None:
            return None
        return -value if self.invert else value

    @property
    def power_w(self) -> float | None:
        """The power in its role's sign (see ROLE_SIGN); None when unusable."""
        raw = self.raw_power_w
        if raw is None or self.battery_behind_w is None:
            return None
        own = raw - self.battery_behind_w
        return own * power_sign(self.device_type, self.role) + 0.0  # + 0.0: no -0.0


@dataclass(frozen=True, kw_only=True, slots=True)
class SitePower:
    """The site's powers in W, OpenEMS signs; None where a device needed for it is unusable."""

    grid_w: float | None
    production_w: float | None
    battery_w: float | None
    consumption_w: float | None


def _sum(values: list[float | None]) -> float | None:
    total = 0.0
    for value in values:
        if value is None:
            return None
        total += value
    return total


def site_power(inputs: Iterable[SiteInput]) -> SitePower:
    """Sum the devices by role, as OpenEMS's `_sum` does.

    - grid: the grid connection meter (normally one; several connection points add up);
      None without a usable grid reading;
    - production: the sum over production devices, each clamped at 0. A production device that
      reads below 0 (a PV inverter's standby draw at night, seen by a meter on its output) is
      consuming: consumption = grid + production + battery then contains that draw, because
      the grid supplies it. Nothing is lost, and production stays >= 0 as DESIGN §3 says;
    - battery: the sum over batteries (+ discharge); 0 without batteries;
    - consumption: grid + production + battery, as measured (it can dip below 0 when meters are
      out of step; the flows and the energy counters treat that as 0).
    Loads and submeters are never added: a load is already part of consumption, and a
    submeter meters a circuit that some other device already accounts for.
    """
    grid: list[float | None] = []
    production: list[float | None] = []
    battery: list[float | None] = []
    for item in inputs:
        if item.role == DeviceRole.GRID:
            grid.append(item.power_w)
        elif item.role == DeviceRole.PRODUCTION:
            power = item.power_w
            production.append(None if power is None else _positive(power))
        elif item.role == DeviceRole.BATTERY:
            battery.append(item.power_w)
    grid_w = _sum(grid) if grid else None
    production_w = _sum(production)
    battery_w = _sum(battery)
    consumption_w = (
        None
        if grid_w is None or production_w is None or battery_w is None
        else grid_w + production_w + battery_w
    )
    return SitePower(
        grid_w=grid_w, production_w=production_w, battery_w=battery_w, consumption_w=consumption_w
    )
