"""Aggregation: cumulative energy counters into local-time hours, days and months, with
15-minute demand, peak power, cost and CO2 (MyEMS's aggregation step, done the utility's way).

Pure: plain data in, plain data out; nothing here imports Home Assistant or reads a clock.
Timestamps are epoch seconds (UTC by definition), energies kWh, powers kW on the way out,
CO2 kg, money in the tariff's currency. The caller passes HA's time zone as a `tzinfo`.

How the numbers are made, and why:

- Hours are the local wall-clock hours of the time zone (`local_hours`). A bucket never spans a
  change of UTC offset, so Europe/Berlin's spring-forward day has 23 buckets and its fall-back
  day 25 (two buckets start at 02:00, told apart by their UTC offset). Zones with 30- or
  45-minute offsets work the same way; offsets must be whole quarter hours (every zone today).
- A counter's energy in an interval is the counter, interpolated linearly between the samples
  around each end, at the end minus at the start. So the energy between two samples is shared
  among the hours they span in proportion to time: after an outage the counter's jump is spread
  evenly over the missing hours (never a zero hour and then a spike), and every hour the outage
  touches is flagged `estimated`. Hours telescope: their sum is the counter's total increase.
  A gap is two samples more than `gap_s` (15 min) apart; a sample flagged `estimated` marks the
  interval that ends at it (an upstream estimate). A counter that goes down was reset: the drop
  is no energy. The first and last hour count only what the samples cover (`complete` False).
- Demand is the largest average power of a wall-clock quarter hour (:00, :15, :30, :45), as
  utilities bill it, from the counter's energy in that quarter; a quarter the samples do not
  cover from start to end gives none. Peak is the largest power sample in the period, or,
  without power samples, the largest average power between two counter samples that are at
  most `gap_s` apart (at the cycle's sample rate that is the instantaneous power).
- Cost and CO2 are priced per quarter hour, at the quarter's start (so time-of-use periods may
  start on any quarter hour and 15-minute spot prices work), and summed per hour. Hourly costs
  stay unrounded floats (statistics add them up); bills round each charge to the cent once,
  half up. A quarter hour with energy but no price (a dynamic series with a hole and no
  fallback) makes the hour's cost None, and so the day's, month's and bill's: unknown, not free.
- The sign of money: a bucket's `cost` is what the channel costs the site. Imports cost
  (> 0); exports are paid, so their cost is negative (-kWh x export price), and positive when
  a dynamic export price is negative.
- Fees and the demand charge are not energy: they are in the bills, not in the hourly costs.
  A per-day fee is charged once for every local day (23- and 25-hour days alike); a per-month
  fee once for every month, in full, as on a utility bill. A daily bill shows the month fee's
  share (fee / days in the month); the demand charge is charged on the monthly bill only,
  on the month's demand.
"""

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
