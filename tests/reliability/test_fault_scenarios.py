"""Fault injection against the whole simulated site, inside Home Assistant with its recorder.

Every scenario runs the hub across 05:00 (so an hour is settled and published as `ems:`
statistics) and makes four checks: nothing escapes a cycle (the autouse `no_escaped_errors`
fixture), the entities the fault touches are unavailable during it and recover after it, no
spike reaches the site's energy, the books or the statistics, and the site's energy totals
equal the simulator's ground truth within 0.1 %.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from freezegun.api import TickingDateTimeFactory
from homeassistant.config_entries import ConfigEntryState
from homeassistant.const import STATE_UNAVAILABLE, STATE_UNKNOWN
from homeassistant.core import HomeAssistant
from homeassistant.helpers import issue_registry as ir
import pytest

from custom_components.ems.compat import device_by_identifier
from custom_components.ems.const import CONF_ALLOW_CONTROL, CONF_TIMEOUT, DOMAIN
from custom_components.ems.engine.modbus.plan import ReadBlock
from custom_components.ems.engine.modbus.transport import ModbusHub, ModbusTransportError
from simulator import SiteSimulator

from .harness import (
    ALL_UNITS,
    BATTERY,
    GRID,
    HEAT_PUMP,
    PV,
    SITE,
    TIMEOUT_S,
    SiteRun,
    cycle_together,
    site_entry,
)

# (unit id, ems device id, a power channel of it, its energy counter)
GRID_METER = (1, GRID, "ActivePower", "EnergyImport")
PV_INVERTER = (2, PV, "AC_Power", "EnergyGenerated")
SDM630_ENERGY_IMPORT = 0x0048


def _served_power(site: SiteSimulator, unit_id: int) -> float:
    values = site.device_values(unit_id)
    value = values["ActivePower"] if unit_id == 1 else values["103.W"]
    assert isinstance(value, float | int)
    return float(value)


def _on_first_read(hub: ModbusHub, unit_id: int, action: Callable[[], None]) -> None:
    """Run `action` right after the hub's next answered read of `unit_id`, once."""
    read = hub.read

    async def read_then_act(block: ReadBlock) -> list[int]:
        words = await read(block)
        if block.unit_id == unit_id:
            del hub.read  # the instance attribute: the method is back
            action()
        return words

    hub.read = read_then_act  # type: ignore[method-assign]


def _on_next_write(
    hub: ModbusHub, before: Callable[[], None], after: Callable[[], None]
) -> list[ModbusTransportError]:
    """Bend the hub's next write request: `before` it is sent, `after` it is answered. The
    list returned receives the error that request ended in."""
    write = hub.write
    errors: list[ModbusTransportError] = []

    async def bent_write(unit_id: int, address: int, words: list[int]) -> None:
        del hub.write
        before()
        try:
            await write(unit_id, address, words)
        except ModbusTransportError as err:
            errors.append(err)
            raise
        finally:
            after()

    hub.write = bent_write  # type: ignore[method-assign]
    return errors


@pytest.mark.parametrize("device", [GRID_METER, PV_INVERTER], ids=["grid_meter", "pv_inverter"])
async def test_device_powers_off_mid_cycle(
    hass: HomeAssistant,
    site: SiteSimulator,
    clock: TickingDateTimeFactory,
    device: tuple[int, str, str, str],
) -> None:
    """A device that answers the first request of a cycle, then falls silent, costs two
    time-outs, quarantines nothing, and is back with the right totals when it answers."""
    unit_id, device_id, power, energy = device
    run = await SiteRun.start(hass, site, clock)
    await run.cycle(2)

    _on_first_read(run.coordinator.hub, unit_id, lambda: site.faults.offline(unit_id, True))
    await run.cycle()
    stats = run.coordinator.data.stats
    assert stats.quarantined == ()
    assert stats.failed_requests <= 1
    assert stats.duration_s < 4 * TIMEOUT_S

    await run.cycle(2)
    assert not run.available(device_id, power)
    assert not run.available(device_id, energy)
    assert run.available(HEAT_PUMP, "ActivePower")
    assert run.available(SITE, "grid_import_energy")

    site.faults.offline(unit_id, False)
    await run.cycle()
    assert run.value(device_id, power) == pytest.approx(_served_power(site, unit_id))
    assert run.coordinator.data.stats.quarantined == ()
    await run.cycle(4)
    await run.assert_all_checks()


def _drop_connections(site: SiteSimulator) -> None:
    """Close every open connection (as a gateway that reboots does) and accept new ones."""
    site.faults.refuse_connections(True)
    site.faults.refuse_connections(False)


@pytest.mark.parametrize("fault", ["reset_between_polls", "reset_in_flight", "refused"])
async def test_connection_reset_or_refused(
    hass: HomeAssistant, site: SiteSimulator, clock: TickingDateTimeFactory, fault: str
) -> None:
    """A connection reset between polls is reopened at the next one, unnoticed. One reset in
    the middle of a poll costs that poll, no more. A gateway that refuses connections fails
    the cycles (every entity unavailable) and is back in one cycle once it accepts again;
    those cycles span 05:00, and the books spread the gap instead of booking a spike."""
    run = await SiteRun.start(hass, site, clock)
    await run.cycle(3)
    if fault == "reset_between_polls":
        _drop_connections(site)
        await asyncio.sleep(0.05)  # the client sees the close while it waits for the next poll
        await run.cycle()
        assert run.coordinator.last_update_success
        assert all(state.online for state in run.coordinator.data.devices.values())
        await run.cycle(6)
    elif fault == "reset_in_flight":
        _on_first_read(run.coordinator.hub, 1, lambda: _drop_connections(site))
        await run.cycle()  # what was not read before the reset is missing from this cycle
        await run.cycle()
        assert run.coordinator.last_update_success
        assert all(state.online for state in run.coordinator.data.devices.values())
        await run.cycle(5)
    else:
        site.faults.refuse_connections(True)
        await run.cycle(6)
        assert not run.coordinator.last_update_success
        for device_id, key in ((GRID, "ActivePower"), (PV, "AC_Power"), (SITE, "grid_power")):
            assert run.state(device_id, key) == STATE_UNAVAILABLE
        site.faults.refuse_connections(False)
        await run.cycle()
        assert run.coordinator.last_update_success
    assert run.value(GRID, "ActivePower") == pytest.approx(_served_power(site, 1))
    await run.cycle(2)
    assert all(sample.ok for sample in run.samples[-3:])
    await run.assert_all_checks()


async def test_latency_spike_beyond_the_timeout(
    hass: HomeAssistant, site: SiteSimulator, clock: TickingDateTimeFactory
) -> None:
    """A 5 s latency spike against a 1 s time-out: each device costs one time-out (not a
    bisection), shows unavailable, and is read again as soon as answers are quick."""
    entry = site_entry(site, units=(1, 2), options={CONF_TIMEOUT: 1.0})
    run = await SiteRun.start(hass, site, clock, entry=entry)
    await run.cycle(2)
    site.faults.delay(5.0)
    await run.cycle()
    stats = run.coordinator.data.stats
    assert stats.duration_s < 2 * 1.0 + 1.5  # one time-out per device, plus reconnects
    assert stats.quarantined == ()
    assert not run.available(GRID, "ActivePower")
    assert not run.available(PV, "AC_Power")
    site.faults.delay(0)
    await run.cycle()
    assert run.value(GRID, "ActivePower") == pytest.approx(_served_power(site, 1))
    assert run.value(PV, "AC_Power") == pytest.approx(_served_power(site, 2))
    await run.cycle(5)
    await run.assert_all_checks()


async def test_gateway_limited_to_32_registers(
    hass: HomeAssistant, site: SiteSimulator, clock: TickingDateTimeFactory
) -> None:
    """A gateway swapped for one that passes at most 32 registers: the cycle it happens in
    still reads everything (by halves), and the hub plans smaller requests from then on."""
    run = await SiteRun.start(hass, site, clock)
    await run.cycle(2)
    requests_before = run.coordinator.data.stats.requests
    site.faults.max_registers(32)
    for _ in range(7):
        await run.cycle()
        for device_id, key in ((GRID, "ActivePower"), (PV, "AC_Power"), (BATTERY, "SOC")):
            assert run.available(device_id, key)
    stats = run.coordinator.data.stats
    assert run.coordinator.health.max_read_cap is not None
    assert run.coordinator.health.max_read_cap <= 32
    assert stats.failed_requests == 0
    assert stats.quarantined == ()
    assert stats.requests > requests_before
    await run.assert_all_checks()


@pytest.mark.parametrize(
    ("device", "function", "code"),
    [(GRID_METER, "input", 2), (PV_INVERTER, "holding", 4)],
    ids=["grid_import_illegal_address", "pv_energy_device_failure"],
)
async def test_exception_on_an_energy_register(
    hass: HomeAssistant,
    site: SiteSimulator,
    clock: TickingDateTimeFactory,
    device: tuple[int, str, str, str],
    function: Any,
    code: int,
) -> None:
    """An energy counter's register answers with an exception: it is quarantined, its sensor
    has no value (the device's other sensors carry on), and when the register is retried and
    answers, the counter settles the energy of the gap exactly."""
    unit_id, device_id, power, energy = device
    run = await SiteRun.start(hass, site, clock)
    # Retried two cycles on instead of five minutes, so the counter is back before 05:00. (A
    # little less than two steps: each clock tick drops the milliseconds a cycle took.)
    run.coordinator.health.retry_after = 110.0
    address = run.coordinator.devices[device_id].profile.channel(energy).register.address
    await run.cycle(2)
    site.faults.exception(unit_id, function, address, code=code)
    await run.cycle(4)  # past the cycles that hold the last good value
    assert run.state(device_id, energy) == STATE_UNKNOWN
    assert run.available(device_id, power)
    quarantined = {key[2] for key in run.coordinator.data.stats.quarantined}
    assert address in quarantined
    site.faults.clear()
    await run.cycle(2)
    assert run.available(device_id, energy)
    assert run.state(device_id, energy) != STATE_UNKNOWN
    await run.cycle(4)
    await run.assert_all_checks()


async def test_corrupted_values_are_rejected(
    hass: HomeAssistant, site: SiteSimulator, clock: TickingDateTimeFactory
) -> None:
    """Garbage words (a zero, NaN and a spike in the import counter, NaN power, the
    inverter's unrated 32-bit accumulator read as all ones) never reach an entity, the books
    or the totals; each is counted by its reason."""
    run = await SiteRun.start(hass, site, clock)
    await run.cycle(2)
    produced = run.value(PV, "EnergyGenerated")
    accumulator = run.coordinator.devices[PV].profile.channel("EnergyGenerated").register
    site.faults.garbage(2, "holding", accumulator.address, [0xFFFF, 0xFFFF], count=1)
    await run.cycle()
    assert run.value(PV, "EnergyGenerated") == produced  # held, not 4.3 GWh
    assert run.coordinator.data.rejections[PV] == {"counter_spike": 1}
    glitches = ([0x0000, 0x0000], [0xFFFF, 0xFFFF], [0x4974, 0x2400])  # 0, NaN, 1e6 kWh
    shown = [run.value(GRID, "EnergyImport")]
    for words in glitches:
        site.faults.garbage(1, "input", SDM630_ENERGY_IMPORT, words, count=1)
        site.faults.garbage(1, "input", 0x0034, [0x7FC0, 0x0000], count=1)  # power: NaN
        await run.cycle()  # the last good value is held ...
        assert run.available(GRID, "ActivePower")
        shown.append(run.value(GRID, "EnergyImport"))
        await run.cycle()  # ... until the next good one
        shown.append(run.value(GRID, "EnergyImport"))
    assert shown == sorted(shown)
    assert shown[-1] == pytest.approx(site.truth.grid_import_kwh, rel=1e-6)
    rejected = run.coordinator.data.rejections[GRID]
    assert rejected.get("counter_zero") == 1
    assert rejected.get("counter_spike") == 1
    assert rejected.get("not_implemented", 0) + rejected.get("out_of_range", 0) >= 4
    await run.cycle(2)
    await run.assert_all_checks()


async def test_corrupted_frames_cost_one_cycle(
    hass: HomeAssistant, site: SiteSimulator, clock: TickingDateTimeFactory
) -> None:
    """Two garbled responses: the devices that got them miss that cycle, nothing is
    quarantined, and the next cycle reads everything."""
    run = await SiteRun.start(hass, site, clock)
    await run.cycle(2)
    site.faults.corrupt_frames(2)
    await run.cycle()
    assert run.coordinator.data.stats.quarantined == ()
    assert not run.available(GRID, "ActivePower")  # the first request of a cycle is unit 1's
    await run.cycle()
    for device_id, key in ((GRID, "ActivePower"), (PV, "AC_Power"), (BATTERY, "SOC")):
        assert run.available(device_id, key)
    await run.cycle(5)
    await run.assert_all_checks()


async def test_counter_reset(
    hass: HomeAssistant, site: SiteSimulator, clock: TickingDateTimeFactory
) -> None:
    """The grid meter's import counter restarts from 0: rejected until three readings confirm
    it, then continued. The energy of the cycle between the last reading before the reset and
    the first after it is the guard's documented loss; everything else is counted exactly."""
    run = await SiteRun.start(hass, site, clock)
    await run.cycle(2)
    site.faults.reset_counter(1, "EnergyImport")
    before_reset = run.samples[-1].truth["grid_import"]
    await run.cycle()
    unseen = run.samples[-1].truth["grid_import"] - before_reset
    assert unseen > 0
    shown = [run.value(GRID, "EnergyImport")]
    for _ in range(4):
        await run.cycle()
        shown.append(run.value(GRID, "EnergyImport"))
    assert shown == sorted(shown)
    assert run.coordinator.data.rejections[GRID].get("counter_backwards") == 2
    await run.cycle(3)

    series = ("grid_export", "production")
    run.assert_no_spike((*series, "grid_import"))
    assert await run.assert_hours_physical(series) >= 1
    run.assert_totals_match(series)
    first, last = run.samples[0], run.samples[-1]
    assert first.site_kwh is not None
    assert last.site_kwh is not None
    counted = last.site_kwh["grid_import"] - first.site_kwh["grid_import"]
    true = last.truth["grid_import"] - first.truth["grid_import"]
    assert counted == pytest.approx(true - unseen, rel=1e-3, abs=1e-5)


async def test_counter_rollover(
    hass: HomeAssistant, site: SiteSimulator, clock: TickingDateTimeFactory
) -> None:
    """The inverter's 32-bit Wh accumulator wraps: continued exactly, never rejected."""
    wraps_in_wh = 100.0
    served = site.device_values(2)["103.WH"]
    assert isinstance(served, float | int)
    # Served = lifetime - offset: 100 Wh short of 2**32 now, past it a few cycles later.
    site.faults.counter_offsets[(2, "103.WH")] = served - (2**32 - wraps_in_wh)
    run = await SiteRun.start(hass, site, clock)
    shown = [run.value(PV, "EnergyGenerated")]
    for _ in range(10):
        await run.cycle()
        shown.append(run.value(PV, "EnergyGenerated"))
    raw = site.device_values(2)["103.WH"]
    assert isinstance(raw, float | int)
    assert raw < 2**32 - wraps_in_wh  # it wrapped
    assert shown == sorted(shown)
    assert shown[-1] == pytest.approx((raw + 2**32) / 1000, abs=1e-3)
    assert run.coordinator.data.rejections[PV] == {}
    await run.assert_all_checks()


async def test_two_hubs_one_failing(
    hass: HomeAssistant,
    site: SiteSimulator,
    second_site: SiteSimulator,
    clock: TickingDateTimeFactory,
) -> None:
    """The south hub's gateway goes silent, then refuses connections; the north hub polls on
    as if nothing happened (no slower, nothing unavailable), and both books are right."""
    north = await SiteRun.start(hass, site, clock, entry=site_entry(site, title="north"))
    south = await SiteRun.start(
        hass, second_site, clock, entry=site_entry(second_site, title="south")
    )
    both = [north, south]
    await cycle_together(both, 2)

    for unit_id in ALL_UNITS:
        second_site.faults.offline(unit_id, True)
    await cycle_together(both)
    assert north.coordinator.data.stats.duration_s < TIMEOUT_S
    assert not south.available(GRID, "ActivePower")
    assert not south.available(BATTERY, "SOC")
    second_site.faults.clear()
    second_site.faults.refuse_connections(True)
    await cycle_together(both, 2)
    assert not south.coordinator.last_update_success
    assert south.state(SITE, "grid_power") == STATE_UNAVAILABLE
    second_site.faults.refuse_connections(False)
    await cycle_together(both, 7)

    assert all(sample.ok for sample in north.samples)
    for run in both:
        for device_id, key in ((GRID, "ActivePower"), (PV, "AC_Power"), (BATTERY, "SOC")):
            assert run.available(device_id, key)
        await run.assert_all_checks()


@pytest.mark.parametrize("outage", ["meter_silent", "gateway_down"])
async def test_restart_during_an_outage(
    hass: HomeAssistant, site: SiteSimulator, clock: TickingDateTimeFactory, outage: str
) -> None:
    """Home Assistant restarts (the entry is reloaded) while the grid meter is silent, or
    while the whole gateway is down (setup is retried until it answers). Energy after the
    recovery equals the truth: the gap is counted once, from the stored counter baseline."""
    run = await SiteRun.start(hass, site, clock)
    await run.cycle(2)
    if outage == "meter_silent":
        site.faults.offline(1, True)
    else:
        site.faults.refuse_connections(True)
    await run.cycle()
    await run.reload()
    if outage == "gateway_down":
        assert run.entry.state is ConfigEntryState.SETUP_RETRY
    await run.cycle(2)
    assert run.state(GRID, "ActivePower") == STATE_UNAVAILABLE
    assert run.state(GRID, "EnergyImport") == STATE_UNAVAILABLE
    site.faults.clear()
    await run.cycle()
    assert run.loaded
    assert run.value(GRID, "ActivePower") == pytest.approx(_served_power(site, 1))
    assert run.value(GRID, "EnergyImport") == pytest.approx(site.truth.grid_import_kwh, rel=1e-6)
    await run.cycle(5)
    await run.assert_all_checks()


def _lose_the_write_request(run: SiteRun) -> list[ModbusTransportError]:
    """The next write never reaches the battery: it is silent while the request is out."""
    return _on_next_write(
        run.coordinator.hub,
        before=lambda: run.site.faults.offline(3, True),
        after=lambda: run.site.faults.offline(3, False),
    )


def _lose_the_write_response(run: SiteRun) -> list[ModbusTransportError]:
    """The next write reaches the battery, but its answer arrives garbled."""
    return _on_next_write(
        run.coordinator.hub, before=lambda: run.site.faults.corrupt_frames(1), after=lambda: None
    )


@pytest.mark.parametrize(
    "lose", [_lose_the_write_request, _lose_the_write_response, None],
    ids=["request_lost", "response_lost", "device_forgot"],
)  # fmt: skip
async def test_battery_write_lost(
    hass: HomeAssistant,
    site: SiteSimulator,
    clock: TickingDateTimeFactory,
    issue_registry: ir.IssueRegistry,
    lose: Callable[[SiteRun], list[ModbusTransportError]] | None,
) -> None:
    """A control write that is lost (request or answer), or a battery that forgets its
    command (a reboot): ems retries or re-asserts, so the battery charges as commanded within
    a cycle, and reports no failure."""
    site.set_battery_command("auto")
    entry = site_entry(site, options={CONF_ALLOW_CONTROL: True})
    run = await SiteRun.start(hass, site, clock, entry=entry)
    await run.cycle(2)
    battery = device_by_identifier(hass, (DOMAIN, f"{entry.entry_id}_{BATTERY}"), entry.entry_id)
    assert battery is not None
    lost = lose(run) if lose is not None else []
    await _force_charge(hass, battery.id, 2000)
    assert len(lost) == (lose is not None)  # the first attempt timed out; the retry took
    await run.cycle()
    assert site.truth.battery_power_w == pytest.approx(-2000, rel=0.01)
    if lose is None:
        await run.cycle()
        site.set_battery_command("auto")  # the battery rebooted and runs on its own
        assert site.truth.battery_mode == "auto"
        await run.cycle()
        assert site.truth.battery_power_w == pytest.approx(-2000, rel=0.01)
    state = run.coordinator.control.states[BATTERY]
    assert state.last_result == "ok"
    assert state.failures_in_a_row == 0
    assert hass.states.get(run.entity_id(BATTERY, "last_write_result")).state == "ok"
    assert hass.states.get(run.entity_id(BATTERY, "applied_mode")).state == "force_charge"
    assert (DOMAIN, f"write_failed_{BATTERY}") not in issue_registry.issues
    await run.cycle(6)
    assert site.truth.battery_mode == "charge"
    # Consumption is a balance with the battery, whose energy is integrated from its power.
    await run.assert_all_checks(("grid_import", "grid_export", "production"))


async def _force_charge(hass: HomeAssistant, device_id: str, power: float) -> None:
    call: Awaitable[Any] = hass.services.async_call(
        DOMAIN, "force_charge", {"device_id": device_id, "power": power}, blocking=True
    )
    await call


async def test_silent_grid_meter_across_an_hour(
    hass: HomeAssistant, site: SiteSimulator, clock: TickingDateTimeFactory
) -> None:
    """The grid meter is silent from 04:56 to 05:04: the books wait for its counter and
    spread the gap over the hours around 05:00, rather than 04:00 missing that energy and
    05:00 getting all of it at once."""
    run = await SiteRun.start(hass, site, clock)
    await run.cycle(4)
    site.faults.offline(1, True)
    await run.cycle(4, step=timedelta(minutes=2))
    assert not run.available(GRID, "EnergyImport")
    assert run.coordinator.ledger.timestamps[-1] < run.samples[-4].at  # the books wait
    site.faults.offline(1, False)
    await run.cycle(2)
    assert run.available(GRID, "EnergyImport")
    await run.assert_all_checks()
