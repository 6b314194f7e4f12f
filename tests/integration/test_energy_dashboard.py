"""The Energy dashboard fed by the running hub: its hours, its set-up action, its validation."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

from freezegun import freeze_time
from freezegun.api import TickingDateTimeFactory
from homeassistant.components.recorder.statistics import list_statistic_ids
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import ServiceValidationError
from homeassistant.helpers.recorder import get_instance
from homeassistant.setup import async_setup_component
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.components.recorder.common import (
    async_wait_recording_done,
)
from pytest_homeassistant_custom_component.typing import WebSocketGenerator
import voluptuous as vol

from custom_components.ems.compat import FLAT_GRID_SOURCES
from custom_components.ems.glue.energy_dashboard import merged_sources
from custom_components.ems.glue.statistics import SERIES
from simulator import SiteConfig, SiteSimulator

START = datetime(2026, 6, 15, 9, 45, tzinfo=UTC)  # a sunny morning: PV, battery and export
TARIFF = {
    "price_mode": "flat",
    "import_price": 0.30,
    "export_mode": "flat",
    "export_price": 0.08,
    "co2_mode": "factor",
    "co2_factor": 0.4,
}


@pytest.fixture
async def simulator(socket_enabled: None) -> AsyncIterator[SiteSimulator]:
    """The whole site, starting at START (the `site_entry` fixture serves it)."""
    site = SiteSimulator(SiteConfig(start=START))
    await site.start(host="127.0.0.1", port=0)
    yield site
    await site.stop()


async def test_the_hub_sets_up_a_valid_energy_dashboard(
    hass: HomeAssistant,
    hass_ws_client: WebSocketGenerator,
    site_entry: MockConfigEntry,
    simulator: SiteSimulator,
) -> None:
    """Hours booked by the running coordinator are listed as kWh sums, the action adds them
    to the dashboard in this release's format, and the dashboard's validation finds nothing."""
    assert await async_setup_component(hass, "energy", {})
    # A ticking clock (pymodbus and the recorder wait on real timers), left before the
    # websocket client logs in: its token is issued at the real time.
    with freeze_time(START, tick=True) as clock:
        await _run_site(hass, site_entry, simulator, clock)
    ours = await _published(hass, len(SERIES) - 1)  # no avoided CO2 without the option
    prefix = f"ems:{site_entry.entry_id.lower()}_"
    for series in ("grid_import", "grid_export", "production", "battery_charge", "consumption"):
        assert ours[prefix + series]["has_sum"] is True
        assert ours[prefix + series]["statistics_unit_of_measurement"] == "kWh"
    assert ours[prefix + "import_cost"]["statistics_unit_of_measurement"] == hass.config.currency
    assert ours[prefix + "co2"]["statistics_unit_of_measurement"] == "kg"

    response = await hass.services.async_call(
        "ems",
        "setup_energy_dashboard",
        {"entry_id": site_entry.entry_id},
        blocking=True,
        return_response=True,
    )
    kinds = sorted(source["type"] for source in response["energy_sources"])
    assert kinds == ["battery", "grid", "solar"]
    grid = next(s for s in response["energy_sources"] if s["type"] == "grid")
    cost = grid["stat_cost"] if FLAT_GRID_SOURCES else grid["flow_from"][0]["stat_cost"]
    assert cost == prefix + "import_cost"

    client = await hass_ws_client(hass)
    await client.send_json_auto_id({"type": "energy/get_prefs"})
    prefs = await client.receive_json()
    assert prefs["result"]["energy_sources"] == response["energy_sources"]
    await client.send_json_auto_id({"type": "energy/validate"})
    validation = await client.receive_json()
    assert validation["success"]
    assert validation["result"]["energy_sources"] == [[], [], []]

    # Asked again, the hub's sources are replaced, not added twice.
    again = await hass.services.async_call(
        "ems", "setup_energy_dashboard", {"entry_id": site_entry.entry_id},
        blocking=True, return_response=True,
    )  # fmt: skip
    assert again["energy_sources"] == response["energy_sources"]


@pytest.mark.parametrize(
    ("data", "key"),
    [
        ({"entry_id": "nope"}, "unknown_entry"),
        ({"entry_id": 12}, "unknown_entry"),
    ],
)
async def test_bad_calls_are_translated_errors(
    hass: HomeAssistant, data: dict[str, object], key: str
) -> None:
    """Garbage in: a translated error out, and the Energy dashboard untouched."""
    assert await async_setup_component(hass, "ems", {})
    with pytest.raises(ServiceValidationError) as caught:
        await hass.services.async_call(
            "ems", "setup_energy_dashboard", data, blocking=True, return_response=True
        )
    assert caught.value.translation_key == key
    assert "energy_manager" not in hass.data


@pytest.mark.parametrize(
    "data", [{}, {"entry_id": None}, {"entry_id": ["a", "b"]}, {"entry_id": {"x": 1}}]
)
async def test_calls_the_schema_refuses(hass: HomeAssistant, data: dict[str, object]) -> None:
    """A missing or malformed entry id is refused by the action's schema, naming the field."""
    assert await async_setup_component(hass, "ems", {})
    with pytest.raises(vol.Invalid) as caught:
        await hass.services.async_call(
            "ems", "setup_energy_dashboard", data, blocking=True, return_response=True
        )
    assert "entry_id" in str(caught.value)
    assert "energy_manager" not in hass.data


def test_other_sources_are_kept_and_ours_replaced() -> None:
    """The user's own sources survive; the hub's earlier ones give way to the new ones."""
    prefix = "ems:hub_"
    foreign_solar = {"type": "solar", "stat_energy_from": "sensor.roof_pv"}
    old_battery = {"type": "battery", "stat_energy_from": "ems:hub_battery_discharge",
                   "stat_energy_to": "ems:hub_battery_charge"}  # fmt: skip
    new_battery = {**old_battery, "stat_energy_from": "ems:hub_battery_discharge"}
    legacy_grid = {
        "type": "grid",
        "flow_from": [
            {"stat_energy_from": "sensor.other_import", "stat_cost": None},
            {"stat_energy_from": "ems:hub_grid_import", "stat_cost": None},
        ],
        "flow_to": [],
        "cost_adjustment_day": 0.0,
    }
    ours_legacy = {
        "type": "grid",
        "flow_from": [
            {"stat_energy_from": "ems:hub_grid_import", "stat_cost": "ems:hub_import_cost"}
        ],
        "flow_to": [{"stat_energy_to": "ems:hub_grid_export", "stat_compensation": None}],
        "cost_adjustment_day": 0.0,
    }  # fmt: skip
    merged = merged_sources([foreign_solar, old_battery, legacy_grid], [ours_legacy, new_battery],
                            prefix)  # fmt: skip
    assert foreign_solar in merged
    assert merged.count(new_battery) == 1
    (grid,) = [s for s in merged if s["type"] == "grid"]
    assert [f["stat_energy_from"] for f in grid["flow_from"]] == [
        "sensor.other_import",
        "ems:hub_grid_import",
    ]
    assert grid["flow_from"][1]["stat_cost"] == "ems:hub_import_cost"
    assert grid["flow_to"] == ours_legacy["flow_to"]


async def _run_site(
    hass: HomeAssistant,
    entry: MockConfigEntry,
    simulator: SiteSimulator,
    clock: TickingDateTimeFactory,
) -> None:
    entry.add_to_hass(hass)
    hass.config_entries.async_update_entry(entry, options=TARIFF)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    for _ in range(20):  # to 10:05: the 09:00 hour is booked and published
        simulator.advance(60)
        clock.tick(timedelta(seconds=60))
        await entry.runtime_data.coordinator.async_refresh()
        await hass.async_block_till_done()


async def _published(hass: HomeAssistant, count: int) -> dict[str, dict[str, object]]:
    """The hub's `ems:` statistics, once the background publish has stored them all."""
    ours: dict[str, dict[str, object]] = {}
    for _ in range(100):
        await hass.async_block_till_done()
        await async_wait_recording_done(hass)
        listed = await get_instance(hass).async_add_executor_job(list_statistic_ids, hass)
        ours = {item["statistic_id"]: item for item in listed if item["source"] == "ems"}
        if len(ours) >= count:
            return ours
    raise AssertionError(f"only {sorted(ours)} published")


async def test_a_hub_that_is_not_running_is_refused(hass: HomeAssistant) -> None:
    assert await async_setup_component(hass, "ems", {})
    stopped = MockConfigEntry(domain="ems", title="gateway", data={"host": "10.0.0.9"})
    stopped.add_to_hass(hass)
    with pytest.raises(ServiceValidationError) as caught:
        await hass.services.async_call(
            "ems", "setup_energy_dashboard", {"entry_id": stopped.entry_id}, blocking=True,
            return_response=True,
        )  # fmt: skip
    assert caught.value.translation_key == "not_loaded"
