"""One cycle of a hub, over the register image its reads produced: the devices' readings, the
site, the batteries' control decisions and the books, returned as plain data.

The coordinator reads the blocks `SiteCycle.reads` says are due, hands the result to `run`,
and then carries out what the outcome asks: the battery writes, the settled hours for the
statistics and the identity reports for the repairs. Nothing here imports Home Assistant.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, tzinfo
import logging
from typing import Any, Final

from .books.ledger import EnergyLedger, LedgerHour, Totals
from .books.periods import Period, local_midnight
from .control.battery import BatteryControl, BatteryReport, BatteryWrites
from .identities import DeviceIdentities, IdentityReport, reported_serial
from .modbus.plan import RegisterImage
from .modbus.poll import PollResult
from .modbus.schedule import ReadSchedule
from .model import CycleStats, Device, DeviceState, SiteState
from .numbers import HOUR_S
from .pipeline import SitePipeline
from .site.metered import GRID_SERIES
from .tariffs.model import Emissions, Tariff
from .tariffs.rates import CurrentRates, current_rates

_LOGGER = logging.getLogger(__name__)

# A silent grid meter's counter brings the energy of its outage when it answers again, so the
# books wait for it (the ledger spreads the gap over its hours) instead of booking flat
# minutes and then a spike. Not longer than this: a dead meter must not stop the books.
# (Inverters fall silent every night, with nothing to count: the books never wait for them.)
AWAIT_GRID_METER_S: Final = 6 * HOUR_S


@dataclass(frozen=True, kw_only=True, slots=True)
class SiteSnapshot:
    """Everything one cycle produced, as entities see it."""

    timestamp: datetime
    devices: dict[str, DeviceState]
    stats: CycleStats
    site: SiteState | None = None
    # Rejected readings per device and reason, since the hub started.
    rejections: dict[str, dict[str, int]] = field(default_factory=dict)
    # The site's books for the local day and month so far (ledger.py).
    today: Totals | None = None
    month: Totals | None = None
    # The price and CO2 intensity the books apply to energy now.
    rates: CurrentRates | None = None
    # What ems does with each battery it may steer, after this cycle's writes.
    batteries: dict[str, BatteryReport] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True, slots=True)
class Pricing:
    """How this cycle's energy is priced: the tariff and CO2 accounting in force, and since
    when past hours must be priced again (a revised price list), if at all."""

    tariff: Tariff | None = None
    emissions: Emissions | None = None
    reprice_from: float | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class CycleOutcome:
    """A cycle's snapshot, and what it asks of the world outside the engine."""

    snapshot: SiteSnapshot
    # Control decisions to write, one per battery, in the order decided.
    writes: tuple[BatteryWrites, ...] = ()
    # Hours the ledger settled or priced again: the statistics take them.
    settled: tuple[LedgerHour, ...] = ()
    # Devices whose identity the user must confirm (or no longer).
    identities: tuple[IdentityReport, ...] = ()


class SiteCycle:
    """The engine of one hub: its read schedule, pipeline, battery control, identities and
    books, and what of them must survive a restart."""

    def __init__(
        self,
        devices: dict[str, Device],
        *,
        reads: ReadSchedule,
        control: BatteryControl,
        tz: tzinfo,
        allow_control: bool,
    ) -> None:
        """Run the cycle for `devices`; control decisions only when `allow_control`."""
        self.devices = devices
        self.reads = reads
        self.control = control
        self.allow_control = allow_control
        self.pipeline = SitePipeline(devices=devices)
        self.ledger = EnergyLedger(tz=tz)
        self.identities = DeviceIdentities()
        self._offline: set[str] = set()
        self._reprice_from: float | None = None
        # The last cycle's registers, as the devices sent them: the diagnostics' register dump.
        self.last_image: RegisterImage = {}

    def run(self, read: PollResult, timestamp: datetime, pricing: Pricing) -> CycleOutcome:
        """One cycle over what the due blocks returned, at `timestamp` (aware, UTC)."""
        image = self.reads.image(read.image)
        self.last_image = image
        identities = self._observe_identities(image)
        local = timestamp.astimezone(self.ledger.tz)
        states, site = self.pipeline.process(image, timestamp, local.strftime("%Y-%m"))
        now = timestamp.timestamp()
        writes = self._decide(states, image, site.power_w["grid"], now)
        settled = self._book(site, now, pricing)
        for device in self.devices.values():
            self._log_transition(device, online=states[device.id].online)
        tariff = pricing.tariff
        snapshot = SiteSnapshot(
            timestamp=timestamp,
            devices=states,
            stats=CycleStats(
                requests=read.requests,
                failed_requests=len(read.failed_blocks),
                duration_s=0.0,
                quarantined=tuple(sorted(self.reads.health.quarantined)),
            ),
            site=site,
            rejections={d: self.pipeline.rejections_of(d) for d in self.devices},
            today=self.ledger.totals_since(self._day_start(local), tariff=tariff),
            month=self.ledger.totals_since(
                self._month_start(local), tariff=tariff, period=Period.MONTH
            ),
            rates=current_rates(tariff, pricing.emissions, now, self.ledger.tz),
            batteries=self.control.reports(),
        )
        return CycleOutcome(
            snapshot=snapshot,
            writes=tuple(writes),
            settled=tuple(settled),
            identities=tuple(identities),
        )

    def _decide(
        self,
        states: dict[str, DeviceState],
        image: RegisterImage,
        grid_power_w: float | None,
        now: float,
    ) -> list[BatteryWrites]:
        """Each answering battery's writes for its command, when ems may steer."""
        if not self.allow_control:
            return []
        decisions = (
            self.control.decide(
                self.devices[device_id], states[device_id], image, grid_power_w, now
            )
            for device_id in self.control.states
            if states[device_id].online
        )
        return [writes for writes in decisions if writes is not None]

    def _observe_identities(self, image: RegisterImage) -> list[IdentityReport]:
        reports = []
        for device in self.devices.values():
            seen = self.identities.observe(device, reported_serial(device, image))
            if seen.swapped:
                self.pipeline.device_replaced(device.id)
            if seen.report is not None:
                reports.append(seen.report)
        return reports

    def _book(self, site: SiteState, now: float, pricing: Pricing) -> list[LedgerHour]:
        """Add the site's counters to the ledger; return the hours it settled."""
        if pricing.reprice_from is not None:
            since = pricing.reprice_from
            self._reprice_from = min(since, self._reprice_from or since)
        if self._awaiting_grid_meter(now) or not self.ledger.add(now, site.energy_kwh):
            return []
        reprice_from, self._reprice_from = self._reprice_from, None
        return self.ledger.settle(pricing.tariff, pricing.emissions, reprice_from=reprice_from)

    def _awaiting_grid_meter(self, now: float) -> bool:
        if not self.pipeline.awaited_counters & GRID_SERIES or not self.ledger.timestamps:
            return False
        return now - self.ledger.timestamps[-1] < AWAIT_GRID_METER_S

    def _day_start(self, local: datetime) -> float:
        return local_midnight(local.date(), self.ledger.tz).timestamp()

    def _month_start(self, local: datetime) -> float:
        return local_midnight(local.date().replace(day=1), self.ledger.tz).timestamp()

    def _log_transition(self, device: Device, *, online: bool) -> None:
        """Log once when a device is lost and once when it is back."""
        if not online and device.id not in self._offline:
            self._offline.add(device.id)
            _LOGGER.warning("%s (unit %s) stopped answering", device.name, device.unit_id)
        elif online and device.id in self._offline:
            self._offline.discard(device.id)
            _LOGGER.info("%s (unit %s) is answering again", device.name, device.unit_id)

    def state_dict(self) -> dict[str, Any]:
        """What must survive a restart."""
        return {
            **self.pipeline.state_dict(),
            "control": self.control.state_dict(),
            "ledger": self.ledger.state_dict(),
            "identities": self.identities.state_dict(),
        }

    def restore(self, data: dict[str, Any]) -> list[str]:
        """Resume from `state_dict()`; return the devices that left the hub since."""
        self.pipeline.restore(data)
        self.control.restore(data.get("control"))
        self.ledger.restore(data.get("ledger"))
        return self.identities.restore(data.get("identities"), self.devices)
