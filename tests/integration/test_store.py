"""The hub's store: older layouts are migrated on load, a newer one starts afresh."""

from __future__ import annotations

from typing import Any

from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.ems.glue.store import STORAGE_MINOR_VERSION, STORAGE_VERSION, EmsStore

KEY = "ems.entry1"


def _stored(major: int, minor: int, data: dict[str, Any]) -> dict[str, Any]:
    return {"version": major, "minor_version": minor, "key": KEY, "data": data}


async def test_a_1_1_store_loses_its_part_versions(
    hass: HomeAssistant, hass_storage: dict[str, Any]
) -> None:
    """1.1 wrote a "version" into the site's, each device's and each load's state."""
    series = {"production": {"total_kwh": 12.5}}
    hass_storage[KEY] = _stored(
        1,
        1,
        {
            "site": {"version": 1, "series": series},
            "device_energy": {"unit3": {"version": 1, "series": series}},
            "loads": {"unit5": {"version": 1, "runtime_s": 60.0}, "unit6": "garbage"},
            "ledger": {"timestamps": []},
        },
    )
    data = await EmsStore(hass, "entry1").async_load()
    assert data == {
        "site": {"series": series},
        "device_energy": {"unit3": {"series": series}},
        "loads": {"unit5": {"runtime_s": 60.0}, "unit6": "garbage"},
        "ledger": {"timestamps": []},
    }
    # ... and is written back in the current layout.
    assert hass_storage[KEY]["version"] == STORAGE_VERSION
    assert hass_storage[KEY]["minor_version"] == STORAGE_MINOR_VERSION


async def test_a_store_from_a_newer_ems_is_left_alone(
    hass: HomeAssistant,
    hass_storage: dict[str, Any],
    mock_config_entry: MockConfigEntry,
) -> None:
    """Downgraded: the newer layout is not guessed at, nor overwritten; the hub does not
    start, and says why."""
    key = f"ems.{mock_config_entry.entry_id}"
    newer = _stored(STORAGE_VERSION + 1, 1, {"site": {"anything": 1}}) | {"key": key}
    hass_storage[key] = newer
    mock_config_entry.add_to_hass(hass)
    assert not await hass.config_entries.async_setup(mock_config_entry.entry_id)
    assert mock_config_entry.state is ConfigEntryState.SETUP_ERROR
    assert mock_config_entry.reason is not None
    assert "newer version of ems" in mock_config_entry.reason
    assert hass_storage[key] == newer


async def test_the_current_layout_loads_as_it_is(
    hass: HomeAssistant, hass_storage: dict[str, Any]
) -> None:
    """Nothing to migrate."""
    data = {"site": {"series": {}}, "ledger": {"timestamps": [1.0]}}
    hass_storage[KEY] = _stored(STORAGE_VERSION, STORAGE_MINOR_VERSION, data)
    assert await EmsStore(hass, "entry1").async_load() == data
