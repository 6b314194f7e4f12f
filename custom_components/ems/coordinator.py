"""One coordinator per hub: it reads what is due, hands it to the engine's cycle, and carries
out what the cycle asks (battery writes, statistics, repair issues)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, replace
from datetime import timedelta
import logging
import time

from homeassistant.config_entries import ConfigEntry
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import ConfigEntryError
from homeassistant.helpers.update_coordinator import DataUpdateCoordinator, UpdateFailed
from homeassistant.util import dt as dt_util

from .compat import STORE_TOO_NEW_ERRORS
from .const import CONF_UNIT_ID, DOMAIN, SUBENTRY_DEVICE
from .engine.books.ledger import EnergyLedger
from .engine.control.battery import FAILURES_BEFORE_REPAIR, BatteryControl, WriteFailedError
from .engine.cycle import CycleOutcome, Pricing, SiteCycle, SiteSnapshot
from .engine.identities import DeviceIdentities
from .engine.modbus.plan import ReadBlock
from .engine.modbus.poll import PlanHealth, read_plan
from .engine.modbus.schedule import ReadSchedule
from .engine.modbus.transport import ModbusErrorKind, ModbusHub
from .engine.model import Device
from .engine.pipeline import SitePipeline
from .glue.issues import (
    clear_identity_issue,
    clear_write_failed_issue,
    raise_write_failed_issue,
    report_identity,
)
from .glue.prices import PriceSampler
from .glue.statistics import async_publish_hours, statistics_hub, stop_waiting_for_commits
from .glue.store import EmsStore, StoreFromNewerVersionError

_LOGGER = logging.getLogger(__name__)


# Counter baselines are written at most this often; a restart loses less than one interval
# of bookkeeping, never energy (the counters themselves live in the devices).
SAVE_DELAY_S = 60
# How long stopping Home Assistant or unloading the hub waits for a statistics publish.
PUBLISH_GRACE_S = 10.0
# A store this ems cannot read (written by a newer one): the hub does not start on it.
_STORE_REFUSED: tuple[type[Exception], ...] = (StoreFromNewerVersionError, *STORE_TOO_NEW_ERRORS)


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
        allow_control: bool = False,
    ) -> None:
        """Set up the engine's cycle for the hub's devices."""
        super().__init__(
            hass,
            _LOGGER,
            config_entry=entry,
            name=f"{DOMAIN} {hub.describe()}",
            update_interval=scan_interval,
        )
        self.hub = hub
        self.devices = {device.id: device for device in devices}
        self.allow_control = allow_control
        # The device reverts by itself if ems falls silent for three cycles (at least a minute);
        # each recipe caps it at what its device takes.
        revert_s = max(60, round(3 * scan_interval.total_seconds()))
        self.cycle = SiteCycle(
            self.devices,
            reads=ReadSchedule(
                devices=self.devices, hub_name=hub.describe(), max_read=max_read, max_gap=max_gap
            ),
            control=BatteryControl(hub=hub, devices=self.devices, revert_s=revert_s),
            tz=dt_util.get_default_time_zone(),
            allow_control=allow_control,
        )
        self.store = EmsStore(hass, entry.entry_id)
        self.prices = PriceSampler(hass, self.name)
        self._publishing: set[asyncio.Task[None]] = set()

    @property
    def control(self) -> BatteryControl:
        """The batteries' commands, limits and write results."""
        return self.cycle.control

    @property
    def ledger(self) -> EnergyLedger:
        """The site's books."""
        return self.cycle.ledger

    @property
    def pipeline(self) -> SitePipeline:
        """The devices' readings, counter guards and site sums."""
        return self.cycle.pipeline

    @property
    def health(self) -> PlanHealth:
        """Quarantined registers and the gateway's request limit, as the hub found them."""
        return self.cycle.reads.health

    @property
    def identities(self) -> DeviceIdentities:
        """The serial behind each unit id."""
        return self.cycle.identities

    @property
    def read_plan(self) -> list[ReadBlock]:
        """The requests of a cycle that reads every channel, the slow group included."""
        return list(self.cycle.reads.full_plan)

    def devices_by_subentry(self, entry: EmsConfigEntry) -> list[tuple[str, Device]]:
        """Each device with the id of the subentry that configures it (a SunSpec chain's
        logical devices all belong to the subentry of their unit id)."""
        units = {
            int(subentry.data[CONF_UNIT_ID]): subentry_id
            for subentry_id, subentry in entry.subentries.items()
            if subentry.subentry_type == SUBENTRY_DEVICE
        }
        return [
            (units[device.unit_id], device)
            for device in self.devices.values()
            if device.unit_id in units
        ]

    def batteries_by_subentry(self, entry: EmsConfigEntry) -> list[tuple[str, Device]]:
        """The batteries ems can steer, with the id of the subentry that configures each."""
        return [
            (subentry_id, device)
            for subentry_id, device in self.devices_by_subentry(entry)
            if device.id in self.control.states
        ]

    async def async_restore(self) -> None:
        """Resume counter baselines, totals, battery settings and serials from the last run."""
        try:
            data = await self.store.async_load()
        except _STORE_REFUSED as err:
            raise ConfigEntryError(
                translation_domain=DOMAIN,
                translation_key="store_from_newer_version",
                translation_placeholders={"file": self.store.key},
            ) from err
        if isinstance(data, dict):
            for device_id in self.cycle.restore(data):
                clear_identity_issue(self.hass, self.config_entry.entry_id, device_id)

    async def async_persist(self) -> None:
        """Write the engine's state now (on unload)."""
        await self.store.async_save(self.cycle.state_dict())

    async def _async_update_data(self) -> SiteSnapshot:
        started = time.perf_counter()
        result = await read_plan(self.hub, self.cycle.reads.due(), self.health, time.monotonic())
        if not result.image and any(
            err.kind is ModbusErrorKind.CONNECTION for _, err in result.failed_blocks
        ):
            raise UpdateFailed(
                translation_domain=DOMAIN,
                translation_key="cannot_connect",
                translation_placeholders={"hub": self.hub.describe()},
            )
        outcome = self.cycle.run(result, dt_util.utcnow(), self._pricing())
        self.store.async_delay_save(self.cycle.state_dict, SAVE_DELAY_S)
        await self._write(outcome)
        self._publish(outcome)
        for report in outcome.identities:
            report_identity(self.hass, self.config_entry.entry_id, report)
        snapshot = outcome.snapshot
        # The cycle's time is the hub's, its reads and writes included; the batteries are
        # shown as the writes left them.
        return replace(
            snapshot,
            stats=replace(snapshot.stats, duration_s=time.perf_counter() - started),
            batteries=self.control.reports(),
        )

    def _pricing(self) -> Pricing:
        options = self.config_entry.options
        self.prices.sample(options, time.time())
        tariff, emissions = self.prices.pricing(options, self.hass.config.currency)
        return Pricing(
            tariff=tariff, emissions=emissions, reprice_from=self.prices.take_reprice_from()
        )

    async def _write(self, outcome: CycleOutcome) -> None:
        """The batteries' writes; a failed one never stops the cycle, three in a row ask the
        user to look."""
        for writes in outcome.writes:
            device = writes.device
            battery = self.control.states[device.id]
            try:
                await self.control.apply(writes)
            except WriteFailedError as err:
                if battery.failures_in_a_row >= FAILURES_BEFORE_REPAIR:
                    # A command the device keeps refusing is over: the battery must not stay
                    # in a forced mode that ems can no longer keep or change.
                    await self.control.release_one(device)
                    raise_write_failed_issue(self.hass, device, err.key)
                continue
            if battery.last_result == "ok":
                clear_write_failed_issue(self.hass, device)

    def _publish(self, outcome: CycleOutcome) -> None:
        """Hand the settled hours to the statistics, in the background."""
        if not outcome.settled:
            return
        task = self.config_entry.async_create_background_task(
            self.hass,
            async_publish_hours(self.hass, self.config_entry, list(outcome.settled)),
            name=f"{DOMAIN} statistics {self.config_entry.entry_id}",
        )
        self._publishing.add(task)
        task.add_done_callback(self._publishing.discard)

    async def async_finish_publishing(self) -> None:
        """Let statistics being written finish (bounded), before the recorder closes: a task
        cancelled in the middle of a database read can crash SQLite at shutdown. They stop
        waiting for the recorder to confirm (it writes what it has queued before it closes);
        the next start resumes from what is stored."""
        if self._publishing:
            hub = statistics_hub(self.config_entry)
            with stop_waiting_for_commits(self.hass, hub):
                await asyncio.wait(self._publishing, timeout=PUBLISH_GRACE_S)

    async def async_apply_control(self, device: Device) -> None:
        """Apply a new command now, on the latest readings, instead of at the next cycle.

        Raises `WriteFailedError` so that the action that asked sees the failure.
        """
        state = self.data.devices[device.id]
        grid = self.data.site.power_w["grid"] if self.data.site else None
        try:
            await self.control.run_now(device, state, grid, time.time())
        finally:
            self.data = replace(self.data, batteries=self.control.reports())
            self.async_update_listeners()
