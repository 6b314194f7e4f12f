"""A seeded soak: a day of the whole simulated site inside Home Assistant, with random faults,
judged against the simulator's ground truth (`test_soak` runs it; `scripts/soak` runs that).

The report: energy totals against the truth per series, rejected readings by reason, the
faults injected, failed cycles, the hours of books and statistics checked, and memory sampled
every simulated hour. It passes when the metered totals match the truth within 0.1 %, no spike
reached the energy series or the hours, and memory stays bounded.

Faults come one at a time, drawn from the seed: a unit falls silent, the gateway refuses
connections or answers too slowly, requests are limited, a register answers with an
exception, a word or a frame is garbled, a meter outside the site's series is reset, or Home
Assistant restarts (sometimes while the grid meter is silent).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
import logging
import os
from pathlib import Path
import random
import statistics
import tracemalloc
from typing import Any, Final
from unittest.mock import Mock

from freezegun.api import TickingDateTimeFactory
from homeassistant.core import HomeAssistant
from homeassistant.helpers.storage import Store

from simulator import SiteSimulator

from .harness import ALL_UNITS, RELATIVE, STEP, TIMEOUT_S, SiteRun
from .soak_cli import ENV_HOURS, ENV_SEED

# The battery runs its own logic: its series, and consumption (a balance with them), are
# integrated from its power sampled once a minute. They are reported; the series the meters
# count must be exact.
EXACT: Final = ("grid_import", "grid_export", "production")
INTEGRATED: Final = ("consumption", "battery_charge", "battery_discharge")
FAULT_KINDS: Final = (
    "unit_offline",
    "gateway_refuses",
    "slow_gateway",
    "request_limit",
    "register_exception",
    "garbage",
    "corrupt_frames",
    "counter_reset",
    "restart",
)
# Cycles a fault lasts at most; a slow gateway costs a time-out per unit and cycle.
LONGEST: Final = {"slow_gateway": 2, "restart": 3}
LONGEST_DEFAULT: Final = 10
QUIET_CYCLES: Final = (5, 40)
# The books keep two days of minute samples (about 20 KiB an hour of ems's memory until they
# are pruned); a trend beyond this, per simulated hour over the second half, is a leak.
MAX_GROWTH_KIB_PER_HOUR: Final = 64.0
_SOURCES: Final = (
    os.path.join("custom_components", "ems"),  # noqa: PTH118 - tracemalloc frames are strings
    os.sep + "simulator" + os.sep,
)
# Words a garbled counter or power register may read: 0, NaN, 1e6 kWh, all ones.
_GARBAGE: Final = ((0x0000, 0x0000), (0x7FC0, 0x0000), (0x4974, 0x2400), (0xFFFF, 0xFFFF))
_SDM630_WORDS: Final = (0x0034, 0x0048, 0x004A)  # ActivePower, EnergyImport, EnergyExport


@dataclass(frozen=True, kw_only=True)
class SoakConfig:
    """How long and with which seed."""

    hours: float = 24.0
    seed: int = 1

    @classmethod
    def from_env(cls) -> SoakConfig:
        """From EMS_SOAK_HOURS and EMS_SOAK_SEED, where set."""
        return cls(
            hours=float(os.environ.get(ENV_HOURS, cls.hours)),
            seed=int(os.environ.get(ENV_SEED, cls.seed)),
        )


class FaultInjector:
    """Starts one fault at a time at seeded moments, and ends it a seeded number of cycles on."""

    def __init__(self, run: SiteRun, rng: random.Random) -> None:
        """Inject into `run`'s site, drawing from `rng`."""
        self.run = run
        self.rng = rng
        self.injected: Counter[str] = Counter()
        self._undo: Callable[[], None] | None = None
        self._ends_at = 0
        self._next_at = rng.randint(*QUIET_CYCLES)

    async def before_cycle(self, cycle: int) -> None:
        """End the fault that is due, or start the next one."""
        if self._undo is not None and cycle >= self._ends_at:
            self._undo()
            self._undo = None
            self._next_at = cycle + self.rng.randint(*QUIET_CYCLES)
        if self._undo is None and cycle >= self._next_at:
            kind = self.rng.choice(FAULT_KINDS)
            self.injected[kind] += 1
            self._undo = await getattr(self, f"_{kind}")()
            self._ends_at = cycle + self.rng.randint(1, LONGEST.get(kind, LONGEST_DEFAULT))

    @property
    def _site(self) -> SiteSimulator:
        return self.run.site

    async def _unit_offline(self) -> Callable[[], None]:
        unit = self.rng.choice(ALL_UNITS)
        self._site.faults.offline(unit, True)
        return lambda: self._site.faults.offline(unit, False)

    async def _gateway_refuses(self) -> Callable[[], None]:
        self._site.faults.refuse_connections(True)
        return lambda: self._site.faults.refuse_connections(False)

    async def _slow_gateway(self) -> Callable[[], None]:
        self._site.faults.delay(2 * TIMEOUT_S)
        return lambda: self._site.faults.delay(0)

    async def _request_limit(self) -> Callable[[], None]:
        self._site.faults.max_registers(self.rng.choice((16, 32, 64)))
        return lambda: self._site.faults.max_registers(None)

    async def _register_exception(self) -> Callable[[], None]:
        block = self.rng.choice(self.run.coordinator.read_plan)
        address = self.rng.randrange(block.start, block.end)
        code = self.rng.choice((2, 4))
        self._site.faults.exception(block.unit_id, block.function.value, address, code)
        return self._clear_keeping_counters

    async def _garbage(self) -> Callable[[], None]:
        words = self.rng.choice(_GARBAGE)
        if self.rng.random() < 0.5:
            address = self.rng.choice(_SDM630_WORDS)
            self._site.faults.garbage(1, "input", address, words, count=1)
        else:
            channel = self.run.coordinator.devices["unit2"].profile.channel("EnergyGenerated")
            self._site.faults.garbage(2, "holding", channel.register.address, words, count=1)
        return _nothing

    async def _corrupt_frames(self) -> Callable[[], None]:
        self._site.faults.corrupt_frames(self.rng.randint(1, 3))
        return lambda: self._site.faults.corrupt_frames(0)

    async def _counter_reset(self) -> Callable[[], None]:
        # A meter outside the site's series: the guard loses one cycle's energy at a reset by
        # design (test_counter_reset pins that), which would blur the totals compared here.
        self._site.faults.reset_counter(5, self.rng.choice(("EnergyImport", "TotalEnergy")))
        return _nothing

    async def _restart(self) -> Callable[[], None]:
        silent = self.rng.random() < 0.5
        if silent:
            self._site.faults.offline(1, True)
        await self.run.reload()
        return (lambda: self._site.faults.offline(1, False)) if silent else _nothing

    def _clear_keeping_counters(self) -> None:
        # clear() also undoes counter resets, which would look like a second reset.
        offsets = dict(self._site.faults.counter_offsets)
        self._site.faults.clear()
        self._site.faults.counter_offsets.update(offsets)


def _nothing() -> None:
    return None


class MemoryProbe:
    """Memory of ems and the simulator (traced allocations) and of the process (RSS)."""

    def __init__(self) -> None:
        """Start tracing allocations."""
        self.samples: list[dict[str, float]] = []
        tracemalloc.start()

    def sample(self, hour: float) -> None:
        """Keep the memory now."""
        # The test harness's storage is a mock that records every write it is given, so the
        # state ems saves each minute would count as ems's own memory; real storage drops it.
        recorder = getattr(Store._async_write_data, "mock", None)  # autospec'd: a function
        if isinstance(recorder, Mock):
            recorder.reset_mock()
        # Likewise pytest keeps every log record of a test for its report, with the objects
        # its arguments name (a failed cycle's exception holds on to that cycle's data).
        for handler in logging.getLogger().handlers:
            if type(handler).__name__ == "LogCaptureHandler":
                handler.reset()  # type: ignore[attr-defined]
        ours = [tracemalloc.Filter(inclusive=True, filename_pattern=f"*{s}*") for s in _SOURCES]
        snapshot = tracemalloc.take_snapshot().filter_traces(ours)
        traced = sum(stat.size for stat in snapshot.statistics("filename"))
        self.samples.append({"hour": hour, "ems_kib": traced / 1024, "rss_mib": _rss_mib()})

    def stop(self) -> None:
        """Stop tracing."""
        tracemalloc.stop()

    def growth_kib_per_hour(self) -> float:
        """The traced memory's trend (least squares) over the second half of the run, per
        simulated hour: the first half fills caches and the books' minute samples."""
        half = self.samples[len(self.samples) // 2 :]
        hours = [sample["hour"] for sample in half]
        if len(half) < 2 or max(hours) == min(hours):
            return 0.0
        return float(statistics.linear_regression(hours, [s["ems_kib"] for s in half]).slope)


def _rss_mib() -> float:
    with Path("/proc/self/statm").open(encoding="ascii") as statm:
        pages = int(statm.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


async def soak(
    hass: HomeAssistant, site: SiteSimulator, clock: TickingDateTimeFactory, config: SoakConfig
) -> dict[str, Any]:
    """Run the site for `config.hours` with seeded faults; the report, `passed` included."""
    started = os.times().elapsed  # the wall clock: time itself is frozen
    memory = MemoryProbe()
    try:
        run = await SiteRun.start(hass, site, clock)
        faults = FaultInjector(run, random.Random(config.seed))
        cycles = round(config.hours * 3600 / STEP.total_seconds())
        per_hour = round(3600 / STEP.total_seconds())
        memory.sample(0)
        for cycle in range(1, cycles + 1):
            await faults.before_cycle(cycle)
            await run.cycle()
            if cycle % per_hour == 0:
                memory.sample(cycle / per_hour)
    finally:
        memory.stop()
    return await _report(run, faults, memory, config, os.times().elapsed - started)


async def _report(
    run: SiteRun,
    faults: FaultInjector,
    memory: MemoryProbe,
    config: SoakConfig,
    real_s: float,
) -> dict[str, Any]:
    series = (*EXACT, *INTEGRATED)
    totals = {
        name: {
            "ems_kwh": round(counted, 6),
            "truth_kwh": round(true, 6),
            "error_pct": round(100 * (counted - true) / true, 4) if true else None,
        }
        for name, (counted, true) in run.totals(series).items()
    }
    hours, hour_violations = await run.hour_violations(EXACT)
    rejections = run.coordinator.data.rejections
    by_reason: Counter[str] = Counter()
    for reasons in rejections.values():
        by_reason.update(reasons)
    criteria = {
        "metered_totals_within_0.1_pct": not run.totals_mismatches(EXACT),
        "no_spike": not run.spikes(EXACT),
        "hours_physical": not hour_violations,
        "memory_bounded": memory.growth_kib_per_hour() <= MAX_GROWTH_KIB_PER_HOUR,
    }
    return {
        "seed": config.seed,
        "simulated_hours": config.hours,
        "cycles": len(run.samples) - 1,
        "step_s": STEP.total_seconds(),
        "real_time_s": round(real_s, 1),
        "faults_injected": dict(sorted(faults.injected.items())),
        "failed_cycles": sum(not sample.ok for sample in run.samples),
        "totals": totals,
        "tolerance_pct": 100 * RELATIVE,
        "rejected_readings": {
            "by_reason": dict(sorted(by_reason.items())),
            "by_device": rejections,
        },
        "hours_checked": hours,
        "violations": {
            "totals": run.totals_mismatches(EXACT),
            "spikes": run.spikes(EXACT)[:10],
            "hours": hour_violations[:10],
        },
        "memory": {
            "ems_traced_kib_per_hour_second_half": round(memory.growth_kib_per_hour(), 1),
            "ems_traced_kib_whole_run": round(
                memory.samples[-1]["ems_kib"] - memory.samples[0]["ems_kib"], 1
            ),
            "rss_mib_whole_run": round(
                memory.samples[-1]["rss_mib"] - memory.samples[0]["rss_mib"], 1
            ),
            "limit_kib_per_hour": MAX_GROWTH_KIB_PER_HOUR,
            "samples": [{k: round(v, 1) for k, v in sample.items()} for sample in memory.samples],
        },
        "criteria": criteria,
        "passed": all(criteria.values()),
    }
