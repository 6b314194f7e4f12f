"""Modbus client helpers for the simulator tests, across pymodbus versions."""

from __future__ import annotations

from datetime import UTC, datetime
import inspect
from typing import Any

from pymodbus.client import AsyncModbusTcpClient

from simulator import SiteConfig
from simulator.devices import DEVICES
from simulator.registers import Function

# pymodbus renamed the unit keyword of its client calls in 3.10.
UNIT_KEYWORD = (
    "device_id"
    if "device_id" in inspect.signature(AsyncModbusTcpClient.read_holding_registers).parameters
    else "slave"
)
# Mid-morning on midsummer day: PV, house load, heat pump and battery are all busy.
MORNING = SiteConfig(start=datetime(2026, 6, 21, 8, tzinfo=UTC))


def make_client(port: int, timeout: float = 1.0) -> AsyncModbusTcpClient:
    """A client that neither retries nor reconnects on its own, so faults show directly."""
    return AsyncModbusTcpClient(
        "127.0.0.1", port=port, timeout=timeout, retries=0, reconnect_delay=0
    )


async def read(
    client: AsyncModbusTcpClient, function: Function, address: int, count: int, unit: int
) -> Any:
    """Read input or holding registers from one unit."""
    method = client.read_input_registers if function == "input" else client.read_holding_registers
    return await method(address, count=count, **{UNIT_KEYWORD: unit})


async def write(client: AsyncModbusTcpClient, address: int, values: list[int], unit: int) -> Any:
    """Write holding registers (FC6 for one, FC16 for several)."""
    if len(values) == 1:
        return await client.write_register(address, values[0], **{UNIT_KEYWORD: unit})
    return await client.write_registers(address, values, **{UNIT_KEYWORD: unit})


def address_of(unit_id: int, key: str) -> int:
    """The first register address of a served value."""
    return DEVICES[unit_id].register(key).address
