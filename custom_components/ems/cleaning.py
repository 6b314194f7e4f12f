"""Cleaning: every decoded value gets a quality before anything else may use it.

A rejected value is never turned into 0 and never reaches an entity; it carries its reason so
that diagnostics can count rejections per rule.
"""

from __future__ import annotations

from datetime import datetime
import math

from .model import ChannelSpec, Quality, Reading

REASON_NOT_IMPLEMENTED = "not_implemented"
REASON_OUT_OF_RANGE = "out_of_range"


def assess(
    device_id: str,
    spec: ChannelSpec,
    value: float | str | None,
    *,
    was_read: bool,
    timestamp: datetime,
) -> Reading:
    """Give one decoded value its quality."""
    if not was_read:
        return _reading(device_id, spec, timestamp, None, Quality.MISSING)
    if value is None:
        return _reading(device_id, spec, timestamp, None, Quality.REJECTED, REASON_NOT_IMPLEMENTED)
    if isinstance(value, str):
        return _reading(device_id, spec, timestamp, value, Quality.OK)
    if math.isnan(value) or not _in_range(spec, value):
        return _reading(device_id, spec, timestamp, value, Quality.REJECTED, REASON_OUT_OF_RANGE)
    return _reading(device_id, spec, timestamp, value, Quality.OK)


def _in_range(spec: ChannelSpec, value: float) -> bool:
    if spec.minimum is not None and value < spec.minimum:
        return False
    return spec.maximum is None or value <= spec.maximum


def _reading(  # noqa: PLR0917 - a private constructor shortcut used in one function
    device_id: str,
    spec: ChannelSpec,
    timestamp: datetime,
    value: float | str | None,
    quality: Quality,
    reason: str | None = None,
) -> Reading:
    return Reading(
        device_id=device_id,
        channel=spec.key,
        timestamp=timestamp,
        value=value,
        quality=quality,
        reason=reason,
        unit=spec.unit,
    )
