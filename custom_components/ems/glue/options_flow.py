"""The hub's options: polling, and the tariff and CO2 accounting the books use."""

from __future__ import annotations

from collections.abc import Mapping
import math
from typing import Any

from homeassistant.config_entries import (
    ConfigFlowResult,
    OptionsFlow,
)

from ..engine.tariffs.errors import ERROR_ENTITY_NOT_FOUND, ERROR_ENTITY_NOT_NUMERIC
from ..engine.tariffs.options import (
    CONF_CO2_ENTITY,
    CONF_CO2_MODE,
    CONF_EXPORT_MODE,
    CONF_EXPORT_PRICE_ENTITY,
    CONF_PRICE_ENTITY,
    CONF_PRICE_MODE,
    CONF_TOU_SCHEDULE,
    Co2Mode,
    ExportMode,
    PriceMode,
    problems,
)
from ..engine.tariffs.schedule import parse_schedule
from .flow_forms import OPTIONS_SCHEMA, TARIFF_SCHEMA

# The entity each mode reads, checked against the state machine when the form is sent.
_MODE_ENTITIES = (
    (CONF_PRICE_MODE, PriceMode.ENTITY.value, CONF_PRICE_ENTITY),
    (CONF_EXPORT_MODE, ExportMode.ENTITY.value, CONF_EXPORT_PRICE_ENTITY),
    (CONF_CO2_MODE, Co2Mode.ENTITY.value, CONF_CO2_ENTITY),
)


def _schedule_lines(user_input: Mapping[str, Any], code: str) -> str:
    """The schedule's line numbers with the shown problem, for the error's {line}."""
    text = user_input.get(CONF_TOU_SCHEDULE)
    _, line_problems = parse_schedule(text if isinstance(text, str) else "")
    return ", ".join(str(line) for line, problem in line_problems if problem == code)


class EmsOptionsFlow(OptionsFlow):
    """Scan interval, time-out and the gateway's request limits; then tariff and CO2."""

    _init_input: dict[str, Any]

    async def async_step_init(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Show the options with the current values filled in."""
        if user_input is not None:
            self._init_input = user_input
            return await self.async_step_tariff()
        return self.async_show_form(
            step_id="init",
            data_schema=self.add_suggested_values_to_schema(
                OPTIONS_SCHEMA, self.config_entry.options
            ),
        )

    async def async_step_tariff(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Prices, fees and CO2; stored with the first step's options."""
        errors: dict[str, str] = {}
        placeholders = {"currency": self.hass.config.currency, "line": ""}
        if user_input is not None:
            errors = problems(user_input)
            for mode_key, mode, entity_key in _MODE_ENTITIES:
                if user_input.get(mode_key) == mode and entity_key not in errors:
                    error = self._entity_error(str(user_input.get(entity_key, "")))
                    if error is not None:
                        errors.setdefault(entity_key, error)
            if CONF_TOU_SCHEDULE in errors:
                placeholders["line"] = _schedule_lines(user_input, errors[CONF_TOU_SCHEDULE])
            if not errors:
                return self.async_create_entry(data={**self._init_input, **user_input})
        return self.async_show_form(
            step_id="tariff",
            data_schema=self.add_suggested_values_to_schema(
                TARIFF_SCHEMA, user_input or self.config_entry.options
            ),
            errors=errors,
            description_placeholders=placeholders,
        )

    def _entity_error(self, entity_id: str) -> str | None:
        """The entity must exist and hold a number now (a price, or an intensity in g/kWh)."""
        state = self.hass.states.get(entity_id)
        if state is None:
            return ERROR_ENTITY_NOT_FOUND
        try:
            value = float(state.state)
        except ValueError:
            return ERROR_ENTITY_NOT_NUMERIC
        return None if math.isfinite(value) else ERROR_ENTITY_NOT_NUMERIC
