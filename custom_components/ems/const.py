"""Constants shared by the Home Assistant side of the integration."""

from __future__ import annotations

from datetime import timedelta
from typing import Final

DOMAIN: Final = "ems"

CONF_UNIT_ID: Final = "unit_id"
CONF_PROFILE: Final = "profile"
CONF_TIMEOUT: Final = "timeout"
CONF_MAX_READ: Final = "max_read"
CONF_MAX_GAP: Final = "max_gap"
CONF_ROLE: Final = "role"
CONF_TRANSPORT: Final = "transport"
CONF_SUNSPEC_MODELS: Final = "sunspec_models"
# The other logical devices of a SunSpec chain, by their lead model's address: name, role, tuning.
CONF_PARTS: Final = "parts"
CONF_SERIAL_PORT: Final = "serial_port"
CONF_BAUDRATE: Final = "baudrate"
CONF_PARITY: Final = "parity"
CONF_STOPBITS: Final = "stopbits"
CONF_RATED_POWER: Final = "rated_power_kw"
CONF_ON_THRESHOLD: Final = "on_threshold_w"
CONF_INVERT_POWER: Final = "invert_power"
CONF_ALLOW_CONTROL: Final = "allow_control"
# The hub's part of its statistic ids (`ems:<hub>_<series>`), fixed when the hub is added.
CONF_STATISTICS_HUB: Final = "statistics_hub"

SUBENTRY_DEVICE: Final = "device"
SUNSPEC_PROFILE: Final = "sunspec"
USER_PROFILE_DIR: Final = "ems_profiles"

DEFAULT_PORT: Final = 502
DEFAULT_UNIT_ID: Final = 1
DEFAULT_SCAN_INTERVAL: Final = timedelta(seconds=10)
