"""Load parameters of a metered consumer (a heat pump, a wallbox): runtime, on/off status,
15-minute demand and the month's peak demand.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
import math
from typing import Final

from ..numbers import HOUR_S, QUARTER_HOUR_S, W_PER_KW, finite
from .integration import (
    DEFAULT_MAX_GAP_S,
    _mapping,
    _state_float,
    _state_total,
)
from .powers import _positive

DEFAULT_ON_THRESHOLD_W: Final = 10.0
# A 15-minute block yields a demand only when samples cover this share of it; a block that
# started before the first sample or fell into an outage has no demand rather than a guess.
MIN_BLOCK_COVERAGE: Final = 0.8


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
            runtime_h=self._runtime_s / HOUR_S,
            demand_kw=self._demand_kw,
            peak_demand_kw=self._peak_kw,
        )

    def update(
        self, power_w: float | None, timestamp: float, month_key: str | None = None
    ) -> LoadState:
        """Take one sample; `month_key` names the calendar month the timestamp falls in."""
        now = finite(timestamp)
        if now is None:
            return self.state
        month = month_key if month_key is not None else utc_month_key(now)
        power = finite(power_w)
        if power is None:
            # Unavailable: the last good sample stays the anchor; the status is unknown.
            self._roll_to(_block_of(now), month)
            self._close_month(month)
            return LoadState(
                status_on=False,
                runtime_h=self._runtime_s / HOUR_S,
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
                demand_kw = self._block_energy_j / self._block_covered_s / W_PER_KW
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
