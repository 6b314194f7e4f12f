"""Which device answers at each unit id: the serial number it reports, read every slow cycle.

A new serial at a unit id means the device was swapped. Its counters start from its own
level, so the pipeline re-bases them, and the user is asked to confirm the new device until
they do. The serials survive restarts through `state_dict()`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from .modbus.codec import decode_channel
from .modbus.plan import RegisterImage
from .model import Device

SERIAL_CHANNEL = "SerialNumber"


def reported_serial(device: Device, image: RegisterImage) -> str | None:
    """The serial number the device's registers hold in `image`, if its profile reads one."""
    try:
        spec = device.profile.channel(SERIAL_CHANNEL)
    except KeyError:
        return None
    value = decode_channel(spec, device.unit_id, image)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = "" if value is None else str(value).strip()
    # A device still starting up may answer zeros: that identifies nothing.
    return text if text.strip("0") else None


@dataclass(kw_only=True, slots=True)
class _Identity:
    # The serial the user knows: the first one read, or the one they confirmed last.
    known: str
    # The serial read last.
    seen: str


@dataclass(frozen=True, kw_only=True, slots=True)
class IdentityReport:
    """What the user should be told about one device: replaced (known != seen), or not."""

    device: Device
    known: str
    seen: str

    @property
    def replaced(self) -> bool:
        """Another device answers than the one the user knows."""
        return self.seen != self.known


@dataclass(frozen=True, kw_only=True, slots=True)
class Observation:
    """One device's serial this cycle: whether it changed, and what to tell the user."""

    swapped: bool = False
    report: IdentityReport | None = None


@dataclass(kw_only=True)
class DeviceIdentities:
    """The serial behind each unit id of a hub, as last read and as the user knows it."""

    _identities: dict[str, _Identity] = field(default_factory=dict)
    # Devices reported since start: a report restored with the store is given again once.
    _reported: set[str] = field(default_factory=set)

    def observe(self, device: Device, serial: str | None) -> Observation:
        """Take the serial read now."""
        if serial is None:
            return Observation()
        identity = self._identities.get(device.id)
        if identity is None:
            self._identities[device.id] = _Identity(known=serial, seen=serial)
            return Observation()
        swapped = serial != identity.seen
        identity.seen = serial
        if not swapped and device.id in self._reported:
            return Observation()
        self._reported.add(device.id)
        report = IdentityReport(device=device, known=identity.known, seen=identity.seen)
        return Observation(swapped=swapped, report=report)

    def accept(self, device_id: str) -> str | None:
        """The user confirmed the device now answering; return its serial."""
        identity = self._identities.get(device_id)
        if identity is None:
            return None
        identity.known = identity.seen
        return identity.seen

    def state_dict(self) -> dict[str, dict[str, str]]:
        """What to store: both serials of every device."""
        return {
            device_id: {"known": identity.known, "seen": identity.seen}
            for device_id, identity in self._identities.items()
        }

    def restore(self, data: object, devices: Mapping[str, Device]) -> list[str]:
        """Resume from `state_dict()`; return the stored devices that left the hub."""
        if not isinstance(data, Mapping):
            return []
        gone: list[str] = []
        for device_id, saved in data.items():
            if device_id not in devices:
                gone.append(str(device_id))
            elif isinstance(saved, Mapping) and all(
                isinstance(saved.get(key), str) for key in ("known", "seen")
            ):
                self._identities[device_id] = _Identity(known=saved["known"], seen=saved["seen"])
        return gone
