"""Repairs where the user must act (a profile file that does not load, a replaced device), and
devices the hub no longer has."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path

from freezegun import freeze_time
from freezegun.api import TickingDateTimeFactory
from homeassistant.components.repairs import repairs_flow_manager
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers import device_registry as dr, issue_registry as ir
from homeassistant.setup import async_setup_component
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.ems import async_remove_config_entry_device
from custom_components.ems.compat import device_by_identifier
from custom_components.ems.const import DOMAIN
from custom_components.ems.engine.modbus.schedule import SLOW_POLL_EVERY
from custom_components.ems.engine.model import ChannelKind
from custom_components.ems.engine.profiles.loader import builtin_profiles
from simulator import SiteConfig, SiteSimulator

from .conftest import device_subentry

GRID_METER = "unit1"
COUNTERS = ("EnergyImport", "EnergyExport")
SDM630_COUNTERS = [
    spec.key for spec in builtin_profiles()["eastron_sdm630"].channels
    if spec.kind is ChannelKind.COUNTER
]  # fmt: skip
GOOD_PROFILE = """
id: my_meter
manufacturer: Acme
model: Meter
device_type: meter
defaults: {function: input, type: float32}
channels:
  ActivePower: {address: 0x000C, unit: W}
"""


@pytest.fixture
async def simulator(socket_enabled: None) -> AsyncIterator[SiteSimulator]:
    """The site with an empty battery: at night the house imports through the grid meter."""
    site = SiteSimulator(SiteConfig(initial_soc=0.0))
    await site.start(host="127.0.0.1", port=0)
    yield site
    await site.stop()


@pytest.fixture
def clock() -> Iterator[TickingDateTimeFactory]:
    """Home Assistant's clock, moved with the simulator's so counters rise at a real pace."""
    with freeze_time("2026-06-21 00:00:00+00:00", tick=True) as ticking:
        yield ticking


def _write_profile(hass: HomeAssistant, name: str, text: str | None) -> None:
    """Write a user profile, or remove it (the test config folder outlives the test)."""
    folder = Path(hass.config.path("ems_profiles"))
    folder.mkdir(exist_ok=True)
    if text is None:
        (folder / name).unlink(missing_ok=True)
    else:
        (folder / name).write_text(text, encoding="utf-8")


@pytest.fixture
async def metered_hub(
    hass: HomeAssistant, mock_config_entry: MockConfigEntry, simulator: SiteSimulator
) -> MockConfigEntry:
    """The grid meter's hub, set up once its counters show two hours of import."""
    simulator.advance(2 * 3600)
    await _setup(hass, mock_config_entry)
    assert _energy(hass, "EnergyImport") > 1
    return mock_config_entry


async def _setup(hass: HomeAssistant, entry: MockConfigEntry) -> None:
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()


async def _reload(hass: HomeAssistant, entry: MockConfigEntry) -> None:
    assert await hass.config_entries.async_reload(entry.entry_id)
    await hass.async_block_till_done()


def _energy(hass: HomeAssistant, key: str) -> float:
    return float(hass.states.get(f"sensor.sdm630_unit_1_{key.replace('Energy', 'energy_')}").state)


def _swap_grid_meter(simulator: SiteSimulator) -> str:
    """Put another SDM630 at unit 1: another serial number, counters from zero."""
    simulator.faults.counter_offsets[(1, "SerialNumber")] = -1000
    for key in SDM630_COUNTERS:
        simulator.faults.reset_counter(1, key)
    return str(simulator.device_values(1)["SerialNumber"])


async def test_broken_user_profile_is_a_repair_until_it_loads(
    hass: HomeAssistant, mock_config_entry: MockConfigEntry, issue_registry: ir.IssueRegistry
) -> None:
    """One issue per file that does not load, naming the file and what is wrong; it goes when
    the file loads at the next reload."""
    odd_class = GOOD_PROFILE.replace("unit: W}", "unit: W, device_class: wattage}")
    await hass.async_add_executor_job(_write_profile, hass, "broken.yaml", "id: [")
    await hass.async_add_executor_job(_write_profile, hass, "odd.yaml", odd_class)
    try:
        await _setup(hass, mock_config_entry)
        broken = issue_registry.async_get_issue(DOMAIN, "profile_error_broken.yaml")
        assert broken is not None
        assert broken.translation_key == "profile_error"
        assert broken.severity is ir.IssueSeverity.WARNING
        assert not broken.is_fixable
        assert broken.translation_placeholders["file"] == "broken.yaml"
        assert broken.translation_placeholders["problem"].startswith("is not valid YAML")
        odd = issue_registry.async_get_issue(DOMAIN, "profile_error_odd.yaml")
        assert odd is not None
        assert odd.translation_placeholders == {
            "file": "odd.yaml",
            "problem": "channel 'ActivePower', field 'device_class': "
            "'wattage' is not a sensor device class",
        }

        await hass.async_add_executor_job(_write_profile, hass, "broken.yaml", GOOD_PROFILE)
        await _reload(hass, mock_config_entry)
        assert issue_registry.async_get_issue(DOMAIN, "profile_error_broken.yaml") is None
        assert issue_registry.async_get_issue(DOMAIN, "profile_error_odd.yaml") is not None
    finally:
        for name in ("broken.yaml", "odd.yaml"):
            await hass.async_add_executor_job(_write_profile, hass, name, None)


async def test_device_replaced_across_a_restart(
    hass: HomeAssistant,
    clock: TickingDateTimeFactory,
    metered_hub: MockConfigEntry,
    simulator: SiteSimulator,
    issue_registry: ir.IssueRegistry,
    device_registry: dr.DeviceRegistry,
) -> None:
    """A meter swapped while Home Assistant was stopped: a repair names both serials, the totals
    continue without a jump, and confirming makes the new serial the expected one."""
    entry = metered_hub
    old_serial = str(simulator.device_values(1)["SerialNumber"])
    before = {key: _energy(hass, key) for key in COUNTERS}
    site_before = float(hass.states.get("sensor.site_grid_import_energy").state)

    assert await hass.config_entries.async_unload(entry.entry_id)
    new_serial = _swap_grid_meter(simulator)
    assert new_serial != old_serial
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()

    issue_id = f"device_replaced_{entry.entry_id}_{GRID_METER}"
    issue = issue_registry.async_get_issue(DOMAIN, issue_id)
    assert issue is not None
    assert issue.is_fixable
    assert issue.translation_key == "device_replaced"
    assert issue.translation_placeholders == {
        "device": "SDM630 (unit 1)",
        "unit": "1",
        "old_serial": old_serial,
        "new_serial": new_serial,
    }
    # The new meter's first reading is its baseline: nothing rejected, no jump anywhere.
    coordinator = entry.runtime_data.coordinator
    assert not any(r.startswith("counter_") for r in coordinator.data.rejections[GRID_METER])
    assert {key: _energy(hass, key) for key in COUNTERS} == pytest.approx(before)
    site_after = float(hass.states.get("sensor.site_grid_import_energy").state)
    assert site_after == pytest.approx(site_before, abs=1e-3)

    # What the new meter counts from now on adds to the totals.
    simulator.advance(60)
    clock.tick(timedelta(seconds=60))
    await coordinator.async_refresh()
    await hass.async_block_till_done()
    counted = simulator.device_values(1)
    for key in COUNTERS:
        assert _energy(hass, key) == pytest.approx(before[key] + float(counted[key]), abs=1e-6)

    assert await async_setup_component(hass, "repairs", {})
    flows = repairs_flow_manager(hass)
    assert flows is not None
    result = await flows.async_init(DOMAIN, data={"issue_id": issue_id})
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "confirm"
    assert result["description_placeholders"]["new_serial"] == new_serial
    result = await flows.async_configure(result["flow_id"], {})
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert issue_registry.async_get_issue(DOMAIN, issue_id) is None
    meter = device_by_identifier(hass, (DOMAIN, f"{entry.entry_id}_unit1"), entry.entry_id)
    assert meter is not None
    assert meter.serial_number == new_serial

    # Accepted for good: neither the next cycle nor a restart raises it again.
    await coordinator.async_refresh()
    await _reload(hass, entry)
    assert issue_registry.async_get_issue(DOMAIN, issue_id) is None


async def test_device_replaced_between_cycles(
    hass: HomeAssistant,
    metered_hub: MockConfigEntry,
    simulator: SiteSimulator,
    issue_registry: ir.IssueRegistry,
) -> None:
    """A swap seen when the slow group (the serial) is read again: the counters that read 0 in
    that cycle start the new baseline at once instead of being rejected as a reset."""
    entry = metered_hub
    coordinator = entry.runtime_data.coordinator
    before = {key: _energy(hass, key) for key in COUNTERS}
    for _ in range(SLOW_POLL_EVERY - 1):  # the fast cycles until the slow group is due
        await coordinator.async_refresh()
    _swap_grid_meter(simulator)
    await coordinator.async_refresh()
    await hass.async_block_till_done()

    issue_id = f"device_replaced_{entry.entry_id}_{GRID_METER}"
    assert issue_registry.async_get_issue(DOMAIN, issue_id) is not None
    assert not any(r.startswith("counter_") for r in coordinator.data.rejections[GRID_METER])
    assert {key: _energy(hass, key) for key in COUNTERS} == pytest.approx(before)

    # The original meter back in place: the issue goes by itself.
    simulator.faults.counter_offsets.pop((1, "SerialNumber"))
    for _ in range(SLOW_POLL_EVERY):
        await coordinator.async_refresh()
    assert issue_registry.async_get_issue(DOMAIN, issue_id) is None


async def test_a_device_the_hub_lost_is_removed_at_setup(
    hass: HomeAssistant, mock_config_entry: MockConfigEntry, device_registry: dr.DeviceRegistry
) -> None:
    """A registry device of the entry that no subentry describes any more goes at setup."""
    entry = mock_config_entry
    entry.add_to_hass(hass)
    stale = device_registry.async_get_or_create(
        config_entry_id=entry.entry_id, identifiers={(DOMAIN, f"{entry.entry_id}_unit9")}
    )
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()

    assert device_registry.async_get(stale.id) is None
    kept = {
        identifier
        for device in dr.async_entries_for_config_entry(device_registry, entry.entry_id)
        for identifier in device.identifiers
    }
    assert kept == {
        (DOMAIN, entry.entry_id),
        (DOMAIN, f"{entry.entry_id}_site"),
        (DOMAIN, f"{entry.entry_id}_unit1"),
    }


async def test_removing_a_device_subentry_removes_its_device(
    hass: HomeAssistant, simulator: SiteSimulator, device_registry: dr.DeviceRegistry
) -> None:
    """A device taken off the hub leaves the registry; the hub reloads without it."""
    entry = MockConfigEntry(
        domain=DOMAIN,
        version=2,
        title="hub",
        unique_id=f"127.0.0.1:{simulator.port}",
        data={"host": "127.0.0.1", "port": simulator.port},
        subentries_data=[
            device_subentry(1, "eastron_sdm630", "grid", "Grid"),
            device_subentry(5, "eastron_sdm120", "load", "Heat pump"),
        ],
    )
    await _setup(hass, entry)
    heat_pump = (DOMAIN, f"{entry.entry_id}_unit5")
    assert device_by_identifier(hass, heat_pump, entry.entry_id) is not None

    subentry_id = next(s.subentry_id for s in entry.subentries.values() if s.unique_id == "5")
    assert hass.config_entries.async_remove_subentry(entry, subentry_id)
    await hass.async_block_till_done()

    assert device_by_identifier(hass, heat_pump, entry.entry_id) is None
    assert [device.unit_id for device in entry.runtime_data.coordinator.devices.values()] == [1]


async def test_only_devices_the_hub_lacks_can_be_deleted(
    hass: HomeAssistant, init_integration: MockConfigEntry, device_registry: dr.DeviceRegistry
) -> None:
    """The hub, its site and its devices refuse deletion from the UI; a leftover accepts it."""
    entry = init_integration
    for key in (entry.entry_id, f"{entry.entry_id}_site", f"{entry.entry_id}_unit1"):
        device = device_by_identifier(hass, (DOMAIN, key), entry.entry_id)
        assert device is not None, key
        assert not await async_remove_config_entry_device(hass, entry, device), key
    leftover = device_registry.async_get_or_create(
        config_entry_id=entry.entry_id, identifiers={(DOMAIN, f"{entry.entry_id}_unit7")}
    )
    assert await async_remove_config_entry_device(hass, entry, leftover)
