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

from array import array
from bisect import bisect_left, bisect_right
import calendar
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, tzinfo
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum
from itertools import accumulate, compress, islice, repeat
import math
from operator import lt, sub, truediv
import re
from typing import Final

DEFAULT_GAP_S: Final = 900.0  # samples further apart than this bracket a gap (an outage)
QUARTER_S: Final = 900
HOUR_S: Final = 3600
QUARTERS_PER_DAY: Final = 96
_KW_PER_KWH_PER_QUARTER: Final = 4.0  # average kW over a quarter hour = kWh x 4
_KG_PER_G: Final = 1e-3
_W_PER_KW: Final = 1000.0
_CENT: Final = Decimal("0.01")
_NO_VALUE: Final = -math.inf  # "no candidate" in per-hour maxima
_CURRENCY_CODE: Final = re.compile(r"[A-Z]{3}")


class Period(StrEnum):
    """The length of an aggregate, in local time."""

    HOUR = "hour"
    DAY = "day"
    MONTH = "month"


class SeriesRole(StrEnum):
    """How a series is priced: grid import costs and emits, grid export earns and avoids."""

    IMPORT = "import"
    EXPORT = "export"
    OTHER = "other"


# ---------------------------------------------------------------------------------------------
# 1. Local hours
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HourGrid:
    """Consecutive local wall-clock hours: hour h runs from bounds[h] to bounds[h + 1] (epoch
    seconds); local_bounds holds the same instants in local time (aware, with the right fold on
    a fall-back day), so hour h starts at local_bounds[h]."""

    tz: tzinfo
    bounds: tuple[float, ...]
    local_bounds: tuple[datetime, ...]

    def hour_of(self, timestamp: float) -> int:
        """Index of the hour the instant falls in (-1 before the grid, len(bounds) - 1 after)."""
        return bisect_right(self.bounds, timestamp) - 1


def _hour_key(local: datetime) -> tuple[int, int, int, int, timedelta | None]:
    """Instants with equal keys share a bucket: same wall-clock hour at the same UTC offset."""
    return (local.year, local.month, local.day, local.hour, local.utcoffset())


def _local(timestamp: float, tz: tzinfo) -> datetime:
    return datetime.fromtimestamp(timestamp, tz)


def _hour_start(timestamp: float, tz: tzinfo) -> float:
    """Start of the bucket the instant falls in.

    Buckets change only on quarter-hour instants, so step back by quarters while the key holds.
    """
    start = math.floor(timestamp / QUARTER_S) * QUARTER_S
    key = _hour_key(_local(start, tz))
    while _hour_key(_local(start - QUARTER_S, tz)) == key:
        start -= QUARTER_S
    return float(start)


def _next_hour(start: float, local: datetime, tz: tzinfo) -> tuple[float, datetime]:
    """The bucket after the one starting at `start` (local time `local`)."""
    # Usually the next local :00 at the same offset (the bucket after a 30-minute shift
    # starts at :30, hence the minute).
    candidate = start + HOUR_S - 60 * local.minute
    after = _local(candidate, tz)
    if after.utcoffset() == local.utcoffset():
        return candidate, after
    # The offset changes within this hour: the bucket ends where the key first changes.
    key = _hour_key(local)
    boundary = start + QUARTER_S
    while _hour_key(after := _local(boundary, tz)) == key:
        boundary += QUARTER_S
    return boundary, after


def local_hours(start: float, end: float, tz: tzinfo) -> HourGrid:
    """The local hours that cover [start, end] (epoch seconds): bounds[0] <= start and
    bounds[-1] >= end, with at least one hour when start < end."""
    boundary = _hour_start(start, tz)
    local = _local(boundary, tz)
    bounds, local_bounds = [boundary], [local]
    while boundary < end:
        boundary, local = _next_hour(boundary, local, tz)
        if boundary % QUARTER_S:
            raise ValueError(f"{tz}: UTC offsets must be whole quarter hours")
        bounds.append(boundary)
        local_bounds.append(local)
    return HourGrid(tz, tuple(bounds), tuple(local_bounds))


def epoch(moment: datetime | float) -> float:
    """Epoch seconds of an aware datetime (or of a number, as it is)."""
    if isinstance(moment, datetime):
        if moment.utcoffset() is None:
            raise ValueError("naive datetime: a time zone is required")
        return moment.timestamp()
    return float(moment)


# ---------------------------------------------------------------------------------------------
# 2. Counters into hours
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True, slots=True)
class CounterSample:
    """One reading of a lifetime energy counter. `estimated` says the increase since the
    previous sample is an estimate (the integrator bridged a gap, say)."""

    timestamp: datetime | float
    total_kwh: float
    estimated: bool = False


def counter_columns(
    samples: Iterable[CounterSample],
) -> tuple[list[float], list[float], list[bool]]:
    """Samples as the columns the aggregation works on: timestamps, totals, estimated flags."""
    timestamps: list[float] = []
    totals: list[float] = []
    flags: list[bool] = []
    for sample in samples:
        timestamps.append(epoch(sample.timestamp))
        totals.append(float(sample.total_kwh))
        flags.append(bool(sample.estimated))
    return timestamps, totals, flags


@dataclass(frozen=True, kw_only=True, slots=True)
class HourBucket:
    """One local hour of one counter.

    `quarter_kwh` is the energy of each wall-clock quarter hour in the bucket (4 of them, fewer
    in the short buckets of a 30-minute offset change); at the ends of the samples only the
    covered part counts, and `complete` is False there.
    """

    start: datetime  # local, aware
    end: datetime
    start_ts: float
    end_ts: float
    energy_kwh: float
    quarter_kwh: tuple[float, ...]
    demand_kw: float | None
    peak_kw: float | None
    estimated: bool
    complete: bool


@dataclass(frozen=True, slots=True)
class _Timeline:
    """Sample instants, checked and measured once; counters read in the same cycles share it."""

    timestamps: Sequence[float]
    spans: array[float]  # spans[i - 1]: seconds from sample i - 1 to sample i
    gaps: tuple[int, ...]  # the i whose span is longer than gap_s: outages


def _timeline(timestamps: Sequence[float], gap_s: float) -> _Timeline | None:
    """None when the instants are not strictly increasing (the caller sorts them first)."""
    # One C-level pass each; a sum is finite exactly when every (realistic) term is.
    if not math.isfinite(sum(timestamps)):
        raise ValueError("timestamps and totals must be finite")
    spans = array("d", map(sub, islice(timestamps, 1, None), timestamps))
    if spans and min(spans) <= 0.0:
        return None
    gaps = tuple(compress(range(1, len(timestamps)), map(lt, repeat(gap_s), spans)))
    return _Timeline(timestamps, spans, gaps)


@dataclass(frozen=True, slots=True)
class _Counter:
    """One counter's clean columns: sorted, unique, finite, never decreasing."""

    line: _Timeline
    totals: Sequence[float]
    flags: Sequence[bool] | None
    rates: array[float]  # average kWh/s of each interval; -inf over gaps (no evidence of a peak)


def _counter(
    timestamps: Sequence[float],
    totals: Sequence[float],
    flags: Sequence[bool] | None,
    gap_s: float,
    line: _Timeline | None = None,
) -> _Counter:
    if len(timestamps) != len(totals) or (flags is not None and len(flags) != len(totals)):
        raise ValueError("timestamps, totals and flags differ in length")
    if not math.isfinite(sum(totals)):
        raise ValueError("timestamps and totals must be finite")
    line = line or _timeline(timestamps, gap_s)
    if line is None:  # the slow path, for data out of order
        timestamps, totals, flags = _sorted_unique(timestamps, totals, flags)
        line = _timeline(timestamps, gap_s)
        if line is None:  # cannot be: they are sorted and unique now
            raise ValueError("timestamps must increase")
    rates = _rates(totals, line.spans)
    if rates and min(rates) < 0.0:
        totals = _without_drops(totals)
        rates = _rates(totals, line.spans)
    for index in line.gaps:
        rates[index - 1] = _NO_VALUE
    return _Counter(line, totals, flags, rates)


def _rates(totals: Sequence[float], spans: array[float]) -> array[float]:
    return array("d", map(truediv, map(sub, islice(totals, 1, None), totals), spans))


def _sorted_unique(
    timestamps: Sequence[float], totals: Sequence[float], flags: Sequence[bool] | None
) -> tuple[list[float], list[float], list[bool] | None]:
    """Sort by time; of samples at the same instant the last one given stands, and it is
    estimated if any of them was."""
    order = sorted(range(len(timestamps)), key=timestamps.__getitem__)
    kept_timestamps: list[float] = []
    kept_totals: list[float] = []
    kept_flags: list[bool] = []
    for index in order:
        flag = bool(flags[index]) if flags is not None else False
        if kept_timestamps and kept_timestamps[-1] == timestamps[index]:
            kept_totals[-1] = totals[index]
            kept_flags[-1] = kept_flags[-1] or flag
            continue
        kept_timestamps.append(timestamps[index])
        kept_totals.append(totals[index])
        kept_flags.append(flag)
    return kept_timestamps, kept_totals, kept_flags if flags is not None else None


def _without_drops(totals: Sequence[float]) -> list[float]:
    """A counter that goes down was reset: the drop is no energy, and counting resumes from
    the new value (cleaning.py normally continues lifetime totals before this stage)."""
    increases = map(max, map(sub, islice(totals, 1, None), totals), repeat(0.0))
    return list(accumulate(increases, initial=totals[0]))


def _counter_at_quarters(counter: _Counter, first: float, count: int) -> list[float]:
    """The counter at first + k * 15 min for k = 0..count, interpolated linearly between the
    samples around each instant, and held at the first/last sample outside them."""
    timestamps, totals = counter.line.timestamps, counter.totals
    t_first, t_last = timestamps[0], timestamps[-1]
    values: list[float] = []
    append = values.append
    index = 1
    for k in range(count + 1):
        moment = first + QUARTER_S * k
        if moment <= t_first:
            append(totals[0])
        elif moment >= t_last:
            append(totals[-1])
        else:
            index = bisect_right(timestamps, moment, index)
            before, after = totals[index - 1], totals[index]
            share = (moment - timestamps[index - 1]) / (timestamps[index] - timestamps[index - 1])
            value = before + (after - before) * share
            # Float rounding must not lift the value past the next sample.
            append(value if value < after else after)
    return values


def _estimated_hours(grid: HourGrid, counter: _Counter) -> bytearray:
    """1 for every hour of the grid that an estimated interval (a gap, or one whose closing
    sample is flagged) overlaps for a positive time."""
    intervals: Iterable[int] = counter.line.gaps
    if counter.flags is not None:
        flagged = compress(range(len(counter.flags)), counter.flags)
        intervals = sorted({*intervals, *(index for index in flagged if index)})
    marked = bytearray(len(grid.bounds) - 1)
    timestamps, bounds = counter.line.timestamps, grid.bounds
    for index in intervals:
        first = bisect_right(bounds, timestamps[index - 1]) - 1
        last = bisect_left(bounds, timestamps[index]) - 1
        marked[first : last + 1] = b"\x01" * (last + 1 - first)
    return marked


def _largest(values: Sequence[float]) -> float | None:
    if not values:
        return None
    largest = max(values)
    return None if largest == _NO_VALUE else largest


PeakFinder = Callable[[float, float], float | None]


def _counter_peaks(counter: _Counter) -> PeakFinder:
    """Peak (kW) in [start, end) as the largest average power of the sample intervals that
    overlap it."""
    timestamps, rates = counter.line.timestamps, counter.rates
    last_interval = len(timestamps) - 1

    def peak_kw(start: float, end: float) -> float | None:
        first = max(bisect_right(timestamps, start), 1)
        last = min(bisect_left(timestamps, end), last_interval)
        largest = _largest(rates[first - 1 : last])
        return None if largest is None else largest * HOUR_S

    return peak_kw


def _power_peaks(timestamps: Sequence[float], watts: Sequence[float]) -> PeakFinder:
    """Peak (kW) in [start, end) as the largest power sample in it (never below 0)."""
    if len(timestamps) != len(watts) or any(map(lt, islice(timestamps, 1, None), timestamps)):
        raise ValueError("power samples must be sorted and as many as their timestamps")

    def peak_kw(start: float, end: float) -> float | None:
        first = bisect_left(timestamps, start)
        last = bisect_left(timestamps, end)
        if first >= last:
            return None
        largest = max(watts[first:last])
        return max(largest, 0.0) / _W_PER_KW

    return peak_kw


def hourly_from_counter(
    timestamps: Sequence[float],
    totals_kwh: Sequence[float],
    clock: HourGrid | tzinfo,
    *,
    estimated: Sequence[bool] | None = None,
    power_timestamps: Sequence[float] | None = None,
    power_w: Sequence[float] | None = None,
    gap_s: float = DEFAULT_GAP_S,
) -> list[HourBucket]:
    """The local hours a counter's samples span, each with its energy, demand and peak.

    `clock` is the time zone, or an HourGrid shared by several series (it must cover them).
    Samples may come in any order; equal timestamps keep the last sample. Power samples (W),
    when given, decide the peak; otherwise the counter does (see the module's notes).
    """
    counter = _counter(timestamps, totals_kwh, estimated, gap_s)
    peaks = None if power_timestamps is None or power_w is None else (power_timestamps, power_w)
    return _hourly(counter, clock, peaks)


def _hourly(
    counter: _Counter,
    clock: HourGrid | tzinfo,
    power: tuple[Sequence[float], Sequence[float]] | None,
) -> list[HourBucket]:
    timestamps = counter.line.timestamps
    if len(timestamps) < 2:
        return []
    t_first, t_last = timestamps[0], timestamps[-1]
    grid = clock if isinstance(clock, HourGrid) else local_hours(t_first, t_last, clock)
    first, last = grid.hour_of(t_first), bisect_left(grid.bounds, t_last)
    if first < 0 or last >= len(grid.bounds):
        raise ValueError("the hour grid does not cover the samples")
    origin = grid.bounds[first]
    values = _counter_at_quarters(counter, origin, round((grid.bounds[last] - origin) / QUARTER_S))
    quarters = list(map(sub, islice(values, 1, None), values))
    # Only quarters the samples cover from start to end have a demand.
    demand_from = math.ceil((t_first - origin) / QUARTER_S)
    demand_to = math.floor((t_last - origin) / QUARTER_S)
    estimated = _estimated_hours(grid, counter)
    peak_kw = _counter_peaks(counter) if power is None else _power_peaks(*power)
    buckets: list[HourBucket] = []
    for hour in range(first, last):
        start, end = grid.bounds[hour], grid.bounds[hour + 1]
        k_start = round((start - origin) / QUARTER_S)
        k_end = round((end - origin) / QUARTER_S)
        demand = _largest(quarters[max(k_start, demand_from) : min(k_end, demand_to)])
        buckets.append(
            HourBucket(
                start=grid.local_bounds[hour],
                end=grid.local_bounds[hour + 1],
                start_ts=start,
                end_ts=end,
                energy_kwh=values[k_end] - values[k_start],
                quarter_kwh=tuple(quarters[k_start:k_end]),
                demand_kw=None if demand is None else demand * _KW_PER_KWH_PER_QUARTER,
                peak_kw=peak_kw(start, end),
                estimated=bool(estimated[hour]),
                complete=t_first <= start and end <= t_last,
            )
        )
    return buckets


# ---------------------------------------------------------------------------------------------
# 3. Tariffs
# ---------------------------------------------------------------------------------------------


class DayType(StrEnum):
    """Which days a time-of-use period applies on; holidays count as weekend."""

    ALL = "all"
    WEEKDAY = "weekday"  # Monday to Friday
    WEEKEND = "weekend"  # Saturday, Sunday and the tariff's holidays


ALL_MONTHS: Final = frozenset(range(1, 13))
# Values by the instant they start to hold: aware datetimes or epoch seconds.
TimeSeries = Mapping[datetime, float] | Mapping[float, float] | Mapping[datetime | float, float]


def season(first_month: int, last_month: int) -> frozenset[int]:
    """The months from first to last, inclusive, wrapping over New Year: season(10, 3) is
    October to March."""
    months = range(first_month, (last_month if last_month >= first_month else last_month + 12) + 1)
    return frozenset((month - 1) % 12 + 1 for month in months)


@dataclass(frozen=True, kw_only=True, slots=True)
class FlatPrice:
    """One price per kWh at all times."""

    price: float


@dataclass(frozen=True, kw_only=True, slots=True)
class TouPeriod:
    """A price from `start` to `end` local time, on quarter hours. `end` <= `start` crosses
    midnight; 00:00 to 00:00 is the whole day. Days and months are checked against each
    quarter hour's own date: a 22:00-06:00 weekday period covers Friday 22:00-24:00 but not
    Saturday 00:00-06:00."""

    start: time
    end: time
    price: float
    days: DayType = DayType.ALL
    months: frozenset[int] = ALL_MONTHS

    def quarters(self) -> list[int]:
        """The quarter hours of the day (0..95) the period covers."""
        first = _quarter_of_day(self.start)
        stop = _quarter_of_day(self.end)
        if first == stop:
            return list(range(QUARTERS_PER_DAY)) if first == 0 else []
        if stop > first:
            return list(range(first, stop))
        return [*range(first, QUARTERS_PER_DAY), *range(stop)]

    def day_kinds(self) -> tuple[bool, ...]:
        """The weekend flags the period applies to."""
        if self.days == DayType.WEEKDAY:
            return (False,)
        if self.days == DayType.WEEKEND:
            return (True,)
        return (False, True)


def _quarter_of_day(moment: time) -> int:
    return (moment.hour * 60 + moment.minute) // 15


@dataclass(frozen=True, kw_only=True, slots=True)
class TimeOfUse:
    """A schedule of periods; the first period listed that covers a quarter hour sets its
    price, else `default_price` (None: no price, the quarter's cost is unknown)."""

    periods: tuple[TouPeriod, ...]
    default_price: float | None = None
    holidays: frozenset[date] = frozenset()


@dataclass(frozen=True, kw_only=True, slots=True)
class DynamicPrice:
    """Prices from an entity (Nord Pool, Tibber, ...): start of validity -> price. Each price
    holds until the next one starts, but not longer than `max_hold_s`; where no price holds,
    `fallback` does (None: the quarter's cost is unknown). Negative prices are valid."""

    prices: TimeSeries
    fallback: float | None = None
    max_hold_s: float = float(HOUR_S)


PriceModel = FlatPrice | TimeOfUse | DynamicPrice


class FeePeriod(StrEnum):
    """How often a fixed fee is charged."""

    DAY = "day"
    MONTH = "month"


@dataclass(frozen=True, kw_only=True, slots=True)
class FixedFee:
    """A standing charge, per local day or per month."""

    amount: float
    per: FeePeriod = FeePeriod.MONTH


@dataclass(frozen=True, kw_only=True, slots=True)
class DemandCharge:
    """A charge per kW of the month's demand (largest 15-minute average import power)."""

    per_kw_month: float


@dataclass(frozen=True, kw_only=True, slots=True)
class Tariff:
    """A supply contract. `currency` is HA's configured currency (None: unknown)."""

    import_price: PriceModel
    export_price: PriceModel | None = None
    fee: FixedFee | None = None
    demand_charge: DemandCharge | None = None
    currency: str | None = None


# Validation problem codes are "<part>_<problem>": part is import, export, fee, demand_charge
# or currency (and co2 for emissions).
PROBLEM_NOT_FINITE = "not_finite"
PROBLEM_NEGATIVE = "negative"
PROBLEM_TOU_PERIOD_EMPTY = "tou_period_empty"  # start == end (other than 00:00-00:00)
PROBLEM_TOU_NOT_QUARTER_HOUR = "tou_not_quarter_hour"  # a start or end off :00/:15/:30/:45
PROBLEM_TOU_MONTHS_INVALID = "tou_months_invalid"  # no month, or one outside 1..12
PROBLEM_TOU_OVERLAP = "tou_overlap"  # two periods price the same quarter hour
PROBLEM_TOU_NOT_COVERED = "tou_not_covered"  # a quarter hour has neither period nor default
PROBLEM_HOLD_INVALID = "hold_invalid"  # a series price may hold for no time
PROBLEM_TIME_NAIVE = "time_naive"  # a series key without a time zone
PROBLEM_INVALID = "invalid"


def _number_ok(value: object) -> bool:
    return not isinstance(value, bool) and isinstance(value, int | float) and math.isfinite(value)


def _check_amount(
    problems: list[str], part: str, value: object, *, allow_negative: bool = False
) -> None:
    if not _number_ok(value):
        problems.append(f"{part}_{PROBLEM_NOT_FINITE}")
    elif not allow_negative and isinstance(value, int | float) and value < 0:
        problems.append(f"{part}_{PROBLEM_NEGATIVE}")


def _on_quarter(moment: time) -> bool:
    return moment.minute % 15 == 0 and moment.second == 0 and moment.microsecond == 0


def _validate_tou(problems: list[str], part: str, model: TimeOfUse) -> None:
    claimed: set[tuple[int, bool, int]] = set()
    overlap = False
    for period in model.periods:
        _check_amount(problems, f"{part}_price", period.price)
        if not (_on_quarter(period.start) and _on_quarter(period.end)):
            problems.append(f"{part}_{PROBLEM_TOU_NOT_QUARTER_HOUR}")
        if not period.quarters():
            problems.append(f"{part}_{PROBLEM_TOU_PERIOD_EMPTY}")
        if not period.months or not period.months <= ALL_MONTHS:
            problems.append(f"{part}_{PROBLEM_TOU_MONTHS_INVALID}")
        for cell in _cells(period):
            overlap = overlap or cell in claimed
            claimed.add(cell)
    if overlap:
        problems.append(f"{part}_{PROBLEM_TOU_OVERLAP}")
    if model.default_price is None:
        if len(claimed) < len(ALL_MONTHS) * 2 * QUARTERS_PER_DAY:
            problems.append(f"{part}_{PROBLEM_TOU_NOT_COVERED}")
    else:
        _check_amount(problems, f"{part}_price", model.default_price)


def _cells(period: TouPeriod) -> Iterable[tuple[int, bool, int]]:
    """(month, weekend, quarter of day) cells the period prices."""
    quarters = period.quarters()
    for month in period.months & ALL_MONTHS:
        for weekend in period.day_kinds():
            for quarter in quarters:
                yield month, weekend, quarter


def _validate_series(problems: list[str], part: str, values: TimeSeries, hold_s: float) -> None:
    if not (_number_ok(hold_s) and hold_s > 0):
        problems.append(f"{part}_{PROBLEM_HOLD_INVALID}")
    if any(isinstance(key, datetime) and key.utcoffset() is None for key in values):
        problems.append(f"{part}_{PROBLEM_TIME_NAIVE}")
    if not all(map(_number_ok, values.values())):
        problems.append(f"{part}_price_{PROBLEM_NOT_FINITE}")


def _validate_price(problems: list[str], part: str, model: object) -> None:
    if isinstance(model, FlatPrice):
        _check_amount(problems, f"{part}_price", model.price)
    elif isinstance(model, TimeOfUse):
        _validate_tou(problems, part, model)
    elif isinstance(model, DynamicPrice):
        _validate_series(problems, part, model.prices, model.max_hold_s)
        if model.fallback is not None:
            _check_amount(problems, f"{part}_price", model.fallback, allow_negative=True)
    else:
        problems.append(f"{part}_price_{PROBLEM_INVALID}")


def validate_tariff(tariff: Tariff) -> list[str]:
    """Problem codes, in order and without repeats; [] for a usable tariff.

    Flat and time-of-use prices must not be negative; dynamic prices may (spot markets go
    below zero). See the PROBLEM_* constants for the codes.
    """
    problems: list[str] = []
    _validate_price(problems, "import", tariff.import_price)
    if tariff.export_price is not None:
        _validate_price(problems, "export", tariff.export_price)
    if tariff.fee is not None:
        _check_amount(problems, "fee", tariff.fee.amount)
        if tariff.fee.per not in tuple(FeePeriod):
            problems.append(f"fee_period_{PROBLEM_INVALID}")
    if tariff.demand_charge is not None:
        _check_amount(problems, "demand_charge", tariff.demand_charge.per_kw_month)
    if tariff.currency is not None and not _CURRENCY_CODE.fullmatch(tariff.currency):
        problems.append(f"currency_{PROBLEM_INVALID}")
    return list(dict.fromkeys(problems))


# ---------------------------------------------------------------------------------------------
# 4. CO2
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True, slots=True)
class Co2Factor:
    """A fixed emission factor."""

    kg_per_kwh: float


@dataclass(frozen=True, kw_only=True, slots=True)
class Co2Intensity:
    """Grid carbon intensity from an entity (CO2 Signal, ...): start -> g/kWh, each value held
    like a dynamic price; `fallback_g_per_kwh` where none holds (None: unknown)."""

    g_per_kwh: TimeSeries
    fallback_g_per_kwh: float | None = None
    max_hold_s: float = float(HOUR_S)


@dataclass(frozen=True, kw_only=True, slots=True)
class Emissions:
    """How CO2 is counted. Exported energy may count as avoided CO2 (at the same factor or
    intensity), reported apart from the emissions as `co2_avoided_kg`."""

    source: Co2Factor | Co2Intensity
    count_export_as_avoided: bool = False


def validate_emissions(emissions: Emissions) -> list[str]:
    """Problem codes ("co2_<problem>"); [] when usable."""
    problems: list[str] = []
    source = emissions.source
    if isinstance(source, Co2Factor):
        _check_amount(problems, "co2", source.kg_per_kwh)
    else:
        _validate_series(problems, "co2", source.g_per_kwh, source.max_hold_s)
        if any(_number_ok(value) and value < 0 for value in source.g_per_kwh.values()):
            problems.append(f"co2_{PROBLEM_NEGATIVE}")
        if source.fallback_g_per_kwh is not None:
            _check_amount(problems, "co2", source.fallback_g_per_kwh)
    return list(dict.fromkeys(problems))


# ---------------------------------------------------------------------------------------------
# 5. Rates per quarter hour
# ---------------------------------------------------------------------------------------------

# A rate source gives the rate (price per kWh, or kg CO2 per kWh) of each quarter of a bucket.
RateSource = Callable[[HourBucket], list[float | None]]


class _Steps:
    """A step function over time: each value holds from its start until the next start, for
    at most `max_hold_s`."""

    __slots__ = ("_max_hold_s", "_starts", "_values")

    def __init__(self, points: TimeSeries, max_hold_s: float) -> None:
        items = sorted((epoch(key), float(value)) for key, value in points.items())
        self._starts = [start for start, _ in items]
        self._values = [value for _, value in items]
        self._max_hold_s = max_hold_s

    def at(self, moment: float) -> float | None:
        index = bisect_right(self._starts, moment) - 1
        if index < 0 or moment - self._starts[index] >= self._max_hold_s:
            return None
        return self._values[index]


def _stepped(steps: _Steps, fallback: float | None, scale: float = 1.0) -> RateSource:
    def rates(bucket: HourBucket) -> list[float | None]:
        result: list[float | None] = []
        for index in range(len(bucket.quarter_kwh)):
            value = steps.at(bucket.start_ts + QUARTER_S * index)
            value = fallback if value is None else value
            result.append(None if value is None else value * scale)
        return result

    return rates


def _constant(value: float) -> RateSource:
    def rates(bucket: HourBucket) -> list[float | None]:
        return [value] * len(bucket.quarter_kwh)

    return rates


def _tou_table(model: TimeOfUse) -> dict[tuple[int, bool], list[float | None]]:
    """(month, weekend) -> the price of each quarter hour of the day."""
    table: dict[tuple[int, bool], list[float | None]] = {
        (month, weekend): [None] * QUARTERS_PER_DAY
        for month in ALL_MONTHS
        for weekend in (False, True)
    }
    for period in reversed(model.periods):  # the first period listed wins
        for month, weekend, quarter in _cells(period):
            table[month, weekend][quarter] = period.price
    for row in table.values():
        row[:] = [model.default_price if price is None else price for price in row]
    return table


def _time_of_use(model: TimeOfUse) -> RateSource:
    table = _tou_table(model)

    def rates(bucket: HourBucket) -> list[float | None]:
        local = bucket.start
        weekend = local.weekday() >= 5 or local.date() in model.holidays
        first = (local.hour * 60 + local.minute) // 15
        return table[local.month, weekend][first : first + len(bucket.quarter_kwh)]

    return rates


def price_source(model: PriceModel) -> RateSource:
    """Price per kWh of each quarter of a bucket, from a price model."""
    if isinstance(model, FlatPrice):
        return _constant(model.price)
    if isinstance(model, TimeOfUse):
        return _time_of_use(model)
    return _stepped(_Steps(model.prices, model.max_hold_s), model.fallback)


def co2_source(source: Co2Factor | Co2Intensity) -> RateSource:
    """kg CO2 per kWh of each quarter of a bucket."""
    if isinstance(source, Co2Factor):
        return _constant(source.kg_per_kwh)
    return _stepped(
        _Steps(source.g_per_kwh, source.max_hold_s), source.fallback_g_per_kwh, _KG_PER_G
    )


def charge(bucket: HourBucket, rates: RateSource) -> float | None:
    """Energy x rate over the bucket's quarters; None if a quarter with energy has no rate."""
    total = 0.0
    for energy, rate in zip(bucket.quarter_kwh, rates(bucket), strict=False):
        if energy:
            if rate is None:
                return None
            total += energy * rate
    return total


def rate_at(rates: RateSource, moment: float, tz: tzinfo) -> float | None:
    """The rate a source applies to the quarter hour `moment` falls in: the price or factor
    the books use for energy now, read through the same source (None: no rate holds)."""
    start = math.floor(moment / QUARTER_S) * QUARTER_S
    quarter = HourBucket(
        start=_local(start, tz),
        end=_local(start + QUARTER_S, tz),
        start_ts=start,
        end_ts=start + QUARTER_S,
        energy_kwh=0.0,
        quarter_kwh=(0.0,),
        demand_kw=None,
        peak_kw=None,
        estimated=False,
        complete=False,
    )
    return rates(quarter)[0]


@dataclass(frozen=True, kw_only=True, slots=True)
class CurrentRates:
    """What the books apply to energy right now: prices per kWh in the tariff's currency and
    the grid's CO2 intensity in g/kWh (None: not configured, or no value holds)."""

    import_price: float | None = None
    export_price: float | None = None
    co2_g_per_kwh: float | None = None


def current_rates(
    tariff: Tariff | None, emissions: Emissions | None, moment: float, tz: tzinfo
) -> CurrentRates:
    """The rates of the quarter hour `moment` falls in, as the books price it."""
    import_price = export_price = co2 = None
    if tariff is not None:
        import_price = rate_at(price_source(tariff.import_price), moment, tz)
        if tariff.export_price is not None:
            export_price = rate_at(price_source(tariff.export_price), moment, tz)
    if emissions is not None:
        kg = rate_at(co2_source(emissions.source), moment, tz)
        co2 = None if kg is None else kg / _KG_PER_G
    return CurrentRates(import_price=import_price, export_price=export_price, co2_g_per_kwh=co2)


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


def _local_midnight(day: date, tz: tzinfo | None) -> datetime:
    """The first instant of a local day (01:00 where midnight does not exist)."""
    naive = datetime(day.year, day.month, day.day, tzinfo=tz)
    return datetime.fromtimestamp(naive.timestamp(), tz)


def _period_span(period: Period, moment: datetime) -> tuple[datetime, datetime]:
    """Start and end of the local day or month that contains `moment`."""
    first = moment.date()
    if period == Period.DAY:
        following = first + timedelta(days=1)
    else:
        first = first.replace(day=1)
        following = (first + timedelta(days=32)).replace(day=1)
    return _local_midnight(first, moment.tzinfo), _local_midnight(following, moment.tzinfo)


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


# ---------------------------------------------------------------------------------------------
# 7. Bills
# ---------------------------------------------------------------------------------------------


def money(amount: float) -> Decimal:
    """An amount rounded to the cent, half up; float noise (beyond 1e-9) is dropped first so
    that 2.675 stays 2.675 and rounds to 2.68, as by hand."""
    cents = Decimal(repr(round(amount, 9))).quantize(_CENT, rounding=ROUND_HALF_UP)
    return cents if cents else abs(cents)  # never "-0.00"


@dataclass(frozen=True, kw_only=True, slots=True)
class Bill:
    """The site's bill for one local day or month. Every charge is rounded to the cent and
    the total is their sum, as printed on paper. `energy_charge` or `export_credit` (and so
    `total`) is None when an hour's price was missing."""

    period: Period
    start: datetime
    end: datetime
    currency: str | None
    import_kwh: float
    export_kwh: float
    demand_kw: float | None
    energy_charge: Decimal | None
    export_credit: Decimal | None
    fixed_fee: Decimal
    demand_charge: Decimal
    total: Decimal | None
    estimated: bool


def _fixed_fee(fee: FixedFee | None, period: Period, days: set[date]) -> Decimal:
    if fee is None:
        return money(0.0)
    if fee.per == FeePeriod.DAY:
        return money(fee.amount * len(days))
    if period == Period.MONTH:
        return money(fee.amount)
    (day,) = days
    return money(fee.amount / calendar.monthrange(day.year, day.month)[1])


def standing_charges(
    tariff: Tariff | None, period: Period, days: set[date], demand_kw: float | None
) -> tuple[float, float]:
    """The fixed fee and the demand charge of a day or month so far, as a bill charges them:
    a per-day fee for each day, a monthly fee in full on the month (its daily share on a day),
    the demand charge on the month only. (0, 0) without a tariff or without days."""
    if tariff is None or not days:
        return 0.0, 0.0
    fee = _fixed_fee(tariff.fee, period, days) if period == Period.MONTH or len(days) == 1 else 0
    rate = tariff.demand_charge.per_kw_month if tariff.demand_charge else 0.0
    demand = demand_kw * rate if period == Period.MONTH and demand_kw else 0.0
    return float(fee), demand


def _export_credit(exports: list[Aggregate], tariff: Tariff) -> Decimal | None:
    """What exports earned (their costs are negative); None when a price was missing."""
    if tariff.export_price is None:
        return money(0.0)
    cost = _sum_or_none([item.cost for item in exports])
    return None if cost is None else money(-cost)


def _bill(
    period: Period, imports: list[Aggregate], exports: list[Aggregate], tariff: Tariff
) -> Bill:
    start, end = _period_span(period, (imports or exports)[0].start)
    cost = _sum_or_none([item.cost for item in imports])
    energy_charge = None if cost is None else money(cost)
    export_credit = _export_credit(exports, tariff)
    demand = _max_or_none(item.demand_kw for item in imports)
    rate = tariff.demand_charge.per_kw_month if tariff.demand_charge else 0.0
    demand_charge = money(demand * rate if period == Period.MONTH and demand else 0.0)
    fee = _fixed_fee(tariff.fee, period, {item.start.date() for item in (*imports, *exports)})
    return Bill(
        period=period,
        start=start,
        end=end,
        currency=tariff.currency,
        import_kwh=math.fsum(item.energy_kwh for item in imports),
        export_kwh=math.fsum(item.energy_kwh for item in exports),
        demand_kw=demand,
        energy_charge=energy_charge,
        export_credit=export_credit,
        fixed_fee=fee,
        demand_charge=demand_charge,
        total=None
        if energy_charge is None or export_credit is None
        else energy_charge - export_credit + fee + demand_charge,
        estimated=any(item.estimated for item in (*imports, *exports)),
    )


def bills(
    imports: Iterable[Aggregate], exports: Iterable[Aggregate], tariff: Tariff, period: Period
) -> list[Bill]:
    """Daily or monthly bills from the hourly aggregates of the grid import and export series
    (priced with the same tariff), in order of time."""
    groups: dict[date, tuple[list[Aggregate], list[Aggregate]]] = {}
    for index, series in enumerate((imports, exports)):
        for item in series:
            local = item.start.date()
            key = local if period == Period.DAY else local.replace(day=1)
            groups.setdefault(key, ([], []))[index].append(item)
    return [_bill(period, *groups[key], tariff) for key in sorted(groups)]


# ---------------------------------------------------------------------------------------------
# 8. Everything at once
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True, slots=True)
class CounterSeries:
    """One energy counter of one device (or of the site: device_id "site", channel one of
    site.SITE_SERIES), with optional power samples (W) for the peak."""

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
    span = _span(series)
    if span is None:
        return Aggregation(hourly=(), daily=(), monthly=())
    grid = local_hours(*span, tz)
    hourly: dict[tuple[str, str], list[Aggregate]] = {}
    buckets: dict[tuple[str, str], tuple[HourBucket, ...]] = {}
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
    flat = [aggregate for items in hourly.values() for aggregate in items]
    days = daily(flat)
    result = Aggregation(
        hourly=tuple(flat), daily=tuple(days), monthly=tuple(monthly(days)), buckets=buckets
    )
    imported = _billed(series, SeriesRole.IMPORT)
    if tariff is None or imported is None:
        return result
    exported = _billed(series, SeriesRole.EXPORT)
    import_hours = hourly[imported.device_id, imported.channel]
    export_hours = hourly[exported.device_id, exported.channel] if exported else []
    return Aggregation(
        hourly=result.hourly,
        daily=result.daily,
        monthly=result.monthly,
        daily_bills=tuple(bills(import_hours, export_hours, tariff, Period.DAY)),
        monthly_bills=tuple(bills(import_hours, export_hours, tariff, Period.MONTH)),
        buckets=buckets,
    )
