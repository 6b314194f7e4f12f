"""From config entries to devices: the profile catalogue, identification, subentry data."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
import time
from typing import Any

from homeassistant.components.sensor import SensorDeviceClass
from homeassistant.config_entries import ConfigSubentry
from homeassistant.const import CONF_HOST, CONF_PORT
from homeassistant.core import HomeAssistant

from ..const import (
    CONF_BAUDRATE,
    CONF_INVERT_POWER,
    CONF_ON_THRESHOLD,
    CONF_PARITY,
    CONF_PROFILE,
    CONF_RATED_POWER,
    CONF_ROLE,
    CONF_SERIAL_PORT,
    CONF_STOPBITS,
    CONF_SUNSPEC_MODELS,
    CONF_TIMEOUT,
    CONF_TRANSPORT,
    CONF_UNIT_ID,
    DOMAIN,
    SUBENTRY_DEVICE,
    SUNSPEC_PROFILE,
    USER_PROFILE_DIR,
)
from ..engine.modbus.discovery import detect_profile, discover_sunspec
from ..engine.modbus.transport import (
    DEFAULT_TIMEOUT,
    HubSettings,
    ModbusErrorKind,
    ModbusHub,
    ModbusTransportError,
    Transport,
)
from ..engine.model import Device, DeviceProfile, DeviceRole
from ..engine.normalization import conversion_for
from ..engine.profiles.loader import ProfileError, builtin_profiles, load_profiles
from ..engine.profiles.sunspec import ModelInstance, build_profile, preload_definitions
from ..engine.site.loads import DEFAULT_ON_THRESHOLD_W
from ..engine.site.powers import POWER_CHANNEL

_SENSOR_DEVICE_CLASSES = frozenset(member.value for member in SensorDeviceClass)
# The identity channel that tells one device from another of the same model.
ERROR_BY_KIND = {
    ModbusErrorKind.CONNECTION: "cannot_connect",
    ModbusErrorKind.TIMEOUT: "no_response",
    ModbusErrorKind.EXCEPTION_RESPONSE: "unsupported_device",
}


@dataclass(frozen=True, kw_only=True, slots=True)
class Catalogue:
    """Every profile a user can pick: shipped ones and their own, with the broken files."""

    profiles: dict[str, DeviceProfile]
    errors: list[ProfileError]


def _load_catalogue(user_dir: Path) -> Catalogue:
    preload_definitions()  # SunSpec profiles are built later, on the event loop
    profiles = dict(builtin_profiles())
    user_profiles, errors = load_profiles(user_dir)
    for profile_id, profile in user_profiles.items():
        if profile_id in profiles:
            errors.append(
                ProfileError(profile.source, None, "id", f"'{profile_id}' is a shipped profile")
            )
            continue
        if (problem := unknown_device_class(profile)) is not None:
            errors.append(problem)
            continue
        profiles[profile_id] = profile
    return Catalogue(profiles=profiles, errors=errors)


def unknown_device_class(profile: DeviceProfile) -> ProfileError | None:
    """A channel whose device class sensors do not know; the pure loader cannot ask HA."""
    for spec in profile.channels:
        if spec.device_class is not None and spec.device_class not in _SENSOR_DEVICE_CLASSES:
            message = f"'{spec.device_class}' is not a sensor device class"
            return ProfileError(profile.source, spec.key, "device_class", message)
    return None


async def async_load_catalogue(hass: HomeAssistant) -> Catalogue:
    """Read the profiles off the event loop (YAML files)."""
    return await hass.async_add_executor_job(
        _load_catalogue, Path(hass.config.path(USER_PROFILE_DIR))
    )


def hub_settings(data: Mapping[str, Any], options: Mapping[str, Any]) -> HubSettings:
    """Connection settings of a hub entry."""
    transport = Transport(data.get(CONF_TRANSPORT, Transport.TCP))
    timeout = options.get(CONF_TIMEOUT, DEFAULT_TIMEOUT)
    if transport is Transport.SERIAL:
        return HubSettings(
            transport=transport,
            serial_port=data[CONF_SERIAL_PORT],
            baudrate=data[CONF_BAUDRATE],
            parity=data[CONF_PARITY],
            stopbits=data[CONF_STOPBITS],
            timeout=timeout,
        )
    return HubSettings(
        transport=transport, host=data[CONF_HOST], port=data[CONF_PORT], timeout=timeout
    )


def hub_id(data: Mapping[str, Any]) -> str:
    """What identifies a hub: its address, or its serial port."""
    if data.get(CONF_TRANSPORT) == Transport.SERIAL:
        return str(data[CONF_SERIAL_PORT])
    return f"{data[CONF_HOST]}:{data[CONF_PORT]}"


@dataclass(frozen=True, kw_only=True, slots=True)
class Identified:
    """What answered at a unit id: a SunSpec chain, a known meter, or nothing we know."""

    profile: DeviceProfile | None
    sunspec_models: list[ModelInstance]


async def async_identify(settings: HubSettings, unit_id: int, catalogue: Catalogue) -> Identified:
    """Ask the device what it is; raises `ModbusTransportError` when nobody answers."""
    hub = ModbusHub(settings=settings, clock=time.monotonic)
    try:
        chain = await discover_sunspec(hub, unit_id)
        if chain:
            return Identified(profile=build_profile(chain), sunspec_models=chain)
        profile = await detect_profile(hub, unit_id, catalogue.profiles.values())
        return Identified(profile=profile, sunspec_models=[])
    finally:
        await hub.close()


def device_data(
    unit_id: int, role: DeviceRole, profile_id: str, sunspec_models: list[ModelInstance]
) -> dict[str, Any]:
    """What a device subentry stores."""
    data: dict[str, Any] = {CONF_UNIT_ID: unit_id, CONF_ROLE: role, CONF_PROFILE: profile_id}
    if profile_id == SUNSPEC_PROFILE:
        data[CONF_SUNSPEC_MODELS] = [
            [model.model_id, model.address, model.length] for model in sunspec_models
        ]
    return data


def device_from_subentry(subentry: ConfigSubentry, catalogue: Catalogue) -> Device | None:
    """The device a subentry describes; `None` when its profile is gone."""
    data = subentry.data
    profile_id = data[CONF_PROFILE]
    if profile_id == SUNSPEC_PROFILE:
        chain = [
            ModelInstance(model_id=model_id, address=address, length=length)
            for model_id, address, length in data[CONF_SUNSPEC_MODELS]
        ]
        profile: DeviceProfile | None = build_profile(chain)
    else:
        profile = catalogue.profiles.get(profile_id)
    if profile is None:
        return None
    unit_id = int(data[CONF_UNIT_ID])
    return Device(
        id=device_id_of(unit_id),
        name=subentry.title,
        unit_id=unit_id,
        profile=profile,
        role=DeviceRole(data[CONF_ROLE]),
        rated_power_kw=data.get(CONF_RATED_POWER) or default_rated_power_kw(profile),
        on_threshold_w=float(data.get(CONF_ON_THRESHOLD, DEFAULT_ON_THRESHOLD_W)),
        invert_power=bool(data.get(CONF_INVERT_POWER, False)),
    )


def device_id_of(unit_id: int) -> str:
    """A device's id within its hub: one device per unit id."""
    return f"unit{unit_id}"


def device_identifier(entry_id: str, device_id: str) -> tuple[str, str]:
    """How the device registry knows a device of a hub."""
    return (DOMAIN, f"{entry_id}_{device_id}")


def hub_identifiers(entry_id: str, subentries: Iterable[ConfigSubentry]) -> set[tuple[str, str]]:
    """Every device a hub has now: itself, its site and one per device subentry (also one whose
    profile is missing: the user may bring the file back)."""
    return {
        (DOMAIN, entry_id),
        device_identifier(entry_id, "site"),
        *(
            device_identifier(entry_id, device_id_of(int(subentry.data[CONF_UNIT_ID])))
            for subentry in subentries
            if subentry.subentry_type == SUBENTRY_DEVICE
        ),
    }


def default_rated_power_kw(profile: DeviceProfile) -> float | None:
    """The largest power the profile calls plausible on the device's power channel."""
    key = POWER_CHANNEL.get(profile.device_type, "ActivePower")
    try:
        spec = profile.channel(key)
    except KeyError:
        return None
    bounds = [abs(bound) for bound in (spec.minimum, spec.maximum) if bound is not None]
    rated = max(bounds, default=0.0) * conversion_for(spec.unit).factor / 1000
    # A range such as `min: 0` alone says nothing about how large the power can get.
    return rated if rated > 0 else None


def describe_error(err: ModbusTransportError) -> str:
    """The translation key for a failed connection test."""
    return ERROR_BY_KIND[err.kind]
