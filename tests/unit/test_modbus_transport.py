"""The Modbus stage on its own, over a real socket to the simulator (no Home Assistant)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
import logging
from typing import Any

import pytest

from custom_components.ems.engine.modbus.codec import decode_channel
from custom_components.ems.engine.modbus.discovery import detect_profile, discover_sunspec
from custom_components.ems.engine.modbus.plan import PlannedChannel, ReadBlock, build_read_plan
from custom_components.ems.engine.modbus.poll import PlanHealth, read_plan
from custom_components.ems.engine.modbus.transport import (
    BACKOFF_FIRST,
    BACKOFF_MAX,
    HubSettings,
    ModbusErrorKind,
    ModbusHub,
    ModbusTransportError,
    unit_keyword,
)
from custom_components.ems.engine.model import PollGroup, RegisterFunction
from custom_components.ems.engine.profiles.loader import builtin_profiles
from simulator import SiteSimulator
from tests.conftest import root_log_handler

SDM630 = builtin_profiles()["eastron_sdm630"]
FAST = [PlannedChannel(unit_id=1, spec=s) for s in SDM630.channels if s.poll is PollGroup.FAST]


class Clock:
    """A clock the test moves, for the reconnect back-off."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def hub(simulator: SiteSimulator) -> AsyncIterator[ModbusHub]:
    """A hub on the simulator with a short time-out and a test-driven clock."""
    modbus_hub = ModbusHub(
        settings=HubSettings(host="127.0.0.1", port=simulator.port, timeout=0.3), clock=Clock()
    )
    yield modbus_hub
    await modbus_hub.close()


async def test_plan_reads_every_channel(hub: ModbusHub, simulator: SiteSimulator) -> None:
    """The SDM630's fast set is read in 4 requests and decodes to the served values."""
    simulator.advance(8 * 3600)
    result = await read_plan(hub, build_read_plan(FAST))
    assert result.requests == 4
    assert result.failed_blocks == []
    served = simulator.device_values(1)
    for planned in FAST:
        value = decode_channel(planned.spec, 1, result.image)
        assert value == pytest.approx(served[planned.spec.key], rel=1e-6), planned.spec.key


async def test_exception_quarantines_only_the_bad_register(
    hub: ModbusHub, simulator: SiteSimulator
) -> None:
    """Bisection finds the register that answers "illegal address"; the rest is read."""
    simulator.faults.exception(1, "input", 0x0034, code=2)
    health = PlanHealth()
    result = await read_plan(hub, build_read_plan(FAST), health, now=0.0)
    quarantined = {address for _, _, address in health.quarantined}
    assert 0x0034 in quarantined
    assert quarantined <= {0x0034, 0x0035}
    assert decode_channel(SDM630.channel("Frequency"), 1, result.image) is not None
    assert decode_channel(SDM630.channel("ActivePower"), 1, result.image) is None

    # Next pass: the quarantined register is left out, so nothing fails.
    again = await read_plan(hub, build_read_plan(FAST), health, now=1.0)
    assert again.failed_blocks == []

    # After its quarantine, the register is tried again and comes back.
    simulator.faults.clear()
    later = await read_plan(hub, build_read_plan(FAST), health, now=health.retry_after + 1)
    assert health.quarantined == {}
    assert decode_channel(SDM630.channel("ActivePower"), 1, later.image) is not None


async def test_weak_gateway_caps_the_request_size(hub: ModbusHub, simulator: SiteSimulator) -> None:
    """Exception 3 on long requests that read fine in halves caps the request size."""
    simulator.faults.max_registers(32)
    health = PlanHealth()
    result = await read_plan(hub, build_read_plan(FAST), health)
    assert health.quarantined == {}
    assert health.max_read_cap is not None
    assert health.max_read_cap <= 32
    assert all(decode_channel(p.spec, 1, result.image) is not None for p in FAST)
    capped = build_read_plan(FAST, max_read=health.max_read_cap)
    assert (await read_plan(hub, capped, health)).failed_blocks == []


async def test_silent_unit_is_skipped_not_bisected(
    hub: ModbusHub, simulator: SiteSimulator
) -> None:
    """A unit that never answers costs one time-out per pass; the other units are read."""
    simulator.faults.offline(1, True)
    sdm120 = builtin_profiles()["eastron_sdm120"]
    plan = build_read_plan([*FAST, *(PlannedChannel(unit_id=5, spec=s) for s in sdm120.channels)])
    result = await read_plan(hub, plan, PlanHealth())
    assert [err.kind for _, err in result.failed_blocks] == [ModbusErrorKind.TIMEOUT]
    assert (1, RegisterFunction.INPUT) not in result.image
    assert decode_channel(sdm120.channel("ActivePower"), 5, result.image) is not None


async def test_reconnect_backs_off_up_to_five_minutes(
    hub: ModbusHub, simulator: SiteSimulator
) -> None:
    """A lost device is retried with doubling delays (capped), and reconnects when back."""
    block = ReadBlock(unit_id=1, function=RegisterFunction.INPUT, start=0, count=2)
    clock: Any = hub.clock
    await hub.read(block)
    await simulator.stop()
    delays: list[float] = []
    for _ in range(12):
        with pytest.raises(ModbusTransportError) as caught:
            await hub.read(block)
        assert caught.value.kind in (ModbusErrorKind.CONNECTION, ModbusErrorKind.TIMEOUT)
        if hub.retry_in:
            delays.append(hub.retry_in)
            clock.now += hub.retry_in
    assert delays[0] == BACKOFF_FIRST
    assert delays == sorted(delays)
    assert delays[-1] == BACKOFF_MAX

    await simulator.start(host="127.0.0.1", port=simulator.port)
    assert len(await hub.read(block)) == 2
    assert hub.retry_in == 0


async def test_waiting_for_back_off_sends_nothing(hub: ModbusHub, simulator: SiteSimulator) -> None:
    """While the back-off runs, a read fails at once without touching the network."""
    block = ReadBlock(unit_id=1, function=RegisterFunction.INPUT, start=0, count=2)
    await simulator.stop()
    with pytest.raises(ModbusTransportError):
        await hub.read(block)
    await hub.close()
    with pytest.raises(ModbusTransportError, match="waiting"):
        await hub.read(block)


@pytest.mark.parametrize(
    ("unit_id", "expected"), [(1, []), (2, [1, 103]), (3, [1, 124, 802]), (4, [1, 203])]
)
async def test_sunspec_discovery(hub: ModbusHub, unit_id: int, expected: list[int]) -> None:
    """The model chain is found at 40000 or 50000; an Eastron meter has none."""
    assert [model.model_id for model in await discover_sunspec(hub, unit_id)] == expected


async def test_silent_unit_discovery_raises(hub: ModbusHub) -> None:
    """ "Nobody there" is not "not SunSpec"."""
    with pytest.raises(ModbusTransportError) as caught:
        await discover_sunspec(hub, 77)
    assert caught.value.kind is ModbusErrorKind.TIMEOUT


async def test_detect_eastron_by_meter_code(hub: ModbusHub) -> None:
    """Each Eastron profile's meter code identifies its meter."""
    profiles = builtin_profiles().values()
    assert (await detect_profile(hub, 1, profiles)).id == "eastron_sdm630"  # type: ignore[union-attr]
    assert (await detect_profile(hub, 5, profiles)).id == "eastron_sdm120"  # type: ignore[union-attr]
    assert await detect_profile(hub, 2, profiles) is None


def _old(address: int, *, count: int = 1, slave: int = 1) -> None: ...
def _new(address: int, *, count: int = 1, device_id: int = 1) -> None: ...


@pytest.mark.parametrize(("method", "keyword"), [(_old, "slave"), (_new, "device_id")])
def test_unit_keyword_follows_pymodbus(method: Callable[..., None], keyword: str) -> None:
    """pymodbus 3.8/3.9 say `slave=`, 3.10 and later `device_id=`; one helper picks."""
    assert unit_keyword(method) == keyword


async def test_garbage_frame_fails_one_request_then_recovers(
    hub: ModbusHub, simulator: SiteSimulator
) -> None:
    """A garbled response costs that request (a time-out); the next one reads fine."""
    block = ReadBlock(unit_id=1, function=RegisterFunction.INPUT, start=0, count=2)
    simulator.faults.corrupt_frames(1)
    with pytest.raises(ModbusTransportError):
        await hub.read(block)
    assert len(await hub.read(block)) == 2


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


async def test_probes_the_device_refuses_log_no_error(hub: ModbusHub) -> None:
    """Discovery at a unit without SunSpec (the meter refuses 40000, 0 and 50000) and a
    detection register a device lacks are answers, not failures: no ERROR or WARNING line."""
    with root_log_handler(_Records()) as caught:
        assert await discover_sunspec(hub, 1) == []
        assert await discover_sunspec(hub, 5) == []
        assert await detect_profile(hub, 2, builtin_profiles().values()) is None
    loud = [r for r in caught.records if r.levelno >= logging.WARNING]
    assert not loud, [f"{r.name}: {r.getMessage()}" for r in loud]
