"""Fuzzing discovery over a real socket: a SunSpec unit whose chain headers are garbage.

The simulator's hybrid unit serves its true registers; the fault layer overwrites the model
headers (ID, L) that discovery follows with random ones: unknown and repeated models, lengths
that disagree with the definition, lengths that jump past the unit's map or past register
65535, a chain with no end, and a header the device refuses. Whatever comes back, discovery
ends, identification gives a usable (perhaps partial) device, and one poll of its read plan
decodes without an error that is not the device's own.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
import contextlib
import random
import time

import pytest

from custom_components.ems.engine.modbus.codec import decode_channel
from custom_components.ems.engine.modbus.discovery import discover_sunspec
from custom_components.ems.engine.modbus.plan import (
    PlannedChannel,
    RegisterImage,
    build_read_plan,
)
from custom_components.ems.engine.modbus.transport import (
    HubSettings,
    ModbusHub,
    ModbusTransportError,
)
from custom_components.ems.engine.model import DeviceProfile
from custom_components.ems.engine.profiles.loader import builtin_profiles
from custom_components.ems.engine.profiles.sunspec import (
    END_OF_CHAIN,
    SUPPORTED_MODELS,
    model_definition,
)
from custom_components.ems.engine.profiles.sunspec_chain import part_profiles
from custom_components.ems.glue.devices import Catalogue, async_identify
from simulator import SiteSimulator
from simulator.hybrid import HYBRID_UNIT

CHAINS = 25
MAX_MODELS = 64
MAX_ADDRESS = 0xFFFF
_ODD_IDS = (0, 2, 64000, 701, 0xFFFE)


@pytest.fixture(autouse=True)
def _allow_loopback_sockets(request: pytest.FixtureRequest) -> None:
    with contextlib.suppress(pytest.FixtureLookupError):
        request.getfixturevalue("socket_enabled")


@pytest.fixture
async def hybrid() -> AsyncIterator[SiteSimulator]:
    site = SiteSimulator(layout="hybrid")
    await site.start()
    yield site
    await site.stop()


def _full_length(model_id: int) -> int:
    return sum(int(point["size"]) for point in model_definition(model_id)["points"]) - 2


def _random_header(rng: random.Random) -> tuple[int, int]:
    model_id = rng.choice([*sorted(SUPPORTED_MODELS), *_ODD_IDS])
    proper = _full_length(model_id) if model_id in SUPPORTED_MODELS else 10
    length = rng.choice(
        [proper, proper, 0, rng.randint(1, 20), rng.randint(21, 400), 0xFFFF, 0xFFFE - 40002]
    )
    return model_id, length


def _garble(site: SiteSimulator, end: int, rng: random.Random) -> list[tuple[int, int, int]]:
    """Overwrite headers from 40002 on, as discovery will meet them; return what was put."""
    headers: list[tuple[int, int, int]] = []
    address = 40002
    while address + 1 < end and len(headers) <= MAX_MODELS:
        model_id, length = _random_header(rng)
        site.faults.garbage(HYBRID_UNIT, "holding", address, [model_id, length])
        headers.append((address, model_id, length))
        address += 2 + length
    if headers and rng.random() < 0.2:
        refused = rng.choice(headers)[0]
        site.faults.exception(HYBRID_UNIT, "holding", refused)
    return headers


async def _true_end(site: SiteSimulator, settings: HubSettings) -> int:
    hub = ModbusHub(settings=settings, clock=time.monotonic)
    try:
        chain = await discover_sunspec(hub, HYBRID_UNIT)
    finally:
        await hub.close()
    return chain[-1].address + 2 + chain[-1].length + 2


async def _poll_once(settings: HubSettings, profiles: list[DeviceProfile]) -> int:
    """Read each profile's plan once and decode every channel; return the values seen."""
    planned = [
        PlannedChannel(unit_id=HYBRID_UNIT, spec=spec)
        for profile in profiles
        for spec in profile.channels
    ]
    hub = ModbusHub(settings=settings, clock=time.monotonic)
    image: RegisterImage = {}
    try:
        for block in build_read_plan(planned, max_read=100):
            assert block.start + block.count - 1 <= MAX_ADDRESS
            with contextlib.suppress(ModbusTransportError):
                words = await hub.read(block)
                table = image.setdefault((block.unit_id, block.function), {})
                table.update(zip(range(block.start, block.start + block.count), words, strict=True))
    finally:
        await hub.close()
    return sum(decode_channel(p.spec, HYBRID_UNIT, image) is not None for p in planned)


async def test_discovery_survives_garbage_chains(hybrid: SiteSimulator) -> None:
    """Twenty-five garbled chains (seeded): each ends, each gives a usable device or none."""
    settings = HubSettings(host="127.0.0.1", port=hybrid.port)
    catalogue = Catalogue(profiles=dict(builtin_profiles()), errors=[])
    end = await _true_end(hybrid, settings)
    for seed in range(CHAINS):
        rng = random.Random(seed)
        hybrid.faults.clear()
        headers = _garble(hybrid, end, rng)
        identified = await async_identify(settings, HYBRID_UNIT, catalogue)
        chain = identified.sunspec_models
        assert len(chain) <= MAX_MODELS, seed
        addresses = [model.address for model in chain]
        assert addresses == sorted(set(addresses)), seed
        assert all(address + 1 <= MAX_ADDRESS for address in addresses), seed
        assert all(model.model_id != END_OF_CHAIN for model in chain), seed
        # Discovery follows the headers it was given, in order, and stops at none of its own.
        met = [(a, i, min(n, MAX_ADDRESS - a - 1)) for a, i, n in headers]
        assert [(m.address, m.model_id, m.length) for m in chain] == met[: len(chain)], seed
        await _poll_once(settings, part_profiles(identified.parts))


async def test_a_chain_that_never_ends_stops_after_64_models(hybrid: SiteSimulator) -> None:
    """An unknown model of length 0, over and over: 64 are kept, and the unit is a plain
    device with no channels beyond its identity rather than an endless walk."""
    settings = HubSettings(host="127.0.0.1", port=hybrid.port)
    hybrid.faults.garbage(HYBRID_UNIT, "holding", 40002, [64000, 0] * 100)
    catalogue = Catalogue(profiles=dict(builtin_profiles()), errors=[])
    identified = await async_identify(settings, HYBRID_UNIT, catalogue)
    assert [model.model_id for model in identified.sunspec_models] == [64000] * MAX_MODELS
    assert hybrid.requests  # it really asked the device


async def test_a_refused_header_ends_the_chain_where_it_is(hybrid: SiteSimulator) -> None:
    """A device that refuses a header (exception 2) has served the models before it: they
    are kept, as a device whose map simply ends there."""
    settings = HubSettings(host="127.0.0.1", port=hybrid.port)
    catalogue = Catalogue(profiles=dict(builtin_profiles()), errors=[])
    whole = (await async_identify(settings, HYBRID_UNIT, catalogue)).sunspec_models
    hybrid.faults.exception(HYBRID_UNIT, "holding", whole[2].address)
    cut = (await async_identify(settings, HYBRID_UNIT, catalogue)).sunspec_models
    assert cut == whole[:2]


async def test_a_length_past_register_65535_ends_the_chain(hybrid: SiteSimulator) -> None:
    """A length that points past the last Modbus register ends the chain there; the model's
    length is cut where the register space ends, so no channel lies beyond it."""
    settings = HubSettings(host="127.0.0.1", port=hybrid.port)
    catalogue = Catalogue(profiles=dict(builtin_profiles()), errors=[])
    whole = (await async_identify(settings, HYBRID_UNIT, catalogue)).sunspec_models
    hybrid.faults.garbage(HYBRID_UNIT, "holding", whole[1].address, [whole[1].model_id, 0xFFFF])
    cut = (await async_identify(settings, HYBRID_UNIT, catalogue)).sunspec_models
    assert [m.model_id for m in cut] == [m.model_id for m in whole[:2]]
    assert cut[1].address + 2 + cut[1].length - 1 == MAX_ADDRESS
