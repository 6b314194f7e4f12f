"""Where a hub keeps what must survive a restart: counter baselines, energy totals, the
ledger, battery limits and settings, and the devices' serials (`SiteCycle.state_dict`).

The format carries Home Assistant's store versions, and every change of it comes with a
migration here, so each part's restore only has to survive damage, never an old layout. A
store written by a newer ems is left as it is, and the hub does not start until ems is
upgraded again or a backup restored.
"""

from __future__ import annotations

from typing import Any, Final

from homeassistant.core import HomeAssistant
from homeassistant.helpers.storage import Store

from ..const import DOMAIN

STORAGE_VERSION: Final = 1
# 2: the site's integrators and the loads no longer carry a "version" of their own.
STORAGE_MINOR_VERSION: Final = 2


class StoreFromNewerVersionError(Exception):
    """The store was written by a newer ems (then downgraded): its layout is unknown here."""


class EmsStore(Store[dict[str, Any]]):
    """The engine's state of one hub entry."""

    def __init__(self, hass: HomeAssistant, entry_id: str) -> None:
        """The store of the hub entry `entry_id`."""
        super().__init__(
            hass,
            STORAGE_VERSION,
            f"{DOMAIN}.{entry_id}",
            private=True,
            minor_version=STORAGE_MINOR_VERSION,
        )

    async def _async_migrate_func(
        self, old_major_version: int, old_minor_version: int, old_data: dict[str, Any]
    ) -> dict[str, Any]:
        if old_major_version > STORAGE_VERSION:
            # Not guessed at, and not overwritten: upgrading ems again, or restoring a backup,
            # brings it back (newer Home Assistant releases refuse such a file themselves).
            raise StoreFromNewerVersionError(self.key)
        if old_minor_version < 2:
            old_data = _without_part_versions(old_data)
        return old_data


def _without_part_versions(data: dict[str, Any]) -> dict[str, Any]:
    """1.1 → 1.2: drop the per-part "version" keys (always 1, never read)."""
    migrated = dict(data)
    site = migrated.get("site")
    if isinstance(site, dict):
        migrated["site"] = {k: v for k, v in site.items() if k != "version"}
    for part in ("device_energy", "loads"):
        items = migrated.get(part)
        if isinstance(items, dict):
            migrated[part] = {
                key: {k: v for k, v in item.items() if k != "version"}
                if isinstance(item, dict)
                else item
                for key, item in items.items()
            }
    return migrated
