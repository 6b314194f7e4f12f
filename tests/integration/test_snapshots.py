"""Snapshots of what ems shows Home Assistant for the demo site: every entity of each platform
(state, attributes, registry entry), every device, and the diagnostics dump.

A change of metadata (a unit, a device class, a translation key, a category) then shows up as
a diff to review. Registry entries carry fields that differ between Home Assistant releases,
so each tested release keeps its own snapshots (`snapshots/ha<major.minor>/`); after moving a
pin, write them with `scripts/test --ha <leg> tests/integration/test_snapshots.py
--snapshot-update` and review the diff.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
import json
from pathlib import Path

from freezegun import freeze_time
from freezegun.api import TickingDateTimeFactory
from homeassistant.const import __version__ as ha_version
from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr, entity_registry as er
from homeassistant.helpers.json import JSONEncoder
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.syrupy import HomeAssistantSnapshotExtension
from syrupy.assertion import SnapshotAssertion
from syrupy.location import PyTestLocation
from syrupy.types import PropertyPath, SerializableData

from custom_components.ems.const import CONF_ALLOW_CONTROL, DOMAIN
from custom_components.ems.diagnostics import async_get_config_entry_diagnostics
from simulator import SiteSimulator

RELEASE = ".".join(ha_version.split(".")[:2])
ENTRY_ID = "01JEMSDEMOSITESNAPSHOT0000"
# The simulator's clock and Home Assistant's start at the same instant (a June morning).
START = datetime(2026, 6, 21, 8, 0, tzinfo=UTC)
STEP = timedelta(seconds=10)
SIMULATOR_START = datetime(2026, 6, 21, tzinfo=UTC)  # SiteConfig.start
# What a run cannot repeat: the wall clock in the dump, the simulator's port, the device
# registry's ids, and measured numbers (the clock ticks on in real time between two jumps, so
# integrated energies differ in their last digits). Whether an entity has a value, its text
# states and all its metadata stay in the snapshot.
_UNREPEATABLE_KEYS = frozenset({"timestamp", "deviceId", "port", "unique_id", "cycle_time_ms"})


def _repeatable(data: SerializableData, path: PropertyPath) -> SerializableData:
    key = path[-1][0] if path else None
    if key in _UNREPEATABLE_KEYS:
        return f"<{type(data).__name__}>"
    if key in {"state", "value"} and _is_number(data):
        return "<number>"
    # A register dump's words carry the same readings: which registers are there is kept.
    if len(path) >= 2 and path[-2][0] == "registers" and _is_number(data):
        return "<number>"
    return data


def _is_number(data: object) -> bool:
    if isinstance(data, bool):
        return False
    if isinstance(data, int | float):
        return True
    try:
        float(str(data))
    except ValueError:
        return False
    return True


class _PerRelease(HomeAssistantSnapshotExtension):
    @classmethod
    def dirname(cls, *, test_location: PyTestLocation) -> str:
        return str(Path(test_location.filepath).parent / "snapshots" / f"ha{RELEASE}")


@pytest.fixture
def snapshot(snapshot: SnapshotAssertion) -> SnapshotAssertion:
    """Snapshots kept per Home Assistant release."""
    return snapshot.use_extension(_PerRelease)


@pytest.fixture
def clock() -> Iterator[TickingDateTimeFactory]:
    """Home Assistant's clock, ticking (pymodbus and the recorder wait on real timers); each
    cycle jumps it as far as the site advances."""
    with freeze_time(START, tick=True) as ticking:
        yield ticking


@pytest.fixture
async def demo_site(
    hass: HomeAssistant,
    site_entry: MockConfigEntry,
    simulator: SiteSimulator,
    clock: TickingDateTimeFactory,
    entity_registry_enabled_by_default: None,
) -> MockConfigEntry:
    """The demo site on a June morning, battery control allowed, a few cycles in, with every
    entity enabled."""
    entry = MockConfigEntry(
        domain=DOMAIN,
        version=site_entry.version,
        entry_id=ENTRY_ID,
        title=site_entry.title,
        unique_id=site_entry.unique_id,
        data=dict(site_entry.data),
        options={CONF_ALLOW_CONTROL: True},
        subentries_data=[
            {
                "subentry_type": subentry.subentry_type,
                "title": subentry.title,
                "unique_id": subentry.unique_id,
                "data": dict(subentry.data),
            }
            for subentry in site_entry.subentries.values()
        ],
    )
    hass.loop.slow_callback_duration = 3600.0  # a clock jump is no slow callback
    simulator.advance((START - SIMULATOR_START).total_seconds())
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    for _ in range(2):
        simulator.advance(STEP.total_seconds())
        clock.tick(STEP)
        await entry.runtime_data.coordinator.async_refresh()
        await hass.async_block_till_done()
    return entry


@pytest.mark.parametrize("platform", ["sensor", "number", "select"])
async def test_entities(
    hass: HomeAssistant,
    entity_registry: er.EntityRegistry,
    snapshot: SnapshotAssertion,
    demo_site: MockConfigEntry,
    platform: str,
) -> None:
    """Every entity of the platform: its registry entry, and its state and attributes."""
    entries = [
        entry
        for entry in er.async_entries_for_config_entry(entity_registry, demo_site.entry_id)
        if entry.domain == platform
    ]
    assert entries
    for entry in sorted(entries, key=lambda item: item.entity_id):
        assert entry == snapshot(name=f"{entry.entity_id}-entry")
        state = hass.states.get(entry.entity_id)
        assert state is not None, entry.entity_id
        assert state == snapshot(name=f"{entry.entity_id}-state", matcher=_repeatable)


async def test_devices(
    device_registry: dr.DeviceRegistry, snapshot: SnapshotAssertion, demo_site: MockConfigEntry
) -> None:
    """The hub's devices: names, models, manufacturers, serials, and how they hang together."""
    devices = dr.async_entries_for_config_entry(device_registry, demo_site.entry_id)
    assert devices
    for device in sorted(devices, key=lambda item: sorted(item.identifiers)):
        (identifier,) = device.identifiers
        assert device == snapshot(name=identifier[1].removeprefix(f"{ENTRY_ID}_"))


async def test_diagnostics(
    hass: HomeAssistant, snapshot: SnapshotAssertion, demo_site: MockConfigEntry
) -> None:
    """The diagnostics dump, redacted as a user would share it, as JSON (the download's
    encoder; the HTTP view itself cannot encode the frozen clock's datetimes)."""
    dump = await async_get_config_entry_diagnostics(hass, demo_site)
    assert json.loads(json.dumps(dump, cls=JSONEncoder)) == snapshot(matcher=_repeatable)
