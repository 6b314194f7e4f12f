"""External statistics with a real recorder: ids and metadata, cumulative sums that resume
without double counting, rewrites of changed hours, and the Energy dashboard's grid, solar and
battery sources on our series (2025.4.4 preferences format)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from homeassistant.components.recorder.models import StatisticMeanType, StatisticMetaData
from homeassistant.components.recorder.statistics import statistics_during_period
from homeassistant.core import HomeAssistant
from homeassistant.helpers.recorder import get_instance
from homeassistant.setup import async_setup_component
import pytest
from pytest_homeassistant_custom_component.components.recorder.common import (
    async_wait_recording_done,
)
from pytest_homeassistant_custom_component.typing import WebSocketGenerator

from custom_components.ems import compat
from custom_components.ems.engine.books.ledger import LedgerHour
from custom_components.ems.glue import statistics
from custom_components.ems.glue.energy_dashboard import hub_sources
from custom_components.ems.glue.statistic_sums import HourValue
from custom_components.ems.glue.statistics import (
    SERIES,
    async_publish,
    ledger_series,
    statistic_id,
    statistic_metadata,
)

HUB = "Site Hub"
PREFIX = "Site"
IMPORT = "ems:site_hub_grid_import"
START = datetime(2025, 1, 6, tzinfo=UTC)  # in the past: the recorder reads it as history


def _hours(*values: float, first: int = 0) -> list[HourValue]:
    return [HourValue(START + timedelta(hours=first + i), v) for i, v in enumerate(values)]


async def _stored(hass: HomeAssistant, statistic: str = IMPORT) -> list[tuple[int, float, float]]:
    """(hour index, state, sum) of every stored row."""
    result = await get_instance(hass).async_add_executor_job(
        statistics_during_period,
        hass,
        START - timedelta(days=1),
        None,
        {statistic},
        "hour",
        None,
        {"state", "sum"},
    )
    return [
        (int((row["start"] - START.timestamp()) // 3600), row["state"], row["sum"])
        for row in result.get(statistic, [])
    ]


def _approx(rows: Sequence[tuple[int, float, float]]) -> list[Any]:
    return [(hour, pytest.approx(state), pytest.approx(total)) for hour, state, total in rows]


# ---------------------------------------------------------------------------------------------
# Ids and metadata
# ---------------------------------------------------------------------------------------------


def test_statistic_ids_are_valid_and_slugged() -> None:
    assert statistic_id("Site Hub", "grid_import") == IMPORT
    assert statistic_id("192.168.1.5:502", "co2") == "ems:192_168_1_5_502_co2"
    assert statistic_id("Ärger__Hub", "export_compensation") == "ems:arger_hub_export_compensation"
    with pytest.raises(ValueError, match="unknown statistics series"):
        statistic_id("hub", "Grid Import")
    with pytest.raises(ValueError, match="no characters"):
        statistic_id("", "co2")


def test_metadata_matches_this_home_assistant(
    hass: HomeAssistant, monkeypatch: pytest.MonkeyPatch
) -> None:
    """2025.4.4 has no unit_class (an extra key breaks its recorder); newer releases get it:
    energy for kWh, mass for kg, none for money."""
    metadata = statistic_metadata(hass, HUB, PREFIX, "grid_import")
    expected: dict[str, object] = {
        "mean_type": StatisticMeanType.NONE,
        "has_sum": True,
        "name": "Site grid import",
        "source": "ems",
        "statistic_id": IMPORT,
        "unit_of_measurement": "kWh",
    }
    if "unit_class" in StatisticMetaData.__annotations__:
        expected["unit_class"] = "energy"
    assert metadata == expected
    monkeypatch.setattr(compat, "STATISTICS_UNIT_CLASS", True)
    newer = {
        key: statistic_metadata(hass, HUB, PREFIX, key)["unit_class"]  # type: ignore[typeddict-item,unused-ignore]
        for key in ("grid_export", "import_cost", "co2")
    }
    assert newer == {"grid_export": "energy", "import_cost": None, "co2": "mass"}


async def test_series_are_listed_as_sums_with_their_units(
    hass: HomeAssistant, hass_ws_client: WebSocketGenerator
) -> None:
    """Every series is an external `sum` statistic; energy in kWh (unit class `energy`, what
    the Energy dashboard's pickers ask for), money in the configured currency, CO2 in kg."""
    hass.config.currency = "CHF"
    written = await async_publish(hass, HUB, PREFIX, {key: _hours(1.0, 2.0) for key in SERIES})
    assert written == dict.fromkeys(SERIES, 2)

    client = await hass_ws_client(hass)
    await client.send_json_auto_id({"type": "recorder/list_statistic_ids", "statistic_type": "sum"})
    response = await client.receive_json()
    assert response["success"]
    listed = {item["statistic_id"]: item for item in response["result"]}
    units = {"kWh": "energy", "CHF": None, "kg": "mass"}
    for key, spec in SERIES.items():
        item = listed[statistic_id(HUB, key)]
        unit = {"energy": "kWh", "money": "CHF", "mass": "kg"}[spec.quantity]
        assert item["has_sum"] is True
        assert item["mean_type"] == StatisticMeanType.NONE
        assert item["source"] == "ems"
        assert item["name"] == f"{PREFIX} {spec.name}"
        assert item["statistics_unit_of_measurement"] == unit
        assert item["unit_class"] == units[unit]


# ---------------------------------------------------------------------------------------------
# Sums, resume and rewrite
# ---------------------------------------------------------------------------------------------


async def test_sums_are_cumulative_and_a_restart_counts_nothing_twice(
    hass: HomeAssistant,
) -> None:
    assert await async_publish(hass, HUB, PREFIX, {"grid_import": _hours(1.0, 2.0, 3.0)}) == {
        "grid_import": 3
    }
    assert await _stored(hass) == _approx([(0, 1, 1), (1, 2, 3), (2, 3, 6)])

    # A restart publishes its whole window again: nothing is written.
    again = await async_publish(hass, HUB, PREFIX, {"grid_import": _hours(1.0, 2.0, 3.0)})
    assert again == {"grid_import": 0}
    # The same window plus two new hours: only the new ones, continuing from the stored sum.
    more = await async_publish(
        hass, HUB, PREFIX, {"grid_import": _hours(2.0, 3.0, 4.0, 0.5, first=1)}
    )
    assert more == {"grid_import": 2}
    assert await _stored(hass) == _approx(
        [(0, 1, 1), (1, 2, 3), (2, 3, 6), (3, 4, 10), (4, 0.5, 10.5)]
    )
    # Only new hours (the window moved past the stored ones): also continued.
    assert await async_publish(hass, HUB, PREFIX, {"grid_import": _hours(1.5, first=6)}) == {
        "grid_import": 1
    }
    assert (await _stored(hass))[-1] == _approx([(6, 1.5, 12.0)])[0]


async def test_concurrent_publishes_count_once(hass: HomeAssistant) -> None:
    """Two publishes at once (the hourly one and a price update, say): the second waits for
    the first's rows to be committed and finds nothing left to write."""
    results = await asyncio.gather(
        *(async_publish(hass, HUB, PREFIX, {"grid_import": _hours(1.0, 2.0)}) for _ in range(2))
    )
    assert sorted(result["grid_import"] for result in results) == [0, 2]
    assert await _stored(hass) == _approx([(0, 1, 1), (1, 2, 3)])


async def test_an_import_the_recorder_drops_is_reported_and_retried(
    hass: HomeAssistant, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    with monkeypatch.context() as patched:
        patched.setattr(statistics, "async_add_external_statistics", lambda *_: None)
        patched.setattr(statistics, "_COMMIT_TIMEOUT_S", 0.05)
        await async_publish(hass, HUB, PREFIX, {"grid_import": _hours(1.0, 2.0)})
    assert "has not stored statistics ['ems:site_hub_grid_import']" in caplog.text
    # Nothing was stored, so the next publish writes the hours, from zero.
    assert await async_publish(hass, HUB, PREFIX, {"grid_import": _hours(1.0, 2.0)}) == {
        "grid_import": 2
    }
    assert await _stored(hass) == _approx([(0, 1, 1), (1, 2, 3)])


async def test_a_changed_hour_rewrites_it_and_every_later_sum(hass: HomeAssistant) -> None:
    await async_publish(hass, HUB, PREFIX, {"import_cost": _hours(1.0, 1.0, 1.0, 1.0, 1.0)})
    cost = "ems:site_hub_import_cost"

    # A revised price for hour 1 in a window that ends at hour 2: hours 3 and 4 move too.
    written = await async_publish(hass, HUB, PREFIX, {"import_cost": _hours(1.0, 3.0, 1.0)})
    assert written == {"import_cost": 4}
    assert await _stored(hass, cost) == _approx(
        [(0, 1, 1), (1, 3, 4), (2, 1, 5), (3, 1, 6), (4, 1, 7)]
    )
    # The first hour of a window changes (no stored row before it inside the window).
    written = await async_publish(hass, HUB, PREFIX, {"import_cost": _hours(0.5, 3.0, first=0)})
    assert written == {"import_cost": 5}
    assert await _stored(hass, cost) == _approx(
        [(0, 0.5, 0.5), (1, 3, 3.5), (2, 1, 4.5), (3, 1, 5.5), (4, 1, 6.5)]
    )
    # Idempotent: the corrected window again changes nothing.
    assert await async_publish(hass, HUB, PREFIX, {"import_cost": _hours(0.5, 3.0, 1.0)}) == {
        "import_cost": 0
    }


async def test_an_hour_known_only_later_is_inserted(hass: HomeAssistant) -> None:
    """Hour 1 had no price (left out); once priced it is inserted and later sums move."""
    hours = _hours(1.0, 2.0, 4.0, 8.0)
    await async_publish(hass, HUB, PREFIX, {"grid_import": [hours[0], hours[2], hours[3]]})
    assert await _stored(hass) == _approx([(0, 1, 1), (2, 4, 5), (3, 8, 13)])

    # Also as the first hour of a window, where the sum before it must be looked up.
    written = await async_publish(
        hass, HUB, PREFIX, {"grid_import": hours[1:] + _hours(16.0, first=4)}
    )
    assert written == {"grid_import": 4}
    assert await _stored(hass) == _approx(
        [(0, 1, 1), (1, 2, 3), (2, 4, 7), (3, 8, 15), (4, 16, 31)]
    )


async def test_a_rewrite_keeps_an_adjusted_sum(hass: HomeAssistant) -> None:
    """A user's "adjust sum" (Developer tools, statistics) from hour 2 on survives a rewrite
    of hour 1: later sums are shifted, not rebuilt from the hourly amounts."""
    await async_publish(hass, HUB, PREFIX, {"grid_import": _hours(1.0, 1.0, 1.0, 1.0)})
    get_instance(hass).async_adjust_statistics(IMPORT, START + timedelta(hours=2), -0.5, "kWh")
    await async_wait_recording_done(hass)
    assert await _stored(hass) == _approx([(0, 1, 1), (1, 1, 2), (2, 1, 2.5), (3, 1, 3.5)])

    await async_publish(hass, HUB, PREFIX, {"grid_import": _hours(2.0, first=1)})
    assert await _stored(hass) == _approx([(0, 1, 1), (1, 2, 3), (2, 1, 3.5), (3, 1, 4.5)])


async def test_bad_hours_are_rejected_before_anything_is_written(hass: HomeAssistant) -> None:
    bad: list[tuple[str, list[HourValue]]] = [
        ("naive", [HourValue(datetime(2025, 1, 6), 1.0)]),  # noqa: DTZ001
        ("not on a UTC hour", [HourValue(START + timedelta(minutes=30), 1.0)]),
        (
            "not on a UTC hour",  # a local :00 in India is :30 in UTC
            [HourValue(datetime(2025, 1, 6, 5, tzinfo=ZoneInfo("Asia/Kolkata")), 1.0)],
        ),
        ("given twice", [*_hours(1.0), *_hours(2.0)]),
        ("not finite", _hours(float("nan"))),
    ]
    for message, hours in bad:
        with pytest.raises(ValueError, match=message):
            await async_publish(hass, HUB, PREFIX, {"production": _hours(1.0), "co2": hours})
    with pytest.raises(ValueError, match="unknown statistics series"):
        await async_publish(hass, HUB, PREFIX, {"production": _hours(1.0), "solar": _hours(1.0)})
    assert await _stored(hass, "ems:site_hub_production") == []


def test_ledger_hours_count_in_the_utc_hour_they_start_in() -> None:
    """Local hours on UTC hours (a fall-back night has two 02:00 hours); an unpriced hour is
    left out; an hour in a half-hour zone counts in the UTC hour it starts in."""
    berlin, kolkata = ZoneInfo("Europe/Berlin"), ZoneInfo("Asia/Kolkata")

    def hour(start: datetime, kwh: float, cost: float | None) -> LedgerHour:
        return LedgerHour(
            start_ts=start.timestamp(),
            end_ts=(start + timedelta(hours=1)).timestamp(),
            energy_kwh={"grid_import": kwh},
            cost=cost,
        )

    first = datetime(2025, 10, 26, 2, tzinfo=berlin)  # 02:00 CEST
    second = datetime(2025, 10, 26, 2, fold=1, tzinfo=berlin)  # 02:00 CET
    series = ledger_series([hour(first, 1.0, 0.3), hour(second, 2.0, None)])
    assert series["grid_import"] == [
        HourValue(datetime(2025, 10, 26, 0, tzinfo=UTC), 1.0),
        HourValue(datetime(2025, 10, 26, 1, tzinfo=UTC), 2.0),
    ]
    assert series["import_cost"] == [HourValue(datetime(2025, 10, 26, 0, tzinfo=UTC), 0.3)]
    india = ledger_series([hour(datetime(2025, 1, 6, 5, tzinfo=kolkata), 1.5, None)])
    assert india["grid_import"] == [HourValue(datetime(2025, 1, 5, 23, tzinfo=UTC), 1.5)]
    assert "import_cost" not in india


# ---------------------------------------------------------------------------------------------
# Energy dashboard
# ---------------------------------------------------------------------------------------------


async def test_energy_dashboard_accepts_our_series(
    hass: HomeAssistant, hass_ws_client: WebSocketGenerator
) -> None:
    """Grid import/export with cost and compensation as series (DESIGN §9.5), solar and a
    battery, saved in the running release's format (the legacy `flow_from` lists on 2025.4.4,
    flat grid sources from 2026.3): the dashboard's validation finds nothing wrong."""
    assert await async_setup_component(hass, "energy", {})
    await async_publish(hass, HUB, PREFIX, {key: _hours(1.0, 2.0, 3.0) for key in SERIES})
    options = {"price_mode": "flat", "export_mode": "flat"}
    sources = hub_sources(HUB, options, production=True, battery=True)
    prefs = {"energy_sources": sources, "device_consumption": []}
    client = await hass_ws_client(hass)
    await client.send_json_auto_id({"type": "energy/save_prefs", **prefs})
    saved = await client.receive_json()
    assert saved["success"], saved
    grid = saved["result"]["energy_sources"][0]
    imported = grid if compat.FLAT_GRID_SOURCES else grid["flow_from"][0]
    exported = grid if compat.FLAT_GRID_SOURCES else grid["flow_to"][0]
    assert imported["stat_cost"] == statistic_id(HUB, "import_cost")
    assert exported["stat_compensation"] == statistic_id(HUB, "export_compensation")

    await client.send_json_auto_id({"type": "energy/validate"})
    validation = await client.receive_json()
    assert validation["success"]
    # Newer releases validate more lists (water consumption, say): every one must be empty.
    assert validation["result"]["energy_sources"] == [[], [], []]
    assert all(
        issues == [] for key, issues in validation["result"].items() if key != "energy_sources"
    )
