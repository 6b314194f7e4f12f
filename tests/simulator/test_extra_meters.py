"""Copies of the grid meter on extra unit ids, for load tests with many devices on one hub."""

from __future__ import annotations

from pymodbus.exceptions import ModbusIOException
import pytest

from simulator import SiteSimulator
from simulator.devices import DEVICES
from tests.simulator.helpers import MORNING, make_client, read

ACTIVE_POWER = DEVICES[1].register("ActivePower")
SERIAL_NUMBER = DEVICES[1].register("SerialNumber")


def test_the_default_site_has_no_extra_meters() -> None:
    assert SiteSimulator().unit_ids == (1, 2, 3, 4, 5)


async def test_extra_meters_read_like_the_grid_meter_under_their_own_serial() -> None:
    site = SiteSimulator(MORNING, extra_meters=3)
    assert site.unit_ids == (1, 2, 3, 4, 5, 6, 7, 8)
    await site.start()
    modbus = make_client(site.port, timeout=0.3)
    assert await modbus.connect()
    try:
        site.set_battery_command("hold")  # the grid then sees the PV surplus, not 0 W
        site.advance(600.0)
        grid_power = site.device_values(1)["ActivePower"]
        assert isinstance(grid_power, float)
        assert grid_power < 0
        serials = set()
        for unit_id in (1, 6, 8):
            power = await read(modbus, "input", ACTIVE_POWER.address, 2, unit_id)
            assert ACTIVE_POWER.from_words(power.registers) == grid_power
            serial = await read(modbus, "holding", SERIAL_NUMBER.address, 2, unit_id)
            serials.add(SERIAL_NUMBER.from_words(serial.registers))
        assert len(serials) == 3
        assert site.device_values(7)["EnergyImport"] == site.device_values(1)["EnergyImport"]
        with pytest.raises(ModbusIOException):
            await read(modbus, "input", ACTIVE_POWER.address, 2, 9)
    finally:
        modbus.close()
        await site.stop()


def test_extra_meters_stay_within_the_unit_id_range() -> None:
    assert SiteSimulator(extra_meters=242).unit_ids[-1] == 247
    with pytest.raises(ValueError, match=r"6\.\.247"):
        SiteSimulator(extra_meters=243)
    with pytest.raises(ValueError, match="unit ids"):
        SiteSimulator(extra_meters=-1)
