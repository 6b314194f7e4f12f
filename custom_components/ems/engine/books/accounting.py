"""Every series at once: counters on one grid of local hours, priced, rolled up and billed.

How the numbers are made, and why, is told in the package's docstring (`books/__init__.py`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import tzinfo

from ..tariffs.model import Emissions, Tariff
from .aggregates import Aggregate, Pricing, SeriesRole, daily, hourly_aggregates, monthly
from .bills import Bill, bills
from .counters import DEFAULT_GAP_S, HourBucket, _counter, _hourly, _Timeline, _timeline
from .periods import Period, local_hours


@dataclass(frozen=True, kw_only=True, slots=True)
class CounterSeries:
    """One energy counter of one device (or of the site: device_id "site", channel one of
    model.SITE_SERIES), with optional power samples (W) for the peak."""

    device_id: str
    channel: str
    timestamps: Sequence[float]
    totals_kwh: Sequence[float]
    estimated: Sequence[bool] | None = None
    power_timestamps: Sequence[float] | None = None
    power_w: Sequence[float] | None = None
    role: SeriesRole = SeriesRole.OTHER


@dataclass(frozen=True, kw_only=True, slots=True)
class Aggregation:
    """Aggregates of every series per hour, day and month, and the site's bills."""

    hourly: tuple[Aggregate, ...]
    daily: tuple[Aggregate, ...]
    monthly: tuple[Aggregate, ...]
    daily_bills: tuple[Bill, ...] = ()
    monthly_bills: tuple[Bill, ...] = ()
    buckets: Mapping[tuple[str, str], tuple[HourBucket, ...]] = field(default_factory=dict)


def _span(series: Sequence[CounterSeries]) -> tuple[float, float] | None:
    used = [item.timestamps for item in series if len(item.timestamps) >= 2]
    if not used:
        return None
    return min(min(values) for values in used), max(max(values) for values in used)


def _billed(series: Sequence[CounterSeries], role: SeriesRole) -> CounterSeries | None:
    chosen = [item for item in series if item.role == role]
    if len(chosen) > 1:
        raise ValueError(f"bills take one {role} series, got {len(chosen)}")
    return chosen[0] if chosen else None


def _priced_hours(
    series: Sequence[CounterSeries],
    tz: tzinfo,
    tariff: Tariff | None,
    emissions: Emissions | None,
    gap_s: float,
) -> tuple[dict[tuple[str, str], list[Aggregate]], dict[tuple[str, str], tuple[HourBucket, ...]]]:
    """Each series' priced hours and buckets, on one shared grid of local hours."""
    hourly: dict[tuple[str, str], list[Aggregate]] = {}
    buckets: dict[tuple[str, str], tuple[HourBucket, ...]] = {}
    span = _span(series)
    if span is None:
        return hourly, buckets
    grid = local_hours(*span, tz)
    # Series sampled in the same cycles share their timestamps: check and measure them once.
    lines: dict[int, _Timeline | None] = {}
    for item in series:
        key = (item.device_id, item.channel)
        if id(item.timestamps) not in lines:
            lines[id(item.timestamps)] = _timeline(item.timestamps, gap_s)
        counter = _counter(
            item.timestamps, item.totals_kwh, item.estimated, gap_s, lines[id(item.timestamps)]
        )
        power = (
            None
            if item.power_timestamps is None or item.power_w is None
            else (item.power_timestamps, item.power_w)
        )
        buckets[key] = tuple(_hourly(counter, grid, power))
        pricing = Pricing.for_role(item.role, tariff, emissions)
        hourly[key] = hourly_aggregates(item.device_id, item.channel, buckets[key], pricing)
    return hourly, buckets


def priced_hours(
    series: Sequence[CounterSeries],
    tz: tzinfo,
    *,
    tariff: Tariff | None = None,
    emissions: Emissions | None = None,
    gap_s: float = DEFAULT_GAP_S,
) -> tuple[Aggregate, ...]:
    """Only the priced hours of every series: what the ledger settles each minute, without
    the roll-ups and bills that `aggregate` adds."""
    hourly, _ = _priced_hours(series, tz, tariff, emissions, gap_s)
    return tuple(aggregate for items in hourly.values() for aggregate in items)


def aggregate(
    series: Sequence[CounterSeries],
    tz: tzinfo,
    *,
    tariff: Tariff | None = None,
    emissions: Emissions | None = None,
    gap_s: float = DEFAULT_GAP_S,
) -> Aggregation:
    """Aggregate counters on one shared grid of local hours, price them, roll them up, and
    bill the import and export series when there is a tariff."""
    hourly, buckets = _priced_hours(series, tz, tariff, emissions, gap_s)
    flat = [aggregate for items in hourly.values() for aggregate in items]
    days = daily(flat)
    imported = _billed(series, SeriesRole.IMPORT)
    if tariff is None or imported is None:
        return Aggregation(
            hourly=tuple(flat), daily=tuple(days), monthly=tuple(monthly(days)), buckets=buckets
        )
    exported = _billed(series, SeriesRole.EXPORT)
    import_hours = hourly[imported.device_id, imported.channel]
    export_hours = hourly[exported.device_id, exported.channel] if exported else []
    return Aggregation(
        hourly=tuple(flat),
        daily=tuple(days),
        monthly=tuple(monthly(days)),
        daily_bills=tuple(bills(import_hours, export_hours, tariff, Period.DAY)),
        monthly_bills=tuple(bills(import_hours, export_hours, tariff, Period.MONTH)),
        buckets=buckets,
    )
