"""Price lists that price entities publish in their attributes (Nord Pool, Tibber, ENTSO-e
and the like): the common shapes read into (start epoch -> price).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from itertools import pairwise
import math
from typing import Any, Final

from ..numbers import HOUR_S

# ---------------------------------------------------------------------------------------------
# Price lists published by price entities
# ---------------------------------------------------------------------------------------------

# Attributes that hold a day's prices as a list of {time, price} records: Nord Pool
# (`raw_today`/`raw_tomorrow`: start, end, value), Energi Data Service (`raw_today`,
# `forecast`: hour, price), ENTSO-e (`prices_today`, `prices`: time, price), and the same
# shape under other common names. A bare list of numbers is not read: without times it cannot
# be placed on the clock across a DST change.
PRICE_LIST_ATTRIBUTES: Final = (
    "raw_today",
    "raw_tomorrow",
    "prices_today",
    "prices_tomorrow",
    "prices",
    "today_prices",
    "tomorrow_prices",
    "forecast",
)
_TIME_FIELDS: Final = ("start", "hour", "time", "start_time", "startsAt", "datetime", "from")
_VALUE_FIELDS: Final = ("value", "price", "total", "price_per_kwh")


def listed_prices(attributes: Mapping[str, Any]) -> dict[float, float]:
    """Every (start epoch -> price) the entity's attributes list; records without an aware
    time or a finite number are skipped, never guessed. Never raises."""
    points: dict[float, float] = {}
    for name in PRICE_LIST_ATTRIBUTES:
        records = attributes.get(name)
        if not isinstance(records, list | tuple):
            continue
        for record in records:
            if isinstance(record, Mapping) and (point := _listed_point(record)) is not None:
                points[point[0]] = point[1]
    return points


def _listed_point(record: Mapping[str, Any]) -> tuple[float, float] | None:
    start = next((record[key] for key in _TIME_FIELDS if key in record), None)
    value = next((record[key] for key in _VALUE_FIELDS if key in record), None)
    if isinstance(start, str):
        try:
            start = datetime.fromisoformat(start)
        except ValueError:
            return None
    if not isinstance(start, datetime) or start.utcoffset() is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        price = float(value)
    except ValueError:
        return None
    if not math.isfinite(price):
        return None
    return start.timestamp(), price


def with_listed(
    sampled: Mapping[float, float], listed: Mapping[float, float]
) -> dict[float, float]:
    """One series from the entity's changes and its published list: inside the span the list
    covers the list decides (it carries revisions of past hours, which the state never shows);
    outside it the sampled changes do."""
    if not listed:
        return dict(sampled)
    starts = sorted(listed)
    step = min((b - a for a, b in pairwise(starts)), default=HOUR_S)
    first, end = starts[0], starts[-1] + step
    merged = {t: v for t, v in sampled.items() if not first <= t < end}
    merged.update(listed)
    return merged
