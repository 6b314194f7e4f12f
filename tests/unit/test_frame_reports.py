"""The guard that fails a test on Home Assistant's deprecation reports about ems."""

from __future__ import annotations

import logging

import pytest

from tests.conftest import _FrameReports


def _record(message: str) -> logging.LogRecord:
    return logging.LogRecord(
        "homeassistant.helpers.frame", logging.WARNING, "", 0, message, (), None
    )


@pytest.mark.parametrize(
    "message",
    [
        (
            "Detected that custom integration 'ems' calls `device_registry.async_get_device`,"
            " which is deprecated at custom_components/ems/repairs.py, line 228: ..."
        ),
        (
            "Detected blocking call to open with args ('x',) inside the event loop by custom"
            " integration 'ems' at custom_components/ems/profiles/__init__.py, line 40: ..."
        ),
    ],
)
def test_reports_about_ems_are_caught(message: str) -> None:
    catcher = _FrameReports()
    catcher.emit(_record(message))
    assert catcher.reports == [message]


@pytest.mark.parametrize(
    "message",
    [
        "Detected that custom integration 'other' calls `device_registry.async_get_device`",
        "We found a custom integration ems which has not been tested by Home Assistant.",
    ],
)
def test_other_messages_pass(message: str) -> None:
    catcher = _FrameReports()
    catcher.emit(_record(message))
    assert catcher.reports == []
