"""Power into energy: trapezoidal integration of the site's series and flows, and of the
devices that have no counter of their own, with gaps flagged as estimated.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Final

from ..model import SITE_SERIES, DeviceType
from ..numbers import J_PER_KWH, finite
from .flows import FLOW_NAMES, EnergyFlows
from .powers import SiteInput, SitePower, _positive

DEFAULT_MAX_GAP_S: Final = 300.0


# ---------------------------------------------------------------------------------------------
# 3. Energy integration
# ---------------------------------------------------------------------------------------------


def _mapping(data: object) -> Mapping[str, object]:
    if isinstance(data, Mapping):
        return data
    return {}


def _state_float(data: Mapping[str, object], key: str) -> float | None:
    return finite(data.get(key))


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
        power = finite(power_w)
        now = finite(timestamp)
        if power is None or now is None:
            return IntegratorResult(self._total_kwh)
        power = _positive(power)
        last_timestamp, last_w = self._last_timestamp, self._last_w
        self._last_timestamp, self._last_w = now, power
        if last_timestamp is None or last_w is None or now <= last_timestamp:
            return IntegratorResult(self._total_kwh)
        span_s = now - last_timestamp
        delta_kwh = (last_w + power) / 2.0 * span_s / J_PER_KWH
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
        return SiteEnergies(
            **{f"{name}_kwh": self._integrators[name].total_kwh for name in ENERGY_SERIES},
            estimated=frozenset(estimated),
        )

    def as_dict(self) -> dict[str, object]:
        """JSON-ready state of every integrator."""
        return {
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
