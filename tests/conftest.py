"""Fixtures for every test: the simulated site on a loopback socket."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
import logging
import os
import re
import struct

from hypothesis import settings
import pytest

from simulator import SiteSimulator

# The property tests and the fuzzers draw the same examples on every run, so a CI run never
# fails by chance; `EMS_HYPOTHESIS_PROFILE=explore scripts/test` draws new ones (a failure
# found that way becomes an @example).
settings.register_profile("ci", derandomize=True, print_blob=True)
settings.register_profile("explore", print_blob=True)
settings.load_profile(os.environ.get("EMS_HYPOTHESIS_PROFILE", "ci"))


# Home Assistant's frame helper reports an integration that uses a deprecated or removed API
# ("Detected that custom integration 'ems' calls ...", or a blocking call in the event loop).
# Each is breakage in a later release, so any of them fails the test that caused it.
_FRAME_REPORT = re.compile(r"^Detected (that )?.*integration 'ems'")


class _FrameReports(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.reports: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if _FRAME_REPORT.match(message):
            self.reports.append(message)


def same_float32(ours: float, device: float) -> bool:
    """Whether ems's value is the float32 the device holds: ems shows a float32 in its
    shortest decimal (231.4), the simulator reports its binary expansion (231.39999389648438)."""
    return struct.pack(">f", ours) == struct.pack(">f", device)


@contextmanager
def root_log_handler[H: logging.Handler](handler: H) -> Iterator[H]:
    """Let `handler` see every log record while the block runs."""
    logging.getLogger().addHandler(handler)
    try:
        yield handler
    finally:
        logging.getLogger().removeHandler(handler)


@pytest.fixture(autouse=True)
def no_frame_reports() -> Iterator[None]:
    """Fail a test in which ems used an API that Home Assistant reports as deprecated."""
    with root_log_handler(_FrameReports()) as catcher:
        yield
    assert not catcher.reports, catcher.reports


@pytest.fixture
async def simulator(socket_enabled: None) -> AsyncIterator[SiteSimulator]:
    """The simulated site on an ephemeral loopback port; time moves only when a test says."""
    site = SiteSimulator()
    await site.start(host="127.0.0.1", port=0)
    yield site
    await site.stop()
