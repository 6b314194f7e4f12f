"""The automation blueprints in blueprints/automation/ems, loaded by Home Assistant's own
blueprint machinery; where they steer the battery, the simulated site is the judge."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime, timedelta
import json
from pathlib import Path
import time
from typing import Any

from freezegun import freeze_time
from freezegun.api import TickingDateTimeFactory
from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er
from homeassistant.setup import async_setup_component
from homeassistant.util import dt as dt_util
from homeassistant.util.yaml import load_yaml, parse_yaml
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_fire_time_changed,
    async_mock_service,
)

from custom_components.ems.compat import device_by_identifier
from custom_components.ems.const import CONF_ALLOW_CONTROL, DOMAIN
from custom_components.ems.coordinator import EmsCoordinator
from custom_components.ems.engine.control.battery import BatteryState
from custom_components.ems.engine.control.commands import BatteryMode
from simulator import SiteSimulator

ROOT = Path(__file__).parents[2]
BLUEPRINTS = ROOT / "blueprints" / "automation" / "ems"
INTEGRATION = ROOT / "custom_components" / "ems"
# 12:10 on a summer day in the harness's time zone (US/Pacific, UTC-7 in June).
NOON = datetime(2026, 6, 21, 19, 10, tzinfo=UTC)
CYCLE_S = 10.0
BATTERY_UNIT = "unit3"

# The inputs each blueprint needs to load; the ids need not exist for that.
MINIMAL_INPUTS: dict[str, dict[str, Any]] = {
    "charge_cheapest_hours": {"battery": "battery-device", "price_entity": "sensor.price"},
    "reserve_before_time": {"battery": "battery-device", "soc_entity": "sensor.battery_soc"},
    "limit_export": {
        "battery": "battery-device",
        "grid_power": "sensor.site_grid_power",
        "battery_power": "sensor.site_battery_power",
    },
    "notify_data_quality": {"rejected_sensors": ["sensor.grid_meter_rejected_readings"]},
}


@pytest.fixture(autouse=True)
async def blueprint_folder(hass: HomeAssistant, tmp_path: Path) -> AsyncIterator[None]:
    """Home Assistant reads blueprints from its config folder: a private one, ours linked in.

    The harness's own config folder is shared by every test, so nothing is written there.
    """
    folder = tmp_path / "blueprints" / "automation"
    folder.mkdir(parents=True)
    (folder / "ems").symlink_to(BLUEPRINTS)
    hass.config.config_dir = str(tmp_path)
    yield
    # Stopping Home Assistant leaves time triggers armed; turned off, they are detached.
    if hass.services.has_service("automation", "turn_off"):
        await hass.services.async_call(
            "automation", "turn_off", {"entity_id": "all"}, blocking=True
        )


@pytest.fixture
def clock() -> Iterator[TickingDateTimeFactory]:
    """A ticking clock at NOON: pymodbus and the recorder wait on real timers."""
    with freeze_time(NOON, tick=True) as ticking:
        yield ticking


async def _automation(hass: HomeAssistant, blueprint: str, inputs: dict[str, Any]) -> str:
    """Set up one automation from the blueprint; it must come up enabled."""
    config = {
        "automation": [
            {
                "id": blueprint,
                "alias": blueprint,
                "use_blueprint": {"path": f"ems/{blueprint}.yaml", "input": inputs},
            }
        ]
    }
    assert await async_setup_component(hass, "automation", config)
    await hass.async_block_till_done()
    entity_id = f"automation.{blueprint}"
    state = hass.states.get(entity_id)
    assert state is not None
    assert state.state == "on", state.attributes
    return entity_id


async def _site(
    hass: HomeAssistant, entry: MockConfigEntry, simulator: SiteSimulator, *, hours: float
) -> EmsCoordinator:
    """The simulated site at `hours` past its start, set up with battery control allowed."""
    simulator.advance(hours * 3600)
    entry.add_to_hass(hass)
    hass.config_entries.async_update_entry(entry, options={CONF_ALLOW_CONTROL: True})
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    coordinator: EmsCoordinator = entry.runtime_data.coordinator
    return coordinator


def _battery_device(hass: HomeAssistant, entry: MockConfigEntry) -> str:
    device = device_by_identifier(
        hass, (DOMAIN, f"{entry.entry_id}_{BATTERY_UNIT}"), entry.entry_id
    )
    assert device is not None
    return device.id


def _battery(coordinator: EmsCoordinator) -> BatteryState:
    return coordinator.control.states[BATTERY_UNIT]


async def _cycles(coordinator: EmsCoordinator, simulator: SiteSimulator, count: int) -> None:
    """Poll cycles without waiting for every task: a blueprint's run may wait for the next one."""
    for _ in range(count):
        simulator.advance(CYCLE_S)
        await coordinator.async_refresh()
        await asyncio.sleep(0.05)


async def _until(check: Callable[[], bool], seconds: float = 10.0) -> None:
    # ems's battery state has no event to wait on, and a blueprint's run that waits for the
    # next poll keeps async_block_till_done from returning: poll.
    async with asyncio.timeout(seconds):
        while not check():  # noqa: ASYNC110
            await asyncio.sleep(0.02)


async def _tick_to(hass: HomeAssistant, clock: TickingDateTimeFactory, local: datetime) -> None:
    clock.move_to(dt_util.as_utc(local))
    async_fire_time_changed(hass)
    # An hour that ended is published as statistics in the background: a read still running
    # when the test's recorder closes its database can crash sqlite.
    await hass.async_block_till_done(wait_background_tasks=True)


def _hourly_prices(cheap: dict[int, float]) -> list[dict[str, Any]]:
    """Nord Pool's raw_today for the local day: 0.30 an hour, except the hours in `cheap`."""
    midnight = dt_util.start_of_local_day()
    return [
        {
            "start": midnight + timedelta(hours=hour),
            "end": midnight + timedelta(hours=hour + 1),
            "value": cheap.get(hour, 0.30),
        }
        for hour in range(24)
    ]


def _quarter_hour_prices(cheap: dict[int, float]) -> list[dict[str, Any]]:
    """raw_today with 15-minute slots and ISO strings (as restored from the database)."""
    midnight = dt_util.start_of_local_day()
    slots = []
    for quarter in range(96):
        start = midnight + timedelta(minutes=15 * quarter)
        # One pricey quarter must not hide a cheap hour: the hour's average counts.
        price = cheap.get(quarter // 4, 0.30) + (0.04 if quarter % 4 == 0 else -0.01)
        slots.append({"start": start.isoformat(), "end": "", "value": price})
    return slots


def _forecast_prices(cheap: dict[int, float]) -> list[dict[str, Any]]:
    """A generic forecast list across three days; only today's hours may be ranked."""
    midnight = dt_util.start_of_local_day()

    def price(hour: int) -> float:
        # Yesterday and tomorrow are cheaper than anything today.
        return cheap.get(hour, 0.30) if 0 <= hour < 24 else 0.01

    return [
        {"startsAt": (midnight + timedelta(hours=hour)).isoformat(), "total": price(hour)}
        for hour in range(-24, 48)
    ]


PRICE_SHAPES: dict[str, Callable[[dict[int, float]], dict[str, Any]]] = {
    "raw_today": lambda cheap: {"raw_today": _hourly_prices(cheap), "today": [0.0] * 24},
    "raw_today_quarters": lambda cheap: {"raw_today": _quarter_hour_prices(cheap)},
    "today": lambda cheap: {"today": [cheap.get(hour, 0.30) for hour in range(24)]},
    "forecast": lambda cheap: {"forecast": _forecast_prices(cheap)},
}


def _ems_actions(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        if str(node.get("action", "")).startswith(f"{DOMAIN}."):
            yield node
        for value in node.values():
            yield from _ems_actions(value)
    elif isinstance(node, list):
        for item in node:
            yield from _ems_actions(item)


def test_every_blueprint_is_covered() -> None:
    """A new blueprint needs its inputs here, so the load test below covers it."""
    assert {path.stem for path in BLUEPRINTS.glob("*.yaml")} == set(MINIMAL_INPUTS)


@pytest.mark.parametrize("name", sorted(MINIMAL_INPUTS))
def test_blueprint_uses_actions_as_declared(name: str) -> None:
    """Every ems action a blueprint calls exists, with fields that services.yaml declares."""
    services = parse_yaml((INTEGRATION / "services.yaml").read_text())
    blueprint = load_yaml(BLUEPRINTS / f"{name}.yaml")
    assert isinstance(services, dict)
    assert isinstance(blueprint, dict)
    manifest = json.loads((INTEGRATION / "manifest.json").read_text())
    source = f"{manifest['documentation']}/blob/main/blueprints/automation/ems/{name}.yaml"
    assert blueprint["blueprint"]["source_url"] == source
    for call in _ems_actions(blueprint):
        service = call["action"].removeprefix(f"{DOMAIN}.")
        assert service in services, service
        fields = services[service]["fields"]
        assert set(call["data"]) <= set(fields), service
        required = {field for field, spec in fields.items() if spec.get("required")}
        assert required <= set(call["data"]), service


@pytest.mark.parametrize("name", sorted(MINIMAL_INPUTS))
async def test_blueprint_loads_and_is_on(hass: HomeAssistant, name: str) -> None:
    """Home Assistant's blueprint machinery accepts the blueprint with its defaults."""
    entity_id = await _automation(hass, name, MINIMAL_INPUTS[name])
    state = hass.states.get(entity_id)
    assert state is not None
    assert state.attributes["id"] == name


@pytest.mark.parametrize(("shape", "hours", "charges"), [
    ("raw_today", 2, True),
    ("raw_today", 1, False),
    ("raw_today_quarters", 2, True),
    ("today", 2, True),
    ("forecast", 2, True),
    ("forecast", 1, False),
])  # fmt: skip
async def test_cheapest_hours_reads_each_price_shape(
    hass: HomeAssistant, clock: TickingDateTimeFactory, shape: str, hours: int, charges: bool
) -> None:
    """At 12:10 with 03:00 and 12:00 the cheapest hours, the 2 cheapest charge and 1 does not."""
    force_charge = async_mock_service(hass, DOMAIN, "force_charge")
    auto = async_mock_service(hass, DOMAIN, "auto")
    hass.states.async_set("sensor.price", "0.30")
    await _automation(hass, "charge_cheapest_hours", {
        "battery": "battery-device",
        "price_entity": "sensor.price",
        "cheapest_hours": hours,
        "charge_power": 2500,
        "target_soc": 90,
    })  # fmt: skip

    hass.states.async_set("sensor.price", "0.10", PRICE_SHAPES[shape]({3: 0.05, 12: 0.10}))
    await hass.async_block_till_done()

    assert not auto
    if not charges:
        assert not force_charge
        return
    assert len(force_charge) == 1
    data = dict(force_charge[0].data)
    # The command lasts until two minutes past the hour: 50 minutes left, plus 2.
    assert 3100 <= data.pop("duration") <= 3120
    assert data == {"device_id": "battery-device", "power": 2500, "target_soc": 90}


async def test_cheapest_hours_charges_the_battery_then_gives_it_back(
    hass: HomeAssistant,
    site_entry: MockConfigEntry,
    simulator: SiteSimulator,
    clock: TickingDateTimeFactory,
) -> None:
    """In a cheap hour the simulated battery charges; when the hour ends it is on auto again."""
    coordinator = await _site(hass, site_entry, simulator, hours=2)
    hass.states.async_set("sensor.price", "0.30")
    await _automation(hass, "charge_cheapest_hours", {
        "battery": _battery_device(hass, site_entry),
        "price_entity": "sensor.price",
        "cheapest_hours": 2,
        "charge_power": 3000,
    })  # fmt: skip

    hass.states.async_set("sensor.price", "0.10", PRICE_SHAPES["raw_today"]({3: 0.05, 12: 0.1}))
    await hass.async_block_till_done()
    assert _battery(coordinator).command.mode is BatteryMode.FORCE_CHARGE
    await _cycles(coordinator, simulator, 2)
    assert hass.states.get("select.battery_battery_mode").state == "force_charge"
    assert simulator.truth.battery_power_w == pytest.approx(-3000, rel=0.05)

    # 13:00 is not cheap, and 12:00 was: the automation (not the command's expiry, 13:02) ends it.
    await _tick_to(hass, clock, dt_util.start_of_local_day() + timedelta(hours=13, seconds=5))
    assert _battery(coordinator).command.mode is BatteryMode.AUTO
    await _cycles(coordinator, simulator, 1)
    assert simulator.truth.battery_mode == "auto"


async def test_limit_export_charges_the_excess_then_releases(
    hass: HomeAssistant, site_entry: MockConfigEntry, simulator: SiteSimulator
) -> None:
    """Export above 1 kW: the battery takes the excess, the grid settles at the limit; at dusk
    the export is gone and the battery is on auto again."""
    coordinator = await _site(hass, site_entry, simulator, hours=8)
    battery = _battery_device(hass, site_entry)
    await _automation(hass, "limit_export", {
        "battery": battery,
        "grid_power": "sensor.site_grid_power",
        "battery_power": "sensor.site_battery_power",
        "export_limit": 1000,
    })  # fmt: skip
    assert _battery(coordinator).command.mode is BatteryMode.AUTO

    # The battery stops absorbing the morning's surplus: the site exports all of it.
    await hass.services.async_call(DOMAIN, "hold", {"device_id": battery}, blocking=True)
    await _cycles(coordinator, simulator, 1)
    await _until(lambda: _battery(coordinator).command.mode is BatteryMode.FORCE_CHARGE)
    await _cycles(coordinator, simulator, 3)
    assert simulator.truth.grid_power_w == pytest.approx(-1000, abs=250)
    assert simulator.truth.battery_power_w < -1000

    simulator.advance(10 * 3600)  # 18:00 UTC: the sun is low, the house imports
    await _cycles(coordinator, simulator, 1)
    await _until(lambda: _battery(coordinator).command.mode is BatteryMode.AUTO)
    await _cycles(coordinator, simulator, 1)
    assert simulator.truth.battery_mode == "auto"


async def test_reserve_before_time_charges_and_releases_at_the_deadline(
    hass: HomeAssistant,
    site_entry: MockConfigEntry,
    simulator: SiteSimulator,
    clock: TickingDateTimeFactory,
) -> None:
    """From 12:15 the reserve is 80 % and a battery below it charges; at 14:15 the everyday
    reserve is back and the charge command has run out."""
    coordinator = await _site(hass, site_entry, simulator, hours=2)  # SoC about 35 %
    registry = er.async_get(hass)
    battery = _battery_device(hass, site_entry)
    soc_entity = next(
        entry.entity_id
        for entry in er.async_entries_for_device(registry, battery)
        if entry.domain == "sensor" and entry.original_device_class == "battery"
    )
    await _automation(hass, "reserve_before_time", {
        "battery": battery,
        "soc_entity": soc_entity,
        "reserve_soc": 80,
        "start_time": "12:15:00",
        "deadline": "14:15:00",
        "charge_power": 3000,
        "everyday_reserve": 15,
    })  # fmt: skip
    assert _battery(coordinator).command.mode is BatteryMode.AUTO

    midnight = dt_util.start_of_local_day()
    await _tick_to(hass, clock, midnight + timedelta(hours=12, minutes=15, seconds=1))
    state = _battery(coordinator)
    assert state.limits.reserve_soc == 80
    assert state.command.mode is BatteryMode.FORCE_CHARGE
    assert state.command.target_soc == 80
    assert state.command.expires_at == pytest.approx(time.time() + 2 * 3600, abs=60)
    await _cycles(coordinator, simulator, 2)
    assert simulator.truth.battery_power_w == pytest.approx(-3000, rel=0.05)

    await _tick_to(hass, clock, midnight + timedelta(hours=14, minutes=15, seconds=1))
    assert _battery(coordinator).limits.reserve_soc == 15
    await _cycles(coordinator, simulator, 1)
    assert simulator.truth.battery_mode == "auto"


async def test_notify_when_rejections_rise_within_the_period(
    hass: HomeAssistant, clock: TickingDateTimeFactory
) -> None:
    """5 rejections within 30 minutes notify once, naming the devices and reasons; fewer, or
    spread wider, do not; a lasting fault is quiet for a period after a notification."""
    notify = async_mock_service(hass, "notify", "test")
    meter, inverter = "sensor.grid_meter_rejected_readings", "sensor.pv_rejected_readings"

    def rejected(entity_id: str, count: int, reasons: dict[str, int]) -> None:
        name = "Grid meter Rejected readings" if entity_id == meter else "PV Rejected readings"
        hass.states.async_set(entity_id, str(count), {"by_reason": reasons, "friendly_name": name})

    rejected(meter, 0, {})
    rejected(inverter, 4, {"out_of_range": 4})
    await _automation(hass, "notify_data_quality", {
        "rejected_sensors": [meter, inverter],
        "increase": 5,
        "period": {"minutes": 30},
        "notify_action": "notify.test",
    })  # fmt: skip

    rejected(meter, 3, {"counter_backwards": 3})
    await asyncio.sleep(0.05)
    clock.tick(timedelta(minutes=31))  # that window closes with 3
    async_fire_time_changed(hass)
    await hass.async_block_till_done()
    assert not notify

    rejected(meter, 5, {"counter_backwards": 5})  # a new window counts from 3
    await asyncio.sleep(0.05)  # the next poll
    rejected(inverter, 8, {"out_of_range": 8})
    await _until(lambda: len(notify) == 1)
    data = notify[0].data
    assert data["title"] == "EMS data quality"
    assert data["message"].startswith("6 readings were rejected since 12:")
    assert "- Grid meter Rejected readings: 5 in total (counter_backwards 5)" in data["message"]
    assert "- PV Rejected readings: 8 in total (out_of_range 8)" in data["message"]

    rejected(meter, 50, {"counter_backwards": 50})  # within the quiet period
    await asyncio.sleep(0.05)
    assert len(notify) == 1
