"""A counter into hours: each local hour's energy, 15-minute demand and peak, with outages
spread over the hours they cover and flagged estimated (see the package's notes).
"""

from __future__ import annotations

from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, tzinfo
from itertools import accumulate, compress, islice, repeat
import math
from operator import lt, sub, truediv
from typing import Final

from ..numbers import HOUR_S, QUARTER_HOUR_S, W_PER_KW
from .periods import HourGrid, local_hours

DEFAULT_GAP_S: Final = 900.0  # samples further apart than this bracket a gap (an outage)
_KW_PER_KWH_PER_QUARTER: Final = 4.0  # average kW over a quarter hour = kWh x 4
_NO_VALUE: Final = -math.inf  # "no candidate" in per-hour maxima


# ---------------------------------------------------------------------------------------------
# 2. Counters into hours
# ---------------------------------------------------------------------------------------------


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
        moment = first + QUARTER_HOUR_S * k
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
        return max(largest, 0.0) / W_PER_KW

    return peak_kw


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
    values = _counter_at_quarters(
        counter, origin, round((grid.bounds[last] - origin) / QUARTER_HOUR_S)
    )
    quarters = list(map(sub, islice(values, 1, None), values))
    # Only quarters the samples cover from start to end have a demand.
    demand_from = math.ceil((t_first - origin) / QUARTER_HOUR_S)
    demand_to = math.floor((t_last - origin) / QUARTER_HOUR_S)
    estimated = _estimated_hours(grid, counter)
    peak_kw = _counter_peaks(counter) if power is None else _power_peaks(*power)
    buckets: list[HourBucket] = []
    for hour in range(first, last):
        start, end = grid.bounds[hour], grid.bounds[hour + 1]
        k_start = round((start - origin) / QUARTER_HOUR_S)
        k_end = round((end - origin) / QUARTER_HOUR_S)
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
