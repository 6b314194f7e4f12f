"""Vendor tests run as the integration tests do: a real recorder, real config entries, the
custom integration enabled, and the simulator over a socket."""

from tests.integration.conftest import (
    auto_enable_custom_integrations,
    entity_registry_enabled_by_default,
    finish_statistics,
    mock_recorder_before_hass,
)

__all__ = [
    "auto_enable_custom_integrations",
    "entity_registry_enabled_by_default",
    "finish_statistics",
    "mock_recorder_before_hass",
]
