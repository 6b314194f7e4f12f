"""Prices and CO2 intensities that come from entities (Nord Pool, Tibber, Electricity Maps...).

Each entity's state is sampled when it changes, and holds until the next change; the price
list many such entities publish in their attributes is kept beside it. A listed price that
appears or changes for a time already past makes the books price those hours again.
"""

from __future__ import annotations

from collections.abc import Mapping
import logging
import math
from typing import Any

from homeassistant.core import HomeAssistant

from ..aggregation import Emissions, Tariff
from ..engine.numbers import REPRICE_WINDOW_S
from ..engine.tariffs.options import (
    CONF_CO2_ENTITY,
    CONF_EXPORT_PRICE_ENTITY,
    CONF_PRICE_ENTITY,
    TariffOptionsError,
    emissions_from_options,
    tariff_from_options,
)
from ..engine.tariffs.price_lists import listed_prices, with_listed

_LOGGER = logging.getLogger(__name__)

ENTITY_OPTIONS = (CONF_PRICE_ENTITY, CONF_EXPORT_PRICE_ENTITY, CONF_CO2_ENTITY)


class PriceSampler:
    """The entity samples of one hub's tariff, and the tariff they make."""

    def __init__(self, hass: HomeAssistant, name: str) -> None:
        """Sample for the hub called `name` (in log messages)."""
        self._hass = hass
        self._name = name
        # Prices and intensities sampled from entities: option key -> {epoch: value}.
        self._samples: dict[str, dict[float, float]] = {}
        # Price lists the same entities publish in their attributes.
        self._listed: dict[str, dict[float, float]] = {}
        self._problem: str | None = None
        self.reprice_from: float | None = None

    def sample(self, options: Mapping[str, Any], now: float) -> None:
        """Keep each price or intensity entity's value when it changes, and its price list."""
        for key in ENTITY_OPTIONS:
            entity_id = options.get(key)
            if (state := self._hass.states.get(entity_id) if entity_id else None) is None:
                continue
            self._take_listed(key, listed_prices(state.attributes), now)
            try:
                value = float(state.state)
            except ValueError:
                continue
            if not math.isfinite(value):
                continue
            series = self._samples.setdefault(key, {})
            if not series or series[max(series)] != value:
                series[now] = value
            _forget_before(series, now - REPRICE_WINDOW_S)

    def take_reprice_from(self) -> float | None:
        """Since when the books must price again (once: the books take it)."""
        reprice_from, self.reprice_from = self.reprice_from, None
        return reprice_from

    def pricing(
        self, options: Mapping[str, Any], currency: str
    ) -> tuple[Tariff | None, Emissions | None]:
        """The tariff and CO2 accounting of the hub's options, with the entity samples so far.

        Options the flow refused cannot be stored; a hand-edited store that fails is logged
        and books energy only, rather than inventing a cost.
        """
        try:
            tariff = tariff_from_options(
                options,
                currency=currency,
                import_prices=self._series(CONF_PRICE_ENTITY),
                export_prices=self._series(CONF_EXPORT_PRICE_ENTITY),
            )
            emissions = emissions_from_options(options, intensity=self._series(CONF_CO2_ENTITY))
        except TariffOptionsError as err:
            problem = str(err)
        else:
            return tariff, emissions
        if problem != self._problem:
            self._problem = problem
            _LOGGER.error("The tariff options of %s are not usable: %s", self._name, problem)
        return None, None

    def _series(self, key: str) -> dict[float, float]:
        return with_listed(self._samples.get(key, {}), self._listed.get(key, {}))

    def _take_listed(self, key: str, points: dict[float, float], now: float) -> None:
        known = self._listed.setdefault(key, {})
        revised = [t for t, v in points.items() if t < now and known.get(t) != v]
        if revised and known:  # the first list only confirms what the state already priced
            since = min(revised)
            self.reprice_from = min(since, self.reprice_from or since)
        known.update(points)
        _forget_before(known, now - REPRICE_WINDOW_S)


def _forget_before(series: dict[float, float], oldest: float) -> None:
    for stale in [t for t in series if t < oldest]:
        del series[stale]
