"""Aggregates: priced hours of one series, and their roll-ups into days and months."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
import math

from ..tariffs.model import Emissions, Tariff
from ..tariffs.rates import RateSource, charge, co2_source, price_source
from .counters import HourBucket
from .periods import Period, _period_span


class SeriesRole(StrEnum):
    """How a series is priced: grid import costs and emits, grid export earns and avoids."""

    IMPORT = "import"
    EXPORT = "export"
    OTHER = "other"


# ---------------------------------------------------------------------------------------------
# 6. Aggregates and roll-ups
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True, slots=True)
class Aggregate:
    """One channel over one local period (DESIGN §2).

    `cost` is what the channel cost in that period (exports negative, see the module notes;
    None where the channel is not priced or a price was missing); `co2_kg` the emissions of
    imports, `co2_avoided_kg` those avoided by exports (None where not counted). `complete`:
    the samples cover the whole period.
    """

    device_id: str
    channel: str
    period: Period
    start: datetime  # local, aware
    end: datetime
    energy_kwh: float
    demand_kw: float | None
    peak_kw: float | None
    cost: float | None
    co2_kg: float | None
    estimated: bool
    co2_avoided_kg: float | None = None
    complete: bool = True


@dataclass(frozen=True, kw_only=True, slots=True)
class Pricing:
    """How a series is priced, resolved once for all its buckets."""

    cost: RateSource | None = None
    cost_sign: float = 1.0
    co2: RateSource | None = None
    avoided: RateSource | None = None

    @classmethod
    def for_role(
        cls, role: SeriesRole, tariff: Tariff | None, emissions: Emissions | None
    ) -> Pricing:
        """Import: cost and emissions; export: negative cost (compensation) and, if enabled,
        avoided CO2; anything else: neither."""
        if role == SeriesRole.IMPORT:
            return cls(
                cost=price_source(tariff.import_price) if tariff else None,
                co2=co2_source(emissions.source) if emissions else None,
            )
        if role == SeriesRole.EXPORT:
            export = tariff.export_price if tariff else None
            avoided = emissions is not None and emissions.count_export_as_avoided
            return cls(
                cost=price_source(export) if export is not None else None,
                cost_sign=-1.0,
                avoided=co2_source(emissions.source) if emissions and avoided else None,
            )
        return cls()


def hourly_aggregates(
    device_id: str, channel: str, buckets: Iterable[HourBucket], pricing: Pricing | None = None
) -> list[Aggregate]:
    """Hour buckets as Aggregates, priced."""
    pricing = pricing or Pricing()
    result: list[Aggregate] = []
    for bucket in buckets:
        cost = charge(bucket, pricing.cost) if pricing.cost else None
        result.append(
            Aggregate(
                device_id=device_id,
                channel=channel,
                period=Period.HOUR,
                start=bucket.start,
                end=bucket.end,
                energy_kwh=bucket.energy_kwh,
                demand_kw=bucket.demand_kw,
                peak_kw=bucket.peak_kw,
                cost=None if cost is None else pricing.cost_sign * cost + 0.0,
                co2_kg=charge(bucket, pricing.co2) if pricing.co2 else None,
                co2_avoided_kg=charge(bucket, pricing.avoided) if pricing.avoided else None,
                estimated=bucket.estimated,
                complete=bucket.complete,
            )
        )
    return result


def _sum_or_none(values: list[float | None]) -> float | None:
    """The exact sum, or None when any part is unknown."""
    known = [value for value in values if value is not None]
    return math.fsum(known) if len(known) == len(values) else None


def _max_or_none(values: Iterable[float | None]) -> float | None:
    return max((value for value in values if value is not None), default=None)


def _combine(period: Period, parts: list[Aggregate]) -> Aggregate:
    start, end = _period_span(period, parts[0].start)
    return Aggregate(
        device_id=parts[0].device_id,
        channel=parts[0].channel,
        period=period,
        start=start,
        end=end,
        energy_kwh=math.fsum(part.energy_kwh for part in parts),
        demand_kw=_max_or_none(part.demand_kw for part in parts),
        peak_kw=_max_or_none(part.peak_kw for part in parts),
        cost=_sum_or_none([part.cost for part in parts]),
        co2_kg=_sum_or_none([part.co2_kg for part in parts]),
        co2_avoided_kg=_sum_or_none([part.co2_avoided_kg for part in parts]),
        estimated=any(part.estimated for part in parts),
        complete=all(part.complete for part in parts) and _covers(parts, start, end),
    )


def _covers(parts: list[Aggregate], start: datetime, end: datetime) -> bool:
    """Whether the parts fill [start, end). The hours of one series have no holes between
    them, so the ends decide; instants compare by timestamp (== ignores a fold)."""
    return (
        parts[0].start.timestamp() == start.timestamp()
        and parts[-1].end.timestamp() == end.timestamp()
    )


def _roll_up(aggregates: Iterable[Aggregate], period: Period) -> list[Aggregate]:
    groups: dict[tuple[str, str, date], list[Aggregate]] = {}
    for item in aggregates:
        local = item.start.date()
        key = local if period == Period.DAY else local.replace(day=1)
        groups.setdefault((item.device_id, item.channel, key), []).append(item)
    return [_combine(period, parts) for parts in groups.values()]


def daily(aggregates: Iterable[Aggregate]) -> list[Aggregate]:
    """Hourly aggregates summed per channel and local calendar day: a day's energy, cost and
    CO2 are the exact sums of its hours (23 or 25 on DST days), demand and peak their maxima."""
    return _roll_up(aggregates, Period.DAY)


def monthly(aggregates: Iterable[Aggregate]) -> list[Aggregate]:
    """Hourly or daily aggregates per channel and local calendar month."""
    return _roll_up(aggregates, Period.MONTH)
