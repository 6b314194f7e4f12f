"""Fixtures for tests inside Home Assistant: a real recorder, real config entries."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from unittest.mock import PropertyMock, patch

from homeassistant.const import CONF_HOST, CONF_PORT
from homeassistant.core import HomeAssistant
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

import custom_components.ems  # noqa: F401 - the harness finds custom integrations by import
from custom_components.ems.const import CONF_UNIT_ID, DOMAIN
from simulator import SiteSimulator

GRID_METER_UNIT = 1


@pytest.fixture
async def mock_recorder_before_hass(async_setup_recorder_instance: Any) -> None:
    """The recorder (a dependency of ems) must exist before hass starts."""


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations(recorder_mock: Any, enable_custom_integrations: None) -> None:
    """Let Home Assistant load `custom_components/ems`, with a real recorder, in every test."""


@pytest.fixture
def mock_config_entry(simulator: SiteSimulator) -> MockConfigEntry:
    """A hub entry pointing at the simulator, as the config flow would create it."""
    return MockConfigEntry(
        domain=DOMAIN,
        title=f"127.0.0.1:{simulator.port}",
        unique_id=f"127.0.0.1:{simulator.port}",
        data={CONF_HOST: "127.0.0.1", CONF_PORT: simulator.port, CONF_UNIT_ID: GRID_METER_UNIT},
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
