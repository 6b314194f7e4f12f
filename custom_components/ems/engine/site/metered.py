"""The site's energy series, advanced by the devices' own counters where they have them, and
by the integrated power where they do not.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from ..model import SITE_SERIES, Device, DeviceRole, DeviceType

# Which counter of a device measures which site series, by role and type. A meter's own
# counter is exact; integrating sampled power misses what happens between two cycles.
_GRID_COUNTERS: Final = {"grid_import": "EnergyImport", "grid_export": "EnergyExport"}
GRID_SERIES: Final = frozenset(_GRID_COUNTERS)
_SITE_COUNTERS: Final[Mapping[tuple[DeviceRole, DeviceType], Mapping[str, str]]] = {
    (DeviceRole.GRID, DeviceType.METER): _GRID_COUNTERS,
    (DeviceRole.GRID, DeviceType.GRID): _GRID_COUNTERS,
    (DeviceRole.PRODUCTION, DeviceType.INVERTER): {"production": "EnergyGenerated"},
    # A meter on the PV output counts what flows out of the metered circuit as export.
    (DeviceRole.PRODUCTION, DeviceType.METER): {"production": "EnergyExport"},
    (DeviceRole.BATTERY, DeviceType.BATTERY): {
        "battery_charge": "EnergyCharged",
        "battery_discharge": "EnergyDischarged",
    },
}  # fmt: skip
# A device installed the other way round counts import as export and back.
_INVERTED: Final = {"EnergyImport": "EnergyExport", "EnergyExport": "EnergyImport"}
# Every series but consumption, the balance, can come from a device's own counter.
_METERED_SERIES: Final = tuple(series for series in SITE_SERIES if series != "consumption")


@dataclass(kw_only=True)
class MeteredTotals:
    """The site's energy series, advanced by the devices' own counters where they have them.

    A series falls back to the integrated power for a cycle when any of its devices has no
    usable counter. When the counter is back, it spans the gap exactly: the series advances by
    the counter's step less what the fallback already added. Consumption follows from the
    balance of the others. Flows stay integrated. A total never goes down: what a series
    counted ahead of its meters is taken off its next steps instead.
    """

    totals: dict[str, float] = field(default_factory=dict)
    last_counters: dict[str, float] = field(default_factory=dict)
    last_integrated: dict[str, float] = field(default_factory=dict)
    # Energy a series counted ahead of its meters (the fallback while a counter was missing,
    # a balance that came out negative): their next steps cover it, so it is taken off them.
    # Negative: energy held back until the meters answer (the balance without a grid meter).
    ahead: dict[str, float] = field(default_factory=dict)
    # Series whose counter is missing this cycle after it was read before: when it answers
    # again, it brings the energy of the gap.
    waiting: set[str] = field(default_factory=set)

    def update(
        self,
        devices: Iterable[Device],
        values: Mapping[str, Mapping[str, float | None]],
        integrated: Mapping[str, float],
    ) -> dict[str, float]:
        """This cycle's totals: the integrated ones, with metered series replaced."""
        counters = _site_counters(devices, values)
        deltas = {
            series: self._delta(series, counters.get(series), integrated[series])
            for series in _METERED_SERIES
        }
        consumption = (
            deltas["grid_import"] - deltas["grid_export"] + deltas["production"]
            + deltas["battery_discharge"] - deltas["battery_charge"]
        )  # fmt: skip
        if self.waiting & GRID_SERIES:
            # Without the grid meter the balance is unknown until its counter answers again.
            self.ahead["consumption"] = self.ahead.get("consumption", 0.0) - consumption
            deltas["consumption"] = 0.0
        else:
            deltas["consumption"] = self._pay_back("consumption", consumption)
        for series, delta in deltas.items():
            self.totals[series] = self.totals.get(series, integrated[series]) + delta
        return {**integrated, **{s: self.totals[s] for s in deltas}}

    def _delta(self, series: str, counter: float | None, integrated: float) -> float:
        previous_counter = self.last_counters.get(series)
        previous_integrated = self.last_integrated.get(series, integrated)
        self.last_integrated[series] = integrated
        fallback = max(integrated - previous_integrated, 0.0)
        if counter is None:
            if previous_counter is not None:
                self.ahead[series] = self.ahead.get(series, 0.0) + fallback
                self.waiting.add(series)
            return fallback
        self.waiting.discard(series)
        self.last_counters[series] = counter
        if previous_counter is None or counter < previous_counter:
            self.ahead.pop(series, None)
            return fallback
        return self._pay_back(series, counter - previous_counter)

    def _pay_back(self, series: str, step: float) -> float:
        """The step less what the series counted ahead; a shortfall waits for the next one."""
        step -= self.ahead.pop(series, 0.0)
        if step < 0:
            self.ahead[series] = -step
        return max(step, 0.0)

    def as_dict(self) -> dict[str, Any]:
        """Totals survive a restart; the counters' last values too, so no step is lost."""
        return {"totals": dict(self.totals), "counters": dict(self.last_counters),
                "integrated": dict(self.last_integrated),
                "ahead": dict(self.ahead)}  # fmt: skip

    @classmethod
    def from_dict(cls, data: object) -> MeteredTotals:
        """Resume; anything unreadable starts afresh (from the integrated totals)."""
        if not isinstance(data, Mapping):
            return cls()
        try:
            return cls(
                totals={str(k): float(v) for k, v in data["totals"].items()},
                last_counters={str(k): float(v) for k, v in data["counters"].items()},
                last_integrated={str(k): float(v) for k, v in data["integrated"].items()},
                # Absent from states stored before it existed.
                ahead={str(k): float(v) for k, v in data.get("ahead", {}).items()},
            )
        except (KeyError, TypeError, ValueError, AttributeError):
            return cls()


def _site_counters(
    devices: Iterable[Device], values: Mapping[str, Mapping[str, float | None]]
) -> dict[str, float]:
    """The summed counters per site series, only where every device of it has one."""
    sums: dict[str, float] = {}
    missing: set[str] = set()
    for device in devices:
        mapping = _SITE_COUNTERS.get((device.role, device.profile.device_type), {})
        for series, key in mapping.items():
            channel = _INVERTED.get(key, key) if device.invert_power else key
            # A hybrid's AC energy counts its battery's discharge too: no production counter.
            value = None if device.profile.hybrid else values[device.id].get(channel)
            if value is None:
                missing.add(series)
            else:
                sums[series] = sums.get(series, 0.0) + value
    return {series: total for series, total in sums.items() if series not in missing}
