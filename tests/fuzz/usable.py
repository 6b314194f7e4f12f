"""What "a profile the loader accepted is usable" means, shared by the fuzz targets.

A user's profile passes the loader once and is then used every cycle: a value the loader lets
through but the pipeline or the sensor platform cannot handle would fail every poll instead of
giving one error that names the file.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
import math

from homeassistant.components.sensor import SensorEntityDescription
from homeassistant.components.sensor.const import NON_NUMERIC_DEVICE_CLASSES

from custom_components.ems.engine.modbus.plan import RegisterImage
from custom_components.ems.engine.model import (
    DEFAULT_ROLE,
    Device,
    DeviceProfile,
    Reading,
    RegisterFunction,
)
from custom_components.ems.engine.normalization import canonical_unit
from custom_components.ems.engine.pipeline import SitePipeline
from custom_components.ems.glue.device_sensors import device_descriptions
from custom_components.ems.glue.devices import default_rated_power_kw

START = datetime(2025, 3, 30, 0, 30, tzinfo=UTC)
CYCLE = timedelta(seconds=10)


def device_for(profile: DeviceProfile, unit_id: int = 1) -> Device:
    """The device a subentry with this profile becomes (devices.devices_from_subentry)."""
    return Device(
        id=f"unit{unit_id}",
        name=profile.model,
        unit_id=unit_id,
        profile=profile,
        role=DEFAULT_ROLE[profile.device_type],
        rated_power_kw=default_rated_power_kw(profile),
    )


def addresses(profile: DeviceProfile) -> list[tuple[RegisterFunction, int]]:
    """Every (function, address) the profile's channels read, scale factors included."""
    needed: set[tuple[RegisterFunction, int]] = set()
    for spec in profile.channels:
        register = spec.register
        needed.update((register.function, register.address + i) for i in range(register.count))
        if register.scale_register is not None:
            needed.add((register.function, register.scale_register))
    return sorted(needed)


def image_of(device: Device, words: dict[tuple[RegisterFunction, int], int]) -> RegisterImage:
    """A register image as `read_plan` builds it, from (function, address) → word."""
    image: RegisterImage = {}
    for (function, address), word in words.items():
        table = image.setdefault((device.unit_id, function), {})
        table[address] = word
    return image


def check_reading(reading: Reading) -> None:
    """A reading an entity shows (`usable`) is a finite number or text; others show nothing."""
    if reading.usable and not isinstance(reading.value, str):
        assert isinstance(reading.value, float | int), reading
        assert math.isfinite(reading.value), reading


def _expects_number(description: SensorEntityDescription) -> bool:
    """HA's rule (SensorEntity._numeric_state_expected): text there fails every state write."""
    if description.device_class in NON_NUMERIC_DEVICE_CLASSES:
        return False
    return (
        description.state_class is not None
        or description.native_unit_of_measurement is not None
        or description.suggested_display_precision is not None
        or description.device_class is not None
    )


def run_cycles(device: Device, images: list[RegisterImage]) -> None:
    """The profile goes through the sensor platform's descriptions and a few pipeline cycles."""
    for spec in device.profile.channels:
        canonical_unit(spec.unit)
    descriptions = {d.key: d for d in device_descriptions(device)}
    pipeline = SitePipeline(devices={device.id: device})
    for cycle, image in enumerate(images):
        states, site = pipeline.process(image, START + cycle * CYCLE)
        for key, reading in states[device.id].readings.items():
            check_reading(reading)
            if reading.usable and isinstance(reading.value, str):
                assert not _expects_number(descriptions[key]), (key, reading.value)
        for value in (*site.power_w.values(), *site.energy_kwh.values()):
            assert value is None or math.isfinite(value)
