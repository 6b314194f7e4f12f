"""Fixtures for tests inside Home Assistant: a real recorder, real config entries."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
import logging
from typing import Any
from unittest.mock import PropertyMock, patch

from homeassistant.config_entries import ConfigEntryState
from homeassistant.const import CONF_HOST, CONF_PORT
from homeassistant.core import HomeAssistant
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.components.recorder.common import (
    async_wait_recording_done,
)

import custom_components.ems  # noqa: F401 - the harness finds custom integrations by import
from custom_components.ems.const import (
    CONF_ALLOW_CONTROL,
    CONF_PROFILE,
    CONF_ROLE,
    CONF_UNIT_ID,
    DOMAIN,
    SUBENTRY_DEVICE,
)
from custom_components.ems.coordinator import EmsCoordinator
from simulator import SiteSimulator

GRID_METER_UNIT = 1

# The test plugin logs every SQL statement at INFO; a failing test drowns in it.
logging.getLogger("sqlalchemy.engine").setLevel(logging.WARNING)


@pytest.fixture
async def mock_recorder_before_hass(async_setup_recorder_instance: Any) -> None:
    """The recorder (a dependency of ems) must exist before hass starts."""


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations(recorder_mock: Any, enable_custom_integrations: None) -> None:
    """Let Home Assistant load `custom_components/ems`, with a real recorder, in every test."""


@pytest.fixture(autouse=True)
async def finish_statistics(
    auto_enable_custom_integrations: None, hass: HomeAssistant
) -> AsyncIterator[None]:
    """Let statistics still being published finish before the test's recorder is torn down
    (the harness may close it before Home Assistant stops, with a read still running)."""
    yield
    for entry in hass.config_entries.async_entries(DOMAIN):
        if entry.state is ConfigEntryState.LOADED:
            await async_wait_recording_done(hass)  # commits now, so the publish sees its rows
            await entry.runtime_data.coordinator.async_finish_publishing()


def device_subentry(unit_id: int, profile: str, role: str, title: str) -> dict[str, Any]:
    """A device subentry as the subentry flow stores it."""
    return {
        "subentry_type": SUBENTRY_DEVICE,
        "title": title,
        "unique_id": str(unit_id),
        "data": {CONF_UNIT_ID: unit_id, CONF_PROFILE: profile, CONF_ROLE: role},
    }


@pytest.fixture
def mock_config_entry(simulator: SiteSimulator) -> MockConfigEntry:
    """A hub entry with the grid meter, as the config flow would create it."""
    return MockConfigEntry(
        domain=DOMAIN,
        version=2,
        title=f"127.0.0.1:{simulator.port}",
        unique_id=f"127.0.0.1:{simulator.port}",
        data={CONF_HOST: "127.0.0.1", CONF_PORT: simulator.port},
        subentries_data=[
            device_subentry(GRID_METER_UNIT, "eastron_sdm630", "grid", "SDM630 (unit 1)")
        ],
    )


@pytest.fixture
async def init_integration(
    hass: HomeAssistant, mock_config_entry: MockConfigEntry
) -> MockConfigEntry:
    """The hub entry, set up and polled once."""
    mock_config_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(mock_config_entry.entry_id)
    await hass.async_block_till_done()
    return mock_config_entry


@pytest.fixture
def entity_registry_enabled_by_default() -> Iterator[None]:
    """Create every entity enabled, including those a user has to switch on (as HA core does)."""
    with patch(
        "homeassistant.helpers.entity.Entity.entity_registry_enabled_default",
        new_callable=PropertyMock,
        return_value=True,
    ):
        yield


@pytest.fixture
def site_entry(simulator: SiteSimulator) -> MockConfigEntry:
    """The whole simulated site on one hub, with the stored SunSpec chains."""

    def sunspec(unit_id: int, role: str, title: str, chain: list[list[int]]) -> dict[str, object]:
        subentry = device_subentry(unit_id, "sunspec", role, title)
        subentry["data"] = {**subentry["data"], "sunspec_models": chain}  # type: ignore[dict-item]
        return subentry

    return MockConfigEntry(
        domain="ems",
        version=2,
        title="site",
        unique_id=f"127.0.0.1:{simulator.port}",
        data={"host": "127.0.0.1", "port": simulator.port},
        subentries_data=[
            device_subentry(1, "eastron_sdm630", "grid", "Grid meter"),
            sunspec(2, "production", "PV inverter", [[1, 40002, 66], [103, 40070, 50]]),
            sunspec(3, "battery", "Battery", [[1, 40002, 66], [124, 40070, 24], [802, 40096, 62]]),
            sunspec(4, "submeter", "PV meter", [[1, 50002, 66], [203, 50070, 105]]),
            device_subentry(5, "eastron_sdm120", "load", "Heat pump"),
        ],
    )


async def start_site(
    hass: HomeAssistant,
    entry: MockConfigEntry,
    simulator: SiteSimulator,
    *,
    hours: float = 2.0,
    allow_control: bool = True,
) -> EmsCoordinator:
    """Move the site's clock on (to daylight, say), then set up the hub with battery control
    allowed or not."""
    simulator.advance(hours * 3600)
    entry.add_to_hass(hass)
    hass.config_entries.async_update_entry(entry, options={CONF_ALLOW_CONTROL: allow_control})
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    coordinator: EmsCoordinator = entry.runtime_data.coordinator
    return coordinator


async def run_cycles(
    hass: HomeAssistant,
    coordinator: EmsCoordinator,
    simulator: SiteSimulator,
    count: int,
    *,
    seconds: float = 10.0,
) -> None:
    """`count` cycles, the site moving `seconds` before each."""
    for _ in range(count):
        simulator.advance(seconds)
        await coordinator.async_refresh()
        await hass.async_block_till_done()
