"""Options flow, second step: tariff and CO2, each field's error and the way out of it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType, InvalidData
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
import voluptuous as vol

from custom_components.ems.engine.tariffs.model import FeePeriod

INIT = {"scan_interval": 5, "timeout": 1.5, "max_read": 32, "max_gap": 4}


async def _tariff_step(hass: HomeAssistant, entry: MockConfigEntry) -> dict[str, Any]:
    result = await hass.config_entries.options.async_init(entry.entry_id)
    assert result["step_id"] == "init"
    result = await hass.config_entries.options.async_configure(result["flow_id"], INIT)
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "tariff"
    assert result["errors"] == {}
    assert result["description_placeholders"]["currency"] == hass.config.currency
    return dict(result)


async def _send(hass: HomeAssistant, flow_id: str, user_input: dict[str, Any]) -> dict[str, Any]:
    return dict(await hass.config_entries.options.async_configure(flow_id, user_input))


async def test_defaults_change_nothing(
    hass: HomeAssistant, init_integration: MockConfigEntry
) -> None:
    """An untouched tariff step stores no price and no CO2: existing users see no change."""
    result = await _tariff_step(hass, init_integration)
    result = await _send(hass, result["flow_id"], {})
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()
    options = init_integration.options
    assert options["price_mode"] == "none"
    assert options["co2_mode"] == "none"
    assert options["export_mode"] == "none"
    assert options["max_read"] == 32


async def test_schedule_errors_then_recovery(
    hass: HomeAssistant, init_integration: MockConfigEntry
) -> None:
    """Each schedule problem is shown on the schedule field, with its line; then it saves."""
    flow_id = (await _tariff_step(hass, init_integration))["flow_id"]
    base = {"price_mode": "time_of_use"}
    cases = [
        ("# header\nweekday 07:00-22:00 0.34\ngarbage", "tou_syntax", "3"),
        ("all 25:00-07:00 0.3", "tou_syntax", "1"),
        ("\nall 07:10-08:00 0.3", "tou_not_quarter_hour", "2"),
        ("all 07:00-08:00 0.3 months 13", "tou_months_invalid", "1"),
        (
            "all 07:00-09:00 0.3\nweekday 08:00-10:00 0.2\nx\nall 08:30-08:45 1",
            "tou_overlap",
            "2, 4",
        ),
        ("weekday 07:00-22:00 0.34", "tou_not_covered", ""),
    ]
    for schedule, error, line in cases:
        result = await _send(hass, flow_id, {**base, "tou_schedule": schedule})
        assert result["type"] is FlowResultType.FORM, schedule
        assert result["errors"] == {"tou_schedule": error}, schedule
        assert result["description_placeholders"]["line"] == line, schedule
    schedule = "weekday 07:00-22:00 0.34\nall 22:00-07:00 0.21 months 10-3"
    result = await _send(
        hass,
        flow_id,
        {
            **base,
            "tou_schedule": schedule,
            "import_price": 0.28,
            "export_mode": "flat",
            "export_price": 0.08,
            "fee_amount": 0.45,
            "fee_period": "day",
            "demand_charge": 9.5,
        },
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()
    options = init_integration.options
    assert options["tou_schedule"] == schedule
    assert options["import_price"] == 0.28
    assert options["export_price"] == 0.08
    assert (options["fee_amount"], options["fee_period"]) == (0.45, "day")
    assert options["demand_charge"] == 9.5
    assert options["scan_interval"] == 5


async def test_required_prices_and_entities(
    hass: HomeAssistant, init_integration: MockConfigEntry
) -> None:
    """A mode without its price or entity, or extras without an import price, is refused."""
    flow_id = (await _tariff_step(hass, init_integration))["flow_id"]
    cases: list[tuple[dict[str, Any], dict[str, str]]] = [
        ({"price_mode": "flat"}, {"import_price": "price_required"}),
        ({"price_mode": "entity"}, {"price_entity": "entity_required"}),
        (
            {"price_mode": "flat", "import_price": 0.3, "export_mode": "flat"},
            {"export_price": "price_required"},
        ),
        (
            {"price_mode": "flat", "import_price": 0.3, "export_mode": "entity"},
            {"export_price_entity": "entity_required"},
        ),
        ({"export_mode": "flat", "export_price": 0.1}, {"export_mode": "needs_price"}),
        ({"fee_amount": 10}, {"fee_amount": "needs_price"}),
        ({"co2_mode": "entity"}, {"co2_entity": "entity_required"}),
    ]
    for user_input, errors in cases:
        result = await _send(hass, flow_id, user_input)
        assert result["errors"] == errors, user_input
    result = await _send(hass, flow_id, {"price_mode": "flat", "import_price": 0.3})
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()
    assert init_integration.options["import_price"] == 0.3


async def test_out_of_range_numbers_are_refused(
    hass: HomeAssistant, init_integration: MockConfigEntry
) -> None:
    flow_id = (await _tariff_step(hass, init_integration))["flow_id"]
    for bad in (
        {"price_mode": "flat", "import_price": -0.1},
        {"price_mode": "flat", "import_price": 101},
        {"co2_mode": "factor", "co2_factor": 2.5},
        {"demand_charge": -1},
        {"price_mode": "cheapest"},
    ):
        with pytest.raises((InvalidData, vol.Invalid)):
            await _send(hass, flow_id, bad)


async def test_price_entity_must_exist_and_be_numeric(
    hass: HomeAssistant, init_integration: MockConfigEntry
) -> None:
    """Dynamic prices and CO2 intensity come from entities whose state is a number now."""
    flow_id = (await _tariff_step(hass, init_integration))["flow_id"]
    price = {"price_mode": "entity", "price_entity": "sensor.price"}
    result = await _send(hass, flow_id, price)
    assert result["errors"] == {"price_entity": "entity_not_found"}
    hass.states.async_set("sensor.price", "unavailable")
    result = await _send(hass, flow_id, price)
    assert result["errors"] == {"price_entity": "entity_not_numeric"}
    hass.states.async_set("sensor.price", "0.31")
    export = {"export_mode": "entity", "export_price_entity": "sensor.feed_in"}
    co2 = {"co2_mode": "entity", "co2_entity": "sensor.co2_intensity"}
    hass.states.async_set("sensor.feed_in", "cheap")
    result = await _send(hass, flow_id, {**price, **export, **co2})
    assert result["errors"] == {
        "export_price_entity": "entity_not_numeric",
        "co2_entity": "entity_not_found",
    }
    hass.states.async_set("sensor.feed_in", "-0.02")
    hass.states.async_set("sensor.co2_intensity", "187", {"unit_of_measurement": "gCO2eq/kWh"})
    result = await _send(hass, flow_id, {**price, **export, **co2, "co2_export_avoided": True})
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()
    options = init_integration.options
    assert options["price_entity"] == "sensor.price"
    assert options["export_price_entity"] == "sensor.feed_in"
    assert options["co2_entity"] == "sensor.co2_intensity"
    assert options["co2_export_avoided"] is True


async def test_entry_reloads_and_form_shows_saved_values(
    hass: HomeAssistant, init_integration: MockConfigEntry
) -> None:
    """Saving reloads the hub; the next visit suggests the saved tariff."""
    coordinator = init_integration.runtime_data.coordinator
    flow_id = (await _tariff_step(hass, init_integration))["flow_id"]
    result = await _send(
        hass, flow_id, {"price_mode": "flat", "import_price": 0.3, "co2_mode": "factor"}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()
    assert init_integration.runtime_data.coordinator is not coordinator
    assert init_integration.options["co2_factor"] == 0.4
    result = await _tariff_step(hass, init_integration)
    suggested = {
        str(key): key.description["suggested_value"]
        for key in result["data_schema"].schema
        if key.description and "suggested_value" in key.description
    }
    assert suggested["price_mode"] == "flat"
    assert suggested["import_price"] == 0.3


def test_tariff_step_is_translated() -> None:
    """Every field has a label and a description, every error a message, every mode a label."""
    from custom_components.ems import config_flow
    from custom_components.ems.engine.tariffs import errors, options as tariffs
    from custom_components.ems.glue import flow_forms

    strings = json.loads(
        (Path(config_flow.__file__).parent / "translations" / "en.json").read_text(encoding="utf-8")
    )
    step = strings["options"]["step"]["tariff"]
    fields = {str(key) for key in flow_forms.TARIFF_SCHEMA.schema}
    assert set(step["data"]) == set(step["data_description"]) == fields
    assert "{currency}" in step["description"]
    codes = {value for name, value in vars(errors).items() if name.startswith("ERROR_")}
    assert codes == set(strings["options"]["error"])
    selectors = strings["selector"]
    for key, values in (
        ("price_mode", tariffs.PriceMode),
        ("export_mode", tariffs.ExportMode),
        ("co2_mode", tariffs.Co2Mode),
        ("fee_period", FeePeriod),
    ):
        assert set(selectors[key]["options"]) == {value.value for value in values}, key
