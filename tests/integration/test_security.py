"""Security review (docs/security.md): each claim there is proven by a test here.

1. ems writes only registers a profile marks `rw`, only from the control layer, and only
   when the hub's options allow control.
2. Diagnostics leak neither the hub's address nor serial numbers.
3. Actions act only on a battery of a loaded ems hub.
4. Nothing inside Home Assistant listens on a network port because of ems.
"""

from __future__ import annotations

import ast
from dataclasses import replace
import json
from pathlib import Path
import socket
from typing import Any

from homeassistant.core import HomeAssistant
from homeassistant.exceptions import ServiceValidationError
from homeassistant.helpers import device_registry as dr
from homeassistant.setup import async_setup_component
import psutil
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.components.diagnostics import (
    get_diagnostics_for_config_entry,
)
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from custom_components.ems.compat import device_by_identifier
from custom_components.ems.const import DOMAIN
from custom_components.ems.coordinator import EmsCoordinator
from custom_components.ems.engine.control.battery import WriteFailedError, recipe_of
from custom_components.ems.engine.model import Access, DeviceProfile
from custom_components.ems.engine.profiles.loader import builtin_profiles
from custom_components.ems.engine.profiles.sunspec import ModelInstance, build_profile
from custom_components.ems.engine.recipes import Readback
from simulator import SiteSimulator

from .conftest import run_cycles, start_site

PACKAGE = Path(__file__).parents[2] / "custom_components" / DOMAIN
STRINGS: dict[str, Any] = json.loads(
    (PACKAGE / "translations" / "en.json").read_text(encoding="utf-8")
)
BATTERY_UNIT = 3
FC_WRITE_SINGLE, FC_WRITE_MULTIPLE = 6, 16
# pymodbus client methods that put something into a device.
WRITE_METHODS = frozenset(
    {
        "write",
        "write_register",
        "write_registers",
        "write_coil",
        "write_coils",
        "readwrite_registers",
        "mask_write_register",
    }
)


class _References(ast.NodeVisitor):
    """Uses of `x.<name>` (a call, or a method handed on) with the Class.method they are in."""

    def __init__(self, names: frozenset[str]) -> None:
        self.names = names
        self.scope: list[str] = []
        self.found: set[tuple[str, str]] = set()

    def _enter(self, node: ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        self.scope.append(node.name)
        self.generic_visit(node)
        self.scope.pop()

    visit_ClassDef = visit_FunctionDef = visit_AsyncFunctionDef = _enter  # noqa: N815

    def visit_Attribute(self, node: ast.Attribute) -> None:
        if node.attr in self.names:
            self.found.add((".".join(self.scope), node.attr))
        self.generic_visit(node)


def _call_sites(names: frozenset[str]) -> set[tuple[str, str, str]]:
    """(file, Class.method, name) for every use of one of `names` in the package."""
    sites: set[tuple[str, str, str]] = set()
    for path in sorted(PACKAGE.rglob("*.py")):
        visitor = _References(names)
        visitor.visit(ast.parse(path.read_text(encoding="utf-8")))
        sites |= {(path.name, where, name) for where, name in visitor.found}
    return sites


def _writes_seen(simulator: SiteSimulator) -> dict[int, int]:
    """FC6/FC16 requests the simulated devices received, per unit."""
    counts: dict[int, int] = {}
    for (unit, code), count in simulator.requests.by_unit_function.items():
        if code in (FC_WRITE_SINGLE, FC_WRITE_MULTIPLE):
            counts[unit] = counts.get(unit, 0) + count
    return counts


async def _load(
    hass: HomeAssistant, entry: MockConfigEntry, simulator: SiteSimulator, *, allow: bool
) -> EmsCoordinator:
    return await start_site(hass, entry, simulator, allow_control=allow)


async def _cycles(
    hass: HomeAssistant, coordinator: EmsCoordinator, simulator: SiteSimulator, count: int
) -> None:
    await run_cycles(hass, coordinator, simulator, count)


def _device_id(hass: HomeAssistant, entry: MockConfigEntry, unit: int) -> str:
    device = device_by_identifier(hass, (DOMAIN, f"{entry.entry_id}_unit{unit}"), entry.entry_id)
    assert device is not None
    return device.id


# -- 1. writes ---------------------------------------------------------------------------------


def test_modbus_writes_have_one_path() -> None:
    """Only ModbusHub.write sends FC6/FC16, and only the control layer's confirmed write
    calls it; that write is called from the battery cycle and the release to auto only."""
    assert _call_sites(WRITE_METHODS) == {
        ("transport.py", "ModbusHub.write", "write_register"),
        ("transport.py", "ModbusHub.write", "write_registers"),
        ("battery.py", "BatteryControl._write_confirmed", "write"),
    }
    assert _call_sites(frozenset({"_write_confirmed"})) == {
        ("battery.py", "BatteryControl._apply", "_write_confirmed"),
        ("battery.py", "BatteryControl.release_one", "_write_confirmed"),
    }


def _every_recipe() -> list[tuple[str, DeviceProfile]]:
    """Every shipped profile with a control recipe, and SunSpec storage's."""
    chain = [
        ModelInstance(model_id=1, address=40002, length=66),
        ModelInstance(model_id=124, address=40070, length=24),
        ModelInstance(model_id=802, address=40096, length=62),
    ]
    profiles = [(p.id, p) for p in builtin_profiles().values() if p.control is not None]
    return [*profiles, ("sunspec_124", build_profile(chain))]


@pytest.mark.parametrize(
    ("name", "profile"), _every_recipe(), ids=lambda v: v if isinstance(v, str) else ""
)
def test_every_family_writes_only_rw_channels_its_recipe_names(
    name: str, profile: DeviceProfile
) -> None:
    """Each family's recipe writes only channels its profile marks `rw`; the profile's other
    channels (its readings) are never in a sequence."""
    recipe = profile.control
    assert recipe is not None, name
    writable = {spec.key for spec in profile.channels if spec.access is Access.READ_WRITE}
    assert recipe.channels <= writable
    assert recipe.channels, name


async def test_read_only_channel_is_never_written(
    hass: HomeAssistant, site_entry: MockConfigEntry, simulator: SiteSimulator
) -> None:
    """The confirmed write refuses a channel its profile marks `ro`, before any request."""
    coordinator = await _load(hass, site_entry, simulator, allow=True)
    battery = coordinator.devices[f"unit{BATTERY_UNIT}"]
    mode = battery.profile.channel("StorageControlMode")
    assert mode.access is Access.READ_WRITE
    simulator.reset_request_count()
    for spec in (battery.profile.channel("SOC"), replace(mode, access=Access.READ_ONLY)):
        assert spec.access is Access.READ_ONLY
        with pytest.raises(WriteFailedError, match="read-only"):
            await coordinator.control._write_confirmed(battery, spec, 1, Readback(channel=spec.key))
    assert _writes_seen(simulator) == {}
    assert simulator.control_writes == []


async def test_control_writes_only_rw_points_of_the_battery(
    hass: HomeAssistant, site_entry: MockConfigEntry, simulator: SiteSimulator
) -> None:
    """A command writes model 124 control points the profile marks `rw`, on the battery only."""
    coordinator = await _load(hass, site_entry, simulator, allow=True)
    battery = coordinator.devices[f"unit{BATTERY_UNIT}"]
    writable = {
        spec.origin for spec in battery.profile.channels if spec.access is Access.READ_WRITE
    }
    recipe_channels = recipe_of(battery).channels
    assert {battery.profile.channel(key).origin for key in recipe_channels} <= writable
    simulator.reset_request_count()
    await hass.services.async_call(
        DOMAIN,
        "force_charge",
        {"device_id": _device_id(hass, site_entry, BATTERY_UNIT), "power": 2000},
        blocking=True,
    )
    await _cycles(hass, coordinator, simulator, 3)
    await hass.services.async_call(
        DOMAIN, "auto", {"device_id": _device_id(hass, site_entry, BATTERY_UNIT)}, blocking=True
    )
    assert simulator.control_writes
    assert {write.register for write in simulator.control_writes} <= writable
    assert set(_writes_seen(simulator)) == {BATTERY_UNIT}


async def test_a_hub_without_control_never_writes(
    hass: HomeAssistant, site_entry: MockConfigEntry, simulator: SiteSimulator
) -> None:
    """Control is off by default: cycles, refused actions and unload write nothing at all."""
    coordinator = await _load(hass, site_entry, simulator, allow=False)
    await _cycles(hass, coordinator, simulator, 3)
    with pytest.raises(ServiceValidationError) as caught:
        await hass.services.async_call(
            DOMAIN,
            "force_charge",
            {"device_id": _device_id(hass, site_entry, BATTERY_UNIT), "power": 2000},
            blocking=True,
        )
    assert caught.value.translation_key == "control_disabled"
    assert await hass.config_entries.async_unload(site_entry.entry_id)
    assert _writes_seen(simulator) == {}
    assert simulator.control_writes == []


# -- 2. diagnostics ----------------------------------------------------------------------------


async def test_diagnostics_leak_no_address_or_serial(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    site_entry: MockConfigEntry,
    simulator: SiteSimulator,
) -> None:
    """The dump has no host, no host:port title or unique id, no serial-port path and no
    serial number of any device (Eastron registers, SunSpec model 1 `SN`)."""
    await _load(hass, site_entry, simulator, allow=False)
    # A serial adapter's by-id path carries the adapter's own serial number.
    serial_port = "/dev/serial/by-id/usb-FTDI_FT232R_A10KXYZ9-if00-port0"
    hass.config_entries.async_update_entry(
        site_entry, data={**site_entry.data, "serial_port": serial_port}
    )
    await hass.async_block_till_done()
    assert await async_setup_component(hass, "diagnostics", {})
    dump = json.dumps(await get_diagnostics_for_config_entry(hass, hass_client, site_entry))

    serials = [str(simulator.device_values(unit)["SerialNumber"]) for unit in (1, 5)]
    serials += [str(simulator.device_values(unit)["1.SN"]) for unit in (2, 3, 4)]
    secrets = ["127.0.0.1", f"127.0.0.1:{simulator.port}", serial_port, *serials]
    for secret in secrets:
        assert secret not in dump, secret
    # The readings are all there, just not the identifying ones.
    assert '"parameter": "SerialNumber"' in dump
    assert '"parameter": "ActivePower"' in dump


# -- 3. actions --------------------------------------------------------------------------------


async def _refused(hass: HomeAssistant, device_id: str, key: str) -> None:
    with pytest.raises(ServiceValidationError) as caught:
        await hass.services.async_call(
            DOMAIN, "force_charge", {"device_id": device_id, "power": 1000}, blocking=True
        )
    assert caught.value.translation_domain == DOMAIN
    assert caught.value.translation_key == key
    assert key in STRINGS["exceptions"]


async def test_actions_only_reach_a_battery_of_a_loaded_hub(
    hass: HomeAssistant, site_entry: MockConfigEntry, simulator: SiteSimulator
) -> None:
    """Another integration's device, an unknown id, a meter, the hub and site devices, and a
    battery whose hub is unloaded are all refused with a translated error; nothing is written."""
    coordinator = await _load(hass, site_entry, simulator, allow=True)
    registry = dr.async_get(hass)
    other = MockConfigEntry(domain="other_integration")
    other.add_to_hass(hass)
    foreign = registry.async_get_or_create(
        config_entry_id=other.entry_id,
        identifiers={("other_integration", f"{site_entry.entry_id}_unit{BATTERY_UNIT}")},
    )
    hub_devices = [
        device.id
        for device in dr.async_entries_for_config_entry(registry, site_entry.entry_id)
        if not any(
            identifier.endswith(tuple(coordinator.devices)) for _, identifier in device.identifiers
        )
    ]
    assert hub_devices  # the hub and the site
    battery = _device_id(hass, site_entry, BATTERY_UNIT)
    simulator.reset_request_count()

    await _refused(hass, foreign.id, "unknown_device")
    await _refused(hass, "0123456789abcdef0123456789abcdef", "unknown_device")
    await _refused(hass, _device_id(hass, site_entry, 1), "not_a_battery")
    for device_id in hub_devices:
        await _refused(hass, device_id, "not_a_battery")
    assert await hass.config_entries.async_unload(site_entry.entry_id)
    await _refused(hass, battery, "not_loaded")
    assert _writes_seen(simulator) == {}


# -- 4. no listening socket --------------------------------------------------------------------

# Creating a server, or a socket of one's own, is how code comes to listen.
SERVER_CALLS = frozenset(
    {
        "start_server",
        "create_server",
        "start_unix_server",
        "create_unix_server",
        "create_datagram_endpoint",
        "serve_forever",
        "bind",
        "listen",
        "register_view",
        "socket",
    }
)
SERVER_MODULES = ("socket", "socketserver", "http.server", "pymodbus.server", "aiohttp.web")


def test_the_package_creates_no_server() -> None:
    """No server API is called and no server module is imported anywhere in the package."""
    assert _call_sites(SERVER_CALLS) == set()
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            else:
                continue
            for name in names:
                assert not name.startswith(SERVER_MODULES), (path.name, name)


def _listening() -> set[tuple[str, int, int]]:
    """This process's listening TCP sockets and bound, unconnected UDP sockets."""
    return {
        (conn.laddr.ip, conn.laddr.port, conn.type)
        for conn in psutil.Process().net_connections(kind="inet")
        if conn.status == psutil.CONN_LISTEN or (conn.type == socket.SOCK_DGRAM and not conn.raddr)
    }


async def test_a_running_site_opens_no_listening_socket(
    hass: HomeAssistant, site_entry: MockConfigEntry, simulator: SiteSimulator
) -> None:
    """Setting up the site, polling it and steering its battery open no port (the simulator's
    own server was listening before, and is the only one)."""
    before = _listening()
    assert any(port == simulator.port for _, port, _ in before)
    coordinator = await _load(hass, site_entry, simulator, allow=True)
    await hass.services.async_call(
        DOMAIN, "hold", {"device_id": _device_id(hass, site_entry, BATTERY_UNIT)}, blocking=True
    )
    await _cycles(hass, coordinator, simulator, 2)
    assert _listening() - before == set()
