"""Repair issues: where the user must act, with a translated explanation.

Also Home Assistant's `repairs` platform: a replaced device is confirmed through a fix flow.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from homeassistant.components.repairs import ConfirmRepairFlow, RepairsFlow
from homeassistant.config_entries import ConfigEntryState, ConfigSubentry
from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr, issue_registry as ir

from .compat import ISSUES_BELONG_TO_ENTRIES, device_by_identifier
from .const import CONF_PROFILE, DOMAIN
from .devices import device_identifier
from .model import Device
from .profiles import ProfileError

if TYPE_CHECKING:
    from .coordinator import EmsConfigEntry

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


@dataclass(kw_only=True, slots=True)
class _Identity:
    # The serial the user knows: the first one read, or the one they confirmed last.
    known: str
    # The serial read last.
    seen: str


class DeviceIdentities:
    """The serial number behind each unit id of a hub, as last read and as the user knows it.

    A new serial at a unit id means the device was swapped. Its counters start from its own
    level, which the caller must re-base, and the user is asked to confirm the new device
    (a repair issue) until they do; it survives restarts through `state_dict()`.
    """

    def __init__(self, hass: HomeAssistant, entry_id: str) -> None:
        """Track the devices of one hub entry."""
        self._hass = hass
        self._entry_id = entry_id
        self._identities: dict[str, _Identity] = {}
        # Devices whose issue was raised or cleared since start: a restored issue is only
        # shown again once something re-creates it.
        self._reported: set[str] = set()

    def observe(self, device: Device, serial: str | None) -> bool:
        """Take the serial read now; True when it differs from the previous reading."""
        if serial is None:
            return False
        identity = self._identities.get(device.id)
        if identity is None:
            self._identities[device.id] = _Identity(known=serial, seen=serial)
            return False
        swapped = serial != identity.seen
        identity.seen = serial
        if swapped or device.id not in self._reported:
            self._report(device, identity)
        return swapped

    def accept(self, device_id: str) -> str | None:
        """The user confirmed the device now answering; return its serial."""
        identity = self._identities.get(device_id)
        if identity is None:
            return None
        identity.known = identity.seen
        ir.async_delete_issue(self._hass, DOMAIN, self._issue_id(device_id))
        return identity.seen

    def _report(self, device: Device, identity: _Identity) -> None:
        self._reported.add(device.id)
        issue_id = self._issue_id(device.id)
        if identity.seen == identity.known:  # the original device is back
            ir.async_delete_issue(self._hass, DOMAIN, issue_id)
            return
        _create_issue(
            self._hass,
            issue_id,
            entry_id=self._entry_id,
            data={"entry_id": self._entry_id, "device_id": device.id},
            is_fixable=True,
            is_persistent=False,
            severity=ir.IssueSeverity.WARNING,
            translation_key=DEVICE_REPLACED,
            translation_placeholders={
                "device": device.name,
                "unit": str(device.unit_id),
                "old_serial": identity.known,
                "new_serial": identity.seen,
            },
        )

    def _issue_id(self, device_id: str) -> str:
        return f"{DEVICE_REPLACED}_{self._entry_id}_{device_id}"

    def state_dict(self) -> dict[str, dict[str, str]]:
        """What to store: both serials of every device."""
        return {
            device_id: {"known": identity.known, "seen": identity.seen}
            for device_id, identity in self._identities.items()
        }

    def restore(self, data: object, devices: Mapping[str, Device]) -> None:
        """Resume from `state_dict()`; a device that left the hub takes its issue along."""
        if not isinstance(data, Mapping):
            return
        for device_id, saved in data.items():
            if device_id not in devices:
                ir.async_delete_issue(self._hass, DOMAIN, self._issue_id(str(device_id)))
                continue
            if isinstance(saved, Mapping) and all(
                isinstance(saved.get(key), str) for key in ("known", "seen")
            ):
                self._identities[device_id] = _Identity(known=saved["known"], seen=saved["seen"])


class DeviceReplacedRepairFlow(ConfirmRepairFlow):
    """The user confirms the new device; its serial becomes the one ems expects."""

    # The result type was renamed (FlowResult, then RepairsFlowResult): Any fits both releases.
    async def async_step_confirm(self, user_input: dict[str, str] | None = None) -> Any:
        """Show the old and new serials; on submit, accept the new one."""
        about = self.data or {}
        if user_input is not None and not await _async_accept(
            self.hass, str(about.get("entry_id")), str(about.get("device_id"))
        ):
            return self.async_abort(reason="not_loaded")
        return await super().async_step_confirm(user_input)


async def _async_accept(hass: HomeAssistant, entry_id: str, device_id: str) -> bool:
    """Accept the device's new serial, show it on the device page and store it now."""
    entry: EmsConfigEntry | None = hass.config_entries.async_get_entry(entry_id)
    if entry is None or entry.state is not ConfigEntryState.LOADED:
        return False
    coordinator = entry.runtime_data.coordinator
    serial = coordinator.identities.accept(device_id)
    if serial is not None and (
        registry_device := device_by_identifier(
            hass, device_identifier(entry_id, device_id), entry_id
        )
    ):
        dr.async_get(hass).async_update_device(registry_device.id, serial_number=serial)
    await coordinator.async_persist()
    return True


async def async_create_fix_flow(
    hass: HomeAssistant, issue_id: str, data: dict[str, str | int | float | None] | None
) -> RepairsFlow:
    """The flow that fixes one of ems's fixable issues (only a replaced device is fixable)."""
    if issue_id.startswith(DEVICE_REPLACED):
        return DeviceReplacedRepairFlow()
    return ConfirmRepairFlow()
