"""Fixtures for the reliability suite: Home Assistant with a real recorder (the integration
tests' fixtures), a simulated site and a ticking clock that start at the same instant."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
import logging
import os
from typing import Any

from freezegun import freeze_time
from freezegun.api import TickingDateTimeFactory
import pytest

from simulator import SiteSimulator
from tests.conftest import root_log_handler
from tests.integration.conftest import *  # noqa: F403 - recorder_mock, custom integrations

from .harness import START, start_site
from .soak_cli import ENV_RUN_SLOW


def pytest_addoption(parser: pytest.Parser) -> None:
    """`--run-slow` runs the soak (only when this directory is named on the command line;
    the environment variable works from anywhere)."""
    parser.addoption("--run-slow", action="store_true", help="run tests marked slow (soak)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip slow tests unless asked for: a soak takes minutes."""
    if config.getoption("--run-slow", default=False) or os.environ.get(ENV_RUN_SLOW):
        return
    skip = pytest.mark.skip(reason=f"slow: pass --run-slow or set {ENV_RUN_SLOW}=1")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


class _TracebackCatcher(logging.Handler):
    """Keeps error records that carry a traceback."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.escaped: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info is not None:
            self.escaped.append(f"{record.name}: {record.getMessage()}")


@pytest.fixture(autouse=True)
def no_escaped_errors() -> Iterator[None]:
    """Fail a test in which an exception escaped: the coordinator catches whatever a cycle
    raises and logs it with its traceback, so that is where it shows. (Not through `caplog`:
    the Home Assistant plugin's caplog logs everything at DEBUG, which costs seconds.)"""
    with root_log_handler(_TracebackCatcher()) as catcher:
        yield
    assert not catcher.escaped, catcher.escaped


@pytest.fixture
async def site(socket_enabled: None) -> AsyncIterator[SiteSimulator]:
    """The simulated site at START, on an ephemeral loopback port."""
    simulated = await start_site()
    yield simulated
    await simulated.stop()


@pytest.fixture
async def second_site(socket_enabled: None) -> AsyncIterator[SiteSimulator]:
    """Another site just like `site`, behind a hub of its own."""
    simulated = await start_site()
    yield simulated
    await simulated.stop()


@pytest.fixture
def clock() -> Iterator[TickingDateTimeFactory]:
    """Home Assistant's clock at START, ticking: pymodbus and the recorder wait on real timers
    (a frozen clock never fires them); each cycle jumps it as far as the site advances."""
    with freeze_time(START, tick=True) as ticking:
        yield ticking


@pytest.fixture
def recorder_config() -> dict[str, Any]:
    """Commit the recorder's events in batches, as Home Assistant does by default (the test
    plugin commits each one, and a site cycle changes some hundred states)."""
    return {"commit_interval": 1}
