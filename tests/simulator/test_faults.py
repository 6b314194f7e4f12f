"""Every injected fault over a real socket, and that `faults.clear()` undoes it."""

from __future__ import annotations

import asyncio
import math

from pymodbus.client import AsyncModbusTcpClient
from pymodbus.exceptions import ConnectionException, ModbusIOException
import pytest

from simulator import SiteSimulator
from simulator.devices import DEVICES
from simulator.registers import decode
from tests.simulator.helpers import address_of, make_client, read, write

STORAGE_MODE = address_of(3, "124.StorCtl_Mod")


def true_words(sim: SiteSimulator, unit_id: int, key: str) -> list[int]:
    register = DEVICES[unit_id].register(key)
    return register.to_words(sim.device_values(unit_id)[key])


async def test_refused_connections(sim: SiteSimulator, client: AsyncModbusTcpClient) -> None:
    sim.faults.refuse_connections(True)
    await asyncio.sleep(0.05)
    assert not client.connected
    newcomer = make_client(sim.port, timeout=0.3)
    await newcomer.connect()  # TCP may accept, but the device hangs up at once
    await asyncio.sleep(0.05)
    assert not newcomer.connected
    with pytest.raises((ConnectionException, ModbusIOException)):
        await read(newcomer, "input", 0, 2, 1)
    newcomer.close()
    sim.faults.clear()
    assert await client.connect()
    assert not (await read(client, "input", 0, 2, 1)).isError()


async def test_delayed_responses(sim: SiteSimulator, client: AsyncModbusTcpClient) -> None:
    loop = asyncio.get_running_loop()
    sim.faults.delay(0.15)
    started = loop.time()
    assert not (await read(client, "input", 0, 2, 1)).isError()
    assert not (await write(client, STORAGE_MODE, [0], 3)).isError()  # one delay per request
    assert loop.time() - started == pytest.approx(0.3, abs=0.12)
    sim.faults.clear()
    started = loop.time()
    assert not (await read(client, "input", 0, 2, 1)).isError()
    assert loop.time() - started < 0.1


async def test_delay_beyond_the_client_timeout(sim: SiteSimulator) -> None:
    impatient = make_client(sim.port, timeout=0.1)
    assert await impatient.connect()
    sim.faults.delay(0.3)
    with pytest.raises(ModbusIOException):
        await read(impatient, "input", 0, 2, 1)
    impatient.close()


async def test_exception_on_one_register(sim: SiteSimulator, client: AsyncModbusTcpClient) -> None:
    sim.faults.exception(1, "input", 0x0034, code=4)
    for address, count in [(0x0034, 2), (0x0035, 1), (0x0030, 8)]:  # any request touching it
        response = await read(client, "input", address, count, 1)
        assert response.isError()
        assert response.exception_code == 4
    assert not (await read(client, "input", 0x0000, 0x34, 1)).isError()  # ends just before
    assert not (await read(client, "input", 0x0036, 2, 1)).isError()
    assert not (await read(client, "input", 0x0034, 2, 5)).isError()  # another unit
    sim.faults.clear()
    assert not (await read(client, "input", 0x0034, 2, 1)).isError()


async def test_exception_on_a_write_leaves_the_device_unchanged(
    sim: SiteSimulator, client: AsyncModbusTcpClient
) -> None:
    sim.faults.exception(3, "holding", STORAGE_MODE, code=6)
    response = await write(client, STORAGE_MODE, [1], 3)
    assert response.exception_code == 6
    assert sim.device_values(3)["124.StorCtl_Mod"] == 0
    assert not sim.control_writes


async def test_garbage_for_a_number_of_reads(
    sim: SiteSimulator, client: AsyncModbusTcpClient
) -> None:
    sim.faults.garbage(1, "input", 0x0034, [0xFFFF, 0xFFFF], count=2)
    for _ in range(2):
        assert (await read(client, "input", 0x0034, 2, 1)).registers == [0xFFFF, 0xFFFF]
    response = await read(client, "input", 0x0034, 2, 1)
    assert response.registers == true_words(sim, 1, "ActivePower")


async def test_garbage_until_cleared(sim: SiteSimulator, client: AsyncModbusTcpClient) -> None:
    sim.faults.garbage(1, "input", 0x0000, [0x7FC0, 0x0000])  # NaN where Voltage_L1 is
    for _ in range(3):
        words = (await read(client, "input", 0x0000, 4, 1)).registers
        assert math.isnan(decode(words[0:2], "float32"))
        assert words[2:4] == true_words(sim, 1, "Voltage_L2")
    sim.faults.clear()
    words = (await read(client, "input", 0x0000, 2, 1)).registers
    assert words == true_words(sim, 1, "Voltage_L1")


async def test_meter_counter_reset(sim: SiteSimulator, client: AsyncModbusTcpClient) -> None:
    sim.advance(3600.0)
    lifetime_kwh = sim.truth.pv_energy_kwh
    assert lifetime_kwh > 1.0
    sim.faults.reset_counter(2, "103.WH")
    assert sim.device_values(2)["103.WH"] == 0
    sim.advance(600.0)
    served_wh = sim.device_values(2)["103.WH"]
    assert served_wh == pytest.approx((sim.truth.pv_energy_kwh - lifetime_kwh) * 1000, abs=1)
    assert sim.truth.pv_energy_kwh > lifetime_kwh  # the ground truth keeps the lifetime total
    assert sim.device_values(4)["203.TotWhExp"] == round(sim.truth.pv_energy_kwh * 1000)
    response = await read(client, "holding", address_of(2, "103.WH"), 2, 2)
    assert DEVICES[2].register("103.WH").from_words(response.registers) == served_wh
    with pytest.raises(ValueError, match="not an energy counter"):
        sim.faults.reset_counter(2, "103.W")
    sim.faults.clear()
    assert sim.device_values(2)["103.WH"] == round(sim.truth.pv_energy_kwh * 1000)


async def test_weak_gateway_limits_the_request_size(
    sim: SiteSimulator, client: AsyncModbusTcpClient
) -> None:
    sim.faults.max_registers(10)
    response = await read(client, "input", 0x0000, 12, 1)
    assert response.isError()
    assert response.exception_code == 3
    assert not (await read(client, "input", 0x0000, 10, 1)).isError()
    sim.faults.clear()
    assert not (await read(client, "input", 0x0000, 12, 1)).isError()


async def test_offline_unit_stays_silent_while_others_answer(
    sim: SiteSimulator, client: AsyncModbusTcpClient
) -> None:
    sim.faults.offline(5, True)
    with pytest.raises(ModbusIOException):
        await read(client, "input", 0x0000, 2, 5)
    assert not (await read(client, "input", 0x0000, 2, 1)).isError()
    sim.faults.offline(5, False)
    assert not (await read(client, "input", 0x0000, 2, 5)).isError()


@pytest.mark.parametrize(
    ("inject", "message"),
    [
        (lambda faults: faults.exception(9, "input", 0), "not simulated"),
        (lambda faults: faults.exception(1, "input", 0, code=0), "exception code"),
        (lambda faults: faults.garbage(1, "input", 0, [0x1_0000]), "16-bit"),
        (lambda faults: faults.garbage(1, "input", 0, [1], count=0), "at least 1"),
        (lambda faults: faults.delay(-1.0), "negative"),
        (lambda faults: faults.max_registers(0), "at least one"),
        (lambda faults: faults.reset_counter(1, "Nope"), "no register"),
    ],
)
def test_nonsense_faults_are_rejected(inject: object, message: str) -> None:
    faults = SiteSimulator().faults
    with pytest.raises((ValueError, KeyError), match=message):
        inject(faults)  # type: ignore[operator]
