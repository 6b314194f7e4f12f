"""From config entries to devices: the profile catalogue, identification, subentry data."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
import time
from typing import Any

from homeassistant.components.sensor import SensorDeviceClass
from homeassistant.config_entries import ConfigSubentry
from homeassistant.const import CONF_HOST, CONF_NAME, CONF_PORT
from homeassistant.core import HomeAssistant

from ..const import (
    CONF_BAUDRATE,
    CONF_INVERT_POWER,
    CONF_ON_THRESHOLD,
    CONF_PARITY,
    CONF_PARTS,
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
from ..engine.model import DEFAULT_ROLE, Device, DeviceProfile, DeviceRole, DeviceType
from ..engine.normalization import conversion_for
from ..engine.profiles.loader import ProfileError, builtin_profiles, load_profiles
from ..engine.profiles.sunspec import ModelInstance, preload_definitions
from ..engine.profiles.sunspec_chain import ChainPart, part_profiles, primary_index, split_chain
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
    """What answered at a unit id: a SunSpec chain (with the logical devices it holds), a known
    meter, or nothing we know. `profile` is the primary device's."""

    profile: DeviceProfile | None
    sunspec_models: list[ModelInstance]
    parts: list[ChainPart] = field(default_factory=list)

    @property
    def primary(self) -> int:
        """The index of the part that is the unit's own device."""
        return primary_index(self.parts)

    def proposal(self) -> str:
        """The split, as the flow shows it: "inverter (1+103) + meter (1+203)"."""
        return " + ".join(f"{part.device_type} ({part.label})" for part in self.parts)


async def async_identify(settings: HubSettings, unit_id: int, catalogue: Catalogue) -> Identified:
    """Ask the device what it is; raises `ModbusTransportError` when nobody answers."""
    hub = ModbusHub(settings=settings, clock=time.monotonic)
    try:
        chain = await discover_sunspec(hub, unit_id)
        if chain:
            parts = split_chain(chain)
            primary = part_profiles(parts)[primary_index(parts)]
            return Identified(profile=primary, sunspec_models=chain, parts=parts)
        detected = await detect_profile(hub, unit_id, catalogue.profiles.values())
        return Identified(profile=detected, sunspec_models=[])
    finally:
        await hub.close()


def part_key(part: ChainPart) -> str:
    """How a subentry keeps one logical device's settings: its lead model's address."""
    return str(part.lead.address)


def default_part_name(part: ChainPart, unit_id: int) -> str:
    """A logical device's name until the user gives one."""
    return f"SunSpec {part.label} (unit {unit_id})"


def default_role(device_type: DeviceType, taken: set[DeviceRole]) -> DeviceRole:
    """Where a new device goes on the site: by its kind; a second grid meter is a submeter."""
    role = DEFAULT_ROLE[device_type]
    return DeviceRole.SUBMETER if role is DeviceRole.GRID and role in taken else role


def default_parts(parts: list[ChainPart], unit_id: int, taken: set[DeviceRole]) -> dict[str, Any]:
    """Settings for every logical device but the primary one, as discovery proposes them."""
    taken = set(taken)
    settings: dict[str, Any] = {}
    primary = primary_index(parts)
    for index, part in enumerate(parts):
        if index == primary:
            continue
        role = default_role(part.device_type, taken)
        taken.add(role)
        settings[part_key(part)] = {CONF_NAME: default_part_name(part, unit_id), CONF_ROLE: role}
    return settings


def device_data(
    unit_id: int,
    role: DeviceRole,
    profile_id: str,
    sunspec_models: list[ModelInstance],
    parts: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """What a device subentry stores."""
    data: dict[str, Any] = {CONF_UNIT_ID: unit_id, CONF_ROLE: role, CONF_PROFILE: profile_id}
    if profile_id == SUNSPEC_PROFILE:
        data[CONF_SUNSPEC_MODELS] = [
            [model.model_id, model.address, model.length] for model in sunspec_models
        ]
        data[CONF_PARTS] = dict(parts or {})
    return data


def stored_chain(data: Mapping[str, Any]) -> list[ModelInstance]:
    """The SunSpec chain a subentry stores."""
    return [
        ModelInstance(model_id=model_id, address=address, length=length)
        for model_id, address, length in data[CONF_SUNSPEC_MODELS]
    ]


def devices_from_subentry(subentry: ConfigSubentry, catalogue: Catalogue) -> list[Device] | None:
    """The devices a subentry describes (several for a SunSpec chain that holds several);
    `None` when its profile is gone."""
    data = subentry.data
    unit_id = int(data[CONF_UNIT_ID])
    if data[CONF_PROFILE] != SUNSPEC_PROFILE:
        profile = catalogue.profiles.get(data[CONF_PROFILE])
        if profile is None:
            return None
        return [
            _device(
                device_id_of(unit_id),
                subentry.title,
                unit_id=unit_id,
                profile=profile,
                settings=data,
            )
        ]
    parts = split_chain(stored_chain(data))
    primary = primary_index(parts)
    own = device_id_of(unit_id)
    devices = []
    for index, (part, profile) in enumerate(zip(parts, part_profiles(parts), strict=True)):
        if index == primary:
            devices.append(
                _device(own, subentry.title, unit_id=unit_id, profile=profile, settings=data)
            )
            continue
        settings = data.get(CONF_PARTS, {}).get(part_key(part))
        if settings is None:  # stored before this part was known: as discovery proposes it
            settings = {CONF_ROLE: DEFAULT_ROLE[part.device_type]}
        name = settings.get(CONF_NAME) or default_part_name(part, unit_id)
        device_id = device_id_of(unit_id, part)
        devices.append(
            _device(
                device_id, name, unit_id=unit_id, profile=profile, settings=settings, part_of=own
            )
        )
    return devices


def _device(
    device_id: str,
    name: str,
    *,
    unit_id: int,
    profile: DeviceProfile,
    settings: Mapping[str, Any],
    part_of: str | None = None,
) -> Device:
    return Device(
        id=device_id,
        name=name,
        unit_id=unit_id,
        profile=profile,
        role=DeviceRole(settings[CONF_ROLE]),
        rated_power_kw=settings.get(CONF_RATED_POWER) or default_rated_power_kw(profile),
        on_threshold_w=float(settings.get(CONF_ON_THRESHOLD, DEFAULT_ON_THRESHOLD_W)),
        invert_power=bool(settings.get(CONF_INVERT_POWER, False)),
        part_of=part_of,
    )


def device_id_of(unit_id: int, part: ChainPart | None = None) -> str:
    """A device's id within its hub: the unit's own device, or one more logical device of the
    unit's SunSpec chain (by its lead model and that model's address)."""
    if part is None:
        return f"unit{unit_id}"
    return f"unit{unit_id}_{part.lead.model_id}_{part.lead.address}"


def device_identifier(entry_id: str, device_id: str) -> tuple[str, str]:
    """How the device registry knows a device of a hub."""
    return (DOMAIN, f"{entry_id}_{device_id}")


def device_unique_id(entry_id: str, device_id: str, key: str) -> str:
    """The unique id of a device's entity: the hub, the device and what the entity shows."""
    return f"{entry_id}_{device_id}_{key}"


def subentry_device_ids(subentry: ConfigSubentry) -> list[str]:
    """The ids of every device a subentry holds, also when its profile is missing."""
    unit_id = int(subentry.data[CONF_UNIT_ID])
    ids = [device_id_of(unit_id)]
    if subentry.data[CONF_PROFILE] == SUNSPEC_PROFILE:
        parts = split_chain(stored_chain(subentry.data))
        primary = primary_index(parts)
        ids += [device_id_of(unit_id, p) for i, p in enumerate(parts) if i != primary]
    return ids


def hub_identifiers(entry_id: str, subentries: Iterable[ConfigSubentry]) -> set[tuple[str, str]]:
    """Every device a hub has now: itself, its site and those of every device subentry (also
    one whose profile is missing: the user may bring the file back)."""
    return {
        (DOMAIN, entry_id),
        device_identifier(entry_id, "site"),
        *(
            device_identifier(entry_id, device_id)
            for subentry in subentries
            if subentry.subentry_type == SUBENTRY_DEVICE
            for device_id in subentry_device_ids(subentry)
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
