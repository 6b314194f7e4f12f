"""Deterministic physics of a home energy site: PV, house load, heat pump, battery and grid.

Pure: no I/O and no wall clock; time only moves through `SiteModel.advance`.

Signs follow OpenEMS (DESIGN.md section 3): grid power > 0 imports, battery power > 0
discharges, PV power >= 0, hence grid = load - pv - battery at every instant. The load is all
consumption on the site's AC side: the house, the heat pump and the PV inverter's own standby
draw while it sleeps at night (its production reads 0 then, as the inverter reports it).

Battery control follows the SunSpec model 124 registers the battery inverter holds
(`StorageControls`; the exact semantics are in its docstring and in simulator.sunspec_devices).

Electrical conventions of the derived meter quantities:
- reactive power Q > 0 is inductive (the house appliances); the PV and battery inverters run
  at unity power factor, so the grid meter sees the house's Q whatever the active power does;
- apparent power S = sqrt(P^2 + Q^2) and current I = S / V per phase;
- power factor PF = P / S, so its sign follows the active power (negative on a phase that
  exports) and it reads 1.0 when S = 0. Eastron firmware differs on how it signs PF (some
  versions sign it by lead/lag); this P / S convention is the one the simulator serves.
"""

from __future__ import annotations

import cmath
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum
import math
import random
from types import MappingProxyType

MAX_STEP_S = 1.0
_J_PER_KWH = 3.6e6
_J_PER_WH = 3600.0

# Per phase: L1 at 0 degrees, L2 lagging by 120, L3 leading by 120.
PHASE_ANGLES_RAD = (0.0, -2 * math.pi / 3, 2 * math.pi / 3)
# Single-phase appliances never spread evenly over the three phases.
_HOUSE_PHASE_SHARES = (0.45, 0.33, 0.22)
HEAT_PUMP_PHASE = 2  # L3: the heat pump is metered by a single-phase SDM120.
_HEAT_PUMP_TAN_PHI = math.tan(math.acos(0.96))

# Clear-sky PV: Haurwitz global horizontal irradiance times a performance ratio that stands in
# for panel tilt, temperature and inverter losses.
_PERFORMANCE_RATIO = 0.85
INVERTER_EFFICIENCY = 0.97

# Daily household profile in local mean solar time: (centre hour, width in hours, peak W).
_LOAD_PEAKS = ((7.25, 0.8, 900.0), (12.5, 1.2, 350.0), (19.0, 1.4, 1400.0))
_LOAD_NOISE_FRACTION = 0.15
_NOISE_SLOT_S = 60.0
_HEAT_PUMP_CYCLE_S = 1800.0

# Feeder resistance seen by the meter: imports pull the phase voltage down, exports push it up.
_FEEDER_RESISTANCE_OHM = 0.25
# Float sums of step lengths miss an exact deadline by a few ulp.
_TIME_TOLERANCE_S = 1e-6


class BatteryMode(StrEnum):
    """How the battery inverter picks its power, as follows from its StorageControls."""

    AUTO = "auto"  # self-consumption: absorb PV surplus, cover deficit
    CHARGE = "charge"
    DISCHARGE = "discharge"
    HOLD = "hold"


@dataclass(frozen=True, slots=True)
class BatteryCommand:
    """The command the battery inverter follows; power_w is a magnitude for charge/discharge."""

    mode: BatteryMode = BatteryMode.AUTO
    power_w: float = 0.0


STORAGE_CHARGE = 0x1  # StorCtl_Mod bit 0
STORAGE_DISCHARGE = 0x2  # StorCtl_Mod bit 1


@dataclass(frozen=True, slots=True)
class StorageControls:
    """The battery inverter's control settings: the writable points of SunSpec model 124.

    - mode (StorCtl_Mod): 0 = the device's own logic, self-consumption (auto). Bit 0 (charge)
      alone forces power = -charge_rate_pct% x max charge power (a negative rate discharges);
      bit 1 (discharge) alone forces +discharge_rate_pct% x max discharge power (a negative
      rate charges). Both bits: hold (0 W), unless exactly one of the two rates is nonzero,
      which then applies as if its bit were set alone. A forced rate of 0 holds.
    - charge_rate_pct (InWRte), discharge_rate_pct (OutWRte): -100..100 %.
    - reserve_pct (MinRsvPct): the battery never discharges below this SoC, in any mode.
    - revert_s (InOutWRte_RvrtTms): with revert_s > 0, a control write (mode or a rate) starts
      a timer; without a further control write for revert_s simulated seconds the mode
      returns to 0. 0 never reverts.
    - window_s, ramp_s (InOutWRte_WinTms, InOutWRte_RmpTms): stored and served; the simulated
      inverter reaches a new setpoint at once.
    """

    mode: int = 0
    charge_rate_pct: float = 0.0
    discharge_rate_pct: float = 0.0
    reserve_pct: float = 0.0
    revert_s: float = 0.0
    window_s: float = 0.0
    ramp_s: float = 0.0

    def __post_init__(self) -> None:
        """Reject settings the device would refuse."""
        if self.mode & ~(STORAGE_CHARGE | STORAGE_DISCHARGE):
            raise ValueError(f"StorCtl_Mod {self.mode} sets bits other than charge/discharge")
        for name, rate in (("InWRte", self.charge_rate_pct), ("OutWRte", self.discharge_rate_pct)):
            if not -100.0 <= rate <= 100.0:
                raise ValueError(f"{name} {rate} is outside -100..100 %")
        if not 0.0 <= self.reserve_pct <= 100.0:
            raise ValueError(f"MinRsvPct {self.reserve_pct} is outside 0..100 %")
        if min(self.revert_s, self.window_s, self.ramp_s) < 0:
            raise ValueError("times cannot be negative")

    def forced_power_w(self, max_charge_w: float, max_discharge_w: float) -> float | None:
        """The battery power (+ discharge) the settings force; None in auto."""
        charge = bool(self.mode & STORAGE_CHARGE)
        discharge = bool(self.mode & STORAGE_DISCHARGE)
        if charge and discharge:
            if self.charge_rate_pct and not self.discharge_rate_pct:
                discharge = False
            elif self.discharge_rate_pct and not self.charge_rate_pct:
                charge = False
            else:
                return 0.0
        if charge:
            return -(self.charge_rate_pct * max_charge_w / 100.0) + 0.0  # + 0.0: no -0.0
        if discharge:
            return self.discharge_rate_pct * max_discharge_w / 100.0 + 0.0
        return None


@dataclass(frozen=True, slots=True)
class SiteConfig:
    """Everything that defines a simulated site; the same config gives the same site."""

    latitude: float = 52.5
    longitude: float = 13.4
    pv_kwp: float = 8.0
    battery_capacity_kwh: float = 10.0
    battery_max_charge_w: float = 5000.0
    battery_max_discharge_w: float = 5000.0
    initial_soc: float = 50.0
    base_load_w: float = 400.0
    heat_pump_power_w: float = 1800.0
    pv_standby_w: float = 2.0  # the PV inverter's AC draw while it sleeps (none without PV)
    seed: int = 1
    start: datetime = datetime(2026, 6, 21, tzinfo=UTC)
    nominal_voltage: float = 230.0
    frequency: float = 50.0

    def __post_init__(self) -> None:
        """Reject configs that would make the physics meaningless."""
        if self.start.tzinfo is None:
            raise ValueError("start must be timezone-aware")
        if not 0.0 <= self.initial_soc <= 100.0:
            raise ValueError("initial_soc must be within 0..100 %")
        if self.battery_capacity_kwh <= 0.0:
            raise ValueError("battery_capacity_kwh must be positive")
        if min(self.battery_max_charge_w, self.battery_max_discharge_w) <= 0.0:
            raise ValueError("the battery's maximum charge and discharge powers must be positive")
        if self.pv_standby_w < 0.0:
            raise ValueError("pv_standby_w cannot be negative")


@dataclass(frozen=True, slots=True)
class GroundTruth:
    """What really happens on the site at one instant (the lifetime counters, never reset)."""

    time: datetime
    pv_power_w: float
    load_power_w: float
    heat_pump_power_w: float
    battery_power_w: float
    battery_soc_pct: float
    grid_power_w: float
    grid_import_kwh: float
    grid_export_kwh: float
    pv_energy_kwh: float
    battery_charged_kwh: float
    battery_discharged_kwh: float
    load_energy_kwh: float
    heat_pump_energy_kwh: float
    pv_standby_w: float  # part of load_power_w
    pv_standby_kwh: float  # part of load_energy_kwh
    battery_mode: BatteryMode
    battery_controls: StorageControls


@dataclass(frozen=True, slots=True)
class PowerFlows:
    """Instantaneous powers; phase values are at the grid meter (+ import)."""

    elapsed_s: float
    pv_w: float
    load_w: float  # the whole house, heat pump and PV inverter standby included
    heat_pump_w: float
    pv_standby_w: float
    battery_w: float
    phase_active_w: tuple[float, float, float]
    phase_reactive_var: tuple[float, float, float]

    @property
    def grid_w(self) -> float:
        """Power drawn from the grid: the balance of everything else."""
        return self.load_w - self.pv_w - self.battery_w

    def counter_rates(self) -> dict[str, float]:
        """The non-negative rate (W, or var for reactive) each energy counter integrates."""
        grid = self.grid_w
        reactive = sum(self.phase_reactive_var)
        l1, l2, l3 = self.phase_active_w
        return {
            "grid_import": max(grid, 0.0),
            "grid_export": max(-grid, 0.0),
            "pv": self.pv_w,
            "load": self.load_w,
            "heat_pump": self.heat_pump_w,
            "pv_standby": self.pv_standby_w,
            "battery_charged": max(-self.battery_w, 0.0),
            "battery_discharged": max(self.battery_w, 0.0),
            "reactive_import": max(reactive, 0.0),
            "reactive_export": max(-reactive, 0.0),
            "grid_import_l1": max(l1, 0.0),
            "grid_export_l1": max(-l1, 0.0),
            "grid_import_l2": max(l2, 0.0),
            "grid_export_l2": max(-l2, 0.0),
            "grid_import_l3": max(l3, 0.0),
            "grid_export_l3": max(-l3, 0.0),
        }


@dataclass(frozen=True, slots=True)
class SiteState:
    """A consistent snapshot of the model, for whatever derives meter readings from it."""

    config: SiteConfig
    time: datetime
    flows: PowerFlows
    counters_kwh: Mapping[str, float]  # kWh, or kvarh for the reactive counters
    soc_pct: float
    storage_controls: StorageControls


@dataclass(frozen=True, slots=True)
class PhaseReading:
    """What a meter measures on one phase."""

    voltage_v: float
    current_a: float
    active_w: float
    reactive_var: float
    apparent_va: float
    power_factor: float


def solar_elevation_deg(
    day_of_year: int, utc_hour: float, latitude: float, longitude: float
) -> float:
    """Sun elevation from the usual declination and equation-of-time fits (about 1 degree)."""
    declination = math.radians(23.44) * math.sin(2 * math.pi * (284 + day_of_year) / 365)
    b = 2 * math.pi * (day_of_year - 81) / 364
    equation_of_time_h = (9.87 * math.sin(2 * b) - 7.53 * math.cos(b) - 1.5 * math.sin(b)) / 60
    solar_hour = utc_hour + longitude / 15 + equation_of_time_h
    hour_angle = math.radians(15 * (solar_hour - 12))
    lat = math.radians(latitude)
    sin_elevation = math.sin(lat) * math.sin(declination) + math.cos(lat) * math.cos(
        declination
    ) * math.cos(hour_angle)
    return math.degrees(math.asin(sin_elevation))


def clear_sky_pv_w(elevation_deg: float, pv_kwp: float) -> float:
    """AC output of the array under a clear sky; kWp is rated at 1000 W/m2."""
    if elevation_deg <= 0.0:
        return 0.0
    sin_elevation = math.sin(math.radians(elevation_deg))
    irradiance = 1098.0 * sin_elevation * math.exp(-0.057 / sin_elevation)
    return pv_kwp * irradiance * _PERFORMANCE_RATIO


def household_profile_w(local_hour: float, base_load_w: float) -> float:
    """Typical household demand without the heat pump: base load plus three daily peaks."""
    demand = base_load_w
    for centre, width, peak in _LOAD_PEAKS:
        distance = abs(local_hour - centre) % 24
        distance = min(distance, 24 - distance)  # the evening peak reaches past midnight
        demand += peak * math.exp(-0.5 * (distance / width) ** 2)
    return demand


def pv_dc_side(pv_w: float, pv_kwp: float) -> tuple[float, float]:
    """DC string voltage and current behind the inverter; both zero at night."""
    if pv_w <= 0.0:
        return 0.0, 0.0
    voltage = 330.0 + 60.0 * min(pv_w / (pv_kwp * 1000.0), 1.0)
    return voltage, pv_w / INVERTER_EFFICIENCY / voltage


def phase_reading(voltage_v: float, active_w: float, reactive_var: float) -> PhaseReading:
    """Complete one phase's readings from V, P and Q (conventions in the module docstring)."""
    apparent = math.hypot(active_w, reactive_var)
    power_factor = active_w / apparent if apparent > 0.0 else 1.0
    return PhaseReading(
        voltage_v, apparent / voltage_v, active_w, reactive_var, apparent, power_factor
    )


def phase_voltages(state: SiteState) -> tuple[float, float, float]:
    """Slowly wandering phase voltages, pulled down by import and up by export."""
    nominal = state.config.nominal_voltage
    elapsed = state.flows.elapsed_s
    voltages = [
        nominal * (1 + 0.006 * math.sin(2 * math.pi * elapsed / 1800 + angle))
        - _FEEDER_RESISTANCE_OHM * active / nominal
        for angle, active in zip(PHASE_ANGLES_RAD, state.flows.phase_active_w, strict=True)
    ]
    return voltages[0], voltages[1], voltages[2]


def grid_phase_readings(state: SiteState) -> tuple[PhaseReading, PhaseReading, PhaseReading]:
    """The three phases as the grid meter sees them."""
    voltages = phase_voltages(state)
    flows = state.flows
    l1, l2, l3 = (
        phase_reading(voltage, active, reactive)
        for voltage, active, reactive in zip(
            voltages, flows.phase_active_w, flows.phase_reactive_var, strict=True
        )
    )
    return l1, l2, l3


def heat_pump_reading(state: SiteState) -> PhaseReading:
    """The heat pump's own single-phase meter."""
    active = state.flows.heat_pump_w
    return phase_reading(
        phase_voltages(state)[HEAT_PUMP_PHASE], active, active * _HEAT_PUMP_TAN_PHI
    )


def line_to_line_voltages(voltages: tuple[float, float, float]) -> tuple[float, float, float]:
    """L1-L2, L2-L3 and L3-L1 voltages from the phase voltage phasors."""
    phasors = [cmath.rect(v, angle) for v, angle in zip(voltages, PHASE_ANGLES_RAD, strict=True)]
    return (
        abs(phasors[0] - phasors[1]),
        abs(phasors[1] - phasors[2]),
        abs(phasors[2] - phasors[0]),
    )


def neutral_current_a(phases: tuple[PhaseReading, PhaseReading, PhaseReading]) -> float:
    """Magnitude of the phasor sum of the phase currents (zero for a balanced site)."""
    total = sum(
        (complex(p.active_w, -p.reactive_var) / p.voltage_v) * cmath.rect(1.0, angle)
        for p, angle in zip(phases, PHASE_ANGLES_RAD, strict=True)
    )
    return abs(total)


def grid_frequency_hz(state: SiteState) -> float:
    """Grid frequency wandering a few tens of mHz around nominal."""
    elapsed = state.flows.elapsed_s
    return (
        state.config.frequency
        + 0.02 * math.sin(2 * math.pi * elapsed / 900)
        + 0.008 * math.sin(2 * math.pi * elapsed / 97)
    )


class _SeededSlots:
    """Random values on a fixed time grid, drawn slot by slot from one seeded stream.

    Drawing per slot, never per integration step, makes the values independent of how a
    caller splits time into advance() calls.
    """

    def __init__(self, seed: int | str, draw: Callable[[random.Random], float]) -> None:
        self._rng = random.Random(seed)  # noqa: S311 - simulation, not cryptography
        self._draw = draw
        self._values: dict[int, float] = {}
        self._next_slot = 0

    def value(self, slot: int) -> float:
        """The value of `slot`; time only moves forward, so old slots are forgotten."""
        while self._next_slot <= slot:
            self._values[self._next_slot] = self._draw(self._rng)
            self._values.pop(self._next_slot - 3, None)
            self._next_slot += 1
        return self._values[slot]


def _heat_pump_duty(rng: random.Random) -> float:
    """Fraction of a cycle the heat pump runs: often not at all, otherwise a quarter to 3/4."""
    return 0.0 if rng.random() < 0.4 else rng.uniform(0.25, 0.75)


class SiteModel:
    """The site integrated over time in steps of at most MAX_STEP_S.

    Energies and the battery's stored energy use the trapezoid rule over the step, so the
    counters are exactly the integral of the powers reported at the step boundaries. The
    battery is lossless: SoC = initial + (charged - discharged) / capacity. A pending revert
    of the storage controls ends a step, so the revert happens at its exact simulated time.
    """

    def __init__(self, config: SiteConfig) -> None:
        """Put the site at config.start with the battery at its initial SoC, in auto mode."""
        self.config = config
        self._capacity_wh = config.battery_capacity_kwh * 1000.0
        self._stored_wh = self._capacity_wh * config.initial_soc / 100.0
        self._controls = StorageControls()
        self._revert_at_s: float | None = None
        self._noise = _SeededSlots(config.seed, lambda rng: rng.uniform(-1.0, 1.0))
        self._heat_pump = _SeededSlots(f"{config.seed}/heat-pump", _heat_pump_duty)
        self._start_unix_s = config.start.timestamp()
        self._day_cache = (-1, 0)
        self._flows = self._flows_at(0.0, step_s=0.0, previous_battery_w=0.0)
        self._rates = self._flows.counter_rates()
        self._counters_kwh = dict.fromkeys(self._rates, 0.0)

    @property
    def elapsed_s(self) -> float:
        """Simulated seconds since config.start."""
        return self._flows.elapsed_s

    @property
    def now(self) -> datetime:
        """Simulated time."""
        return self.config.start + timedelta(seconds=self._flows.elapsed_s)

    @property
    def storage_controls(self) -> StorageControls:
        """The battery inverter's control settings now."""
        return self._controls

    @property
    def revert_at_s(self) -> float | None:
        """Elapsed seconds at which the controls return to auto, if a revert is pending."""
        return self._revert_at_s

    @property
    def battery_command(self) -> BatteryCommand:
        """What the storage controls make the battery do now."""
        forced = self._forced_power_w()
        if forced is None:
            return BatteryCommand()
        if forced < 0:
            return BatteryCommand(BatteryMode.CHARGE, -forced)
        if forced > 0:
            return BatteryCommand(BatteryMode.DISCHARGE, forced)
        return BatteryCommand(BatteryMode.HOLD)

    def advance(self, seconds: float) -> None:
        """Move simulated time forward, integrating in steps of at most MAX_STEP_S."""
        if seconds < 0:
            raise ValueError("time only moves forward")
        remaining = seconds
        while remaining > 0:
            step = min(MAX_STEP_S, remaining)
            if self._revert_at_s is not None:
                step = min(step, max(self._revert_at_s - self.elapsed_s, 0.0))
            if step > 0:
                self._step(step)
                remaining -= step
            if (
                self._revert_at_s is not None
                and self.elapsed_s >= self._revert_at_s - _TIME_TOLERANCE_S
            ):
                self._revert_at_s = None
                self._controls = replace(self._controls, mode=0)
                self._follow_controls()

    def set_storage_controls(self, controls: StorageControls, *, control_write: bool) -> None:
        """Apply new control settings at once.

        A control write (mode or a rate) restarts the revert timer from now when revert_s > 0;
        setting revert_s to 0 cancels a pending revert.
        """
        if control_write:
            self._revert_at_s = self.elapsed_s + controls.revert_s if controls.revert_s else None
        elif not controls.revert_s:
            self._revert_at_s = None
        self._controls = controls
        self._follow_controls()

    def set_battery_command(self, mode: BatteryMode | str, power_w: float = 0.0) -> None:
        """Command the battery as its model 124 registers would; power_w is a magnitude.

        auto: StorCtl_Mod 0. charge: bit 0 with InWRte = power_w as a percentage of the maximum
        charge power (at most 100 %). discharge: bit 1 with OutWRte likewise. hold: both bits
        with both rates 0. Counts as a control write for the revert timer.
        """
        if power_w < 0:
            raise ValueError("power_w is a magnitude; the mode gives the direction")
        controls = self._controls
        match BatteryMode(mode):
            case BatteryMode.AUTO:
                controls = replace(controls, mode=0)
            case BatteryMode.CHARGE:
                rate = min(power_w * 100.0 / self.config.battery_max_charge_w, 100.0)
                controls = replace(controls, mode=STORAGE_CHARGE, charge_rate_pct=rate)
            case BatteryMode.DISCHARGE:
                rate = min(power_w * 100.0 / self.config.battery_max_discharge_w, 100.0)
                controls = replace(controls, mode=STORAGE_DISCHARGE, discharge_rate_pct=rate)
            case BatteryMode.HOLD:
                controls = replace(
                    controls,
                    mode=STORAGE_CHARGE | STORAGE_DISCHARGE,
                    charge_rate_pct=0.0,
                    discharge_rate_pct=0.0,
                )
        self.set_storage_controls(controls, control_write=True)

    def state(self) -> SiteState:
        """Snapshot of the present instant."""
        return SiteState(
            config=self.config,
            time=self.now,
            flows=self._flows,
            counters_kwh=MappingProxyType(dict(self._counters_kwh)),
            soc_pct=self._stored_wh / self._capacity_wh * 100.0,
            storage_controls=self._controls,
        )

    def truth(self) -> GroundTruth:
        """Ground truth of the present instant."""
        flows = self._flows
        counters = self._counters_kwh
        return GroundTruth(
            time=self.now,
            pv_power_w=flows.pv_w,
            load_power_w=flows.load_w,
            heat_pump_power_w=flows.heat_pump_w,
            battery_power_w=flows.battery_w,
            battery_soc_pct=self._stored_wh / self._capacity_wh * 100.0,
            grid_power_w=flows.grid_w,
            grid_import_kwh=counters["grid_import"],
            grid_export_kwh=counters["grid_export"],
            pv_energy_kwh=counters["pv"],
            battery_charged_kwh=counters["battery_charged"],
            battery_discharged_kwh=counters["battery_discharged"],
            load_energy_kwh=counters["load"],
            heat_pump_energy_kwh=counters["heat_pump"],
            pv_standby_w=flows.pv_standby_w,
            pv_standby_kwh=counters["pv_standby"],
            battery_mode=self.battery_command.mode,
            battery_controls=self._controls,
        )

    def _follow_controls(self) -> None:
        # The inverter follows at once: re-evaluate the present instant with a zero-length
        # step, which leaves the integrated history untouched.
        self._flows = self._flows_at(self.elapsed_s, step_s=0.0, previous_battery_w=0.0)
        self._rates = self._flows.counter_rates()

    def _step(self, step_s: float) -> None:
        before = self._flows
        after = self._flows_at(
            before.elapsed_s + step_s, step_s=step_s, previous_battery_w=before.battery_w
        )
        rates = after.counter_rates()
        for name, rate in self._rates.items():
            self._counters_kwh[name] += (rate + rates[name]) / 2 * step_s / _J_PER_KWH
        discharged_wh = (before.battery_w + after.battery_w) / 2 * step_s / _J_PER_WH
        # The setpoint limits keep the energy within bounds; the clamp only absorbs rounding.
        self._stored_wh = min(max(self._stored_wh - discharged_wh, 0.0), self._capacity_wh)
        self._flows, self._rates = after, rates

    def _flows_at(
        self, elapsed_s: float, *, step_s: float, previous_battery_w: float
    ) -> PowerFlows:
        utc_hour, day_of_year = self._utc_hour_and_day(elapsed_s)
        elevation = solar_elevation_deg(
            day_of_year, utc_hour, self.config.latitude, self.config.longitude
        )
        pv = clear_sky_pv_w(elevation, self.config.pv_kwp)
        standby = self.config.pv_standby_w if pv == 0.0 and self.config.pv_kwp > 0 else 0.0
        heat_pump = self._heat_pump_w(elapsed_s)
        local_hour = (utc_hour + self.config.longitude / 15) % 24
        appliances = household_profile_w(local_hour, self.config.base_load_w) * (
            1 + _LOAD_NOISE_FRACTION * self._load_noise(elapsed_s)
        )
        load = appliances + heat_pump + standby
        battery = self._battery_setpoint(load - pv, step_s, previous_battery_w)
        return _distribute_over_phases(
            elapsed_s,
            pv_w=pv,
            appliances_w=appliances,
            heat_pump_w=heat_pump,
            pv_standby_w=standby,
            battery_w=battery,
        )

    def _utc_hour_and_day(self, elapsed_s: float) -> tuple[float, int]:
        unix_s = self._start_unix_s + elapsed_s
        day_number, second_of_day = divmod(unix_s, 86400.0)
        if self._day_cache[0] != day_number:
            date = datetime.fromtimestamp(day_number * 86400.0, tz=UTC)
            self._day_cache = (int(day_number), date.timetuple().tm_yday)
        return second_of_day / 3600.0, self._day_cache[1]

    def _load_noise(self, elapsed_s: float) -> float:
        # Linear between per-minute anchors: noisy, yet continuous for the trapezoid rule.
        slot, fraction = divmod(elapsed_s / _NOISE_SLOT_S, 1.0)
        first = self._noise.value(int(slot))
        return first + (self._noise.value(int(slot) + 1) - first) * fraction

    def _heat_pump_w(self, elapsed_s: float) -> float:
        cycle, offset_s = divmod(elapsed_s, _HEAT_PUMP_CYCLE_S)
        running = offset_s < self._heat_pump.value(int(cycle)) * _HEAT_PUMP_CYCLE_S
        return self.config.heat_pump_power_w if running else 0.0

    def _battery_setpoint(self, demand_w: float, step_s: float, previous_w: float) -> float:
        forced = self._forced_power_w()
        target = demand_w if forced is None else forced
        # With trapezoid integration the stored energy after this step must still allow the
        # next step (at most MAX_STEP_S) to ramp to zero without leaving reserve..100 %. Near
        # the bounds this tapers the power over the last second of energy, so SoC never
        # overshoots.
        horizon_s = (step_s + MAX_STEP_S) / 2
        reserve_wh = self._capacity_wh * self._controls.reserve_pct / 100.0
        stored_j = (self._stored_wh - reserve_wh) * _J_PER_WH
        headroom_j = (self._capacity_wh - self._stored_wh) * _J_PER_WH
        discharge_limit = max(0.0, (stored_j - previous_w * step_s / 2) / horizon_s)
        charge_limit = max(0.0, (headroom_j + previous_w * step_s / 2) / horizon_s)
        upper = min(self.config.battery_max_discharge_w, discharge_limit)
        lower = -min(self.config.battery_max_charge_w, charge_limit)
        return min(max(target, lower), upper)

    def _forced_power_w(self) -> float | None:
        return self._controls.forced_power_w(
            self.config.battery_max_charge_w, self.config.battery_max_discharge_w
        )


def _distribute_over_phases(
    elapsed_s: float,
    *,
    pv_w: float,
    appliances_w: float,
    heat_pump_w: float,
    pv_standby_w: float,
    battery_w: float,
) -> PowerFlows:
    """Split the powers over L1..L3: house unevenly, heat pump on L3, inverters symmetric."""
    active: list[float] = []
    reactive: list[float] = []
    for phase, (share, angle) in enumerate(zip(_HOUSE_PHASE_SHARES, PHASE_ANGLES_RAD, strict=True)):
        house_w = appliances_w * share
        # Appliance cos(phi) wanders between 0.95 and 0.99 (motors, power supplies switching).
        cos_phi = 0.97 + 0.02 * math.sin(2 * math.pi * elapsed_s / 3180 + angle)
        house_var = house_w * math.sqrt(1 - cos_phi**2) / cos_phi
        if phase == HEAT_PUMP_PHASE:
            house_w += heat_pump_w
            house_var += heat_pump_w * _HEAT_PUMP_TAN_PHI
        active.append(house_w + (pv_standby_w - pv_w - battery_w) / 3)
        reactive.append(house_var)
    return PowerFlows(
        elapsed_s=elapsed_s,
        pv_w=pv_w,
        load_w=appliances_w + heat_pump_w + pv_standby_w,
        heat_pump_w=heat_pump_w,
        pv_standby_w=pv_standby_w,
        battery_w=battery_w,
        phase_active_w=(active[0], active[1], active[2]),
        phase_reactive_var=(reactive[0], reactive[1], reactive[2]),
    )
