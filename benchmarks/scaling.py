"""CPU and memory per cycle as devices grow from 1 to 10 to 50, for ems and HA core's `modbus`.

    .venv/bin/python benchmarks/scaling.py      # prints one JSON document

Every device is an Eastron SDM630 (43 channels): the simulator's grid meter on unit 1 and
copies of it on units 6, 7, … (`SiteSimulator(extra_meters=…)`); ems gets unit 1 as the grid
meter and the others as sub-meters, core `modbus` the same registers as in modbus_requests.py
(one sensor per channel). Two layouts: every device on one hub, and hubs of at most
DEVICES_PER_HUB devices (50 devices: 10 hubs), one simulator per hub.

A cycle is a steady refresh: ems refreshes each hub's coordinator once (the fast group; the
slow one is due again only after SLOW_POLL_EVERY cycles), core `modbus` updates its fast
sensors, then both wait until Home Assistant and the recorder have taken the new states in.
CPU is measured per cycle in two ways: the event loop's thread (`time.thread_time`: the
integration, its Modbus client and Home Assistant's state machine, which is what delays
everything else in Home Assistant) and the whole process (`time.process_time`: also the
recorder's thread). Figures are medians over cycles; the fits and ratios are the result.

Each configuration runs in a fresh process, so that one's memory and garbage do not weigh on
the next, and the simulators run in another process, so that serving requests is not counted.
Memory: the resident set's growth from before the integration is set up to after the measured
cycles, and tracemalloc's peak during one further cycle (allocations the cycle makes).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime
import gc
import json
import logging
import multiprocessing
from multiprocessing.connection import Connection
import os
from pathlib import Path
import statistics
import sys
import tempfile
import time
import tracemalloc
from typing import Any
from unittest.mock import PropertyMock, patch

from homeassistant.const import __version__ as ha_version
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_component import async_update_entity
from homeassistant.helpers.recorder import get_instance as recorder_instance
from homeassistant.setup import async_setup_component
import numpy as np
import pymodbus
from pytest_homeassistant_custom_component.common import (  # type: ignore[import-untyped]
    MockConfigEntry,
)

# Run as a script (and in the spawned workers) the repository root is not on the path.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.modbus_requests import (
    FAST_SCAN_S,
    Channel,
    _settle,
    core_modbus_config,
    home_assistant,
    unavailable,
)
from custom_components.ems.const import (
    CONF_PROFILE,
    CONF_ROLE,
    CONF_UNIT_ID,
    DOMAIN,
    SUBENTRY_DEVICE,
)
from custom_components.ems.engine.modbus.schedule import SLOW_POLL_EVERY
from custom_components.ems.engine.model import ChannelSpec, PollGroup
from custom_components.ems.engine.profiles.loader import builtin_profiles
from simulator import SiteConfig, SiteSimulator
from simulator.devices import DEVICES

DEVICE_COUNTS = (1, 10, 50)
DEVICES_PER_HUB = 5
LAYOUTS = ("one_hub", f"hubs_of_{DEVICES_PER_HUB}")
PROFILE = "eastron_sdm630"
GRID_UNIT = 1
FIRST_COPY_UNIT = max(DEVICES) + 1
WARMUP_CYCLES = 2
# ems cycles are cheap and its slow group must not fall due while measuring.
EMS_CYCLES = 15
# Tracing allocations slows a cycle several times over.
TRACED_CYCLES = 3
# Core `modbus` spends more CPU the longer its requests wait (see NOTES): more samples.
CORE_CYCLES = 11
# The simulators follow the wall clock, so every cycle reads new values (as on a real site)
# and the counters rise as fast as their power says, which ems's cleaning checks.
SIMULATED_START = datetime(2026, 6, 21, 10, tzinfo=UTC)
SIMULATOR_SPEED = 1.0
START_TIMEOUT_S = 60
# Linear: the fit explains the medians, and a device costs the same from 10 to 50 as from 1
# to 10, within the tolerance.
LINEAR_R2_MIN = 0.99
MARGINAL_TOLERANCE = 0.25
SPAWN = multiprocessing.get_context("spawn")

type Cycle = Callable[[], Awaitable[Any]]
type HubSizes = tuple[int, ...]


def hub_sizes(layout: str, devices: int) -> HubSizes:
    """Devices per hub for a layout."""
    if layout == "one_hub":
        return (devices,)
    full, rest = divmod(devices, DEVICES_PER_HUB)
    return (DEVICES_PER_HUB,) * full + ((rest,) if rest else ())


def unit_ids(devices: int) -> list[int]:
    """The simulator's first `devices` SDM630s: the grid meter, then its copies."""
    return [GRID_UNIT, *range(FIRST_COPY_UNIT, FIRST_COPY_UNIT + devices - 1)]


# ---- simulators, in a process of their own ---------------------------------------------------


def serve_simulators(count: int, extra_meters: int, control: Connection) -> None:
    """Serve `count` simulators; send their ports, then stop when told."""
    asyncio.run(_serve_simulators(count, extra_meters, control))


async def _serve_simulators(count: int, extra_meters: int, control: Connection) -> None:
    config = SiteConfig(start=SIMULATED_START)
    sims = [
        SiteSimulator(config, speed=SIMULATOR_SPEED, extra_meters=extra_meters)
        for _ in range(count)
    ]
    try:
        for sim in sims:
            await sim.start(host="127.0.0.1", port=0)
        control.send([sim.port for sim in sims])
        await asyncio.to_thread(control.recv)
    finally:
        for sim in sims:
            await sim.stop()


@contextmanager
def simulators(count: int, devices: int) -> Iterator[list[int]]:
    """Ports of `count` simulators serving at least `devices` SDM630s each."""
    ours, theirs = SPAWN.Pipe()
    process = SPAWN.Process(
        target=serve_simulators, args=(count, devices - 1, theirs), name="simulators"
    )
    process.start()
    try:
        if not ours.poll(START_TIMEOUT_S):
            raise RuntimeError("the simulators did not start")
        yield ours.recv()
    finally:
        if process.is_alive():
            ours.send("stop")
        process.join(START_TIMEOUT_S)


# ---- one configuration, in a fresh process -----------------------------------------------


def sdm630_channels() -> tuple[ChannelSpec, ...]:
    """What ems reads from each device, and core `modbus` is configured for."""
    return builtin_profiles()[PROFILE].channels


def ems_entry(hub: int, port: int, devices: int) -> MockConfigEntry:
    """A hub entry with its SDM630s as subentries."""
    subentries = [
        {
            "subentry_type": SUBENTRY_DEVICE,
            "title": f"SDM630 {hub}.{unit}",
            "unique_id": str(unit),
            "data": {
                CONF_UNIT_ID: unit,
                CONF_PROFILE: PROFILE,
                CONF_ROLE: "grid" if unit == GRID_UNIT else "submeter",
            },
        }
        for unit in unit_ids(devices)
    ]
    return MockConfigEntry(
        domain=DOMAIN,
        version=2,
        title=f"hub {hub}",
        unique_id=f"127.0.0.1:{port}",
        data={"host": "127.0.0.1", "port": port},
        options={"scan_interval": FAST_SCAN_S},
        subentries_data=subentries,
    )


async def setup_ems(
    hass: HomeAssistant, sizes: HubSizes, ports: Sequence[int]
) -> tuple[Cycle, Callable[[], int]]:
    """Set up one ems entry per hub; return the cycle and the requests its last run made."""
    entries = [ems_entry(hub, ports[hub], devices) for hub, devices in enumerate(sizes)]
    # Like with like: core `modbus` has an entity per register, so every ems channel gets one
    # too, including those ems creates disabled.
    with patch(
        "homeassistant.helpers.entity.Entity.entity_registry_enabled_default",
        new_callable=PropertyMock,
        return_value=True,
    ):
        for entry in entries:
            entry.add_to_hass(hass)
            if not await hass.config_entries.async_setup(entry.entry_id):
                raise RuntimeError("ems did not set up")
        await hass.async_block_till_done()
    coordinators = [entry.runtime_data.coordinator for entry in entries]

    async def cycle() -> None:
        # Hubs poll on timers of their own; the CPU they take adds up either way.
        for coordinator in coordinators:
            await coordinator.async_refresh()

    def requests() -> int:
        return sum(coordinator.data.stats.requests for coordinator in coordinators)

    return cycle, requests


async def setup_core(
    hass: HomeAssistant, sizes: HubSizes, ports: Sequence[int]
) -> tuple[Cycle, Callable[[], int]]:
    """Set up core `modbus` with one hub per simulator; the cycle updates the fast sensors."""
    specs = sdm630_channels()
    hubs = []
    for hub, devices in enumerate(sizes):
        channels = [Channel(unit, spec) for unit in unit_ids(devices) for spec in specs]
        config = core_modbus_config(ports[hub], channels)["modbus"][0]
        # Core `modbus` keeps one entity of a name across all hubs.
        for sensor in config["sensors"]:
            sensor["name"] = f"hub {hub} {sensor['name']}"
        hubs.append(config | {"name": f"hub {hub}"})
    if not await async_setup_component(hass, "modbus", {"modbus": hubs}):
        raise RuntimeError("core modbus did not set up")
    await hass.async_block_till_done()
    await _settle(hass)
    scan_by_name = {s["name"]: s["scan_interval"] for hub in hubs for s in hub["sensors"]}
    fast = [
        state.entity_id
        for state in hass.states.async_all("sensor")
        if scan_by_name[state.attributes["friendly_name"]] == FAST_SCAN_S
    ]

    def cycle() -> Awaitable[Any]:
        # As when the sensors' timers fire together: concurrently, queued on each hub's lock.
        return asyncio.gather(*(async_update_entity(hass, e) for e in fast))

    # One read per fast sensor: core `modbus` has no other way.
    return cycle, lambda: len(fast)


async def settled(hass: HomeAssistant, cycle: Cycle) -> None:
    """One cycle, until Home Assistant and the recorder have taken its states in."""
    await cycle()
    await hass.async_block_till_done()
    await recorder_instance(hass).async_block_till_done()


async def cpu_ms(hass: HomeAssistant, cycle: Cycle) -> tuple[float, float]:
    """CPU of one settled cycle: the event loop's thread, the whole process."""
    loop_start, process_start = time.thread_time(), time.process_time()
    await settled(hass, cycle)
    return (time.thread_time() - loop_start) * 1e3, (time.process_time() - process_start) * 1e3


async def allocation_peak_kib(hass: HomeAssistant, cycle: Cycle) -> float:
    """tracemalloc's peak during a cycle, over what was allocated before it; the median of
    TRACED_CYCLES, as the recorder's commits (in its own thread) fall into some cycles only."""
    peaks = []
    tracemalloc.start()
    try:
        for _ in range(TRACED_CYCLES):
            start, _ = tracemalloc.get_traced_memory()
            tracemalloc.reset_peak()
            await settled(hass, cycle)
            peaks.append(tracemalloc.get_traced_memory()[1] - start)
    finally:
        tracemalloc.stop()
    return statistics.median(peaks) / 1024


def rss_mib() -> float:
    """The resident set now, after a full garbage collection (Linux)."""
    gc.collect()
    resident_pages = int(Path("/proc/self/statm").read_text(encoding="ascii").split()[1])
    return resident_pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def _quartiles(values: list[float]) -> list[float]:
    return [round(q, 3) for q in statistics.quantiles(values, n=4)]


def updated_at(hass: HomeAssistant) -> dict[str, datetime]:
    """When each entity's state or attributes last changed (what the recorder writes)."""
    return {state.entity_id: state.last_updated for state in hass.states.async_all()}


async def _measure(
    side: str, sizes: HubSizes, ports: Sequence[int], workdir: Path
) -> dict[str, Any]:
    cycles = EMS_CYCLES if side == "ems" else CORE_CYCLES
    async with home_assistant(workdir) as hass:
        rss_before = rss_mib()
        setup = setup_ems if side == "ems" else setup_core
        cycle, requests = await setup(hass, sizes, ports)
        for _ in range(WARMUP_CYCLES):
            await settled(hass, cycle)
        samples, counts, changed = [], set(), []
        for _ in range(cycles):
            before = updated_at(hass)
            samples.append(await cpu_ms(hass, cycle))
            counts.add(requests())
            after = updated_at(hass)
            changed.append(sum(after[e] != when for e, when in before.items()))
        if len(counts) != 1:
            raise RuntimeError(f"{side}: requests per cycle vary: {sorted(counts)}")
        rss_delta = rss_mib() - rss_before
        peak = await allocation_peak_kib(hass, cycle)
        loop = [sample[0] for sample in samples]
        process = [sample[1] for sample in samples]
        devices = sum(sizes)
        return {
            "hubs": len(sizes),
            "devices": devices,
            "entities": len(hass.states.async_entity_ids("sensor")),
            "unavailable_entities": unavailable(hass),
            "requests_per_cycle": counts.pop(),
            "changed_states_per_cycle_median": statistics.median(changed),
            "cycles": cycles,
            "cpu_loop_ms_median": round(statistics.median(loop), 3),
            "cpu_loop_ms_quartiles": _quartiles(loop),
            "cpu_loop_ms_per_device": round(statistics.median(loop) / devices, 3),
            "cpu_process_ms_median": round(statistics.median(process), 3),
            "rss_growth_mib": round(rss_delta, 2),
            "cycle_allocation_peak_kib": round(peak, 1),
        }


def measure(side: str, sizes: HubSizes, ports: Sequence[int]) -> dict[str, Any]:
    """Measure one side with hubs of `sizes` devices on the simulators at `ports`."""
    logging.basicConfig(level=logging.ERROR)
    with tempfile.TemporaryDirectory(prefix="ems-scaling-") as workdir:
        return asyncio.run(_measure(side, sizes, ports, Path(workdir)))


# ---- report -----------------------------------------------------------------------------------


def fit(devices: Sequence[int], values: Sequence[float]) -> dict[str, Any]:
    """Least-squares line through the medians, and whether the cost is linear in devices."""
    slope, intercept = statistics.linear_regression(devices, values)
    r2 = statistics.correlation(devices, values) ** 2
    # The cost of one more device over each step of DEVICE_COUNTS: the last over the first.
    marginal = [
        (values[i + 1] - values[i]) / (devices[i + 1] - devices[i]) for i in range(len(devices) - 1)
    ]
    ratio = marginal[-1] / marginal[0]
    return {
        "per_device": round(slope, 4),
        "intercept": round(intercept, 3),
        "r2": round(r2, 5),
        "marginal_per_device": [round(m, 4) for m in marginal],
        "marginal_last_over_first": round(ratio, 3),
        "linear": r2 >= LINEAR_R2_MIN and abs(ratio - 1) <= MARGINAL_TOLERANCE,
    }


FITTED = {
    "cpu_loop_ms_median": "cpu_loop_ms",
    "cpu_process_ms_median": "cpu_process_ms",
    "rss_growth_mib": "rss_mib",
    "cycle_allocation_peak_kib": "cycle_allocation_peak_kib",
}


def side_fits(runs: dict[int, dict[str, Any]]) -> dict[str, Any]:
    """Fits of each measured quantity over the device counts."""
    return {
        name: fit(DEVICE_COUNTS, [runs[n][key] for n in DEVICE_COUNTS])
        for key, name in FITTED.items()
    }


def comparisons(results: dict[str, dict[str, dict[int, dict[str, Any]]]]) -> dict[str, Any]:
    """ems over core `modbus` per layout and device count, and of the per-device slopes."""
    ems, core = results["ems"], results["core_modbus"]
    out: dict[str, Any] = {}
    for layout in LAYOUTS:
        by_count = {
            str(n): {
                "cpu_loop": round(
                    ems[layout][n]["cpu_loop_ms_median"] / core[layout][n]["cpu_loop_ms_median"], 4
                ),
                "cpu_process": round(
                    ems[layout][n]["cpu_process_ms_median"]
                    / core[layout][n]["cpu_process_ms_median"],
                    4,
                ),
            }
            for n in DEVICE_COUNTS
        }
        ems_fit, core_fit = side_fits(ems[layout]), side_fits(core[layout])
        out[layout] = {
            "ems_over_core_by_devices": by_count,
            "cpu_loop_per_device_ems_over_core": round(
                ems_fit["cpu_loop_ms"]["per_device"] / core_fit["cpu_loop_ms"]["per_device"], 4
            ),
            "cpu_process_per_device_ems_over_core": round(
                ems_fit["cpu_process_ms"]["per_device"] / core_fit["cpu_process_ms"]["per_device"],
                4,
            ),
        }
    return out


def hub_and_device_fit(runs: Sequence[dict[str, Any]], key: str) -> dict[str, Any]:
    """Least squares of cost = fixed + per_device x devices + per_hub x hubs, over every
    distinct configuration of both layouts: what a hub costs besides its devices."""
    design = np.array([[1.0, run["devices"], run["hubs"]] for run in runs])
    observed = np.array([run[key] for run in runs])
    (fixed, per_device, per_hub), *_ = np.linalg.lstsq(design, observed)
    residual = observed - design @ np.array([fixed, per_device, per_hub])
    r2 = 1 - float(residual @ residual) / float(((observed - observed.mean()) ** 2).sum())
    return {
        "per_device": round(float(per_device), 4),
        "per_hub": round(float(per_hub), 4),
        "fixed": round(float(fixed), 3),
        "r2": round(r2, 5),
    }


def layout_cost(results: dict[str, dict[str, dict[int, dict[str, Any]]]]) -> dict[str, float]:
    """Spreading the most devices over hubs, against one hub, per side (loop CPU)."""
    most = DEVICE_COUNTS[-1]
    spread, single = LAYOUTS[1], LAYOUTS[0]
    return {
        side: round(
            runs[spread][most]["cpu_loop_ms_median"] / runs[single][most]["cpu_loop_ms_median"], 4
        )
        for side, runs in results.items()
    }


NOTES = [
    (
        "Devices: Eastron SDM630 on unit 1 (grid role) and simulator copies on units "
        f"{FIRST_COPY_UNIT}.. (sub-meters); core modbus: one sensor per channel, as in "
        "modbus_requests.py."
    ),
    (
        "A cycle: ems refreshes every coordinator once (fast group); core modbus updates its "
        "fast sensors concurrently; both then wait for Home Assistant and the recorder. "
        f"Medians over {EMS_CYCLES} (ems) and {CORE_CYCLES} (core) cycles after "
        f"{WARMUP_CYCLES} warm-up cycles."
    ),
    (
        "cpu_loop: time.thread_time of the event loop's thread (integration, Modbus client, "
        "state machine); cpu_process: time.process_time of the process (adds the recorder's "
        "thread). The simulators run in another process and are not counted."
    ),
    (
        "Fits: least squares of the medians over 1, 10, 50 devices; per_device is the slope "
        f"(ms per device per cycle). linear: r2 >= {LINEAR_R2_MIN} and the marginal cost per "
        f"device from 10 to 50 within {MARGINAL_TOLERANCE:.0%} of that from 1 to 10."
    ),
    (
        f"In the {LAYOUTS[1]} layout the hubs grow with the devices (1, 2, 10), so its "
        "per-device fit also carries the cost of each hub (its site, the site's entities): "
        "fits_hubs_and_devices separates the two over every distinct configuration."
    ),
    (
        "Core modbus's CPU per cycle grows with how long its requests wait (on a busy machine "
        "its quartiles spread widely); ems's does not. Hence more core cycles."
    ),
    (
        "changed_states_per_cycle: entities whose state or attributes changed (recorder rows). "
        "Core modbus rounds floats to 2 decimals by default, so fewer of its states change; "
        "that is most of the difference in cpu_process (the recorder's thread)."
    ),
    (
        "Memory: rss_growth_mib is the resident set after the measured cycles minus before "
        "the integration was set up (entities, registry, plans, states); "
        "cycle_allocation_peak_kib is tracemalloc's peak during a cycle (median of "
        f"{TRACED_CYCLES} more cycles)."
    ),
    (
        "requests_per_cycle: ems counts its own requests; for core modbus it is the number of "
        "fast sensors, one read each."
    ),
    (
        "Each distinct configuration runs once, in a fresh process (1 device is the same in "
        "both layouts); absolute times mean little, ratios do."
    ),
]


def device_summary() -> dict[str, Any]:
    """The one kind of device every configuration is made of."""
    channels = sdm630_channels()
    return {
        "profile": PROFILE,
        "channels": len(channels),
        "fast": sum(spec.poll is PollGroup.FAST for spec in channels),
    }


def run() -> dict[str, Any]:
    """Every side, layout and device count, each in a fresh process, against one set of
    simulators."""
    configs = {(layout, n): hub_sizes(layout, n) for layout in LAYOUTS for n in DEVICE_COUNTS}
    unique = sorted(set(configs.values()))
    hubs = max(len(sizes) for sizes in unique)
    sides = ("ems", "core_modbus")
    measured: dict[tuple[str, HubSizes], dict[str, Any]] = {}
    with (
        simulators(hubs, max(DEVICE_COUNTS)) as ports,
        ProcessPoolExecutor(max_workers=1, mp_context=SPAWN, max_tasks_per_child=1) as pool,
    ):
        # Sides alternate, so that a slow spell of the machine falls on both.
        for sizes in unique:
            for side in sides:
                measured[side, sizes] = pool.submit(measure, side, sizes, ports).result()
    results = {
        side: {
            layout: {n: measured[side, configs[layout, n]] for n in DEVICE_COUNTS}
            for layout in LAYOUTS
        }
        for side in sides
    }
    return {
        "benchmark": "scaling",
        "versions": {"homeassistant": ha_version, "pymodbus": pymodbus.__version__},
        "device": device_summary(),
        "device_counts": list(DEVICE_COUNTS),
        "layouts": {
            layout: {str(n): list(configs[layout, n]) for n in DEVICE_COUNTS} for layout in LAYOUTS
        },
        "slow_group_every_cycles": SLOW_POLL_EVERY,
        "runs": {
            side: {layout: {str(n): run for n, run in runs.items()} for layout, runs in by.items()}
            for side, by in results.items()
        },
        "fits": {
            side: {layout: side_fits(runs) for layout, runs in by.items()}
            for side, by in results.items()
        },
        "fits_hubs_and_devices": {
            side: {
                name: hub_and_device_fit([measured[side, sizes] for sizes in unique], key)
                for key, name in FITTED.items()
                if name.startswith("cpu")
            }
            for side in sides
        },
        "ratios": comparisons(results),
        f"{LAYOUTS[1]}_over_one_hub_at_{DEVICE_COUNTS[-1]}_devices": layout_cost(results),
        "notes": NOTES,
    }


def main() -> None:
    """Run the benchmark and print its JSON report."""
    logging.basicConfig(level=logging.ERROR)
    print(json.dumps(run(), indent=2))


if __name__ == "__main__":
    main()
