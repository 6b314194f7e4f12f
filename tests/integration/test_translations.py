"""Every user-visible string is translated: entities, errors, actions, selectors, repairs."""

from __future__ import annotations

import json
from pathlib import Path
import re

from homeassistant.config_entries import SOURCE_USER
from homeassistant.core import HomeAssistant
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
import yaml

from custom_components.ems.compat import device_by_identifier
from custom_components.ems.const import DOMAIN
from custom_components.ems.engine.model import DeviceRole
from custom_components.ems.glue.device_sensors import translation_for
from custom_components.ems.number import NUMBERS
from custom_components.ems.select import MODE
from custom_components.ems.sensor import HUB_SENSORS, SITE_SENSORS
from custom_components.ems.services import SCHEMAS, SERVICE_SETUP_ENERGY_DASHBOARD
from simulator import SiteSimulator

PACKAGE = Path(__file__).parents[2] / "custom_components" / DOMAIN
STRINGS = json.loads((PACKAGE / "translations" / "en.json").read_text(encoding="utf-8"))
# The Home Assistant side: the root modules and glue/ (the engine raises nothing translated).
SOURCE = "\n".join(
    path.read_text(encoding="utf-8") for path in (*PACKAGE.glob("*.py"), *PACKAGE.glob("glue/*.py"))
)


def test_entity_names_are_translated() -> None:
    """Static entities and every channel of the shipped profiles have a name."""
    sensors = STRINGS["entity"]["sensor"]
    for description in (*HUB_SENSORS, *SITE_SENSORS):
        assert description.translation_key in sensors, description.key
    for description in NUMBERS:
        assert description.translation_key in STRINGS["entity"]["number"]
    assert set(MODE.options or []) == set(STRINGS["entity"]["select"]["battery_mode"]["state"])


async def test_every_channel_of_every_device_is_named(
    hass: HomeAssistant, site_entry: object, simulator: SiteSimulator
) -> None:
    """Channels of the whole simulated site (SunSpec included) resolve to a translation."""
    from custom_components.ems.engine.pipeline import derived_keys

    entry = site_entry
    entry.add_to_hass(hass)  # type: ignore[attr-defined]
    assert await hass.config_entries.async_setup(entry.entry_id)  # type: ignore[attr-defined]
    await hass.async_block_till_done()
    sensors = STRINGS["entity"]["sensor"]
    for device in entry.runtime_data.coordinator.devices.values():  # type: ignore[attr-defined]
        for spec in device.profile.channels:
            symbols = spec.symbols
            key = translation_for(spec.key, spec.origin, symbolic=symbols is not None)[0]
            assert key in sensors, (device.name, spec.key)
            if symbols is not None and not symbols.bitfield:
                # An enum sensor's every state has its name.
                assert set(symbols.options) <= set(sensors[key]["state"]), (device.name, key)
        for key in derived_keys(device):
            assert translation_for(key)[0] in sensors, (device.name, key)


async def test_the_site_device_has_its_translated_name(
    hass: HomeAssistant, init_integration: MockConfigEntry
) -> None:
    """The Site device is named from en.json, not from a string in the code."""
    entry_id = init_integration.entry_id
    site = device_by_identifier(hass, (DOMAIN, f"{entry_id}_site"), entry_id)
    assert site is not None
    assert site.name == STRINGS["device"]["site"]["name"]
    assert hass.states.get("sensor.site_grid_power") is not None


@pytest.mark.parametrize("kind", ["translation_key", "validation_error", "errors", "reason"])
def test_raised_and_shown_keys_exist(kind: str) -> None:
    """Keys used in the code for exceptions, form errors and aborts are all in en.json."""
    patterns = {
        "validation_error": r'validation_error\(\s*"([a-z_]+)"',
        "translation_key": r'translation_key="([a-z_]+)"',
        # errors["base"] = "key", or a field's error returned as {CONF_FIELD: "key"}
        "errors": r'(?:errors\[[A-Z_"a-z]+\] = |\{(?:CONF_[A-Z_]+|"base"): )"([a-z_]+)"',
        "reason": r'reason="([a-z_]+)"',
    }
    known = (
        set(STRINGS["exceptions"])
        | set(STRINGS["entity"]["sensor"])
        | set(STRINGS["entity"].get("select", {}))
        | set(STRINGS["entity"].get("number", {}))
        | set(STRINGS["issues"])
        | set(STRINGS["config"]["error"])
        | set(STRINGS["config"]["abort"])
        | set(STRINGS["config_subentries"]["device"]["abort"])
        | set(STRINGS["device"])
    )
    used = set(re.findall(patterns[kind], SOURCE))
    assert used, kind
    assert used <= known, used - known


def test_actions_and_selectors_are_translated() -> None:
    """Every action and each of its fields has a name and description; selectors have labels."""
    services = yaml.safe_load((PACKAGE / "services.yaml").read_text(encoding="utf-8"))
    actions = {*SCHEMAS, SERVICE_SETUP_ENERGY_DASHBOARD}
    assert set(services) == actions == set(STRINGS["services"])
    for service, spec in services.items():
        fields = STRINGS["services"][service]["fields"]
        assert set(spec["fields"]) == set(fields), service
        assert all({"name", "description"} <= set(text) for text in fields.values())
    icons = json.loads((PACKAGE / "icons.json").read_text(encoding="utf-8"))
    assert set(icons["services"]) == actions
    roles = STRINGS["selector"]["role"]["options"]
    assert set(roles) == {role.value for role in DeviceRole}


async def test_config_flow_forms_are_described(hass: HomeAssistant) -> None:
    """Every field of every form has a label and a description."""
    steps = STRINGS["config"]["step"]
    for step in ("network", "serial", "device", "reconfigure"):
        assert set(steps[step]["data"]) == set(steps[step]["data_description"]), step
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
    assert set(result["menu_options"]) == set(steps["user"]["menu_options"])


def test_every_entity_has_an_icon() -> None:
    """icons.json names an icon for every translated entity, also where a device class would
    give one, so the card and the more-info dialogs look the same everywhere."""
    icons = json.loads((PACKAGE / "icons.json").read_text(encoding="utf-8"))["entity"]
    for platform, keys in STRINGS["entity"].items():
        assert set(keys) <= set(icons[platform]), platform
