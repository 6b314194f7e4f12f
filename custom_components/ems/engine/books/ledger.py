"""The site's hourly books, kept as the cycles arrive: energy, cost and CO2 per local hour.

The cycle adds the site's energy counters; the ledger samples them once a minute, settles
every hour that has ended (`accounting.priced_hours`: outages spread and flagged, prices and
intensities applied) and hands back the hours that are new or changed, for the statistics.
Today's and this month's totals add the running hour.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime, tzinfo
import math
from typing import Any, Final

from ..model import SITE_SERIES
from ..numbers import FLOAT_TOLERANCE, HOUR_S, REPRICE_WINDOW_S
from ..tariffs.model import Emissions, Tariff
from .accounting import CounterSeries, priced_hours
from .aggregates import Aggregate, SeriesRole
from .bills import standing_charges
from .periods import Period

SERIES_ROLES: Final[Mapping[str, SeriesRole]] = {
    series: {"grid_import": SeriesRole.IMPORT, "grid_export": SeriesRole.EXPORT}.get(
        series, SeriesRole.OTHER
    )
    for series in SITE_SERIES
}
SAMPLE_EVERY_S: Final = 60.0
# Settled hours are kept this long (for this month's totals); samples for two days, so an
# outage of up to that length is still spread when the data comes back.
KEEP_HOURS_S: Final = 32 * 24 * HOUR_S


@dataclass(frozen=True, kw_only=True, slots=True)
class LedgerHour:
    """One local hour of the site: energy per series, import cost, export compensation, CO2."""

    start_ts: float
    end_ts: float
    energy_kwh: dict[str, float]
    cost: float | None = None
    compensation: float | None = None
    co2_kg: float | None = None
    co2_avoided_kg: float | None = None
    demand_kw: float | None = None
    estimated: bool = False

    def same_as(self, other: LedgerHour) -> bool:
        """Equal within float noise: only a real change is written again."""
        pairs = [
            (self.cost, other.cost),
            (self.compensation, other.compensation),
            (self.co2_kg, other.co2_kg),
            (self.co2_avoided_kg, other.co2_avoided_kg),
            *((self.energy_kwh.get(k), other.energy_kwh.get(k)) for k in SERIES_ROLES),
        ]
        return all(_close(a, b) for a, b in pairs)

    def same_energy(self, other: LedgerHour) -> bool:
        """The same energy in every series, within float noise."""
        return all(_close(self.energy_kwh.get(k), other.energy_kwh.get(k)) for k in SERIES_ROLES)


@dataclass(frozen=True, kw_only=True, slots=True)
class Totals:
    """Sums over a period (today, this month)."""

    energy_kwh: dict[str, float]
    cost: float | None
    compensation: float | None
    co2_kg: float | None
    co2_avoided_kg: float | None
    peak_demand_kw: float | None
    # The tariff's fixed fee and demand charge for the period so far (0 without them).
    fixed_fee: float = 0.0
    demand_charge: float = 0.0

    @property
    def net_cost(self) -> float | None:
        """What the period cost: import, less export compensation, plus the fixed fee and the
        demand charge."""
        if self.cost is None:
            return None
        return self.cost - (self.compensation or 0.0) + self.fixed_fee + self.demand_charge


@dataclass(kw_only=True)
class EnergyLedger:
    """Minute samples of the site's counters and the settled hours built from them."""

    tz: tzinfo
    timestamps: list[float] = field(default_factory=list)
    totals: dict[str, list[float]] = field(default_factory=lambda: {k: [] for k in SERIES_ROLES})
    hours: dict[float, LedgerHour] = field(default_factory=dict)
    running: LedgerHour | None = None

    def add(self, epoch: float, energies: Mapping[str, float]) -> bool:
        """Keep the first sample of each wall-clock minute; True when it is kept.

        Minutes, not 60 s since the last sample: cycle jitter must not skip every other one.
        """
        if self.timestamps and epoch // SAMPLE_EVERY_S <= self.timestamps[-1] // SAMPLE_EVERY_S:
            return False
        if any(not math.isfinite(energies.get(k, math.nan)) for k in SERIES_ROLES):
            return False
        self.timestamps.append(epoch)
        for key in SERIES_ROLES:
            self.totals[key].append(energies[key])
        return True

    def settle(
        self,
        tariff: Tariff | None,
        emissions: Emissions | None,
        *,
        reprice_from: float | None = None,
    ) -> list[LedgerHour]:
        """Price every hour the samples cover; return the ended hours that are new or changed.

        Settled hours stay as they were, except from `reprice_from` on (a price or intensity
        revised for a past instant): those hours are priced again, as far back as the samples
        reach.
        """
        if len(self.timestamps) < 2:
            return []
        start = self._window_start()
        if reprice_from is not None:
            earlier = [s for s in self.hours if s <= reprice_from]
            since = max(earlier) if earlier else reprice_from
            start = min(start, max(0, bisect_right(self.timestamps, since) - 1))
        series = [
            CounterSeries(
                device_id="site",
                channel=key,
                timestamps=self.timestamps[start:],
                totals_kwh=self.totals[key][start:],
                role=role,
            )
            for key, role in SERIES_ROLES.items()
        ]
        changed: list[LedgerHour] = []
        for hour in _hours(priced_hours(series, self.tz, tariff=tariff, emissions=emissions)):
            if hour.end_ts > self.timestamps[-1]:
                self.running = hour
                continue
            known = self.hours.get(hour.start_ts)
            if known is not None and not known.same_energy(hour):
                # A settled hour's energy is final; priced again, it may only change price.
                # (Samples pruned from under it would make it look smaller.)
                continue
            if known is None or not known.same_as(hour):
                self.hours[hour.start_ts] = hour
                changed.append(hour)
        self._prune()
        return changed

    def _window_start(self) -> int:
        """Re-price from the last settled hour on; older hours stay as they were settled."""
        settled = max(self.hours, default=None)
        if settled is None:
            return 0
        return max(0, bisect_right(self.timestamps, settled) - 1)

    def _prune(self) -> None:
        latest = self.timestamps[-1]
        keep = bisect_right(self.timestamps, latest - REPRICE_WINDOW_S)
        if keep:
            del self.timestamps[:keep]
            for values in self.totals.values():
                del values[:keep]
        for start in [s for s in self.hours if s < latest - KEEP_HOURS_S]:
            del self.hours[start]

    def totals_since(
        self, start_ts: float, *, tariff: Tariff | None = None, period: Period = Period.DAY
    ) -> Totals:
        """Settled hours from `start_ts` on, plus the running hour; with a tariff, the fixed
        fee and demand charge of that day or month so far."""
        hours = [h for s, h in self.hours.items() if s >= start_ts]
        if self.running is not None and self.running.start_ts >= start_ts:
            hours.append(self.running)
        peak = max((h.demand_kw for h in hours if h.demand_kw is not None), default=None)
        days = {datetime.fromtimestamp(h.start_ts, self.tz).date() for h in hours}
        fee, demand_charge = standing_charges(tariff, period, days, peak)
        return Totals(
            energy_kwh={k: sum(h.energy_kwh.get(k, 0.0) for h in hours) for k in SERIES_ROLES},
            cost=_sum(h.cost for h in hours),
            compensation=_sum(h.compensation for h in hours),
            co2_kg=_sum(h.co2_kg for h in hours),
            co2_avoided_kg=_sum(h.co2_avoided_kg for h in hours),
            peak_demand_kw=peak,
            fixed_fee=fee,
            demand_charge=demand_charge,
        )

    def state_dict(self) -> dict[str, Any]:
        """Samples and settled hours survive a restart; an outage across it is then spread."""
        return {
            "timestamps": list(self.timestamps),
            "totals": {k: list(v) for k, v in self.totals.items()},
            "hours": [asdict(hour) for hour in self.hours.values()],
        }

    def restore(self, data: object) -> None:
        """Resume; anything unreadable starts a fresh ledger."""
        if not isinstance(data, Mapping):
            return
        try:
            timestamps = [float(t) for t in data["timestamps"]]
            totals = {k: [float(v) for v in data["totals"][k]] for k in SERIES_ROLES}
            hours = [LedgerHour(**hour) for hour in data["hours"]]
        except (KeyError, TypeError, ValueError):
            return
        if any(len(values) != len(timestamps) for values in totals.values()):
            return
        self.timestamps, self.totals = timestamps, totals
        self.hours = {hour.start_ts: hour for hour in hours}


def _hours(hourly: tuple[Aggregate, ...]) -> list[LedgerHour]:
    """One LedgerHour per local hour from the per-series aggregates."""
    grouped: dict[float, list[Aggregate]] = {}
    for item in hourly:
        grouped.setdefault(item.start.timestamp(), []).append(item)
    hours = []
    for start, items in sorted(grouped.items()):
        by_series = {item.channel: item for item in items}
        imported = by_series.get("grid_import")
        exported = by_series.get("grid_export")
        hours.append(
            LedgerHour(
                start_ts=start,
                end_ts=items[0].end.timestamp(),
                energy_kwh={item.channel: item.energy_kwh for item in items},
                cost=imported.cost if imported else None,
                compensation=-exported.cost if exported and exported.cost is not None else None,
                co2_kg=imported.co2_kg if imported else None,
                co2_avoided_kg=exported.co2_avoided_kg if exported else None,
                demand_kw=imported.demand_kw if imported else None,
                estimated=any(item.estimated for item in items),
            )
        )
    return hours


def _sum(values: Any) -> float | None:
    present = [value for value in values if value is not None]
    return sum(present) if present else None


def _close(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is b
    return abs(a - b) <= FLOAT_TOLERANCE
