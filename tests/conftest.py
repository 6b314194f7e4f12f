"""Fixtures for every test: the simulated site on a loopback socket."""

from __future__ import annotations

from collections.abc import AsyncIterator
import os

from hypothesis import settings
import pytest

from simulator import SiteSimulator

# The property tests and the fuzzers draw the same examples on every run, so a CI run never
# fails by chance; `EMS_HYPOTHESIS_PROFILE=explore scripts/test` draws new ones (a failure
# found that way becomes an @example).
settings.register_profile("ci", derandomize=True, print_blob=True)
settings.register_profile("explore", print_blob=True)
settings.load_profile(os.environ.get("EMS_HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture
async def simulator(socket_enabled: None) -> AsyncIterator[SiteSimulator]:
    """The simulated site on an ephemeral loopback port; time moves only when a test says."""
    site = SiteSimulator()
    await site.start(host="127.0.0.1", port=0)
    yield site
    await site.stop()
