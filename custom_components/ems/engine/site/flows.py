"""The energy flows between PV, battery, grid and house, split from the site's powers, and the
self-sufficiency and self-consumption they give.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from .powers import SitePower, _positive

# ---------------------------------------------------------------------------------------------
# 2. Energy flows
# ---------------------------------------------------------------------------------------------

FLOW_NAMES: Final = (
    "production_to_consumption",
    "production_to_grid",
    "production_to_battery",
    "grid_to_consumption",
    "grid_to_battery",
    "battery_to_consumption",
    "battery_to_grid",
)


@dataclass(frozen=True, kw_only=True, slots=True)
class EnergyFlows:
    """Instantaneous power flows in W between the site's sources and sinks, each >= 0."""

    production_to_consumption: float
    production_to_grid: float
    production_to_battery: float
    grid_to_consumption: float
    grid_to_battery: float
    battery_to_consumption: float
    battery_to_grid: float

    @property
    def production_w(self) -> float:
        """Production, as the flows out of it add up."""
        return self.production_to_consumption + self.production_to_grid + self.production_to_battery

    @property
    def consumption_w(self) -> float:
        """Consumption, as the flows into it add up."""
        return (
            self.production_to_consumption + self.grid_to_consumption + self.battery_to_consumption
        )

    @property
    def grid_import_w(self) -> float:
        """Power bought from the grid."""
        return self.grid_to_consumption + self.grid_to_battery

    @property
    def grid_export_w(self) -> float:
        """Power sold to the grid."""
        return self.production_to_grid + self.battery_to_grid

    @property
    def battery_charge_w(self) -> float:
        """Power into the battery."""
        return self.production_to_battery + self.grid_to_battery

    @property
    def battery_discharge_w(self) -> float:
        """Power out of the battery."""
        return self.battery_to_consumption + self.battery_to_grid

    @property
    def self_sufficiency_pct(self) -> float | None:
        """Share of consumption not bought from the grid; None without consumption."""
        consumption = self.consumption_w
        if consumption <= 0.0:
            return None
        own = self.production_to_consumption + self.battery_to_consumption
        return min(100.0 * own / consumption, 100.0)

    @property
    def self_consumption_pct(self) -> float | None:
        """Share of production used on site (house or battery); None without production."""
        production = self.production_w
        if production <= 0.0:
            return None
        used = self.production_to_consumption + self.production_to_battery
        return min(100.0 * used / production, 100.0)

    def as_dict(self) -> dict[str, float]:
        """The seven flows by name."""
        return {name: float(getattr(self, name)) for name in FLOW_NAMES}


def split_flows(power: SitePower) -> EnergyFlows | None:
    """Split the site's balance into flows; None when a site power is unusable.

    Priority:
    1. production serves consumption first, then charges the battery, then is exported;
    2. battery discharge serves what consumption production left, then is exported;
    3. the grid covers the rest of consumption, then whatever charging production left.
    The split is built from production, battery and consumption; with a balanced site
    (consumption = grid + production + battery) grid import = grid_to_consumption +
    grid_to_battery and grid export = production_to_grid + battery_to_grid, and import and
    export are never both > 0. A consumption below 0 (meters out of step) counts as 0.
    """
    if power.production_w is None or power.battery_w is None or power.consumption_w is None:
        return None
    production = _positive(power.production_w)
    consumption = _positive(power.consumption_w)
    discharge = _positive(power.battery_w)
    charge = _positive(-power.battery_w)

    production_to_consumption = min(production, consumption)
    unserved = consumption - production_to_consumption
    surplus = production - production_to_consumption
    production_to_battery = min(surplus, charge)
    production_to_grid = surplus - production_to_battery
    battery_to_consumption = min(discharge, unserved)
    battery_to_grid = discharge - battery_to_consumption
    grid_to_consumption = unserved - battery_to_consumption
    grid_to_battery = charge - production_to_battery
    return EnergyFlows(
        production_to_consumption=production_to_consumption,
        production_to_grid=production_to_grid,
        production_to_battery=production_to_battery,
        grid_to_consumption=grid_to_consumption,
        grid_to_battery=grid_to_battery,
        battery_to_consumption=battery_to_consumption,
        battery_to_grid=battery_to_grid,
    )
