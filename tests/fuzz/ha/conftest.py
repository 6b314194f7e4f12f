"""The integration tests' fixtures (a real recorder, the simulated site) for the fuzz targets."""

from tests.integration.conftest import *  # noqa: F403
