"""The soak as a slow test: `scripts/soak` runs it; `--run-slow` or EMS_RUN_SLOW=1 too."""

from __future__ import annotations

from collections.abc import AsyncIterator
import json
import os
from pathlib import Path

from freezegun.api import TickingDateTimeFactory
from homeassistant.core import HomeAssistant
import pytest

from simulator import SiteSimulator

from .harness import start_site
from .soak import SoakConfig, soak
from .soak_cli import ENV_REPORT


@pytest.fixture
async def soak_site(socket_enabled: None) -> AsyncIterator[SiteSimulator]:
    """The site with the soak's seed, its battery on its own logic."""
    simulated = await start_site(seed=SoakConfig.from_env().seed, battery="auto")
    yield simulated
    await simulated.stop()


@pytest.mark.slow
@pytest.mark.timeout(1800)  # a simulated day takes minutes, not the suite's two
async def test_soak(
    hass: HomeAssistant, soak_site: SiteSimulator, clock: TickingDateTimeFactory
) -> None:
    """A simulated day with seeded faults: metered totals equal the truth within 0.1 %, no
    spike in the series, the books or the statistics, and memory stays bounded."""
    report = await soak(hass, soak_site, clock, SoakConfig.from_env())
    if path := os.environ.get(ENV_REPORT):
        await hass.async_add_executor_job(Path(path).write_text, json.dumps(report), "utf-8")
    assert report["passed"], json.dumps(report["criteria"] | report["violations"], indent=1)
