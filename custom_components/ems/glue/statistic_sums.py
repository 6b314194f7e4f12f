"""The running sums of a series: resumed from what the recorder stored, and rewritten only
from the first hour whose amount changed (the recorder's functions are synchronous: they run
in its executor)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
import math
from typing import Final, NamedTuple, cast

from homeassistant.components.recorder.models import (
    StatisticData,
)
from homeassistant.components.recorder.statistics import (
    get_last_statistics,
    statistics_during_period,
)
from homeassistant.core import HomeAssistant
from homeassistant.helpers.recorder import get_instance

from ..engine.numbers import FLOAT_TOLERANCE

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)


class HourValue(NamedTuple):
    """One hour's amount (kWh, money or kg); `start` is aware and on a UTC hour."""

    start: datetime
    value: float


HOUR: Final = timedelta(hours=1)


@dataclass(frozen=True, slots=True)
class _Stored:
    """A stored hourly row: start (epoch seconds), the hour's amount and the running sum."""

    start: float
    state: float | None
    sum: float


async def rows_to_write(
    hass: HomeAssistant, statistic: str, hours: list[HourValue]
) -> list[StatisticData]:
    """The rows that make the stored statistic match `hours` (none if it already does)."""
    if not hours:
        return []
    if (last := await _last_stored(hass, statistic)) is None:
        return _recompute(hours, [], 0.0)
    stored_count = sum(1 for hour in hours if hour.start.timestamp() <= last.start)
    stored = await stored_rows(hass, statistic, hours[0].start, None) if stored_count else []
    changed = _first_changed(hours[:stored_count], stored)
    if changed is None:  # the stored hours stand; continue after the last one
        return _recompute(hours[stored_count:], [], last.sum)
    since = hours[changed].start.timestamp()
    earlier = [row for row in stored if row.start < since]
    base = earlier[-1].sum if earlier else await _sum_before(hass, statistic, since)
    later = [row for row in stored if row.start >= since]
    return _recompute(hours[changed:], later, base)


def _first_changed(hours: Sequence[HourValue], stored: Sequence[_Stored]) -> int | None:
    """Index of the first hour that is not stored with the same amount."""
    by_start = {row.start: row for row in stored}
    for index, hour in enumerate(hours):
        row = by_start.get(hour.start.timestamp())
        if row is None or row.state is None or not same_amount(row.state, hour.value):
            return index
    return None


def _recompute(
    hours: Sequence[HourValue], stored: Sequence[_Stored], base: float
) -> list[StatisticData]:
    """Rows from the first of `hours` on, merged with the stored rows from there on.

    `base` is the stored sum just before the first hour. Every stored sum moves by the change
    in the amounts before it (`offset`); an hour that was never stored lands on the stored sum
    before it plus the offset. Rows that come out as stored are left out.
    """
    amounts = {hour.start.timestamp(): hour.value for hour in hours}
    by_start = {row.start: row for row in stored}
    offset, previous = 0.0, base  # previous: the stored (unshifted) sum before this hour
    rows: list[StatisticData] = []
    for start in sorted(amounts.keys() | by_start.keys()):
        row, amount = by_start.get(start), amounts.get(start)
        if row is None:
            state = cast(float, amount)  # only hours we were given are missing from the store
            offset += state
            total = previous + offset
        else:
            old = row.state if row.state is not None else row.sum - previous
            state = old if amount is None else amount
            offset += state - old
            total = row.sum + offset
            previous = row.sum
            if (
                row.state is not None
                and same_amount(state, row.state)
                and same_amount(total, row.sum)
            ):
                continue
        start_at = datetime.fromtimestamp(start, UTC)
        rows.append(StatisticData(start=start_at, state=state, sum=total))
    return rows


def same_amount(first: float, second: float) -> bool:
    return math.isclose(first, second, rel_tol=FLOAT_TOLERANCE, abs_tol=FLOAT_TOLERANCE)


# ---------------------------------------------------------------------------------------------
# Reading the recorder (its functions are synchronous: run them in its executor)
# ---------------------------------------------------------------------------------------------


async def _last_stored(hass: HomeAssistant, statistic: str) -> _Stored | None:
    result = await get_instance(hass).async_add_executor_job(
        get_last_statistics,
        hass,
        1,  # rows
        statistic,
        True,  # noqa: FBT003 - convert_units; the recorder's positional API
        {"state", "sum"},
    )
    rows = [_row(row) for row in result.get(statistic, [])]
    return rows[0] if rows else None


async def stored_rows(
    hass: HomeAssistant, statistic: str, start: datetime, end: datetime | None
) -> list[_Stored]:
    """Stored hourly rows with start in [start, end) (to the last one if end is None)."""
    result = await get_instance(hass).async_add_executor_job(
        statistics_during_period,
        hass,
        start,
        end,
        {statistic},
        "hour",
        None,
        {"state", "sum"},
    )
    return [_row(row) for row in result.get(statistic, [])]


async def _sum_before(hass: HomeAssistant, statistic: str, start: float) -> float:
    """The stored sum of the last row before `start` (0 if there is none)."""
    at = datetime.fromtimestamp(start, UTC)
    # Usually the hour before is stored; after a gap the last row may be any age.
    rows = await stored_rows(hass, statistic, at - HOUR, at)
    if not rows:
        rows = await stored_rows(hass, statistic, _EPOCH, at)
    return rows[-1].sum if rows else 0.0


def _row(row: Mapping[str, object]) -> _Stored:
    state, total = row.get("state"), row.get("sum")
    return _Stored(
        start=float(cast(float, row["start"])),
        state=None if state is None else float(cast(float, state)),
        sum=0.0 if total is None else float(cast(float, total)),
    )
