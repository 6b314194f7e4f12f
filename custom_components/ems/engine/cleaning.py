"""Cleaning: every decoded value gets a quality before anything else may use it.

A rejected value is never turned into 0 and never reaches an entity; it carries its reason so
that diagnostics can count rejections per rule.

`assess()` judges one value on its own (sentinels, NaN, plausible range). A `CounterGuard`
judges an energy counter against its own history (zeros, spikes, steps back, resets and
rollovers) and turns it into a lifetime total that never goes down.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
import math
from typing import Any

from .model import ChannelSpec, Quality, Reading
from .numbers import HOUR_S, finite

REASON_NOT_IMPLEMENTED = "not_implemented"
REASON_OUT_OF_RANGE = "out_of_range"
REASON_POWER_SPIKE = "power_spike"
# A power reading may exceed the device's rating by this factor before it is a spike: ratings
# are nominal, and inverters briefly overshoot them.
POWER_SPIKE_MARGIN = 1.5
_POWER_UNITS = frozenset({"W", "var", "VA"})
REASON_COUNTER_BACKWARDS = "counter_backwards"
REASON_COUNTER_ZERO = "counter_zero"
REASON_COUNTER_SPIKE = "counter_spike"

# Allowed on top of the power rule: float32 registers and meters that round their own totals
# move by a hair more than rated power x elapsed time.
STEP_TOLERANCE_KWH = 1e-3
# Without a power rating, a drop counts as a rollover only if the wrapped step is at most this
# share of the modulus; a larger one is more likely a reset or a glitch.
ROLLOVER_SHARE_WITHOUT_RATING = 0.1
# Without a power rating a counter still cannot count faster than any site ems runs on: a
# garbled word (a 32-bit Wh accumulator read as all ones is 4.3 GWh) is a spike, not energy.
UNRATED_MAX_POWER_KW = 10_000.0


def assess(
    device_id: str,
    spec: ChannelSpec,
    value: float | str | None,
    *,
    was_read: bool,
    timestamp: datetime,
) -> Reading:
    """Give one decoded value its quality."""
    if not was_read:
        return _reading(device_id, spec, timestamp, None, Quality.MISSING)
    if value is None:
        return _reading(device_id, spec, timestamp, None, Quality.REJECTED, REASON_NOT_IMPLEMENTED)
    if isinstance(value, str):
        return _reading(device_id, spec, timestamp, value, Quality.OK)
    if not math.isfinite(value) or not _in_range(spec, value):
        return _reading(device_id, spec, timestamp, value, Quality.REJECTED, REASON_OUT_OF_RANGE)
    return _reading(device_id, spec, timestamp, value, Quality.OK)


def check_rating(reading: Reading, rated_power_kw: float | None) -> Reading:
    """Reject a power reading far beyond what the device can carry (a 6400 A style spike)."""
    if (
        rated_power_kw is None
        or reading.unit not in _POWER_UNITS
        or not reading.usable
        or not isinstance(reading.value, int | float)
        or abs(reading.value) <= rated_power_kw * 1000 * POWER_SPIKE_MARGIN
    ):
        return reading
    return replace(reading, quality=Quality.REJECTED, reason=REASON_POWER_SPIKE)


def _in_range(spec: ChannelSpec, value: float) -> bool:
    if spec.minimum is not None and value < spec.minimum:
        return False
    return spec.maximum is None or value <= spec.maximum


def _reading(  # noqa: PLR0917 - a private constructor shortcut used in one function
    device_id: str,
    spec: ChannelSpec,
    timestamp: datetime,
    value: float | str | None,
    quality: Quality,
    reason: str | None = None,
) -> Reading:
    return Reading(
        device_id=device_id,
        channel=spec.key,
        timestamp=timestamp,
        value=value,
        quality=quality,
        reason=reason,
        unit=spec.unit,
    )


@dataclass(kw_only=True, slots=True)
class CounterState:
    """Everything a `CounterGuard` needs to resume after a Home Assistant restart."""

    # Added to the raw value so the lifetime total continues across resets and rollovers.
    offset: float = 0.0
    # The last accepted raw value, and when the counter first showed it.
    last_raw: float | None = None
    last_time: float | None = None
    # (time, raw) readings that disagree with last_raw but agree with each other so far:
    # candidates for a meter that was reset or replaced.
    pending: list[tuple[float, float]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """Return a JSON-safe copy for storage."""
        return {
            "offset": self.offset,
            "last_raw": self.last_raw,
            "last_time": self.last_time,
            "pending": [[time, raw] for time, raw in self.pending],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CounterState:
        """Rebuild a state from `as_dict()`; anything malformed gives a fresh state."""
        try:
            state = cls(
                offset=_finite(data["offset"]),
                last_raw=_finite_or_none(data["last_raw"]),
                last_time=_finite_or_none(data["last_time"]),
                pending=[(_finite(time), _finite(raw)) for time, raw in data["pending"]],
            )
        except (KeyError, TypeError, ValueError):
            return cls()
        # A half-known last reading, or candidates without one, cannot be trusted.
        if (state.last_raw is None) != (state.last_time is None):
            return cls()
        if state.last_raw is None and state.pending:
            return cls()
        return state


def _finite(value: object) -> float:
    """A saved number, or ValueError: a baseline that is no number is not restored."""
    if (number := finite(value)) is None:
        raise ValueError(value)
    return number


def _finite_or_none(value: object) -> float | None:
    return None if value is None else _finite(value)


@dataclass(frozen=True, kw_only=True, slots=True)
class CounterVerdict:
    """What a `CounterGuard` made of one raw reading."""

    # The cleaned lifetime value (raw + offset) when accepted, else None.
    value: float | None
    # None when accepted, else one of the REASON_COUNTER_* constants.
    reason: str | None
    # True on the reading that confirmed a reset, a replacement or a rollover.
    reset: bool = False


class CounterGuard:
    """Turn one energy counter's raw readings (kWh) into a lifetime total that never goes down.

    - The first reading ever is accepted.
    - A reading that stays equal, or rises by at most rated power x elapsed time x margin
      (plus `STEP_TOLERANCE_KWH`), is accepted. Elapsed time counts from when the counter first
      showed its last accepted value, so a coarse counter (0.1 kWh steps) that ticks every few
      minutes is not mistaken for a spike. Without a rating only steps beyond
      `UNRATED_MAX_POWER_KW` are spikes.
    - A drop that is a plausible step once `modulus` is added back is a rollover of the
      register: accepted, and continued exactly.
    - Anything else (a drop to 0, a step back, a spike up) is rejected and held as a candidate.
      A glitch is dropped without a trace: the next plausible reading clears the candidates.
      When `confirm` readings in a row (the first candidate included) rise consistently with
      each other, the meter was reset or replaced: the lifetime total resumes from the last
      accepted value at the first candidate's level. The energy counted between the last
      accepted reading and the first candidate was never seen, so it is lost.
      A candidate that stays equal neither confirms nor breaks a run, so a register stuck at 0
      or at 65535 is never taken for a new meter.
    - With `new_meter` (the caller knows the device was swapped, by its serial number), a
      reading that does not plausibly continue the old one starts the new baseline at once.

    Timestamps are seconds; only differences matter, and a clock that steps back counts as no
    time elapsed. When the state is stored across restarts, use wall-clock (epoch) seconds:
    a monotonic clock starts again at boot.
    """

    def __init__(
        self,
        *,
        max_power_kw: float | None,
        margin: float = 1.5,
        confirm: int = 3,
        modulus: float | None = None,
        state: CounterState | None = None,
    ) -> None:
        """Guard one counter of a device rated `max_power_kw`, wrapping at `modulus` kWh."""
        if max_power_kw is not None and not max_power_kw > 0:
            raise ValueError(f"max_power_kw must be positive, not {max_power_kw}")
        if not margin > 0:
            raise ValueError(f"margin must be positive, not {margin}")
        if confirm < 1:
            raise ValueError(f"confirm must be at least 1, not {confirm}")
        if modulus is not None and not modulus > 0:
            raise ValueError(f"modulus must be positive, not {modulus}")
        self._max_power_kw = max_power_kw
        self._margin = margin
        self._confirm = confirm
        self._modulus = modulus
        self._state = _copy(state) if state is not None else CounterState()

    @property
    def state(self) -> CounterState:
        """A copy of what to store so the guard can resume after a restart."""
        return _copy(self._state)

    def update(self, raw: float, timestamp: float, *, new_meter: bool = False) -> CounterVerdict:
        """Judge one raw reading taken at `timestamp`."""
        if not (math.isfinite(raw) and math.isfinite(timestamp)):
            # assess() rejects these first; never let one poison the state.
            return CounterVerdict(value=None, reason=REASON_OUT_OF_RANGE)
        state = self._state
        if state.last_raw is None or state.last_time is None:
            return self._accept(raw, timestamp)
        total = state.last_raw + state.offset
        elapsed = timestamp - state.last_time
        step = raw - state.last_raw
        plausible = step >= 0 and self._within_rating(step, elapsed)
        # Without a rating any rise looks plausible; from a new meter it is its own count.
        if new_meter and not (plausible and self._max_power_kw is not None):
            return self._carry_on(raw, timestamp, offset=total - raw, total=total)
        if plausible:
            return self._accept(raw, timestamp)
        if self._modulus is not None and self._is_rollover(step + self._modulus, elapsed):
            # The register wrapped: add one modulus, so nothing is lost or invented.
            return self._carry_on(raw, timestamp, offset=state.offset + self._modulus, total=total)
        return self._hold(raw, timestamp, step, total)

    def _max_step(self, elapsed: float) -> float | None:
        """The most energy the device can plausibly count in `elapsed` seconds."""
        if self._max_power_kw is None:
            return None
        hours = max(elapsed, 0.0) / HOUR_S
        return self._max_power_kw * hours * self._margin + STEP_TOLERANCE_KWH

    def _within_rating(self, step: float, elapsed: float) -> bool:
        limit = self._max_step(elapsed)
        if limit is None:
            hours = max(elapsed, 0.0) / HOUR_S
            limit = UNRATED_MAX_POWER_KW * hours * self._margin + STEP_TOLERANCE_KWH
        return step <= limit

    def _is_rollover(self, wrapped_step: float, elapsed: float) -> bool:
        limit = self._max_step(elapsed)
        if limit is None and self._modulus is not None:
            limit = ROLLOVER_SHARE_WITHOUT_RATING * self._modulus
        return limit is not None and 0 <= wrapped_step <= limit

    def _hold(self, raw: float, timestamp: float, step: float, total: float) -> CounterVerdict:
        """Reject a reading, but remember it in case the meter really is at a new level."""
        pending = self._state.pending
        if not pending or raw != pending[-1][1]:
            if pending and not self._continues(pending[-1], raw, timestamp):
                pending.clear()  # the earlier candidates were a glitch: start again from here
            pending.append((timestamp, raw))
        if len(pending) < self._confirm:
            return CounterVerdict(value=None, reason=_rejection_reason(raw, step))
        # A new meter (or a reset one): the total resumes from the last accepted value at the
        # first candidate's level.
        first_raw = pending[0][1]
        return self._carry_on(raw, timestamp, offset=total - first_raw, total=total)

    def _continues(self, candidate: tuple[float, float], raw: float, timestamp: float) -> bool:
        """Whether `raw` rises plausibly from the previous candidate."""
        candidate_time, candidate_raw = candidate
        step = raw - candidate_raw
        return step > 0 and self._within_rating(step, timestamp - candidate_time)

    def _carry_on(
        self, raw: float, timestamp: float, *, offset: float, total: float
    ) -> CounterVerdict:
        """Accept `raw` under a new offset that continues the lifetime total from `total`."""
        if not math.isfinite(raw + offset):
            return _BEYOND_FLOAT
        # Float rounding could leave raw + offset an ulp below the total; it must not step back.
        if raw + offset < total:
            offset = total - raw
            while raw + offset < total:  # a step or two of one ulp
                offset += max(math.ulp(offset), math.ulp(total))
        self._state.offset = offset
        return self._accept(raw, timestamp, reset=True)

    def _accept(self, raw: float, timestamp: float, *, reset: bool = False) -> CounterVerdict:
        state = self._state
        if not math.isfinite(raw + state.offset):
            return _BEYOND_FLOAT
        if reset or raw != state.last_raw:  # an unchanged counter keeps its first-seen time
            state.last_raw, state.last_time = raw, timestamp
        state.pending.clear()
        return CounterVerdict(value=raw + state.offset, reason=None, reset=reset)


# A garbled float64 counter can be finite on its own and still overflow once an offset is added.
_BEYOND_FLOAT = CounterVerdict(value=None, reason=REASON_OUT_OF_RANGE)


def _rejection_reason(raw: float, step: float) -> str:
    if step > 0:
        return REASON_COUNTER_SPIKE
    return REASON_COUNTER_ZERO if raw == 0 else REASON_COUNTER_BACKWARDS


def _copy(state: CounterState) -> CounterState:
    return replace(state, pending=list(state.pending))
