"""The device steps shared by the hub flow (its first device) and the device subentry flow:
identify what answers at a unit id, confirm its profile, and name and place each logical device
a SunSpec chain holds."""

from __future__ import annotations

from collections.abc import Iterable
import logging
from typing import Any

from homeassistant.config_entries import ConfigEntry, ConfigSubentry
from homeassistant.const import CONF_NAME
from homeassistant.helpers import selector
import voluptuous as vol

from ..const import CONF_PARTS, CONF_PROFILE, CONF_ROLE, SUBENTRY_DEVICE, SUNSPEC_PROFILE
from ..engine.modbus.transport import HubSettings, ModbusTransportError
from ..engine.model import DeviceRole, DeviceType
from ..engine.profiles.sunspec_chain import ChainPart
from .devices import (
    Catalogue,
    Identified,
    async_identify,
    default_part_name,
    default_role,
    describe_error,
    device_data,
    part_key,
)
from .flow_forms import choice

_LOGGER = logging.getLogger(__name__)


class DeviceSteps:
    """The device step shared by the hub flow (its first device) and the subentry flow."""

    catalogue: Catalogue
    identified: Identified
    unit_id: int
    # The unit's own device, then the chain's other logical devices as the user names them.
    device_input: dict[str, Any]
    part_settings: dict[str, Any]
    pending_parts: list[ChainPart]

    def _device_schema(self, taken_roles: set[DeviceRole]) -> vol.Schema:
        found = self.identified.profile
        profiles = {
            profile_id: f"{profile.manufacturer} {profile.model}"
            for profile_id, profile in self.catalogue.profiles.items()
        }
        if self.identified.sunspec_models and found is not None:
            profiles = {SUNSPEC_PROFILE: found.model, **profiles}
        default_profile = (
            SUNSPEC_PROFILE if self.identified.sunspec_models else (found.id if found else None)
        )
        device_type = found.device_type if found else DeviceType.METER
        role = default_role(device_type, taken_roles)
        default_name = f"{found.model if found else 'Device'} (unit {self.unit_id})"
        profile_field = (
            vol.Required(CONF_PROFILE, default=default_profile)
            if default_profile
            else vol.Required(CONF_PROFILE)
        )
        return vol.Schema(
            {
                profile_field: selector.SelectSelector(
                    selector.SelectSelectorConfig(
                        options=[
                            selector.SelectOptionDict(value=key, label=label)
                            for key, label in profiles.items()
                        ],
                        mode=selector.SelectSelectorMode.DROPDOWN,
                    )
                ),
                vol.Required(CONF_NAME, default=default_name): selector.TextSelector(),
                vol.Required(CONF_ROLE, default=role.value): choice(
                    [member.value for member in DeviceRole], CONF_ROLE
                ),
            }
        )

    @staticmethod
    def _device_errors(user_input: dict[str, Any], taken_roles: set[DeviceRole]) -> dict[str, str]:
        # The profile selector only offers what the catalogue and the device offer.
        if not str(user_input[CONF_NAME]).strip():
            return {CONF_NAME: "name_required"}
        if user_input[CONF_ROLE] == DeviceRole.GRID and DeviceRole.GRID in taken_roles:
            return {CONF_ROLE: "grid_taken"}
        return {}

    def _device_subentry_data(self, user_input: dict[str, Any]) -> dict[str, Any]:
        return device_data(
            self.unit_id,
            DeviceRole(user_input[CONF_ROLE]),
            user_input[CONF_PROFILE],
            self.identified.sunspec_models,
            self.part_settings,
        )

    def _start_parts(self, user_input: dict[str, Any]) -> None:
        """Remember the unit's own device; queue the chain's other logical devices."""
        self.device_input = user_input
        self.part_settings = {}
        split = self.identified.parts if user_input[CONF_PROFILE] == SUNSPEC_PROFILE else []
        primary = self.identified.primary
        self.pending_parts = [part for index, part in enumerate(split) if index != primary]

    def _part_roles(self) -> set[DeviceRole]:
        """The roles this flow has given so far."""
        chosen = [self.device_input, *self.part_settings.values()]
        return {DeviceRole(settings[CONF_ROLE]) for settings in chosen}

    def _part_schema(self, part: ChainPart, taken: set[DeviceRole]) -> vol.Schema:
        role = default_role(part.device_type, taken)
        return vol.Schema(
            {
                vol.Required(
                    CONF_NAME, default=default_part_name(part, self.unit_id)
                ): selector.TextSelector(),
                vol.Required(CONF_ROLE, default=role.value): choice(
                    [member.value for member in DeviceRole], CONF_ROLE
                ),
            }
        )

    def _part_placeholders(self, part: ChainPart) -> dict[str, str]:
        return {
            "unit_id": str(self.unit_id),
            "kind": str(part.device_type),
            "models": part.label,
            "proposal": self.identified.proposal(),
        }

    def _take_part(self, user_input: dict[str, Any], taken: set[DeviceRole]) -> dict[str, str]:
        """Check one logical device's name and role; keep them when they are good."""
        errors = self._device_errors(user_input, taken | self._part_roles())
        if not errors:
            part = self.pending_parts.pop(0)
            self.part_settings[part_key(part)] = {
                CONF_NAME: str(user_input[CONF_NAME]).strip(),
                CONF_ROLE: user_input[CONF_ROLE],
            }
        return errors

    def _found(self) -> str:
        """What the device step says ems found."""
        if self.identified.parts:
            return self.identified.proposal()
        found = self.identified.profile
        return f"{found.manufacturer} {found.model}" if found else "-"


async def identify(
    settings: HubSettings, unit_id: int, catalogue: Catalogue
) -> tuple[Identified | None, str | None]:
    try:
        return await async_identify(settings, unit_id, catalogue), None
    except ModbusTransportError as err:
        return None, describe_error(err)
    except Exception:  # a flow must never end in a traceback: the user gets a form back
        _LOGGER.exception("Unexpected error while identifying unit %s", unit_id)
        return None, "unknown"


def hub_roles(entry: ConfigEntry) -> set[DeviceRole]:
    """The roles the hub's devices hold, a SunSpec chain's logical devices included."""
    return subentry_roles(entry.subentries.values())


def subentry_roles(subentries: Iterable[ConfigSubentry]) -> set[DeviceRole]:
    """The roles these subentries' devices hold."""
    return {
        DeviceRole(settings[CONF_ROLE])
        for subentry in subentries
        if subentry.subentry_type == SUBENTRY_DEVICE
        for settings in (subentry.data, *subentry.data.get(CONF_PARTS, {}).values())
    }
