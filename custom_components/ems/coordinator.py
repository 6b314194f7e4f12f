"""One coordinator per hub: it runs the cycle poll → decode → clean → normalize."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
import logging
import time

from homeassistant.config_entries import ConfigEntry
from homeassistant.core import HomeAssistant
from homeassistant.helpers.update_coordinator import DataUpdateCoordinator, UpdateFailed
from homeassistant.util import dt as dt_util

from .const import CONF_UNIT_ID, DOMAIN, SLOW_POLL_EVERY, SUBENTRY_DEVICE
from .modbus import (
    ModbusErrorKind,
    ModbusHub,
    PlanHealth,
    PlannedChannel,
    ReadBlock,
    RegisterImage,
    build_read_plan,
    read_plan,
)
from .model import CycleStats, Device, PollGroup, SiteSnapshot
from .pipeline import SitePipeline

_LOGGER = logging.getLogger(__name__)


@dataclass(kw_only=True, slots=True)
class EmsRuntimeData:
    """What a loaded hub entry holds."""

    coordinator: EmsCoordinator


type EmsConfigEntry = ConfigEntry[EmsRuntimeData]


class EmsCoordinator(DataUpdateCoordinator[SiteSnapshot]):
    """Polls every device of one hub and keeps their cleaned, normalized readings."""

    config_entry: EmsConfigEntry

    def __init__(
        self,
        hass: HomeAssistant,
        entry: EmsConfigEntry,
        hub: ModbusHub,
        devices: list[Device],
        *,
        max_read: int,
        max_gap: int,
        scan_interval: timedelta,
    ) -> None:
        """Plan the reads once; the plan only changes when the devices do."""
        super().__init__(
            hass,
            _LOGGER,
            config_entry=entry,
            name=f"{DOMAIN} {hub.describe()}",
            update_interval=scan_interval,
        )
        self.hub = hub
        self.devices = {device.id: device for device in devices}
        self.health = PlanHealth()
        self._max_read, self._max_gap = max_read, max_gap
        self._replan()
        self._slow_image: RegisterImage = {}
        self._cycle = 0
        self.pipeline = SitePipeline(devices=self.devices)
        self._offline: set[str] = set()

    def devices_by_subentry(self, entry: EmsConfigEntry) -> dict[str, Device]:
        """Each device with the id of the subentry that configures it."""
        by_unit = {device.unit_id: device for device in self.devices.values()}
        return {
            subentry_id: by_unit[int(subentry.data[CONF_UNIT_ID])]
            for subentry_id, subentry in entry.subentries.items()
            if subentry.subentry_type == SUBENTRY_DEVICE
            and int(subentry.data[CONF_UNIT_ID]) in by_unit
        }

    def _replan(self) -> None:
        max_read = min(self._max_read, self.health.max_read_cap or self._max_read)
        self._fast_plan = self._plan(PollGroup.FAST, max_read, self._max_gap)
        self._slow_plan = self._plan(PollGroup.SLOW, max_read, self._max_gap)
        self._planned_max_read = max_read

    @property
    def read_plan(self) -> list[ReadBlock]:
        """The requests of a full cycle (fast and slow group)."""
        return [*self._fast_plan, *self._slow_plan]

    def _plan(self, group: PollGroup, max_read: int, max_gap: int) -> list[ReadBlock]:
        return build_read_plan(
            (
                PlannedChannel(unit_id=device.unit_id, spec=spec)
                for device in self.devices.values()
                for spec in device.profile.channels
                if spec.poll is group
            ),
            max_read=max_read,
            max_gap=max_gap,
        )

    async def _async_update_data(self) -> SiteSnapshot:
        started = time.perf_counter()
        slow_due = self._cycle % SLOW_POLL_EVERY == 0
        fast = await read_plan(self.hub, self._fast_plan, self.health, time.monotonic())
        failed = fast.failed_blocks
        if not fast.image and any(e.kind is ModbusErrorKind.CONNECTION for _, e in failed):
            raise UpdateFailed(
                translation_domain=DOMAIN,
                translation_key="cannot_connect",
                translation_placeholders={"hub": self.hub.describe()},
            )
        requests = fast.requests
        if slow_due:
            slow = await read_plan(self.hub, self._slow_plan, self.health, time.monotonic())
            _overlay(self._slow_image, slow.image)
            requests += slow.requests
            failed = failed + slow.failed_blocks
        self._cycle += 1
        if (self.health.max_read_cap or self._max_read) < self._planned_max_read:
            _LOGGER.info(
                "%s refuses long requests; reading at most %s registers at a time",
                self.hub.describe(),
                self.health.max_read_cap,
            )
            self._replan()
        image: RegisterImage = {key: dict(table) for key, table in self._slow_image.items()}
        _overlay(image, fast.image)
        timestamp = dt_util.utcnow()
        states = self.pipeline.process(image, timestamp)
        for device in self.devices.values():
            self._log_transition(device, online=states[device.id].online)
        stats = CycleStats(
            requests=requests,
            failed_requests=len(failed),
            duration_s=time.perf_counter() - started,
            quarantined=tuple(sorted(self.health.quarantined)),
        )
        return SiteSnapshot(timestamp=timestamp, devices=states, stats=stats)

    def _log_transition(self, device: Device, *, online: bool) -> None:
        """Log once when a device is lost and once when it is back."""
        if not online and device.id not in self._offline:
            self._offline.add(device.id)
            _LOGGER.warning("%s (unit %s) stopped answering", device.name, device.unit_id)
        elif online and device.id in self._offline:
            self._offline.discard(device.id)
            _LOGGER.info("%s (unit %s) is answering again", device.name, device.unit_id)


def _overlay(image: RegisterImage, update: RegisterImage) -> None:
    for key, table in update.items():
        image.setdefault(key, {}).update(table)
