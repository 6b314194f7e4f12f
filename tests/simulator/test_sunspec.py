"""The SunSpec devices over a real socket, read as a SunSpec client reads them.

Model lengths, point layouts and "not implemented" rules come from pysunspec2's own loader
(`sunspec2.device.get_model_def`, `sunspec2.mb.point_type_info`), not from the simulator.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from pymodbus.client import AsyncModbusTcpClient
import pytest
import sunspec2.device as sunspec_device
import sunspec2.mb as sunspec_mb
from sunspec2.modbus.client import SunSpecModbusClientDeviceTCP

from simulator import ControlWrite, SiteConfig, SiteSimulator
from simulator.registers import Value
from tests.simulator.helpers import MORNING, address_of, make_client, read, write

SUNSPEC_UNITS = [(2, 40000, [1, 103]), (3, 40000, [1, 124, 802]), (4, 50000, [1, 203])]
MAX_READ = 125


def points(model_id: int) -> list[dict[str, Any]]:
    definition: dict[str, Any] = sunspec_device.get_model_def(model_id)
    return list(definition["group"]["points"])


def model_length(model_id: int) -> int:
    return sum(int(point["size"]) for point in points(model_id)) - 2


async def walk_models(
    client: AsyncModbusTcpClient, unit_id: int, base: int
) -> tuple[list[int], int]:
    """The model ids after the marker, and the address of the end marker."""
    marker = await read(client, "holding", base, 2, unit_id)
    assert marker.registers == [0x5375, 0x6E53]  # "SunS"
    found = []
    address = base + 2
    while True:
        model_id, length = (await read(client, "holding", address, 2, unit_id)).registers
        if model_id == 0xFFFF:
            assert length == 0
            return found, address
        assert length == model_length(model_id), model_id
        found.append(model_id)
        address += 2 + length


async def read_map(client: AsyncModbusTcpClient, unit_id: int, base: int) -> list[int]:
    """Every register from the marker to the end marker."""
    _, end = await walk_models(client, unit_id, base)
    words: list[int] = []
    for start in range(base, end + 2, MAX_READ):
        count = min(MAX_READ, end + 2 - start)
        words += (await read(client, "holding", start, count, unit_id)).registers
    return words


def decode_point(point: dict[str, Any], chunk: list[int], model: dict[str, Any]) -> Value:
    data = b"".join(word.to_bytes(2) for word in chunk)
    if point["type"] == "string":
        return data.rstrip(b"\0").decode() or None
    info = sunspec_mb.point_type_info[point["type"]]
    raw = info.data_to(data)
    sf = point.get("sf")
    if point["type"].startswith("acc"):
        # 0 is both "not implemented" and a count: an implemented counter has its scale factor.
        scale = decode_point(model[sf][0], model[sf][1], model)
        if scale is None:
            return None
    elif not info.is_impl(raw):
        return None
    if sf is None:
        return int(raw)
    exponent = sf if isinstance(sf, int) else decode_point(*model[sf], model)
    assert isinstance(exponent, int)
    return raw / 10**-exponent if exponent < 0 else raw * 10**exponent


def decode_map(words: list[int]) -> dict[str, Value]:
    values: dict[str, Value] = {"SunS": b"".join(w.to_bytes(2) for w in words[:2]).decode()}
    address = 2
    while words[address] != 0xFFFF:
        model_id = words[address]
        model: dict[str, tuple[dict[str, Any], list[int]]] = {}
        offset = address
        for point in points(model_id):
            size = int(point["size"])
            model[point["name"]] = (point, words[offset : offset + size])
            offset += size
        for name, (point, chunk) in model.items():
            values[f"{model_id}.{name}"] = decode_point(point, chunk, model)
        address += 2 + words[address + 1]
    values["end.ID"], values["end.L"] = words[address], words[address + 1]
    return values


async def test_model_chain(client: AsyncModbusTcpClient) -> None:
    # One connection for all units: pymodbus spends 0.1 s in every connect().
    for unit_id, base, models in SUNSPEC_UNITS:
        found, end = await walk_models(client, unit_id, base)
        assert found == models, unit_id
        response = await read(client, "holding", end + 2, 1, unit_id)
        assert response.exception_code == 2, unit_id  # nothing after the end marker


async def test_other_base_addresses_are_illegal(client: AsyncModbusTcpClient) -> None:
    for unit_id, address in [(4, 40000), (4, 0), (2, 0), (2, 50000), (3, 0), (3, 50000)]:
        response = await read(client, "holding", address, 2, unit_id)
        assert response.isError(), (unit_id, address)
        assert response.exception_code == 2, (unit_id, address)


@pytest.mark.parametrize("hour", [8, 23])
async def test_every_point_decodes_to_the_device_values(hour: int) -> None:
    sim = SiteSimulator(SiteConfig(start=datetime(2026, 6, 21, hour, tzinfo=UTC)))
    sim.advance(600.0)
    await sim.start()
    client = make_client(sim.port)
    assert await client.connect()
    try:
        for unit_id, base, _ in SUNSPEC_UNITS:
            decoded = decode_map(await read_map(client, unit_id, base))
            assert decoded == sim.device_values(unit_id), unit_id
    finally:
        client.close()
        await sim.stop()


async def test_pysunspec2_reads_what_the_devices_serve(sim: SiteSimulator) -> None:
    sim.advance(3600.0)

    accumulators = {
        f"{model_id}.{point['name']}"
        for _, _, models in SUNSPEC_UNITS
        for model_id in models
        for point in points(model_id)
        if point["type"] == "acc32"
    }

    for unit_id, base, models in SUNSPEC_UNITS:
        found_base, scanned = await asyncio.to_thread(_scan, sim.port, unit_id)
        assert found_base == base
        assert [model_id for model_id, _ in scanned] == models
        served = sim.device_values(unit_id)
        for model_id, values in scanned:
            for name, value in values.items():
                key = f"{model_id}.{name}"
                expected = served[key]
                if key in accumulators and expected == 0:
                    expected = None  # pysunspec2 reads every acc32 0 as not implemented
                assert value == pytest.approx(expected), (unit_id, model_id, name)


def _scan(port: int, unit_id: int) -> tuple[int, list[tuple[int, dict[str, Any]]]]:
    """What pysunspec2's own client finds at a unit: its base, and each model's points."""
    device = SunSpecModbusClientDeviceTCP(
        slave_id=unit_id, ipaddr="127.0.0.1", ipport=port, timeout=2
    )
    device.scan()  # tries 40000, 0 and 50000 in turn
    device.close()
    return device.base_addr, [
        (model.model_id, {name: point.cvalue for name, point in model.points.items()})
        for model in device.model_list
    ]


async def test_pysunspec2_reads_the_float_models() -> None:
    """The float layout's 113 and 213, read by pysunspec2: every float32 as served, and NaN
    where a point is not implemented."""
    site = SiteSimulator(MORNING, layout="float")
    await site.start()
    try:
        site.advance(3600.0)
        for unit_id, base, models in ((2, 40000, [1, 113]), (4, 50000, [1, 213])):
            found_base, scanned = await asyncio.to_thread(_scan, site.port, unit_id)
            assert (found_base, [model_id for model_id, _ in scanned]) == (base, models)
            served = site.device_values(unit_id)
            for model_id, values in scanned:
                for name, value in values.items():
                    assert value == pytest.approx(served[f"{model_id}.{name}"]), (model_id, name)
    finally:
        await site.stop()


def test_identity_and_units() -> None:
    sim = SiteSimulator()
    inverter, storage, meter = (sim.device_values(unit) for unit in (2, 3, 4))
    assert (inverter["1.Mn"], inverter["1.Md"], inverter["1.SN"]) == (
        "EMS Sim",
        "SimInverter 8K",
        "INV-0001",
    )
    assert (inverter["1.Vr"], inverter["1.DA"], inverter["1.Opt"]) == ("1.0.0", 2, "3-phase")
    assert (storage["1.Md"], storage["1.SN"], storage["1.DA"]) == ("SimBattery 10", "BAT-0001", 3)
    assert (meter["1.Md"], meter["1.SN"], meter["1.DA"]) == ("SimMeter 3P", "MTR-0001", 4)
    assert storage["124.WChaMax"] == 5000
    assert storage["802.WHRtg"] == 10_000
    assert storage["802.SoH"] == 98
    assert inverter["103.TmpSnk"] is None  # not implemented
    assert meter["203.TotVAhExp"] is None
    assert meter["203.TotVAh_SF"] is None


@pytest.mark.parametrize(("hour", "producing"), [(11, True), (23, False)])
def test_inverter_and_pv_meter_follow_the_truth(hour: int, producing: bool) -> None:
    sim = SiteSimulator(SiteConfig(start=datetime(2026, 6, 21, hour, tzinfo=UTC)))
    sim.advance(1800.0)
    truth = sim.truth
    inverter, meter = sim.device_values(2), sim.device_values(4)
    assert inverter["103.W"] == round(truth.pv_power_w)
    assert inverter["103.WH"] == round(truth.pv_energy_kwh * 1000)
    assert inverter["103.St"] == (4 if producing else 2)  # MPPT or sleeping
    # The meter on the inverter's output: + import, so production reads negative.
    assert meter["203.W"] == round(truth.pv_standby_w - truth.pv_power_w)
    assert meter["203.TotWhExp"] == round(truth.pv_energy_kwh * 1000)
    assert meter["203.TotWhImp"] == round(truth.pv_standby_kwh * 1000)
    if producing:
        assert meter["203.W"] < -1000
        assert meter["203.PF"] == -100.0
        assert truth.pv_standby_w == 0.0
    else:
        assert meter["203.W"] == 2  # the inverter's standby draw
        assert meter["203.PF"] == 100.0
        assert inverter["103.W"] == 0
        assert meter["203.TotWhImp"] == 1  # 2 W for half an hour


def test_battery_readings_follow_the_truth() -> None:
    sim = SiteSimulator(SiteConfig(start=datetime(2026, 6, 21, 22, tzinfo=UTC)))
    sim.advance(600.0)
    truth = sim.truth
    storage = sim.device_values(3)
    assert truth.battery_power_w > 100  # discharging into the house at night
    assert storage["802.W"] == round(truth.battery_power_w)  # + discharge, like OpenEMS
    assert storage["802.A"] > 0
    assert storage["802.SoC"] == round(truth.battery_soc_pct, 1)
    assert storage["124.ChaState"] == round(truth.battery_soc_pct, 2)
    assert storage["124.ChaSt"] == storage["802.ChaSt"] == 3  # discharging
    sim.set_battery_command("charge", 2000.0)
    storage = sim.device_values(3)
    assert (storage["124.StorCtl_Mod"], storage["124.InWRte"]) == (1, 40.0)
    assert storage["802.W"] == -2000
    assert storage["124.ChaSt"] == 4  # charging
    assert not sim.control_writes  # direct commands are no Modbus writes


# --- model 124 control over the socket -----------------------------------------------------


class Storage:
    """Writes physical values to model 124 points, scaled by the SF the device serves."""

    def __init__(self, client: AsyncModbusTcpClient) -> None:
        self.client = client

    async def raw(self, point: str, value: float) -> int:
        scale = {"InWRte": "InOutWRte_SF", "OutWRte": "InOutWRte_SF", "MinRsvPct": "MinRsvPct_SF"}
        if point not in scale:
            return round(value)
        sf_address = address_of(3, f"124.{scale[point]}")
        (word,) = (await read(self.client, "holding", sf_address, 1, 3)).registers
        exponent = word - 0x10000 if word & 0x8000 else word
        return round(value / 10**exponent) & 0xFFFF

    async def write(self, point: str, value: float) -> Any:
        words = [await self.raw(point, value)]
        return await write(self.client, address_of(3, f"124.{point}"), words, 3)

    async def set(self, **points: float) -> None:
        for point, value in points.items():
            response = await self.write(point, value)
            assert not response.isError(), point


async def test_force_charge_discharge_and_hold(
    sim: SiteSimulator, client: AsyncModbusTcpClient
) -> None:
    storage = Storage(client)
    await storage.set(InWRte=30.0, StorCtl_Mod=1)
    sim.advance(60.0)
    assert sim.truth.battery_power_w == -0.3 * 5000
    assert sim.truth.battery_mode == "charge"
    await storage.set(OutWRte=40.0, StorCtl_Mod=2)
    sim.advance(60.0)
    assert sim.truth.battery_power_w == 0.4 * 5000
    await storage.set(InWRte=-20.0, StorCtl_Mod=1)  # a negative charge rate discharges
    assert sim.truth.battery_power_w == 0.2 * 5000
    await storage.set(InWRte=0.0, OutWRte=0.0, StorCtl_Mod=3)
    sim.advance(60.0)
    assert sim.truth.battery_power_w == 0.0
    assert sim.truth.battery_mode == "hold"
    await storage.set(StorCtl_Mod=0)
    sim.advance(60.0)
    truth = sim.truth
    assert truth.battery_mode == "auto"
    assert truth.grid_power_w == pytest.approx(0.0, abs=1e-6)  # self-consumption
    values = sim.device_values(3)
    assert (values["124.InWRte"], values["124.OutWRte"], values["802.W"]) == (
        0.0,
        0.0,
        round(truth.battery_power_w),
    )


async def test_control_writes_are_logged(sim: SiteSimulator, client: AsyncModbusTcpClient) -> None:
    storage = Storage(client)
    start = sim.truth.time
    await storage.set(InWRte=30.0)
    sim.advance(5.0)
    rates = address_of(3, "124.OutWRte")
    assert not (await write(client, rates, [2500, 1000, 0, 60, 0], 3)).isError()  # FC16
    assert sim.control_writes == [
        ControlWrite(start, "124.InWRte", 30.0),
        *(
            ControlWrite(sim.truth.time, register, value)
            for register, value in [
                ("124.OutWRte", 25.0),
                ("124.InWRte", 10.0),
                ("124.InOutWRte_WinTms", 0),
                ("124.InOutWRte_RvrtTms", 60),
                ("124.InOutWRte_RmpTms", 0),
            ]
        ),
    ]


async def test_illegal_control_values_are_refused(
    sim: SiteSimulator, client: AsyncModbusTcpClient
) -> None:
    storage = Storage(client)
    before = sim.device_values(3)
    for point, value in [("StorCtl_Mod", 4), ("InWRte", 100.01), ("MinRsvPct", 101.0)]:
        response = await storage.write(point, value)
        assert response.exception_code == 3, point
    response = await write(client, address_of(3, "124.InWRte"), [0x8000], 3)  # not implemented
    assert response.exception_code == 3
    assert sim.device_values(3) == before
    assert not sim.control_writes


async def test_reserve_is_kept_in_forced_discharge(
    sim: SiteSimulator, client: AsyncModbusTcpClient
) -> None:
    storage = Storage(client)
    reserve = round(sim.truth.battery_soc_pct) - 5.0
    await storage.set(MinRsvPct=reserve, OutWRte=100.0, StorCtl_Mod=2)
    sim.advance(900.0)  # 5 % of 10 kWh takes 6 minutes at 5 kW
    truth = sim.truth
    assert truth.battery_soc_pct == pytest.approx(reserve, abs=1e-6)
    assert abs(truth.battery_power_w) < 0.5
    assert sim.device_values(3)["124.StorAval"] == 0.0
    assert sim.device_values(3)["802.SoCRsvMin"] == reserve


async def test_revert_timer(sim: SiteSimulator, client: AsyncModbusTcpClient) -> None:
    storage = Storage(client)
    await storage.set(InOutWRte_RvrtTms=60)  # no control write yet: nothing to revert
    sim.advance(120.0)
    await storage.set(InWRte=30.0, StorCtl_Mod=1)
    sim.advance(59.0)
    assert sim.truth.battery_mode == "charge"
    assert sim.device_values(3)["124.StorCtl_Mod"] == 1
    sim.advance(1.0)
    assert sim.truth.battery_mode == "auto"
    assert sim.device_values(3)["124.StorCtl_Mod"] == 0
    assert sim.device_values(3)["124.InWRte"] == 30.0  # only the mode reverts


async def test_a_fresh_control_write_restarts_the_revert_timer(
    sim: SiteSimulator, client: AsyncModbusTcpClient
) -> None:
    storage = Storage(client)
    await storage.set(InOutWRte_RvrtTms=60, InWRte=30.0, StorCtl_Mod=1)
    sim.advance(40.0)
    await storage.set(InWRte=30.0)  # the same value, re-asserted
    sim.advance(59.0)
    assert sim.truth.battery_mode == "charge"
    await storage.set(MinRsvPct=10.0)  # not a control write
    sim.advance(1.0)
    assert sim.truth.battery_mode == "auto"
