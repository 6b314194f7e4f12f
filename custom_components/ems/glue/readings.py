"""A cycle's readings in the seed's format: deviceId, component, parameter, value, unit, timestamp.

The websocket stream (`ems/subscribe_readings`) and the diagnostics dump describe a cycle the
same way (DESIGN.md §2). `deviceId` is the Home Assistant device id, so a client can match it
with the device registry and with the `device_id` that ems actions and the stream's filter take;
the ems key of a device (`unit1`) repeats on every hub and would not tell two hubs apart.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
import math
from typing import Any, Final

from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers.device_registry import DeviceInfo

from ..compat import device_by_identifier
from ..coordinator import EmsCoordinator
from ..engine.cycle import SiteSnapshot
from ..engine.model import ChannelKind, Device, Quality, SiteState
from ..entity import device_info, hub_device_info, site_device_info

# The site's records are keyed by this in an id mapping; device keys are `unit<N>`, never this.
SITE_KEY: Final = "site"
SITE_COMPONENT: Final = "site"
_USABLE = frozenset({str(Quality.OK), str(Quality.ESTIMATED)})


@dataclass(frozen=True, kw_only=True, slots=True)
class SeedReading:
    """One value as the seed's API describes it, with the quality ems gave it."""

    device_id: str
    component: str
    parameter: str
    value: float | str | None
    unit: str | None
    timestamp: datetime
    quality: str
    # Names the device (model, serial, firmware) rather than measuring anything.
    identity: bool = False

    @property
    def live(self) -> bool:
        """A trusted measured number: what a live stream carries (no gaps, rejections, serials)."""
        value = self.value
        return (
            not self.identity
            and self.quality in _USABLE
            and isinstance(value, int | float)
            and not isinstance(value, bool)
            and math.isfinite(value)
        )

    def as_seed(self) -> dict[str, Any]:
        """The six fields of the seed's format; the timestamp in ISO 8601, UTC."""
        return {
            "deviceId": self.device_id,
            "component": self.component,
            "parameter": self.parameter,
            "value": self.value,
            "unit": self.unit,
            "timestamp": self.timestamp.astimezone(UTC).isoformat(),
        }


def snapshot_readings(
    snapshot: SiteSnapshot,
    devices: Iterable[Device],
    ids: Mapping[str, str],
    *,
    site: bool = True,
) -> list[SeedReading]:
    """Every channel of `devices` and, with `site`, the site's sums, flows and energies.

    `ids` maps an ems device key (and `SITE_KEY`) to the id published as `deviceId`; a key
    missing from it is published as is.
    """
    records: list[SeedReading] = []
    for device in devices:
        if (state := snapshot.devices.get(device.id)) is None:
            continue
        identity = {s.key for s in device.profile.channels if s.kind is ChannelKind.IDENTITY}
        records.extend(
            SeedReading(
                device_id=ids.get(device.id, device.id),
                component=str(device.profile.device_type),
                parameter=reading.channel,
                value=reading.value,
                unit=reading.unit,
                timestamp=reading.timestamp,
                quality=reading.quality_label,
                identity=reading.channel in identity,
            )
            for reading in state.readings.values()
        )
    if site and snapshot.site is not None:
        records.extend(_site_readings(snapshot.site, snapshot.timestamp, ids))
    return records


def _site_readings(
    site: SiteState, timestamp: datetime, ids: Mapping[str, str]
) -> list[SeedReading]:
    """The site's values, named as the Site device's sensors are keyed (`grid_power`, ...)."""
    values: list[tuple[str, float | None, str, bool]] = [
        (f"{series}_power", watts, "W", False) for series, watts in site.power_w.items()
    ]
    values += [(f"{flow}_power", watts, "W", False) for flow, watts in (site.flows_w or {}).items()]
    values += [
        ("self_sufficiency", site.self_sufficiency_pct, "%", False),
        ("self_consumption", site.self_consumption_pct, "%", False),
    ]
    values += [
        (f"{series}_energy", kwh, "kWh", series in site.estimated)
        for series, kwh in site.energy_kwh.items()
    ]
    device_id = ids.get(SITE_KEY, SITE_KEY)
    return [
        SeedReading(
            device_id=device_id,
            component=SITE_COMPONENT,
            parameter=parameter,
            value=value,
            unit=unit,
            timestamp=timestamp,
            quality=_site_quality(value, estimated=estimated),
        )
        for parameter, value, unit, estimated in values
    ]


def _site_quality(value: float | None, *, estimated: bool) -> str:
    if value is None:
        return str(Quality.MISSING)
    return str(Quality.ESTIMATED if estimated else Quality.OK)


@callback
def registry_ids(hass: HomeAssistant, coordinator: EmsCoordinator) -> dict[str, str]:
    """The Home Assistant device id of each device of the hub and of its site."""
    infos = {key: device_info(coordinator, device) for key, device in coordinator.devices.items()}
    infos[SITE_KEY] = site_device_info(coordinator)
    entry_id = coordinator.config_entry.entry_id
    return {
        key: entry.id
        for key, info in infos.items()
        if (entry := _registered(hass, info, entry_id)) is not None
    }


@callback
def hub_registry_id(hass: HomeAssistant, coordinator: EmsCoordinator) -> str | None:
    """The Home Assistant device id of the hub itself."""
    entry = _registered(hass, hub_device_info(coordinator), coordinator.config_entry.entry_id)
    return None if entry is None else entry.id


def _registered(hass: HomeAssistant, info: DeviceInfo, entry_id: str) -> dr.DeviceEntry | None:
    (identifier,) = info["identifiers"]
    return device_by_identifier(hass, identifier, entry_id)
