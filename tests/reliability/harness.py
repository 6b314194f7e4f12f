"""Simulated sites run inside Home Assistant, and the checks every fault scenario makes.

A run advances the simulator and Home Assistant's clock together, one cycle at a time, and
records after each cycle what ems shows next to what really happened (the simulator's ground
truth). The checks then judge the whole record:

- nothing escaped: a cycle that raises fails the test where it happens;
- availability: each scenario asserts it on the entities its fault touches;
- `assert_no_spike`: the site's energy never goes down and never runs ahead of the truth;
  `assert_hours_physical`: no hour of the books, nor its `ems:` statistic, holds more (or
  less) than really flowed in it;
- `assert_totals_match`: every site series moved as much as the truth did, within 0.1 %.
"""

from __future__ import annotations

import asyncio
from bisect import bisect_left
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
import time
from typing import Any, Final

from freezegun.api import TickingDateTimeFactory
from homeassistant.components.recorder.statistics import statistics_during_period
from homeassistant.config_entries import ConfigEntryState
from homeassistant.const import CONF_SCAN_INTERVAL, STATE_UNAVAILABLE, STATE_UNKNOWN
from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er
from homeassistant.helpers.recorder import get_instance
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.components.recorder.common import (
    async_wait_recording_done,
)

from custom_components.ems.const import CONF_TIMEOUT, DOMAIN
from custom_components.ems.coordinator import EmsCoordinator
from custom_components.ems.glue.statistics import statistic_id
from simulator import SiteConfig, SiteSimulator
from tests.integration.conftest import device_subentry

# A June dawn: PV rising; the heat pump runs until 05:00, then rests. With the battery
# holding, the grid meter imports, then exports, and the hour that ends at 05:00 is settled
# and published eight cycles in. The site runs an hour before START, so every counter has
# counted something (a SunSpec accumulator at 0 reads as "not implemented").
START: Final = datetime(2026, 6, 21, 4, 52, tzinfo=UTC)
HOUR_ENDS: Final = datetime(2026, 6, 21, 5, tzinfo=UTC)
WARM_UP: Final = timedelta(hours=1)
SEED: Final = 9  # the heat-pump cycle that makes the import-then-export morning above
STEP: Final = timedelta(seconds=60)
# Short enough that a silent device costs little real time, long enough for loopback.
TIMEOUT_S: Final = 0.3
# Longer than a cycle step: Home Assistant's own timer never polls between the test's cycles.
SCAN_INTERVAL_S: Final = 120

# Each site series, and the ground-truth counter it must follow.
TRUTH_OF: Final[Mapping[str, str]] = {
    "grid_import": "grid_import_kwh",
    "grid_export": "grid_export_kwh",
    "production": "pv_energy_kwh",
    "consumption": "load_energy_kwh",
    "battery_charge": "battery_charged_kwh",
    "battery_discharge": "battery_discharged_kwh",
}
# Series the devices count themselves, plus consumption, their balance while the battery
# holds: exact up to the registers' resolution.
METERED: Final = ("grid_import", "grid_export", "production", "consumption")
RELATIVE: Final = 1e-3
# What the registers cannot resolve in a difference of two readings: float32 kWh at the
# SDM630, 1 Wh steps at the SunSpec inverter (consumption includes production); battery
# energy is integrated from its power, exact while that power is steady.
RESOLUTION_KWH: Final[Mapping[str, float]] = {
    "grid_import": 1e-5,
    "grid_export": 1e-5,
    "production": 1e-3,
    "consumption": 1e-3,
    "battery_charge": 1e-5,
    "battery_discharge": 1e-5,
}

# Device ids of the simulated site's units, as ems names them.
GRID, PV, BATTERY, PV_METER, HEAT_PUMP = "unit1", "unit2", "unit3", "unit4", "unit5"
SITE = "site"
ALL_UNITS: Final = (1, 2, 3, 4, 5)


async def start_site(*, seed: int = SEED, battery: str = "hold") -> SiteSimulator:
    """The simulated site at START, warmed up, on a loopback port; its battery holds (or
    runs as `battery` says: "auto" is its own self-consumption logic)."""
    site = SiteSimulator(SiteConfig(start=START - WARM_UP, seed=seed))
    site.set_battery_command(battery)
    site.advance(WARM_UP.total_seconds())
    await site.start(host="127.0.0.1", port=0)
    return site


def site_entry(
    site: SiteSimulator,
    *,
    title: str = "site",
    units: Sequence[int] = ALL_UNITS,
    options: Mapping[str, Any] | None = None,
) -> MockConfigEntry:
    """A hub with the simulated site's devices (all, or `units`), SunSpec chains stored."""

    def sunspec(unit_id: int, role: str, name: str, chain: list[list[int]]) -> dict[str, Any]:
        subentry = device_subentry(unit_id, "sunspec", role, name)
        subentry["data"] = {**subentry["data"], "sunspec_models": chain}
        return subentry

    devices = {
        1: device_subentry(1, "eastron_sdm630", "grid", "Grid meter"),
        2: sunspec(2, "production", "PV inverter", [[1, 40002, 66], [103, 40070, 50]]),
        3: sunspec(3, "battery", "Battery", [[1, 40002, 66], [124, 40070, 24], [802, 40096, 62]]),
        4: sunspec(4, "submeter", "PV meter", [[1, 50002, 66], [203, 50070, 105]]),
        5: device_subentry(5, "eastron_sdm120", "load", "Heat pump"),
    }
    return MockConfigEntry(
        domain=DOMAIN,
        version=2,
        title=title,
        unique_id=f"127.0.0.1:{site.port}",
        data={"host": "127.0.0.1", "port": site.port},
        options={CONF_TIMEOUT: TIMEOUT_S, CONF_SCAN_INTERVAL: SCAN_INTERVAL_S, **(options or {})},
        subentries_data=[devices[unit] for unit in units],
    )


@dataclass(frozen=True, slots=True)
class Sample:
    """What ems showed after one cycle, beside what really happened.

    Values are copies, never objects ems or the simulator made: the soak measures the memory
    those keep, and a record holding on to them would count as theirs.
    """

    at: float  # Home Assistant's clock (epoch seconds)
    truth: Mapping[str, float]  # each site series' true lifetime energy (TRUTH_OF)
    ok: bool  # the cycle succeeded (coordinator.last_update_success)
    site_kwh: Mapping[str, float] | None  # the site's energy series, as its entities show them


@dataclass(kw_only=True)
class SiteRun:
    """A hub on a simulated site, cycled by the test; every cycle is recorded."""

    hass: HomeAssistant
    site: SiteSimulator
    clock: TickingDateTimeFactory
    entry: MockConfigEntry
    samples: list[Sample] = field(default_factory=list)

    @classmethod
    async def start(
        cls,
        hass: HomeAssistant,
        site: SiteSimulator,
        clock: TickingDateTimeFactory,
        *,
        entry: MockConfigEntry | None = None,
    ) -> SiteRun:
        """Set the hub up (it polls once) and record that first cycle."""
        # Every clock tick looks like a callback that took a minute to asyncio's debug mode.
        hass.loop.slow_callback_duration = 3600.0
        run = cls(hass=hass, site=site, clock=clock, entry=entry or site_entry(site))
        run.entry.add_to_hass(hass)
        assert await hass.config_entries.async_setup(run.entry.entry_id)
        await hass.async_block_till_done()
        run.record()
        return run

    @property
    def coordinator(self) -> EmsCoordinator:
        """The coordinator of the hub as it is loaded now (a reload makes a new one)."""
        coordinator: EmsCoordinator = self.entry.runtime_data.coordinator
        return coordinator

    @property
    def loaded(self) -> bool:
        """Whether the entry is set up (not waiting for a retry)."""
        return self.entry.state is ConfigEntryState.LOADED

    async def cycle(self, count: int = 1, step: timedelta = STEP) -> None:
        """Advance the site and the clock by `step`, then poll; `count` times."""
        await cycle_together([self], count, step)

    async def poll(self) -> None:
        """One poll at the present instant (the entry may be waiting for a retry)."""
        if self.loaded:
            await self.coordinator.async_refresh()

    async def reload(self) -> None:
        """Unload and set the hub up again, as a Home Assistant restart does."""
        await self.hass.config_entries.async_reload(self.entry.entry_id)
        await self.hass.async_block_till_done()
        self.record()

    def record(self) -> None:
        """Keep what ems shows now and the truth now."""
        ok = self.loaded and self.coordinator.last_update_success
        site = self.coordinator.data.site if ok else None
        truth = self.site.truth
        self.samples.append(
            Sample(
                at=time.time(),
                truth={name: _copy(getattr(truth, key)) for name, key in TRUTH_OF.items()},
                ok=ok,
                site_kwh=(
                    {name: _copy(site.energy_kwh[name]) for name in TRUTH_OF}
                    if site is not None
                    else None
                ),
            )
        )

    # -- entities ----------------------------------------------------------------------------

    def entity_id(self, device: str, key: str, platform: str = "sensor") -> str:
        """The entity of a device's channel (`device` "unit1"...) or of the site ("site")."""
        unique_id = f"{self.entry.entry_id}_{device}_{key}"
        entity_id = er.async_get(self.hass).async_get_entity_id(platform, DOMAIN, unique_id)
        assert entity_id is not None, unique_id
        return entity_id

    def state(self, device: str, key: str) -> str:
        """The state of a channel's or the site's sensor."""
        state = self.hass.states.get(self.entity_id(device, key))
        assert state is not None
        return state.state

    def value(self, device: str, key: str) -> float:
        """The numeric state of a sensor that must have one."""
        state = self.state(device, key)
        assert state not in (STATE_UNAVAILABLE, STATE_UNKNOWN), (device, key, state)
        return float(state)

    def available(self, device: str, key: str) -> bool:
        """Whether a sensor is available (it may still be unknown)."""
        return self.state(device, key) != STATE_UNAVAILABLE

    # -- the checks ----------------------------------------------------------------------------

    def totals(self, series: Iterable[str] = METERED) -> dict[str, tuple[float, float]]:
        """(counted, true) energy of each series, from the first good cycle to the last."""
        ok = [sample for sample in self.samples if sample.ok]
        first, last = ok[0], ok[-1]
        return {
            name: (
                _counted(last, name) - _counted(first, name),
                _truth(last, name) - _truth(first, name),
            )
            for name in series
        }

    def totals_mismatches(self, series: Iterable[str] = METERED) -> list[str]:
        """The series whose total is off the truth by more than 0.1 % (and the resolution)."""
        return [
            f"{name}: counted {counted:.6f} kWh, truly {true:.6f} kWh"
            for name, (counted, true) in self.totals(series).items()
            if abs(counted - true) > RELATIVE * abs(true) + RESOLUTION_KWH[name]
        ]

    def spikes(self, series: Iterable[str] = METERED) -> list[str]:
        """Cycles at which a series went down, or ran ahead of the truth."""
        ok = [sample for sample in self.samples if sample.ok]
        first = ok[0]
        found: list[str] = []
        for name in series:
            previous = _counted(first, name)
            for sample in ok[1:]:
                counted = _counted(sample, name)
                true = _truth(sample, name) - _truth(first, name)
                ahead = counted - _counted(first, name) - true
                moment = datetime.fromtimestamp(sample.at, UTC).isoformat()
                if counted < previous:
                    found.append(f"{name} went down at {moment}: {previous} -> {counted}")
                if ahead > RESOLUTION_KWH[name] + RELATIVE * true:
                    found.append(f"{name} ran {ahead:.6f} kWh ahead of the truth at {moment}")
                previous = counted
        return found

    async def hour_violations(self, series: Iterable[str] = METERED) -> tuple[int, list[str]]:
        """Settled hours of the books outside the truth over the samples just inside them and
        those just around them, or whose `ems:` statistic differs; and how many were checked."""
        await self.hass.async_block_till_done(wait_background_tasks=True)
        await async_wait_recording_done(self.hass)
        names = tuple(series)
        stored = await self._statistics(names)
        booked = self._booked_samples()
        hours = self.coordinator.ledger.hours
        found: list[str] = []
        for start, hour in hours.items():
            moment = datetime.fromtimestamp(start, UTC).isoformat()
            for name in names:
                low, high = _truth_bounds(booked, name, start, hour.end_ts)
                amount = hour.energy_kwh[name]
                slack = RESOLUTION_KWH[name] + RELATIVE * high
                if not low - slack <= amount <= high + slack:
                    found.append(f"{name} {moment}: {amount:.6f} kWh, truly {low:.6f}..{high:.6f}")
                published = stored[name].get(start)
                if published != pytest.approx(amount, abs=1e-6):
                    found.append(f"{name} {moment}: published {published}, booked {amount}")
        return len(hours), found

    def assert_totals_match(self, series: Iterable[str] = METERED) -> None:
        """Each series moved as much as the truth did, within 0.1 %."""
        assert not (mismatches := self.totals_mismatches(series)), mismatches

    def assert_no_spike(self, series: Iterable[str] = METERED) -> None:
        """The site's energy never goes down and never runs ahead of the truth."""
        assert not (spikes := self.spikes(series)), spikes

    async def assert_hours_physical(self, series: Iterable[str] = METERED) -> int:
        """No settled hour holds more or less than physically flowed; returns the hours."""
        checked, violations = await self.hour_violations(series)
        assert not violations, violations
        return checked

    async def assert_all_checks(self, series: Iterable[str] = METERED) -> None:
        """No spike, physical hours (at least one settled) and totals equal to the truth."""
        names = tuple(series)
        self.assert_no_spike(names)
        assert await self.assert_hours_physical(names) >= 1
        self.assert_totals_match(names)

    def _booked_samples(self) -> list[Sample]:
        # The books sample during a poll; the run records right after it, before the site
        # moves on, so the record that follows a booked timestamp has the truth of it.
        moments = [sample.at for sample in self.samples]
        following = (bisect_left(moments, stamp) for stamp in self.coordinator.ledger.timestamps)
        return [self.samples[index] for index in following if index < len(self.samples)]

    async def _statistics(self, names: tuple[str, ...]) -> dict[str, dict[float, float]]:
        ids = {name: statistic_id(self.entry.entry_id, name) for name in names}
        rows = await get_instance(self.hass).async_add_executor_job(
            statistics_during_period,
            self.hass,
            START - timedelta(hours=1),
            None,
            set(ids.values()),
            "hour",
            None,
            {"state"},
        )
        return {
            name: {row["start"]: row["state"] for row in rows.get(ids[name], [])} for name in names
        }


async def cycle_together(runs: Sequence[SiteRun], count: int = 1, step: timedelta = STEP) -> None:
    """Advance every run's site and the shared clock by `step`, then poll the hubs at once
    (as Home Assistant would: each coordinator on its own timer); `count` times."""
    hass, clock = runs[0].hass, runs[0].clock
    for _ in range(count):
        for run in runs:
            run.site.advance(step.total_seconds())
        clock.tick(step)
        # A setup retry that fell due runs here, before the poll.
        await hass.async_block_till_done()
        await asyncio.gather(*(run.poll() for run in runs))
        # Hours that ended are published in the background; let that finish before the clock
        # jumps again, or its wait for the recorder would time out in one jump. The recorder
        # commits now rather than at its next interval, which that wait would sit out.
        await async_wait_recording_done(hass)
        await hass.async_block_till_done(wait_background_tasks=True)
        for run in runs:
            run.record()


def _truth_bounds(
    booked: Sequence[Sample], name: str, start: float, end: float
) -> tuple[float, float]:
    """The truth over [first sample ≥ start, last ≤ end] and [last ≤ start, first ≥ end]."""
    inside = [s for s in booked if start <= s.at <= end]
    before = [s for s in booked if s.at <= start] or booked[:1]
    after = [s for s in booked if s.at >= end] or booked[-1:]
    low = _truth(inside[-1], name) - _truth(inside[0], name) if inside else 0.0
    high = _truth(after[0], name) - _truth(before[-1], name)
    return low, high


def _truth(sample: Sample, series: str) -> float:
    return sample.truth[series]


def _copy(value: float) -> float:
    return value + 0.0  # a new float object


def _counted(sample: Sample, series: str) -> float:
    assert sample.site_kwh is not None
    return sample.site_kwh[series]
