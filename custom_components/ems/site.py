"""The site model: OpenEMS's `_sum` over the devices, the energy flows between PV, battery, grid
and house, their integration into kWh, and the load parameters of metered consumers.

Pure: plain data in, plain data out; nothing here imports Home Assistant or reads a clock. All
powers are in W and all energies in kWh (DESIGN.md §3), timestamps are epoch seconds.

Signs follow OpenEMS (DESIGN.md §3):
- grid > 0 imports (buys);
- battery > 0 discharges;
- production >= 0;
- consumption = grid + production + battery.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from datetime import UTC, datetime
import math
from types import MappingProxyType
from typing import Final

from .model import DeviceRole, DeviceType

_J_PER_KWH: Final = 3.6e6
_S_PER_H: Final = 3600.0
_W_PER_KW: Final = 1000.0
_STATE_VERSION: Final = 1

DEFAULT_MAX_GAP_S: Final = 300.0
DEFAULT_ON_THRESHOLD_W: Final = 10.0
QUARTER_HOUR_S: Final = 900.0
# A 15-minute block yields a demand only when samples cover this share of it; a block that
# started before the first sample or fell into an outage has no demand rather than a guess.
MIN_BLOCK_COVERAGE: Final = 0.8

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


def _finite(value: object) -> float | None:
    """A finite float, or None for None, NaN, infinities, bools and anything not a number."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


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

    @property
    def raw_power_w(self) -> float | None:
        """The device's own power reading, after `invert`; None when unusable."""
        channel = POWER_CHANNEL.get(self.device_type, "ActivePower")
        value = _finite(self.readings.get(channel))
        if value is None:
            return None
        return -value if self.invert else value

    @property
    def power_w(self) -> float | None:
        """The power in its role's sign (see ROLE_SIGN); None when unusable."""
        raw = self.raw_power_w
        if raw is None:
            return None
        return raw * power_sign(self.device_type, self.role) + 0.0  # + 0.0: no -0.0


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


# ---------------------------------------------------------------------------------------------
# 3. Energy integration
# ---------------------------------------------------------------------------------------------


def _mapping(data: object) -> Mapping[str, object]:
    if isinstance(data, Mapping):
        return data
    return {}


def _state_float(data: Mapping[str, object], key: str) -> float | None:
    return _finite(data.get(key))


def _state_total(data: Mapping[str, object], key: str) -> float:
    value = _state_float(data, key)
    return value if value is not None and value > 0.0 else 0.0


@dataclass(frozen=True, slots=True)
class IntegratorResult:
    """An integrator's total after one sample.

    `estimated` says this sample closed a gap longer than max_gap_s: `delta_kwh` is then the
    trapezoid of the two samples around the gap, to be spread evenly over [since, timestamp]
    (never booked as a spike at its end).
    """

    total_kwh: float
    estimated: bool = False
    delta_kwh: float = 0.0
    since: float | None = None  # start of the interval delta_kwh covers


class EnergyIntegrator:
    """Trapezoidal integration of one power series (W) into a kWh total that only increases.

    - Samples below 0 count as 0: the caller splits a signed series (grid, battery) into its
      non-negative directions first, as the meters' import/export counters do.
    - None (or NaN) means unavailable: nothing is integrated, and the previous good sample
      stays the anchor, so the next good sample spans the whole gap.
    - A span between good samples longer than max_gap_s is still bridged by the trapezoid of
      its two ends (the best estimate at hand), but the result is flagged `estimated` and
      the energy is counted in `estimated_kwh`. A restart is such a span too: the state
      keeps the last good sample, so the first sample after the restart closes the gap.
    - A timestamp that is not after the anchor (clock set back) re-anchors without
      integrating.
    """

    __slots__ = ("_estimated_kwh", "_last_timestamp", "_last_w", "_total_kwh", "max_gap_s")

    def __init__(self, max_gap_s: float = DEFAULT_MAX_GAP_S, *, total_kwh: float = 0.0) -> None:
        """Start at total_kwh without an anchor; the first good sample anchors."""
        if not max_gap_s > 0.0:
            raise ValueError("max_gap_s must be positive")
        self.max_gap_s = float(max_gap_s)
        self._total_kwh = _positive(float(total_kwh))
        self._estimated_kwh = 0.0
        self._last_timestamp: float | None = None
        self._last_w: float | None = None

    @property
    def total_kwh(self) -> float:
        """Energy integrated so far."""
        return self._total_kwh

    @property
    def estimated_kwh(self) -> float:
        """The part of total_kwh that bridged gaps longer than max_gap_s."""
        return self._estimated_kwh

    @property
    def last_timestamp(self) -> float | None:
        """The timestamp of the last good sample."""
        return self._last_timestamp

    def update(self, power_w: float | None, timestamp: float) -> IntegratorResult:
        """Add the span from the last good sample to this one."""
        power = _finite(power_w)
        now = _finite(timestamp)
        if power is None or now is None:
            return IntegratorResult(self._total_kwh)
        power = _positive(power)
        last_timestamp, last_w = self._last_timestamp, self._last_w
        self._last_timestamp, self._last_w = now, power
        if last_timestamp is None or last_w is None or now <= last_timestamp:
            return IntegratorResult(self._total_kwh)
        span_s = now - last_timestamp
        delta_kwh = (last_w + power) / 2.0 * span_s / _J_PER_KWH
        estimated = span_s > self.max_gap_s
        self._total_kwh += delta_kwh
        if estimated:
            self._estimated_kwh += delta_kwh
        return IntegratorResult(self._total_kwh, estimated, delta_kwh, last_timestamp)

    def as_dict(self) -> dict[str, float | None]:
        """JSON-ready state: the totals and the last good sample."""
        return {
            "total_kwh": self._total_kwh,
            "estimated_kwh": self._estimated_kwh,
            "last_timestamp": self._last_timestamp,
            "last_w": self._last_w,
        }

    @classmethod
    def from_dict(cls, data: object, max_gap_s: float = DEFAULT_MAX_GAP_S) -> EnergyIntegrator:
        """Restore from as_dict(); whatever is missing or malformed starts afresh."""
        state = _mapping(data)
        integrator = cls(max_gap_s, total_kwh=_state_total(state, "total_kwh"))
        integrator._estimated_kwh = min(_state_total(state, "estimated_kwh"), integrator._total_kwh)
        last_timestamp = _state_float(state, "last_timestamp")
        last_w = _state_float(state, "last_w")
        if last_timestamp is not None and last_w is not None:
            integrator._last_timestamp = last_timestamp
            integrator._last_w = _positive(last_w)
        return integrator


# ---------------------------------------------------------------------------------------------
# 4. Site energy counters
# ---------------------------------------------------------------------------------------------

SITE_SERIES: Final = (
    "grid_import",
    "grid_export",
    "production",
    "consumption",
    "battery_charge",
    "battery_discharge",
)
ENERGY_SERIES: Final = SITE_SERIES + FLOW_NAMES


@dataclass(frozen=True, kw_only=True, slots=True)
class SiteEnergies:
    """The site's energy counters in kWh (each total_increasing), named `<series>_kwh`."""

    grid_import_kwh: float
    grid_export_kwh: float
    production_kwh: float
    consumption_kwh: float
    battery_charge_kwh: float
    battery_discharge_kwh: float
    production_to_consumption_kwh: float
    production_to_grid_kwh: float
    production_to_battery_kwh: float
    grid_to_consumption_kwh: float
    grid_to_battery_kwh: float
    battery_to_consumption_kwh: float
    battery_to_grid_kwh: float
    # series whose latest sample closed a gap longer than max_gap_s
    estimated: frozenset[str] = frozenset()

    def totals(self) -> dict[str, float]:
        """kWh by series name (ENERGY_SERIES)."""
        return {
            item.name.removesuffix("_kwh"): getattr(self, item.name)
            for item in fields(self)
            if item.name.endswith("_kwh")
        }


def site_rates(power: SitePower, flows: EnergyFlows | None) -> dict[str, float | None]:
    """The non-negative rate (W) each site energy series integrates; None when unusable."""
    grid, battery = power.grid_w, power.battery_w
    consumption = power.consumption_w
    rates: dict[str, float | None] = {
        "grid_import": None if grid is None else _positive(grid),
        "grid_export": None if grid is None else _positive(-grid),
        "production": power.production_w,
        "consumption": None if consumption is None else _positive(consumption),
        "battery_charge": None if battery is None else _positive(-battery),
        "battery_discharge": None if battery is None else _positive(battery),
    }
    flow_rates = flows.as_dict() if flows is not None else {}
    for name in FLOW_NAMES:
        rates[name] = flow_rates.get(name)
    return rates


class SiteAccumulator:
    """One EnergyIntegrator per site series and per flow."""

    __slots__ = ("_integrators", "max_gap_s")

    def __init__(self, max_gap_s: float = DEFAULT_MAX_GAP_S) -> None:
        """All counters at 0."""
        self.max_gap_s = max_gap_s
        self._integrators = {name: EnergyIntegrator(max_gap_s) for name in ENERGY_SERIES}

    def update(self, power: SitePower, flows: EnergyFlows | None, timestamp: float) -> SiteEnergies:
        """Integrate one cycle's site powers and flows."""
        estimated: set[str] = set()
        for name, rate in site_rates(power, flows).items():
            if self._integrators[name].update(rate, timestamp).estimated:
                estimated.add(name)
        return self._energies(frozenset(estimated))

    @property
    def energies(self) -> SiteEnergies:
        """The counters now, without a new sample (after a restore, say)."""
        return self._energies(frozenset())

    def _energies(self, estimated: frozenset[str]) -> SiteEnergies:
        return SiteEnergies(
            **{f"{name}_kwh": self._integrators[name].total_kwh for name in ENERGY_SERIES},
            estimated=estimated,
        )

    def as_dict(self) -> dict[str, object]:
        """JSON-ready state of every integrator."""
        return {
            "version": _STATE_VERSION,
            "series": {name: item.as_dict() for name, item in self._integrators.items()},
        }

    @classmethod
    def from_dict(cls, data: object, max_gap_s: float = DEFAULT_MAX_GAP_S) -> SiteAccumulator:
        """Restore from as_dict(); a missing or malformed series starts afresh."""
        accumulator = cls(max_gap_s)
        series = _mapping(_mapping(data).get("series"))
        for name in ENERGY_SERIES:
            accumulator._integrators[name] = EnergyIntegrator.from_dict(series.get(name), max_gap_s)
        return accumulator


def device_energy_rates(item: SiteInput) -> dict[str, float | None]:
    """The energy counters a device has by its type, as rates (W) to integrate where the
    device lacks them: meters import/export, inverters generated energy, batteries charged
    and discharged energy. Uses the device's own reading (after `invert`), not its role."""
    power = item.raw_power_w
    if item.device_type == DeviceType.INVERTER:
        return {"EnergyGenerated": None if power is None else _positive(power)}
    if item.device_type == DeviceType.BATTERY:
        return {
            "EnergyCharged": None if power is None else _positive(-power),
            "EnergyDischarged": None if power is None else _positive(power),
        }
    return {
        "EnergyImport": None if power is None else _positive(power),
        "EnergyExport": None if power is None else _positive(-power),
    }


class DeviceEnergyAccumulator:
    """Energy counters of one device that has none of its own, from its power."""

    __slots__ = ("_integrators", "max_gap_s")

    def __init__(self, max_gap_s: float = DEFAULT_MAX_GAP_S) -> None:
        """No counters until the first sample says which the device type has."""
        self.max_gap_s = max_gap_s
        self._integrators: dict[str, EnergyIntegrator] = {}

    def update(self, item: SiteInput, timestamp: float) -> dict[str, IntegratorResult]:
        """Integrate the device's power into its counters (keys as device_energy_rates)."""
        results: dict[str, IntegratorResult] = {}
        for key, rate in device_energy_rates(item).items():
            integrator = self._integrators.get(key)
            if integrator is None:
                integrator = self._integrators[key] = EnergyIntegrator(self.max_gap_s)
            results[key] = integrator.update(rate, timestamp)
        return results

    def as_dict(self) -> dict[str, object]:
        """JSON-ready state."""
        return {
            "version": _STATE_VERSION,
            "series": {key: item.as_dict() for key, item in self._integrators.items()},
        }

    @classmethod
    def from_dict(
        cls, data: object, max_gap_s: float = DEFAULT_MAX_GAP_S
    ) -> DeviceEnergyAccumulator:
        """Restore from as_dict(); malformed entries are dropped."""
        accumulator = cls(max_gap_s)
        for key, state in _mapping(_mapping(data).get("series")).items():
            if isinstance(key, str) and isinstance(state, Mapping):
                accumulator._integrators[key] = EnergyIntegrator.from_dict(state, max_gap_s)
        return accumulator


# ---------------------------------------------------------------------------------------------
# 5. Load parameters
# ---------------------------------------------------------------------------------------------


def utc_month_key(timestamp: float) -> str:
    """The calendar month of an epoch timestamp in UTC, e.g. "2026-06"."""
    return datetime.fromtimestamp(timestamp, tz=UTC).strftime("%Y-%m")


@dataclass(frozen=True, kw_only=True, slots=True)
class LoadState:
    """A load's parameters after one sample."""

    status_on: bool  # power above the on threshold (False while the power is unknown)
    runtime_h: float  # hours above the threshold, total increasing
    demand_kw: float | None  # average power of the last complete quarter hour
    peak_demand_kw: float | None  # largest demand_kw of the current month


def _time_above(start_w: float, end_w: float, span_s: float, threshold_w: float) -> float:
    """Seconds of a span between two samples that count as running.

    Each sample's status holds for the half of the span next to it, so a switch between two
    samples counts at the middle of the span: unbiased for loads that switch at random
    moments (a heat pump or a kettle), and at most half a span off for a slow ramp.
    """
    return (int(start_w > threshold_w) + int(end_w > threshold_w)) * span_s / 2.0


class LoadTracker:
    """Status, runtime, quarter-hour demand and monthly peak demand of one load.

    The energy between two good samples is their trapezoid, as in EnergyIntegrator; the
    runtime counts a span fully when both of its samples are above the threshold and half
    when one is (see _time_above). Quarter hours are aligned to the epoch, i.e. to wall-clock
    quarter hours; a sample exactly on a boundary starts the new block. Unavailable samples
    are skipped, as in EnergyIntegrator, but a span between good samples longer than
    max_gap_s is not bridged here: an outage adds no runtime, and a block it takes a large
    bite of (see MIN_BLOCK_COVERAGE) has no demand rather than a made-up one.

    The month key is the caller's (UTC by default, local time from HA): a block's demand
    counts towards the month of the samples inside it, and a sample of a new month starts
    the peak afresh (None until the month's first complete block).
    """

    __slots__ = (
        "_block_covered_s",
        "_block_energy_j",
        "_block_month",
        "_block_start",
        "_demand_kw",
        "_last_month",
        "_last_timestamp",
        "_last_w",
        "_peak_kw",
        "_peak_month",
        "_runtime_s",
        "max_gap_s",
        "on_threshold_w",
    )

    def __init__(
        self,
        on_threshold_w: float = DEFAULT_ON_THRESHOLD_W,
        *,
        max_gap_s: float = DEFAULT_MAX_GAP_S,
    ) -> None:
        """A load with no history."""
        if not max_gap_s > 0.0:
            raise ValueError("max_gap_s must be positive")
        self.on_threshold_w = float(on_threshold_w)
        self.max_gap_s = float(max_gap_s)
        self._runtime_s = 0.0
        self._last_timestamp: float | None = None
        self._last_w: float | None = None
        self._last_month: str | None = None
        self._block_start: float | None = None
        self._block_energy_j = 0.0
        self._block_covered_s = 0.0
        self._block_month: str | None = None
        self._demand_kw: float | None = None
        self._peak_month: str | None = None
        self._peak_kw: float | None = None

    @property
    def state(self) -> LoadState:
        """The parameters now, without a new sample."""
        return LoadState(
            status_on=self._last_w is not None and self._last_w > self.on_threshold_w,
            runtime_h=self._runtime_s / _S_PER_H,
            demand_kw=self._demand_kw,
            peak_demand_kw=self._peak_kw,
        )

    def update(
        self, power_w: float | None, timestamp: float, month_key: str | None = None
    ) -> LoadState:
        """Take one sample; `month_key` names the calendar month the timestamp falls in."""
        now = _finite(timestamp)
        if now is None:
            return self.state
        month = month_key if month_key is not None else utc_month_key(now)
        power = _finite(power_w)
        if power is None:
            # Unavailable: the last good sample stays the anchor; the status is unknown.
            self._roll_to(_block_of(now), month)
            self._close_month(month)
            return LoadState(
                status_on=False,
                runtime_h=self._runtime_s / _S_PER_H,
                demand_kw=self._demand_kw,
                peak_demand_kw=self._peak_kw,
            )
        power = _positive(power)
        last_timestamp, last_w = self._last_timestamp, self._last_w
        if last_timestamp is not None and now < last_timestamp:
            # The clock went back: forget the block in progress and start over from here.
            self._block_start = None
        elif (
            last_timestamp is not None
            and last_w is not None
            and 0.0 < now - last_timestamp <= self.max_gap_s
        ):
            self._integrate(last_timestamp, last_w, now, power)
        self._roll_to(_block_of(now), month)
        self._block_month = month
        self._close_month(month)
        self._last_timestamp, self._last_w, self._last_month = now, power, month
        return self.state

    def _integrate(self, start: float, start_w: float, end: float, end_w: float) -> None:
        slope = (end_w - start_w) / (end - start)
        month = self._last_month
        position, position_w = start, start_w
        while position < end:
            block = _block_of(position)
            self._roll_to(block, month)
            boundary = min(block + QUARTER_HOUR_S, end)
            boundary_w = end_w if boundary == end else start_w + slope * (boundary - start)
            span_s = boundary - position
            if block == self._block_start:
                # (A block already closed while the power was unavailable keeps its demand.)
                self._block_energy_j += (position_w + boundary_w) / 2.0 * span_s
                self._block_covered_s += span_s
            position, position_w = boundary, boundary_w
        self._runtime_s += _time_above(start_w, end_w, end - start, self.on_threshold_w)

    def _roll_to(self, block: float, month: str | None) -> None:
        """Make `block` the block in progress, closing the one before it."""
        if self._block_start is not None and block <= self._block_start:
            return
        if self._block_start is not None:
            complete = block == self._block_start + QUARTER_HOUR_S
            if complete and self._block_covered_s >= MIN_BLOCK_COVERAGE * QUARTER_HOUR_S:
                demand_kw = self._block_energy_j / self._block_covered_s / _W_PER_KW
                self._demand_kw = demand_kw
                self._book_peak(demand_kw, self._block_month or month)
            else:
                # Either the block had too little data, or whole blocks passed without any:
                # the last complete block is unknown.
                self._demand_kw = None
        self._block_start = block
        self._block_energy_j = 0.0
        self._block_covered_s = 0.0
        self._block_month = month

    def _book_peak(self, demand_kw: float, month: str | None) -> None:
        if month != self._peak_month:
            self._peak_month, self._peak_kw = month, demand_kw
        elif self._peak_kw is None or demand_kw > self._peak_kw:
            self._peak_kw = demand_kw

    def _close_month(self, month: str) -> None:
        if month != self._peak_month:
            self._peak_month, self._peak_kw = month, None

    def as_dict(self) -> dict[str, object]:
        """JSON-ready state."""
        return {
            "version": _STATE_VERSION,
            "runtime_s": self._runtime_s,
            "last_timestamp": self._last_timestamp,
            "last_w": self._last_w,
            "last_month": self._last_month,
            "block_start": self._block_start,
            "block_energy_j": self._block_energy_j,
            "block_covered_s": self._block_covered_s,
            "block_month": self._block_month,
            "demand_kw": self._demand_kw,
            "peak_month": self._peak_month,
            "peak_kw": self._peak_kw,
        }

    @classmethod
    def from_dict(
        cls,
        data: object,
        on_threshold_w: float = DEFAULT_ON_THRESHOLD_W,
        *,
        max_gap_s: float = DEFAULT_MAX_GAP_S,
    ) -> LoadTracker:
        """Restore from as_dict(); whatever is missing or malformed starts afresh."""
        state = _mapping(data)
        tracker = cls(on_threshold_w, max_gap_s=max_gap_s)
        tracker._runtime_s = _state_total(state, "runtime_s")
        last_timestamp = _state_float(state, "last_timestamp")
        last_w = _state_float(state, "last_w")
        if last_timestamp is not None and last_w is not None:
            tracker._last_timestamp, tracker._last_w = last_timestamp, _positive(last_w)
            tracker._last_month = _state_str(state, "last_month")
        block_start = _state_float(state, "block_start")
        covered_s = _state_total(state, "block_covered_s")
        if (
            block_start is not None
            and block_start == _block_of(block_start)
            and covered_s <= QUARTER_HOUR_S
        ):
            tracker._block_start = block_start
            tracker._block_energy_j = _state_total(state, "block_energy_j")
            tracker._block_covered_s = covered_s
            tracker._block_month = _state_str(state, "block_month")
        demand_kw = _state_float(state, "demand_kw")
        tracker._demand_kw = None if demand_kw is None else _positive(demand_kw)
        tracker._peak_month = _state_str(state, "peak_month")
        peak_kw = _state_float(state, "peak_kw")
        tracker._peak_kw = None if peak_kw is None else _positive(peak_kw)
        return tracker


def _block_of(timestamp: float) -> float:
    """Start of the wall-clock quarter hour the timestamp falls in."""
    return math.floor(timestamp / QUARTER_HOUR_S) * QUARTER_HOUR_S


def _state_str(data: Mapping[str, object], key: str) -> str | None:
    value = data.get(key)
    return value if isinstance(value, str) else None
