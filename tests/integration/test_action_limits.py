"""The actions' limits are one fact: the schema, the form in services.yaml and the numbers agree."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import voluptuous as vol
import yaml

from custom_components.ems import services
from custom_components.ems.engine.control.commands import MAX_POWER_W
from custom_components.ems.number import NUMBERS

SERVICES_YAML = Path(services.__file__).parent / "services.yaml"


def _number_fields() -> list[tuple[str, str, dict[str, Any]]]:
    actions = yaml.safe_load(SERVICES_YAML.read_text(encoding="utf-8"))
    return [
        (action, name, field["selector"]["number"])
        for action, spec in actions.items()
        for name, field in spec.get("fields", {}).items()
        if "number" in field.get("selector", {})
    ]


@pytest.mark.parametrize(("action", "field", "selector"), _number_fields())
def test_the_form_offers_what_the_schema_accepts(
    action: str, field: str, selector: dict[str, Any]
) -> None:
    """Each number field's range in the action form is the one its schema enforces."""
    schema = services.SCHEMAS[action]
    base = {
        "device_id": "x",
        **{str(key): 1 for key in schema.schema if isinstance(key, vol.Required)},
    }
    for edge in (selector["min"], selector["max"]):
        schema({**base, field: edge})
    step = 1 if selector.get("unit_of_measurement") == "W" else 0.5
    for outside in (selector["min"] - step, selector["max"] + step):
        with pytest.raises(vol.Invalid):
            schema({**base, field: outside})
    if selector.get("unit_of_measurement") == "W":
        assert selector["max"] == MAX_POWER_W


def test_power_numbers_stop_where_the_actions_do() -> None:
    """Without a rating from the device, a power number goes up to the actions' limit."""
    powers = [d for d in NUMBERS if d.native_unit_of_measurement == "W"]
    assert powers
    assert all(d.native_max_value == MAX_POWER_W for d in powers)
