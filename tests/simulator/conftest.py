"""Simulator tests: plain pytest and real loopback sockets, no Home Assistant fixtures."""

from __future__ import annotations

from collections.abc import AsyncIterator
import contextlib

from pymodbus.client import AsyncModbusTcpClient
import pytest

from simulator import SiteSimulator
from tests.simulator.helpers import MORNING, make_client


@pytest.fixture(autouse=True)
def _allow_loopback_sockets(request: pytest.FixtureRequest) -> None:
    """pytest-socket (pulled in by the Home Assistant test plugin) blocks sockets by default."""
    with contextlib.suppress(pytest.FixtureLookupError):
        request.getfixturevalue("socket_enabled")


@pytest.fixture
async def sim() -> AsyncIterator[SiteSimulator]:
    """A running simulator on an ephemeral loopback port; time moves only when told."""
    site = SiteSimulator(MORNING)
    await site.start()
    yield site
    await site.stop()


@pytest.fixture
async def client(sim: SiteSimulator) -> AsyncIterator[AsyncModbusTcpClient]:
    """A connected client for `sim`."""
    modbus = make_client(sim.port, timeout=0.3)
    assert await modbus.connect()
    yield modbus
    modbus.close()
