"""Fixtures for every test: the simulated site on a loopback socket."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from simulator import SiteSimulator


@pytest.fixture
async def simulator(socket_enabled: None) -> AsyncIterator[SiteSimulator]:
    """The simulated site on an ephemeral loopback port; time moves only when a test says."""
    site = SiteSimulator()
    await site.start(host="127.0.0.1", port=0)
    yield site
    await site.stop()
