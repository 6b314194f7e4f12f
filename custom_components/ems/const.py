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
CONF_SERIAL_PORT: Final = "serial_port"
CONF_BAUDRATE: Final = "baudrate"
CONF_PARITY: Final = "parity"
CONF_STOPBITS: Final = "stopbits"
CONF_RATED_POWER: Final = "rated_power_kw"
CONF_ON_THRESHOLD: Final = "on_threshold_w"
CONF_INVERT_POWER: Final = "invert_power"
CONF_ALLOW_CONTROL: Final = "allow_control"

SUBENTRY_DEVICE: Final = "device"
SUNSPEC_PROFILE: Final = "sunspec"
USER_PROFILE_DIR: Final = "ems_profiles"

DEFAULT_PORT: Final = 502
DEFAULT_UNIT_ID: Final = 1
DEFAULT_SCAN_INTERVAL: Final = timedelta(seconds=10)
# Identity and ratings change only when a device is replaced.
SLOW_POLL_EVERY: Final = 60

# Tariff and CO2 options (the same strings as in tariffs.py, which is pure and cannot import
# this module; tests/unit/test_tariffs.py keeps them equal).
CONF_PRICE_MODE: Final = "price_mode"
CONF_IMPORT_PRICE: Final = "import_price"
CONF_TOU_SCHEDULE: Final = "tou_schedule"
CONF_PRICE_ENTITY: Final = "price_entity"
CONF_EXPORT_MODE: Final = "export_mode"
CONF_EXPORT_PRICE: Final = "export_price"
CONF_EXPORT_PRICE_ENTITY: Final = "export_price_entity"
CONF_FEE_AMOUNT: Final = "fee_amount"
CONF_FEE_PERIOD: Final = "fee_period"
CONF_DEMAND_CHARGE: Final = "demand_charge"
CONF_CO2_MODE: Final = "co2_mode"
CONF_CO2_FACTOR: Final = "co2_factor"
CONF_CO2_ENTITY: Final = "co2_entity"
CONF_CO2_EXPORT_AVOIDED: Final = "co2_export_avoided"
