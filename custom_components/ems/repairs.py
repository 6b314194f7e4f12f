"""Repair issues: where the user must act, with a translated explanation."""

from __future__ import annotations

from homeassistant.core import HomeAssistant
from homeassistant.helpers import issue_registry as ir

from .const import DOMAIN
from .model import Device


def raise_write_failed_issue(hass: HomeAssistant, device: Device, key: str) -> None:
    """Battery commands keep failing: the device refuses or does not keep what is written."""
    ir.async_create_issue(
        hass,
        DOMAIN,
        f"write_failed_{device.id}",
        is_fixable=False,
        severity=ir.IssueSeverity.ERROR,
        translation_key="write_failed",
        translation_placeholders={"device": device.name, "register": key},
    )


def clear_write_failed_issue(hass: HomeAssistant, device: Device) -> None:
    """Writes take again."""
    ir.async_delete_issue(hass, DOMAIN, f"write_failed_{device.id}")
