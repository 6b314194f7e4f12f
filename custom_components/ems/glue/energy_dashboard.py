"""The Energy dashboard set-up: a hub's `ems:` series as energy sources.

The grid source changed shape in 2026.3 (DESIGN §9.5): 2025.4.4 has one grid source with
`flow_from`/`flow_to` lists, newer releases have flat grid sources, several of them. Which one
the running Home Assistant takes is read from its own TypedDict, and the sources are checked
with its own schema before they are stored, so nothing the dashboard would refuse is saved.
Cost and compensation are given as `ems:` series, never as a price (a price on an external
statistic is rejected from 2026.4 and silently ignored before).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, cast

from homeassistant.components.energy import data as energy_data
from homeassistant.core import HomeAssistant

from ..compat import FLAT_GRID_SOURCES
from ..engine.tariffs.options import CONF_EXPORT_MODE, CONF_PRICE_MODE, ExportMode, PriceMode
from .statistics import statistic_id

type Source = dict[str, Any]


def hub_sources(
    hub: str, options: Mapping[str, Any], *, production: bool, battery: bool
) -> list[Source]:
    """The sources of one hub: its grid connection, and its PV and battery where it has them."""

    def stat(series: str) -> str:
        return statistic_id(hub, series)

    priced = options.get(CONF_PRICE_MODE, PriceMode.NONE) != PriceMode.NONE
    compensated = options.get(CONF_EXPORT_MODE, ExportMode.NONE) != ExportMode.NONE
    cost = stat("import_cost") if priced else None
    compensation = stat("export_compensation") if compensated else None
    no_price = {"entity_energy_price": None, "number_energy_price": None}
    grid: Source
    if FLAT_GRID_SOURCES:
        grid = {
            "type": "grid",
            "stat_energy_from": stat("grid_import"),
            "stat_cost": cost,
            **no_price,
            "stat_energy_to": stat("grid_export"),
            "stat_compensation": compensation,
            "entity_energy_price_export": None,
            "number_energy_price_export": None,
            "cost_adjustment_day": 0.0,
        }
    else:
        flow_from = {"stat_energy_from": stat("grid_import"), "stat_cost": cost, **no_price}
        flow_to = {
            "stat_energy_to": stat("grid_export"),
            "stat_compensation": compensation,
            **no_price,
        }
        grid = {
            "type": "grid",
            "flow_from": [flow_from],
            "flow_to": [flow_to],
            "cost_adjustment_day": 0.0,
        }
    sources = [grid]
    if production:
        sources.append({"type": "solar", "stat_energy_from": stat("production")})
    if battery:
        sources.append(
            {
                "type": "battery",
                "stat_energy_from": stat("battery_discharge"),
                "stat_energy_to": stat("battery_charge"),
            }
        )
    return sources


def merged_sources(existing: Iterable[Source], ours: list[Source], prefix: str) -> list[Source]:
    """The user's sources with this hub's replaced: every other source stays as it was.

    `prefix` starts every statistic id of the hub (`ems:<hub>_`). A single legacy grid
    source is shared, so there only this hub's flows are swapped.
    """

    def mine(item: Mapping[str, Any]) -> bool:
        return any(isinstance(v, str) and v.startswith(prefix) for v in item.values())

    result: list[Source] = []
    added = list(ours)
    for source in existing:
        if source.get("type") == "grid" and "flow_from" in source:
            kept = {
                **source,
                "flow_from": [f for f in source["flow_from"] if not mine(f)],
                "flow_to": [f for f in source["flow_to"] if not mine(f)],
            }
            if (our_grid := _legacy_grid(added)) is not None:  # one grid source takes all flows
                kept["flow_from"] += our_grid["flow_from"]
                kept["flow_to"] += our_grid["flow_to"]
                added.remove(our_grid)
            result.append(kept)
        elif not mine(source):
            result.append(dict(source))
    return result + added


def _legacy_grid(sources: list[Source]) -> Source | None:
    return next((s for s in sources if s["type"] == "grid" and "flow_from" in s), None)


async def async_setup_energy_dashboard(
    hass: HomeAssistant, hub: str, sources: list[Source]
) -> list[Source]:
    """Add a hub's sources to the Energy dashboard's preferences; return all sources saved.

    Raises `voluptuous.Invalid` if the running Home Assistant refuses them (nothing is saved then).
    """
    manager = await energy_data.async_get_manager(hass)
    existing = (manager.data or manager.default_preferences())["energy_sources"]
    prefix = statistic_id(hub, "grid_import").removesuffix("grid_import")
    merged = energy_data.ENERGY_SOURCE_SCHEMA(
        merged_sources([dict(s) for s in existing], sources, prefix)
    )
    # Only the sources change; the TypedDict's keys differ between releases.
    await manager.async_update(
        cast(energy_data.EnergyPreferencesUpdate, {"energy_sources": merged})
    )
    return [dict(source) for source in merged]
