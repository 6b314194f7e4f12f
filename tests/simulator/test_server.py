"""The simulator over a real Modbus TCP socket: register maps, writes, lifecycle, counting."""

from __future__ import annotations

import asyncio
import struct

from pymodbus.client import AsyncModbusTcpClient
from pymodbus.exceptions import ModbusIOException
import pytest

from simulator import SiteSimulator
from simulator.devices import DEVICES
from simulator.registers import Value
from tests.simulator.helpers import MORNING, address_of, make_client, read, write

STORAGE_MODE = address_of(3, "124.StorCtl_Mod")
CHARGE_RATE = address_of(3, "124.InWRte")


async def read_every_register(client: AsyncModbusTcpClient, unit_id: int) -> dict[str, Value]:
    values = {}
    for register in DEVICES[unit_id].registers:
        response = await read(
            client, register.function, register.address, len(register.addresses), unit_id
        )
        assert not response.isError(), register.key
        values[register.key] = register.from_words(response.registers)
    return values


async def test_registers_decode_to_the_device_values(
    sim: SiteSimulator, client: AsyncModbusTcpClient
) -> None:
    sim.advance(5400.0)
    # Unit 4 has accumulators that are not implemented (0, as implemented ones may read too);
    # test_sunspec decodes it with the scale factors, as a SunSpec reader does.
    for unit_id in (1, 5, 2, 3):
        assert await read_every_register(client, unit_id) == sim.device_values(unit_id), unit_id


async def test_grid_meter_block_matches_the_ground_truth(
    sim: SiteSimulator, client: AsyncModbusTcpClient
) -> None:
    sim.set_battery_command("hold")  # the battery no longer hides the PV surplus from the grid
    sim.advance(1800.0)
    response = await read(client, "input", 0x0000, 0x50, 1)
    words = response.registers

    def float_at(address: int) -> float:
        value: float = struct.unpack(">f", struct.pack(">HH", *words[address : address + 2]))[0]
        return value

    truth = sim.truth
    assert float_at(0x0034) == pytest.approx(truth.grid_power_w, rel=1e-6)
    assert float_at(0x0034) < 0  # exporting: negative, import is positive
    assert float_at(0x0048) == pytest.approx(truth.grid_import_kwh, rel=1e-6)
    assert float_at(0x004A) == pytest.approx(truth.grid_export_kwh, rel=1e-6)
    assert float_at(0x0046) == pytest.approx(50.0, abs=0.1)
    assert words[0x0024:0x002A] == [0] * 6  # a hole in the Eastron map reads zero


async def test_battery_control_registers_command_the_battery(
    sim: SiteSimulator, client: AsyncModbusTcpClient
) -> None:
    assert not (await write(client, CHARGE_RATE, [4000], unit=3)).isError()  # FC6: 40.00 %
    assert not (await write(client, STORAGE_MODE, [1], unit=3)).isError()  # charge
    assert sim.truth.battery_power_w == -2000.0
    response = await read(client, "holding", address_of(3, "802.W"), 1, 3)
    assert DEVICES[3].register("802.W").from_words(response.registers) == -2000
    mode_to_rate = range(STORAGE_MODE, CHARGE_RATE + 1)
    words = (await read(client, "holding", mode_to_rate.start, len(mode_to_rate), 3)).registers
    words[0] = 3  # hold: both bits, both rates 0
    words[CHARGE_RATE - STORAGE_MODE] = 0
    response = await write(client, STORAGE_MODE, words, unit=3)  # FC16 across read-only points
    assert response.exception_code == 2
    assert not (await write(client, CHARGE_RATE - 1, [0, 0], unit=3)).isError()  # FC16
    assert not (await write(client, STORAGE_MODE, [3], unit=3)).isError()
    assert sim.truth.battery_power_w == 0.0
    values = sim.device_values(3)
    assert (values["124.StorCtl_Mod"], values["124.InWRte"], values["124.OutWRte"]) == (3, 0, 0)


ILLEGAL_WRITES = [
    ((3, STORAGE_MODE), [4], 3),  # bit 2 is no control mode
    ((3, CHARGE_RATE), [10_001], 3),  # more than 100 %
    ((3, address_of(3, "802.SoC")), [500], 2),  # read-only
    ((3, address_of(3, "124.WChaMax")), [500], 2),  # read-only
    ((2, address_of(2, "1.DA")), [7], 2),  # no writable register at all
    ((1, 0xFC00), [1, 2], 2),  # the meter's serial number is read-only
]
ILLEGAL_READS = [
    ("holding", 39999, 2, 3),  # just before the SunSpec marker
    ("holding", address_of(3, "end.L") + 1, 1, 3),  # just after the end marker
    ("input", 40000, 2, 3),  # SunSpec devices have no input registers
    ("holding", 40000, 2, 4),  # the PV meter's map starts at 50000
    ("holding", 0, 2, 4),
    ("input", 0x017F, 2, 1),  # past the end of the SDM630 map
    ("holding", 0x0000, 2, 5),
]


async def test_illegal_writes_get_exceptions(
    sim: SiteSimulator, client: AsyncModbusTcpClient
) -> None:
    command = sim.device_values(3)
    for (unit_id, address), values, code in ILLEGAL_WRITES:
        response = await write(client, address, values, unit_id)
        assert response.isError(), (unit_id, address)
        assert response.exception_code == code, (unit_id, address)
    assert sim.device_values(3) == command
    assert not sim.control_writes


async def test_addresses_a_device_does_not_have_are_illegal(
    client: AsyncModbusTcpClient,
) -> None:
    for function, address, count, unit_id in ILLEGAL_READS:
        response = await read(client, function, address, count, unit_id)  # type: ignore[arg-type]
        assert response.isError(), (function, address, unit_id)
        assert response.exception_code == 2, (function, address, unit_id)


async def test_unit_ids_not_served_get_no_response(client: AsyncModbusTcpClient) -> None:
    with pytest.raises(ModbusIOException):
        await read(client, "holding", 0, 1, 9)
    assert not (await read(client, "input", 0, 2, 1)).isError()


async def test_requests_are_counted(sim: SiteSimulator, client: AsyncModbusTcpClient) -> None:
    await read(client, "input", 0, 2, 1)
    sim.reset_request_count()
    for _ in range(3):
        await read(client, "input", 0, 2, 1)
    await read(client, "holding", 40000, 9, 3)
    await write(client, STORAGE_MODE, [0], 3)
    with pytest.raises(ModbusIOException):
        await read(client, "holding", 0, 1, 9)
    assert sim.requests.total == 6
    assert sim.requests.by_unit_function == {(1, 4): 3, (3, 3): 1, (3, 6): 1, (9, 3): 1}
    sim.reset_request_count()
    assert sim.requests.total == 0
    assert not sim.requests.by_unit_function


async def test_stop_and_start_again_on_the_same_port(sim: SiteSimulator) -> None:
    port = sim.port
    first = make_client(port)
    assert await first.connect()
    assert not (await read(first, "input", 0, 2, 1)).isError()
    first.close()
    await sim.stop()
    await sim.stop()  # stopping twice is harmless
    unreachable = make_client(port, timeout=0.2)
    assert not await unreachable.connect()
    unreachable.close()
    await sim.start()
    assert sim.port == port
    second = make_client(port)
    assert await second.connect()
    assert not (await read(second, "input", 0, 2, 1)).isError()
    second.close()
    with pytest.raises(RuntimeError, match="already running"):
        await sim.start()


async def test_stop_leaves_no_task_behind() -> None:
    site = SiteSimulator(MORNING)
    await site.start()
    modbus = make_client(site.port, timeout=0.1)
    assert await modbus.connect()
    site.faults.delay(5.0)  # the request is still waiting inside the server at stop()
    with pytest.raises(ModbusIOException):
        await read(modbus, "input", 0, 2, 1)
    modbus.close()
    await site.stop()
    assert asyncio.all_tasks() == {asyncio.current_task()}


async def test_wall_clock_speed() -> None:
    site = SiteSimulator(MORNING, speed=3600.0)
    await site.start()
    modbus = make_client(site.port)
    assert await modbus.connect()
    start = site.truth.time
    await asyncio.sleep(0.1)
    assert not (await read(modbus, "input", 0x0034, 2, 1)).isError()
    assert 300.0 <= (site.truth.time - start).total_seconds() <= 3600.0
    with pytest.raises(RuntimeError, match="wall clock"):
        site.advance(1.0)
    modbus.close()
    await site.stop()
    assert asyncio.all_tasks() == {asyncio.current_task()}


def test_port_is_unknown_before_the_first_start() -> None:
    with pytest.raises(RuntimeError, match="not been started"):
        _ = SiteSimulator().port
