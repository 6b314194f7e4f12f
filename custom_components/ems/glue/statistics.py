"""Hourly external statistics for the Energy dashboard: `ems:<hub>_<series>`, built as the
core `opower` integration builds them (DESIGN §6, §7, §9.4).

Each statistic is a running sum (`has_sum`, no mean) of hourly amounts: kWh for the energy
series, the configured currency for `import_cost` and `export_compensation`, kg for the CO2
series. A row's `state` is the hour's own amount and its `sum` the total up to and including
that hour, as opower writes them. The grid series are what the Energy dashboard's grid source
takes as `stat_energy_from` / `stat_energy_to`, and the money series as `stat_cost` /
`stat_compensation` (DESIGN §9.5: for external statistics cost is a series, never a price).

How a publish stays exact across restarts and corrections:

- Resume: the last stored row gives the sum to continue from. Hours at or before it that are
  stored with the same amount are skipped, so publishing the same hours again, or the same
  hours plus new ones, counts nothing twice.
- Rewrite: an hour whose amount changed (a dynamic price was revised, an outage was rebuilt
  from new data) or that was never stored (its price was unknown then) is written again, and
  every later stored hour's sum moves by the difference. The recorder upserts by
  (statistic_id, start), so only rows whose state or sum really changes are sent. Later sums
  are shifted, not rebuilt from the amounts, so a correction made with the recorder's
  "adjust sum" survives a rewrite.
- Each publish holds one lock and waits until its rows read back from the recorder, so the next
  publish reads what this one wrote and never continues from a stale sum.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from itertools import pairwise
import logging
import math
from types import MappingProxyType
from typing import Final, cast

from homeassistant.components.recorder.models import (
    StatisticData,
    StatisticMeanType,
    StatisticMetaData,
)
from homeassistant.components.recorder.statistics import (
    async_add_external_statistics,
    valid_statistic_id,
)
from homeassistant.config_entries import ConfigEntry
from homeassistant.const import UnitOfEnergy, UnitOfMass
from homeassistant.core import HomeAssistant
from homeassistant.util import dt as dt_util, slugify
from homeassistant.util.hass_dict import HassKey
from homeassistant.util.unit_conversion import EnergyConverter, MassConverter

from .. import compat
from ..const import CONF_STATISTICS_HUB, DOMAIN
from ..engine.books.ledger import LedgerHour
from ..engine.model import SITE_SERIES
from ..engine.numbers import HOUR_S
from .statistic_sums import HOUR, HourValue, rows_to_write, same_amount, stored_rows

_LOGGER = logging.getLogger(__name__)

# Amounts are floats recomputed from the same data; closer than this they are the same value,
# so float noise never turns into a rewrite.
# How long a publish waits for the recorder to commit its rows (it polls, 10 ms doubling to 1 s).
_COMMIT_TIMEOUT_S: Final = 60.0
_FIRST_POLL_S: Final = 0.01
_LOCK: Final[HassKey[asyncio.Lock]] = HassKey(f"{DOMAIN}_statistics_lock")
# Per hub, set while it unloads or Home Assistant stops: its publishes stop waiting for commits.
_CLOSING: Final[HassKey[dict[str, asyncio.Event]]] = HassKey(f"{DOMAIN}_statistics_closing")


class Quantity(StrEnum):
    """What a series counts, which fixes its unit."""

    ENERGY = "energy"
    MONEY = "money"
    MASS = "mass"


@dataclass(frozen=True, slots=True)
class SeriesSpec:
    """A published series: its name after the hub's name, and what it counts."""

    name: str
    quantity: Quantity


SERIES: Final[Mapping[str, SeriesSpec]] = MappingProxyType(
    {
        "grid_import": SeriesSpec("grid import", Quantity.ENERGY),
        "grid_export": SeriesSpec("grid export", Quantity.ENERGY),
        "production": SeriesSpec("production", Quantity.ENERGY),
        "consumption": SeriesSpec("consumption", Quantity.ENERGY),
        "battery_charge": SeriesSpec("battery charge", Quantity.ENERGY),
        "battery_discharge": SeriesSpec("battery discharge", Quantity.ENERGY),
        "import_cost": SeriesSpec("import cost", Quantity.MONEY),
        "export_compensation": SeriesSpec("export compensation", Quantity.MONEY),
        "co2": SeriesSpec("CO2 emissions", Quantity.MASS),
        "co2_avoided": SeriesSpec("CO2 avoided", Quantity.MASS),
    }
)


# ---------------------------------------------------------------------------------------------
# Ids and metadata
# ---------------------------------------------------------------------------------------------


def statistic_id(hub_slug: str, series: str) -> str:
    """`ems:<hub>_<series>`: lowercase letters, digits and single underscores only."""
    if series not in SERIES:
        raise ValueError(f"unknown statistics series {series!r}")
    if not (hub := slugify(hub_slug)):
        raise ValueError(f"hub {hub_slug!r} has no characters usable in a statistic id")
    result = f"{DOMAIN}:{hub}_{series}"
    if not valid_statistic_id(result):
        raise ValueError(f"invalid statistic id {result!r}")
    return result


def statistics_hub(entry: ConfigEntry) -> str:
    """The hub part of an entry's statistic ids. Hubs added before it was stored keep their
    entry id, so their statistics go on where they are."""
    return str(entry.data.get(CONF_STATISTICS_HUB) or entry.entry_id)


def free_statistics_hub(hass: HomeAssistant) -> str:
    """For a new hub: `site`, or `site_2`, `site_3`, ... when another hub has it. Short and
    predictable, so a dashboard can name `ems:site_import_cost`; never changed afterwards, so
    renaming the hub keeps its history."""
    taken = {statistics_hub(entry) for entry in hass.config_entries.async_entries(DOMAIN)}
    return next(
        name
        for n in range(1, len(taken) + 2)
        if (name := "site" if n == 1 else f"site_{n}") not in taken
    )


def _unit(hass: HomeAssistant, quantity: Quantity) -> tuple[str | None, str | None]:
    """Unit of measurement and unit class. The Energy dashboard needs kWh; money gets no class
    (no converter applies to a currency), CO2 is a mass."""
    if quantity is Quantity.ENERGY:
        return UnitOfEnergy.KILO_WATT_HOUR, EnergyConverter.UNIT_CLASS
    if quantity is Quantity.MONEY:
        return hass.config.currency, None
    return UnitOfMass.KILOGRAMS, MassConverter.UNIT_CLASS


def statistic_metadata(
    hass: HomeAssistant, hub_slug: str, name_prefix: str, series: str
) -> StatisticMetaData:
    """The metadata of one series, with only the keys this Home Assistant understands."""
    identifier = statistic_id(hub_slug, series)  # checks the series too
    spec = SERIES[series]
    unit, unit_class = _unit(hass, spec.quantity)
    # mean_type, not the deprecated has_mean: 2025.4.4 already reads mean_type only (it pops
    # has_mean unread) and later releases drop has_mean.
    fields: dict[str, object] = {
        "mean_type": StatisticMeanType.NONE,
        "has_sum": True,
        "name": f"{name_prefix} {spec.name}",
        "source": DOMAIN,
        "statistic_id": identifier,
        "unit_of_measurement": unit,
    }
    if compat.STATISTICS_UNIT_CLASS:
        fields["unit_class"] = unit_class
    # A plain dict, cast: the TypedDict's keys differ between releases.
    return cast(StatisticMetaData, fields)


# ---------------------------------------------------------------------------------------------
# Publishing
# ---------------------------------------------------------------------------------------------


async def async_publish(
    hass: HomeAssistant,
    hub_slug: str,
    name_prefix: str,
    series: Mapping[str, Sequence[HourValue]],
) -> dict[str, int]:
    """Write hourly amounts as external statistics; return the rows written per series.

    Safe to call again with the same or overlapping hours: unchanged stored hours are skipped,
    changed ones are rewritten together with every later sum. Every series is checked before
    anything is written.
    """
    prepared = {
        key: (statistic_metadata(hass, hub_slug, name_prefix, key), _checked(hours))
        for key, hours in series.items()
    }
    written: dict[str, int] = {}
    async with hass.data.setdefault(_LOCK, asyncio.Lock()):
        pending: dict[str, StatisticData] = {}
        for key, (metadata, hours) in prepared.items():
            rows = await rows_to_write(hass, metadata["statistic_id"], hours)
            if rows:
                pending[metadata["statistic_id"]] = rows[-1]
                async_add_external_statistics(hass, metadata, rows)
            written[key] = len(rows)
        # The next publish must read these rows, so wait until they are committed.
        await _until_committed(hass, pending, hub_slug)
    return written


@contextmanager
def stop_waiting_for_commits(hass: HomeAssistant, hub_slug: str) -> Iterator[None]:
    """While a hub closes, its publishes write but no longer wait to read their rows back."""
    closing = hass.data.setdefault(_CLOSING, {})
    _closing_event(hass, hub_slug).set()
    try:
        yield
    finally:
        closing.pop(slugify(hub_slug), None)  # the hub's next start waits again


def _closing_event(hass: HomeAssistant, hub_slug: str) -> asyncio.Event:
    return hass.data.setdefault(_CLOSING, {}).setdefault(slugify(hub_slug), asyncio.Event())


async def _until_committed(
    hass: HomeAssistant, pending: dict[str, StatisticData], hub_slug: str
) -> None:
    """Wait until the last row written to each statistic reads back; drop those that do.

    The recorder imports on its own thread, later; one import is one transaction, so its last
    row stands for all of it. Polling uses only the public read API (the recorder's queue
    helpers differ between releases), and it notices an import the recorder dropped. The
    budget counts the time slept, not the clock, which a suspended host or a test moves.
    """
    waited, delay = 0.0, _FIRST_POLL_S
    closing = _closing_event(hass, hub_slug)
    while pending:
        for statistic, row in list(pending.items()):
            # The recorder closes next, and writes what it has queued before it does.
            if hass.is_stopping or closing.is_set():
                return
            if await _reads_back(hass, statistic, row):
                del pending[statistic]
        if not pending:
            return
        if waited >= _COMMIT_TIMEOUT_S:
            _LOGGER.warning(
                "The recorder has not stored statistics %s after %.0f s",
                sorted(pending),
                _COMMIT_TIMEOUT_S,
            )
            return
        with suppress(TimeoutError):  # a nap that closing cuts short
            await asyncio.wait_for(closing.wait(), delay)
        waited += delay
        delay = min(2 * delay, 1.0)


async def _reads_back(hass: HomeAssistant, statistic: str, row: StatisticData) -> bool:
    start = row["start"]
    stored = await stored_rows(hass, statistic, start, start + HOUR)
    return bool(
        stored
        and stored[0].start == start.timestamp()
        and stored[0].state is not None
        and same_amount(stored[0].state, row.get("state") or 0.0)
        and same_amount(stored[0].sum, row.get("sum") or 0.0)
    )


def _checked(hours: Sequence[HourValue]) -> list[HourValue]:
    """The hours sorted, in UTC; rejects naive or off-the-hour starts, repeated hours and
    amounts that are not finite (an unknown amount is an hour left out, never NaN)."""
    result = sorted((HourValue(_utc_hour(start), float(value)) for start, value in hours))
    for before, after in pairwise(result):
        if before.start == after.start:
            raise ValueError(f"hour {after.start.isoformat()} given twice")
    for hour in result:
        if not math.isfinite(hour.value):
            raise ValueError(f"hour {hour.start.isoformat()}: amount {hour.value} not finite")
    return result


def _utc_hour(start: datetime) -> datetime:
    if start.utcoffset() is None:
        raise ValueError(f"naive hour start {start.isoformat()}: a time zone is required")
    utc = start.astimezone(UTC)
    # Checked in UTC: the recorder checks the minute in the given zone, and a local :00 in a
    # zone with a half-hour offset would be stored at :30 UTC.
    if (utc.minute, utc.second, utc.microsecond) != (0, 0, 0):
        raise ValueError(f"hour start {start.isoformat()} is not on a UTC hour")
    return utc


def ledger_series(hours: Sequence[LedgerHour]) -> dict[str, list[HourValue]]:
    """The ledger's hours as the hourly amounts of the `ems:` series.

    Local hours start on UTC hours except in zones with a half- or quarter-hour offset; there
    an hour counts in the UTC hour it starts in. An amount that is None (an hour without a
    price) is left out, so it is inserted, and the sums after it rewritten, once it is known.
    """
    series: dict[str, dict[float, float]] = {}

    def add(name: str, start: float, value: float | None) -> None:
        if value is not None:
            totals = series.setdefault(name, {})
            utc_hour = start - start % HOUR_S
            totals[utc_hour] = totals.get(utc_hour, 0.0) + value

    for hour in hours:
        for name in SITE_SERIES:
            add(name, hour.start_ts, hour.energy_kwh.get(name))
        add("import_cost", hour.start_ts, hour.cost)
        add("export_compensation", hour.start_ts, hour.compensation)
        add("co2", hour.start_ts, hour.co2_kg)
        add("co2_avoided", hour.start_ts, hour.co2_avoided_kg)
    return {
        name: [HourValue(dt_util.utc_from_timestamp(t), v) for t, v in sorted(totals.items())]
        for name, totals in series.items()
    }


async def async_publish_hours(
    hass: HomeAssistant, entry: ConfigEntry, hours: Sequence[LedgerHour]
) -> None:
    """Publish the ledger's new or changed hours of one hub as its `ems:` series."""
    await async_publish(hass, statistics_hub(entry), entry.title, ledger_series(hours))
