"""Modbus requests per cycle for each device family, against the fewest its register map allows.

    .venv/bin/python benchmarks/family_requests.py      # prints one JSON document

Each family's simulated twin is served over a real socket. ems identifies the unit as the
flow does, builds its profiles, and runs its own read schedule (ReadSchedule, read_plan, the
quarantine of registers the device refuses) for CYCLES cycles. Requests are counted at the
hub. The baseline, measured in the same run from the twin's own map, is the fewest requests
that read every register the profile needs when a request may only cover registers the device
serves, at most `max_read` of them: a greedy sweep along each function's addresses, which is
minimal on a line. The ratio is ems's steady fast-cycle requests over that minimum (1.0 is the
best possible); a full cycle, which adds the slow group, is reported the same way.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
import json
from pathlib import Path
import statistics
import sys
import time
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from custom_components.ems.engine.modbus.discovery import detect_profile, discover_sunspec
from custom_components.ems.engine.modbus.plan import DEFAULT_MAX_GAP, DEFAULT_MAX_READ
from custom_components.ems.engine.modbus.poll import read_plan
from custom_components.ems.engine.modbus.schedule import ReadSchedule
from custom_components.ems.engine.modbus.transport import HubSettings, ModbusHub
from custom_components.ems.engine.model import Device, DeviceRole, PollGroup
from custom_components.ems.engine.profiles.loader import builtin_profiles
from custom_components.ems.engine.profiles.sunspec_chain import part_profiles, split_chain
from simulator import SiteSimulator

# Two slow rounds: the first teaches the quarantine the map, the second is measured.
WARMUP_CYCLES = 5
# (family, simulator layout, unit id)
FAMILIES = (
    ("sunspec_storage", "standard", 3),
    ("sunspec_hybrid", "hybrid", 2),
    ("solaredge_inverter_and_meters", "solaredge", 2),
    ("sungrow_sh", "sungrow", 2),
)


async def _devices(hub: ModbusHub, unit_id: int) -> list[Device]:
    chain = await discover_sunspec(hub, unit_id)
    if chain:
        profiles = part_profiles(split_chain(chain))
    else:
        profile = await detect_profile(hub, unit_id, builtin_profiles().values())
        if profile is None:
            raise RuntimeError(f"unit {unit_id} is not recognised")
        profiles = [profile]
    return [
        Device(id=f"d{i}", name=p.id, unit_id=unit_id, profile=p, role=DeviceRole.SUBMETER)
        for i, p in enumerate(profiles)
    ]


def _minimum(site: SiteSimulator, devices: Iterable[Device], groups: set[PollGroup]) -> int:
    """The fewest requests that read every needed register, covering only served ones."""
    device_map = site._devices[next(iter(devices)).unit_id]  # noqa: SLF001 - the twin's own map
    needed: dict[str, set[int]] = {}
    for device in devices:
        for spec in device.profile.channels:
            if spec.poll not in groups:
                continue
            register = spec.register
            addresses = needed.setdefault(register.function.value, set())
            addresses.update(range(register.address, register.address + register.count))
            if register.scale_register is not None:
                addresses.add(register.scale_register)
    requests = 0
    for function, addresses in needed.items():
        start: int | None = None
        for address in sorted(addresses):
            if (
                start is not None
                and address - start < DEFAULT_MAX_READ
                and device_map.serves(function, range(start, address + 1))  # type: ignore[arg-type]
            ):
                continue  # the request that started at `start` reaches this register too
            requests += 1
            start = address
    return requests


async def _family(layout: str, unit_id: int) -> dict[str, Any]:
    site = SiteSimulator(layout=layout)
    await site.start()
    site.advance(10 * 3600)
    hub = ModbusHub(settings=HubSettings(host="127.0.0.1", port=site.port), clock=time.monotonic)
    try:
        devices = await _devices(hub, unit_id)
        schedule = ReadSchedule(
            devices={d.id: d for d in devices},
            hub_name=layout,
            max_read=DEFAULT_MAX_READ,
            max_gap=DEFAULT_MAX_GAP,
        )
        fast: list[int] = []
        full: list[int] = []
        for cycle in range(2 * schedule.slow_every + 1):
            full_due = schedule.full_due
            result = await read_plan(hub, schedule.due(), schedule.health, now=float(cycle))
            schedule.image(result.image)
            if cycle >= WARMUP_CYCLES and (cycle > schedule.slow_every or not full_due):
                (full if full_due else fast).append(result.requests)
    finally:
        await hub.close()
        await site.stop()
    minimum_fast = _minimum(site, devices, {PollGroup.FAST})
    minimum_full = _minimum(site, devices, {PollGroup.FAST, PollGroup.SLOW})
    steady = statistics.median(fast)
    whole = statistics.median(full) if full else float("nan")
    return {
        "channels": sum(len(d.profile.channels) for d in devices),
        "requests_fast_cycle": steady,
        "minimum_fast_cycle": minimum_fast,
        "ratio_fast": round(steady / minimum_fast, 3),
        "requests_full_cycle": whole,
        "minimum_full_cycle": minimum_full,
        "ratio_full": round(whole / minimum_full, 3),
    }


async def run() -> dict[str, Any]:
    """Every family, one after the other."""
    report: dict[str, Any] = {"max_read": DEFAULT_MAX_READ, "max_gap": DEFAULT_MAX_GAP}
    for name, layout, unit_id in FAMILIES:
        report[name] = await _family(layout, unit_id)
    return report


def main() -> None:
    """Run the benchmark and print its JSON report."""
    print(json.dumps(asyncio.run(run()), indent=2))


if __name__ == "__main__":
    main()
