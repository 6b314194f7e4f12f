"""The cycle after the reads: decode → assess → normalize → counter guard → hold.

Pure (no Home Assistant): the coordinator hands in the register image of one cycle and gets
back what entities show. Everything that must survive a restart is in `state_dict()`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .cleaning import assess
from .modbus import RegisterImage, decode_channel, was_read
from .model import Device, DeviceState, PollGroup, Quality, Reading
from .normalization import normalize

# A held value older than this many cycles is stale: its entity shows no value.
STALE_AFTER_CYCLES = 3


@dataclass(kw_only=True, slots=True)
class _Held:
    cycle: int
    reading: Reading


@dataclass(kw_only=True)
class SitePipeline:
    """Turns each cycle's register image into cleaned, normalized device states."""

    devices: Mapping[str, Device]
    cycle: int = 0
    rejections: Counter[tuple[str, str]] = field(default_factory=Counter)
    _held: dict[tuple[str, str], _Held] = field(default_factory=dict)

    def process(self, image: RegisterImage, timestamp: datetime) -> dict[str, DeviceState]:
        """One cycle: every device's readings, and whether it answered at all."""
        self.cycle += 1
        return {
            device.id: self._device_state(device, image, timestamp)
            for device in self.devices.values()
        }

    def _device_state(
        self, device: Device, image: RegisterImage, timestamp: datetime
    ) -> DeviceState:
        readings: dict[str, Reading] = {}
        answered = False
        for spec in device.profile.channels:
            read = was_read(spec, device.unit_id, image)
            answered |= read and spec.poll is PollGroup.FAST
            decoded = decode_channel(spec, device.unit_id, image)
            reading = normalize(
                assess(device.id, spec, decoded, was_read=read, timestamp=timestamp)
            )
            self._count(reading)
            readings[spec.key] = self._hold(reading)
        return DeviceState(online=answered, readings=readings)

    def _count(self, reading: Reading) -> None:
        if reading.quality is Quality.REJECTED and reading.reason:
            self.rejections[(reading.device_id, reading.reason)] += 1

    def _hold(self, reading: Reading) -> Reading:
        """Show the last usable value for a few cycles instead of a rejected or missing one."""
        key = (reading.device_id, reading.channel)
        if reading.usable:
            self._held[key] = _Held(cycle=self.cycle, reading=reading)
            return reading
        held = self._held.get(key)
        if held is not None and self.cycle - held.cycle < STALE_AFTER_CYCLES:
            return held.reading
        return reading

    def rejections_of(self, device_id: str) -> dict[str, int]:
        """Rejected readings of one device, by reason, since the hub started."""
        return {
            reason: count
            for (device, reason), count in sorted(self.rejections.items())
            if device == device_id
        }

    def state_dict(self) -> dict[str, Any]:
        """What must survive a restart."""
        return {"rejections": [[d, r, n] for (d, r), n in self.rejections.items()]}

    def restore(self, data: Mapping[str, Any]) -> None:
        """Resume from `state_dict()`; anything unreadable is ignored, never fatal."""
        self.rejections = Counter(
            {(str(d), str(r)): int(n) for d, r, n in _rows(data.get("rejections"))}
        )


def _rows(value: object) -> Iterable[tuple[object, object, Any]]:
    if not isinstance(value, list):
        return []
    return [
        (row[0], row[1], row[2])
        for row in value
        if isinstance(row, list) and len(row) == 3 and isinstance(row[2], int)
    ]
