"""Repair issues: where the user must act, each with a translated explanation.

The issues are raised and cleared here; `repairs.py` is Home Assistant's repairs platform,
the fix flow of the one issue a user resolves from the dialog (a replaced device).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from homeassistant.config_entries import ConfigSubentry
from homeassistant.core import HomeAssistant
from homeassistant.helpers import issue_registry as ir

from ..compat import ISSUES_BELONG_TO_ENTRIES
from ..const import CONF_PROFILE, DOMAIN
from ..engine.identities import IdentityReport
from ..engine.model import Device
from ..engine.profiles.loader import ProfileError

PROFILE_ERROR = "profile_error"
DEVICE_REPLACED = "device_replaced"


def _create_issue(
    hass: HomeAssistant, issue_id: str, *, entry_id: str | None, **details: Any
) -> None:
    if entry_id is not None and ISSUES_BELONG_TO_ENTRIES:
        details["config_entry_id"] = entry_id
    ir.async_create_issue(hass, DOMAIN, issue_id, **details)


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


def raise_profile_missing_issue(
    hass: HomeAssistant, entry_id: str, subentry: ConfigSubentry
) -> None:
    """A device's profile is not in the catalogue any more: the device is left out."""
    _create_issue(
        hass,
        f"profile_missing_{subentry.subentry_id}",
        entry_id=entry_id,
        is_fixable=False,
        severity=ir.IssueSeverity.ERROR,
        translation_key="profile_missing",
        translation_placeholders={"device": subentry.title, "profile": subentry.data[CONF_PROFILE]},
    )


def clear_profile_missing_issue(hass: HomeAssistant, subentry: ConfigSubentry) -> None:
    """The device's profile loads (again)."""
    ir.async_delete_issue(hass, DOMAIN, f"profile_missing_{subentry.subentry_id}")


def report_profile_errors(hass: HomeAssistant, errors: Iterable[ProfileError]) -> None:
    """One issue per user profile file that does not load; a file that loads again loses its.

    Profiles serve every hub, so these issues belong to no entry.
    """
    problems: dict[str, list[str]] = {}
    for error in errors:
        # The file is a placeholder of its own; the rest says where in it and what is wrong.
        problem = str(error).removeprefix(error.file).lstrip(",: ")
        problems.setdefault(error.file, []).append(problem)
    prefix = f"{PROFILE_ERROR}_"
    for domain, issue_id in list(ir.async_get(hass).issues):
        if (
            domain == DOMAIN
            and issue_id.startswith(prefix)
            and issue_id.removeprefix(prefix) not in problems
        ):
            ir.async_delete_issue(hass, DOMAIN, issue_id)
    for file, texts in problems.items():
        _create_issue(
            hass,
            f"{prefix}{file}",
            entry_id=None,
            is_fixable=False,
            severity=ir.IssueSeverity.WARNING,
            translation_key=PROFILE_ERROR,
            translation_placeholders={"file": file, "problem": "; ".join(texts)},
        )


def device_replaced_issue_id(entry_id: str, device_id: str) -> str:
    """The issue of one device of one hub entry (the fix flow finds both in its data)."""
    return f"{DEVICE_REPLACED}_{entry_id}_{device_id}"


def report_identity(hass: HomeAssistant, entry_id: str, report: IdentityReport) -> None:
    """Ask the user to confirm a replaced device; the original device back clears it."""
    device = report.device
    issue_id = device_replaced_issue_id(entry_id, device.id)
    if not report.replaced:
        ir.async_delete_issue(hass, DOMAIN, issue_id)
        return
    _create_issue(
        hass,
        issue_id,
        entry_id=entry_id,
        data={"entry_id": entry_id, "device_id": device.id},
        is_fixable=True,
        is_persistent=False,
        severity=ir.IssueSeverity.WARNING,
        translation_key=DEVICE_REPLACED,
        translation_placeholders={
            "device": device.name,
            "unit": str(device.unit_id),
            "old_serial": report.known,
            "new_serial": report.seen,
        },
    )


def clear_identity_issue(hass: HomeAssistant, entry_id: str, device_id: str) -> None:
    """The user confirmed the device, or it left the hub."""
    ir.async_delete_issue(hass, DOMAIN, device_replaced_issue_id(entry_id, device_id))
