"""One coordinator per hub: it runs the cycle poll → decode → clean → normalize."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime, timedelta
import logging
import math
import time
from typing import Any

from homeassistant.config_entries import ConfigEntry
from homeassistant.core import HomeAssistant
from homeassistant.helpers.storage import Store
from homeassistant.helpers.update_coordinator import DataUpdateCoordinator, UpdateFailed
from homeassistant.util import dt as dt_util

from .aggregation import CurrentRates, Emissions, Period, Tariff, current_rates
from .battery import FAILURES_BEFORE_REPAIR, BatteryControl, WriteFailedError
from .const import CONF_UNIT_ID, DOMAIN, SLOW_POLL_EVERY, SUBENTRY_DEVICE
from .control import MAX_REVERT_S
from .devices import reported_serial
from .ledger import EnergyLedger
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
from .model import CycleStats, Device, DeviceState, PollGroup, SiteSnapshot, SiteState
from .pipeline import GRID_SERIES, SitePipeline
from .repairs import DeviceIdentities, clear_write_failed_issue, raise_write_failed_issue
from .statistics import async_publish_hours, statistics_hub, stop_waiting_for_commits
from .tariffs import (
    CONF_CO2_ENTITY,
    CONF_EXPORT_PRICE_ENTITY,
    CONF_PRICE_ENTITY,
    TariffOptionsError,
    emissions_from_options,
    listed_prices,
    tariff_from_options,
    with_listed,
)

_LOGGER = logging.getLogger(__name__)


STORAGE_VERSION = 1
# Counter baselines are written at most this often; a restart loses less than one interval
# of bookkeeping, never energy (the counters themselves live in the devices).
SAVE_DELAY_S = 60
# Entity samples older than this no longer price anything (the ledger re-prices 2 days).
SAMPLES_KEPT_S = 48 * 3600
# How long stopping Home Assistant or unloading the hub waits for a statistics publish.
PUBLISH_GRACE_S = 10.0
# A silent grid meter's counter brings the energy of its outage when it answers again, so the
# books wait for it (the ledger spreads the gap over its hours) instead of booking flat
# minutes and then a spike. Not longer than this: a dead meter must not stop the books.
# (Inverters fall silent every night, with nothing to count: the books never wait for them.)
AWAIT_GRID_METER_S = 6 * 3600


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
        self.store: Store[dict[str, Any]] = Store(
            hass, STORAGE_VERSION, f"{DOMAIN}.{entry.entry_id}", private=True
        )
        self._offline: set[str] = set()
        self.allow_control = allow_control
        # The device reverts by itself if ems falls silent for three cycles (at least a minute).
        revert_s = min(MAX_REVERT_S, max(60, round(3 * scan_interval.total_seconds())))
        self.control = BatteryControl(hub=hub, devices=self.devices, revert_s=revert_s)
        self.ledger = EnergyLedger(tz=dt_util.get_default_time_zone())
        self.identities = DeviceIdentities(hass, entry.entry_id)
        # Prices and intensities sampled from entities: option key -> {epoch: value}.
        self._samples: dict[str, dict[float, float]] = {}
        # Price lists the same entities publish in their attributes (Nord Pool, ...).
        self._listed: dict[str, dict[float, float]] = {}
        self._reprice_from: float | None = None
        self._publishing: set[asyncio.Task[None]] = set()
        self._tariff_problem: str | None = None

    def devices_by_subentry(self, entry: EmsConfigEntry) -> dict[str, Device]:
        """Each device with the id of the subentry that configures it."""
        by_unit = {device.unit_id: device for device in self.devices.values()}
        return {
            subentry_id: by_unit[int(subentry.data[CONF_UNIT_ID])]
            for subentry_id, subentry in entry.subentries.items()
            if subentry.subentry_type == SUBENTRY_DEVICE
            and int(subentry.data[CONF_UNIT_ID]) in by_unit
        }

    def batteries_by_subentry(self, entry: EmsConfigEntry) -> dict[str, Device]:
        """The batteries ems can steer, with the id of the subentry that configures each."""
        return {
            subentry_id: device
            for subentry_id, device in self.devices_by_subentry(entry).items()
            if device.id in self.control.states
        }

    def _replan(self) -> None:
        # When the slow group is due, all channels are planned together: their blocks merge.
        max_read = min(self._max_read, self.health.max_read_cap or self._max_read)
        self._fast_plan = self._plan({PollGroup.FAST}, max_read, self._max_gap)
        self._full_plan = self._plan({PollGroup.FAST, PollGroup.SLOW}, max_read, self._max_gap)
        self._planned_max_read = max_read

    async def async_restore(self) -> None:
        """Resume counter baselines and totals from the last run."""
        data = await self.store.async_load()
        if isinstance(data, dict):
            self.pipeline.restore(data)
            self.control.restore(data.get("control"))
            self.ledger.restore(data.get("ledger"))
            self.identities.restore(data.get("identities"), self.devices)

    async def async_persist(self) -> None:
        """Write the pipeline's state now (on unload)."""
        await self.store.async_save(self._state_dict())

    def _state_dict(self) -> dict[str, Any]:
        return {
            **self.pipeline.state_dict(),
            "control": self.control.state_dict(),
            "ledger": self.ledger.state_dict(),
            "identities": self.identities.state_dict(),
        }

    @property
    def read_plan(self) -> list[ReadBlock]:
        """The requests of a cycle that reads every channel, the slow group included."""
        return list(self._full_plan)

    def _plan(self, groups: set[PollGroup], max_read: int, max_gap: int) -> list[ReadBlock]:
        return build_read_plan(
            (
                PlannedChannel(unit_id=device.unit_id, spec=spec)
                for device in self.devices.values()
                for spec in device.profile.channels
                if spec.poll in groups
            ),
            max_read=max_read,
            max_gap=max_gap,
        )

    def _keep_slow(self, image: RegisterImage) -> None:
        """Remember the slow group's registers until it is read again.

        Only those: a fast register kept here could hide a failed read behind a stale value.
        """
        for device in self.devices.values():
            for spec in device.profile.channels:
                if spec.poll is not PollGroup.SLOW:
                    continue
                key = (device.unit_id, spec.register.function)
                table = image.get(key, {})
                addresses = range(
                    spec.register.address, spec.register.address + spec.register.count
                )
                kept = self._slow_image.setdefault(key, {})
                kept.update((a, table[a]) for a in addresses if a in table)

    async def _async_update_data(self) -> SiteSnapshot:
        started = time.perf_counter()
        full = self._cycle % SLOW_POLL_EVERY == 0
        plan = self._full_plan if full else self._fast_plan
        result = await read_plan(self.hub, plan, self.health, time.monotonic())
        failed = result.failed_blocks
        if not result.image and any(e.kind is ModbusErrorKind.CONNECTION for _, e in failed):
            raise UpdateFailed(
                translation_domain=DOMAIN,
                translation_key="cannot_connect",
                translation_placeholders={"hub": self.hub.describe()},
            )
        if full:
            self._keep_slow(result.image)
        self._cycle += 1
        if (self.health.max_read_cap or self._max_read) < self._planned_max_read:
            _LOGGER.info(
                "%s refuses long requests; reading at most %s registers at a time",
                self.hub.describe(),
                self.health.max_read_cap,
            )
            self._replan()
        image: RegisterImage = {key: dict(table) for key, table in self._slow_image.items()}
        _overlay(image, result.image)
        for device in self.devices.values():
            if self.identities.observe(device, reported_serial(device, image)):
                self.pipeline.device_replaced(device.id)
        timestamp = dt_util.utcnow()
        month = dt_util.as_local(timestamp).strftime("%Y-%m")
        states, site = self.pipeline.process(image, timestamp, month)
        self.store.async_delay_save(self._state_dict, SAVE_DELAY_S)
        if self.allow_control:
            await self._steer(states, image, site.power_w["grid"])
        rates, tariff = self._book(site)
        for device in self.devices.values():
            self._log_transition(device, online=states[device.id].online)
        stats = CycleStats(
            requests=result.requests,
            failed_requests=len(failed),
            duration_s=time.perf_counter() - started,
            quarantined=tuple(sorted(self.health.quarantined)),
        )
        return SiteSnapshot(
            timestamp=timestamp,
            devices=states,
            stats=stats,
            site=site,
            rejections={d: self.pipeline.rejections_of(d) for d in self.devices},
            today=self.ledger.totals_since(_local_start(timestamp, month=False), tariff=tariff),
            month=self.ledger.totals_since(
                _local_start(timestamp, month=True), tariff=tariff, period=Period.MONTH
            ),
            rates=rates,
        )

    def _book(self, site: SiteState) -> tuple[CurrentRates, Tariff | None]:
        """Add the site's counters to the ledger and hand ended hours to the statistics;
        return the rates that price energy now, and the tariff."""
        now = time.time()
        self._sample_entities(now)
        tariff, emissions = self.pricing()
        rates = current_rates(tariff, emissions, now, self.ledger.tz)
        if self._awaiting_grid_meter(now) or not self.ledger.add(now, site.energy_kwh):
            return rates, tariff
        reprice_from, self._reprice_from = self._reprice_from, None
        if changed := self.ledger.settle(tariff, emissions, reprice_from=reprice_from):
            task = self.config_entry.async_create_background_task(
                self.hass,
                async_publish_hours(self.hass, self.config_entry, changed),
                name=f"{DOMAIN} statistics {self.config_entry.entry_id}",
            )
            self._publishing.add(task)
            task.add_done_callback(self._publishing.discard)
        return rates, tariff

    async def async_finish_publishing(self) -> None:
        """Let statistics being written finish (bounded), before the recorder closes: a task
        cancelled in the middle of a database read can crash SQLite at shutdown. They stop
        waiting for the recorder to confirm (it writes what it has queued before it closes);
        the next start resumes from what is stored."""
        if self._publishing:
            hub = statistics_hub(self.config_entry)
            with stop_waiting_for_commits(self.hass, hub):
                await asyncio.wait(self._publishing, timeout=PUBLISH_GRACE_S)

    def _awaiting_grid_meter(self, now: float) -> bool:
        if not self.pipeline.awaited_counters & GRID_SERIES or not self.ledger.timestamps:
            return False
        return now - self.ledger.timestamps[-1] < AWAIT_GRID_METER_S

    def pricing(self) -> tuple[Tariff | None, Emissions | None]:
        """The tariff and CO2 accounting of the hub's options, with the entity samples so far.

        Options the flow refused cannot be stored; a hand-edited store that fails is logged
        and books energy only, rather than inventing a cost.
        """
        options = self.config_entry.options
        try:
            tariff = tariff_from_options(
                options,
                currency=self.hass.config.currency,
                import_prices=self._series(CONF_PRICE_ENTITY),
                export_prices=self._series(CONF_EXPORT_PRICE_ENTITY),
            )
            emissions = emissions_from_options(options, intensity=self._series(CONF_CO2_ENTITY))
        except TariffOptionsError as err:
            problem = str(err)
        else:
            return tariff, emissions
        if problem != self._tariff_problem:
            self._tariff_problem = problem
            _LOGGER.error("The tariff options of %s are not usable: %s", self.name, problem)
        return None, None

    def _series(self, key: str) -> dict[float, float]:
        return with_listed(self._samples.get(key, {}), self._listed.get(key, {}))

    def _sample_entities(self, now: float) -> None:
        """Keep each price or intensity entity's value when it changes (it holds until then),
        and the price list it publishes, if any. A listed price that appears or changes for a
        time already past has the ledger price those hours again."""
        for key in (CONF_PRICE_ENTITY, CONF_EXPORT_PRICE_ENTITY, CONF_CO2_ENTITY):
            entity_id = self.config_entry.options.get(key)
            if (state := self.hass.states.get(entity_id) if entity_id else None) is None:
                continue
            self._take_listed(key, listed_prices(state.attributes), now)
            try:
                value = float(state.state)
            except ValueError:
                continue
            if not math.isfinite(value):
                continue
            series = self._samples.setdefault(key, {})
            if not series or series[max(series)] != value:
                series[now] = value
            for stale in [t for t in series if t < now - SAMPLES_KEPT_S]:
                del series[stale]

    def _take_listed(self, key: str, points: dict[float, float], now: float) -> None:
        known = self._listed.setdefault(key, {})
        revised = [t for t, v in points.items() if t < now and known.get(t) != v]
        if revised and known:  # the first list only confirms what the state already priced
            since = min(revised)
            self._reprice_from = min(since, self._reprice_from or since)
        known.update(points)
        for stale in [t for t in known if t < now - SAMPLES_KEPT_S]:
            del known[stale]

    async def async_apply_control(self, device: Device) -> None:
        """Apply a new command now, on the latest readings, instead of at the next cycle.

        Raises `WriteFailedError` so that the action that asked sees the failure.
        """
        state = self.data.devices[device.id]
        grid = self.data.site.power_w["grid"] if self.data.site else None
        await self.control.run_cycle(device, state, self.control.image, grid, time.time())
        self.async_update_listeners()

    async def _steer(
        self, states: dict[str, DeviceState], image: RegisterImage, grid_power_w: float | None
    ) -> None:
        """Run each battery's command; a failed write never stops the cycle."""
        for device_id, battery in self.control.states.items():
            device, state = self.devices[device_id], states[device_id]
            if not state.online:
                continue
            try:
                await self.control.run_cycle(device, state, image, grid_power_w, time.time())
            except WriteFailedError as err:
                if battery.failures_in_a_row >= FAILURES_BEFORE_REPAIR:
                    raise_write_failed_issue(self.hass, device, err.key)
                continue
            if battery.last_result == "ok":
                clear_write_failed_issue(self.hass, device)

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


def _local_start(moment: datetime, *, month: bool) -> float:
    """Start of the local day (or month) that `moment` falls in, as epoch seconds."""
    local = dt_util.as_local(moment)
    start = local.replace(day=1) if month else local
    return dt_util.start_of_local_day(start).timestamp()
