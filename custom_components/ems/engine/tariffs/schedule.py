"""The time-of-use schedule as text, one period per line::

    <days> <HH:MM>-<HH:MM> <price> [months <M>[-<M>]]

`days` is `all`, `weekday` (Monday to Friday) or `weekend`; times are local, on quarter hours,
an end at or before the start crosses midnight, `00:00-00:00` (or `00:00-24:00`) is the whole
day; the price is per kWh in HA's currency (a decimal comma is accepted); months wrap over New
Year (`months 10-3` is October to March). Blank lines and `#` comments are ignored.
"""

from __future__ import annotations

from datetime import time
import math
import re
from typing import Final

from .errors import (
    ERROR_TOU_MONTHS_INVALID,
    ERROR_TOU_NOT_QUARTER_HOUR,
    ERROR_TOU_OVERLAP,
    ERROR_TOU_PERIOD_EMPTY,
    ERROR_TOU_PRICE_INVALID,
    ERROR_TOU_SYNTAX,
)
from .model import (
    ALL_MONTHS,
    DayType,
    TouPeriod,
    season,
)

_LINE: Final = re.compile(
    r"(?P<days>\S+)\s+(?P<start>\d{1,2}:\d{2})\s*-\s*(?P<end>\d{1,2}:\d{2})\s+(?P<price>\S+)"
    r"(?:\s+months\s+(?P<first>\d+)(?:\s*-\s*(?P<last>\d+))?)?",
    re.IGNORECASE | re.ASCII,
)


class _LineError(Exception):
    """A schedule line's problem code."""


def _clock(text: str, *, end: bool) -> time:
    hour, minute = (int(part) for part in text.split(":"))
    if end and (hour, minute) == (24, 0):
        return time(0)
    if not (0 <= hour <= 23 and 0 <= minute <= 59):
        raise _LineError(ERROR_TOU_SYNTAX)
    return time(hour, minute)


def _period(line: str) -> TouPeriod:
    match = _LINE.fullmatch(line)
    if match is None or match["days"].lower() not in tuple(DayType):
        raise _LineError(ERROR_TOU_SYNTAX)
    start = _clock(match["start"], end=False)
    end = _clock(match["end"], end=True)
    if start.minute % 15 or end.minute % 15:
        raise _LineError(ERROR_TOU_NOT_QUARTER_HOUR)
    if start == end and start != time(0):
        raise _LineError(ERROR_TOU_PERIOD_EMPTY)
    try:
        price = float(match["price"].replace(",", "."))
    except ValueError:
        raise _LineError(ERROR_TOU_SYNTAX) from None
    if not math.isfinite(price) or price < 0:
        raise _LineError(ERROR_TOU_PRICE_INVALID)
    months = ALL_MONTHS
    if match["first"] is not None:
        first = int(match["first"])
        last = int(match["last"]) if match["last"] is not None else first
        if not (first in ALL_MONTHS and last in ALL_MONTHS):
            raise _LineError(ERROR_TOU_MONTHS_INVALID)
        months = season(first, last)
    return TouPeriod(
        start=start, end=end, price=price, days=DayType(match["days"].lower()), months=months
    )


def parse_schedule(text: str) -> tuple[list[TouPeriod], list[tuple[int, str]]]:
    """The periods of a time-of-use schedule, and its problems as (line number from 1, error
    key). A line with a problem gives no period; a line that prices a quarter hour an earlier
    line already prices is `tou_overlap`. Never raises."""
    periods: list[TouPeriod] = []
    problems: list[tuple[int, str]] = []
    claimed: set[tuple[int, bool, int]] = set()
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        try:
            period = _period(line)
        except _LineError as err:
            problems.append((number, str(err)))
            continue
        cells = period.cells()
        if cells & claimed:
            problems.append((number, ERROR_TOU_OVERLAP))
            continue
        claimed |= cells
        periods.append(period)
    return periods, problems
