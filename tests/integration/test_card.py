"""The site card: served by the integration, loaded on every dashboard, finds its entities."""

from __future__ import annotations

import json
import shutil
import subprocess
from typing import Any

from homeassistant.components import frontend
from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr, entity_registry as er
from homeassistant.setup import async_setup_component
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from custom_components.ems.compat import device_entry_ids
from custom_components.ems.const import DOMAIN
from custom_components.ems.glue.card import CARD_FILE, CARD_URL
from simulator import SiteSimulator

NODE = shutil.which("node")
needs_node = pytest.mark.skipif(NODE is None, reason="node is not installed")
# Where the frontend keeps the extra module urls; the name has changed before.
EXTRA_MODULES_KEY = getattr(frontend, "DATA_EXTRA_MODULE_URL", "frontend_extra_module_url")


@pytest.fixture
async def site_with_frontend(
    hass: HomeAssistant, site_entry: MockConfigEntry, simulator: SiteSimulator
) -> MockConfigEntry:
    """The simulated site at noon, set up after the web server and the frontend, as at boot."""
    assert await async_setup_component(hass, "http", {})
    assert await async_setup_component(hass, "frontend", {})
    simulator.advance(12 * 3600)
    site_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(site_entry.entry_id)
    await hass.async_block_till_done()
    return site_entry


def _card_url(hass: HomeAssistant) -> str:
    (url,) = (url for url in hass.data[EXTRA_MODULES_KEY].urls if url.startswith(CARD_URL))
    return url


async def test_card_is_served_and_loaded_on_dashboards(
    hass: HomeAssistant, hass_client: ClientSessionGenerator, site_with_frontend: MockConfigEntry
) -> None:
    """Every dashboard loads the card as a module, at a url that changes with each release."""
    url = _card_url(hass)
    assert url.startswith(f"{CARD_URL}?v=0.1.0-")

    client = await hass_client()
    response = await client.get(url)
    assert response.status == 200
    assert "javascript" in response.headers["Content-Type"]
    assert (await response.text()) == CARD_FILE.read_text(encoding="utf-8")


async def test_no_web_server_no_card(
    hass: HomeAssistant, init_integration: MockConfigEntry
) -> None:
    """Without http (headless, tests) the integration sets up all the same."""
    assert hass.http is None
    assert EXTRA_MODULES_KEY not in hass.data


@needs_node
def test_card_is_valid_javascript() -> None:
    """The browser loads the file as it is: no build step could catch a syntax error."""
    subprocess.run([NODE, "--check", str(CARD_FILE)], check=True, timeout=30)  # noqa: S603


# Loads the card in node with just enough of a browser to define it, then asks the card's own
# lookup what it finds in the registries and states given on stdin.
HARNESS = """
const fs = require("node:fs");
const vm = require("node:vm");
const defined = {};
const sandbox = {
  HTMLElement: class {},
  CustomEvent: class {},
  customElements: { get: (name) => defined[name], define: (name, cls) => { defined[name] = cls; } },
};
sandbox.window = sandbox;
vm.createContext(sandbox);
vm.runInContext(fs.readFileSync(process.argv[1], "utf8"), sandbox);
const { hass, config } = JSON.parse(fs.readFileSync(0, "utf8"));
const card = defined["ems-site-card"];
const entities = card.discoverEntities(hass, config);
console.log(JSON.stringify({
  entities,
  flows: card.siteFlows(hass, entities),
  stub: card.getStubConfig(),
  editor: Boolean(defined["ems-site-card-editor"]),
  picker: sandbox.customCards.map((entry) => entry.type),
}));
"""


def _frontend_hass(hass: HomeAssistant) -> dict[str, Any]:
    """What the frontend's `hass` object holds: display registries and states."""
    entities = {
        entry.entity_id: {
            "entity_id": entry.entity_id,
            "platform": entry.platform,
            "device_id": entry.device_id,
            "translation_key": entry.translation_key,
        }
        for entry in er.async_get(hass).entities.values()
        if entry.disabled_by is None
    }
    devices = {
        device.id: {
            "id": device.id,
            "name": device.name,
            "via_device_id": device.via_device_id,
            "config_entries": sorted(device_entry_ids(device)),
        }
        for entry in hass.config_entries.async_entries(DOMAIN)
        for device in dr.async_entries_for_config_entry(dr.async_get(hass), entry.entry_id)
    }
    states = {
        state.entity_id: {"state": state.state, "attributes": dict(state.attributes)}
        for state in hass.states.async_all()
    }
    return {"entities": entities, "devices": devices, "states": states, "language": "en"}


def _run_card(hass_json: dict[str, Any], config: dict[str, Any]) -> dict[str, Any]:
    assert NODE is not None
    completed = subprocess.run(  # noqa: S603
        [NODE, "-e", HARNESS, str(CARD_FILE)],
        input=json.dumps({"hass": hass_json, "config": config}),
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    result: dict[str, Any] = json.loads(completed.stdout)
    return result


@needs_node
async def test_card_finds_the_site_entities(
    hass: HomeAssistant, site_with_frontend: MockConfigEntry
) -> None:
    """From the registries alone, the card picks the Site device's sensors and the battery."""
    frontend_hass = _frontend_hass(hass)
    found = _run_card(frontend_hass, {})

    assert found["editor"]
    assert found["picker"] == ["ems-site-card"]
    assert found["stub"] == {}
    entities = found["entities"]
    assert entities["grid_power"] == "sensor.site_grid_power"
    assert entities["production_power"] == "sensor.site_production_power"
    assert entities["battery_power"] == "sensor.site_battery_power"
    assert entities["consumption_power"] == "sensor.site_consumption_power"
    assert entities["battery_soc"] == "sensor.battery_state_of_charge"
    assert entities["battery_mode"] == "select.battery_battery_mode"
    for role in ("consumption_today", "net_cost_today", "co2_today", "grid_import_today"):
        assert entities[role].startswith("sensor.site_"), role
    flows = found["flows"]
    home = sum(flows[f"{source}_to_consumption"] for source in ("production", "grid", "battery"))
    assert home == pytest.approx(float(hass.states.get("sensor.site_consumption_power").state))

    overridden = _run_card(
        frontend_hass,
        {"entry_id": site_with_frontend.entry_id, "entities": {"grid_power": "sensor.my_grid"}},
    )["entities"]
    assert overridden["grid_power"] == "sensor.my_grid"
    assert overridden["consumption_power"] == "sensor.site_consumption_power"
    assert _run_card(frontend_hass, {"entry_id": "another hub"})["entities"] == {}


@needs_node
def test_card_splits_flows_without_flow_sensors() -> None:
    """Overridden with plain power sensors (kW too), the card splits the flows as ems does."""
    states = {
        "sensor.grid": {"state": "-1.5", "attributes": {"unit_of_measurement": "kW"}},
        "sensor.pv": {"state": "4000", "attributes": {"unit_of_measurement": "W"}},
        "sensor.battery": {"state": "-1000", "attributes": {"unit_of_measurement": "W"}},
    }
    config = {
        "entities": {
            "grid_power": "sensor.grid",
            "production_power": "sensor.pv",
            "battery_power": "sensor.battery",
        }
    }
    flows = _run_card({"states": states, "entities": {}, "devices": {}}, config)["flows"]
    assert flows == {
        "production_to_consumption": 1500,
        "production_to_grid": 1500,
        "production_to_battery": 1000,
        "grid_to_consumption": 0,
        "grid_to_battery": 0,
        "battery_to_consumption": 0,
        "battery_to_grid": 0,
    }
