"""Sensors: one per channel of every device, the site's sums, and the hub's diagnostics."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from homeassistant.components.sensor import (
    SensorDeviceClass,
    SensorEntity,
    SensorStateClass,
)
from homeassistant.const import (
    PERCENTAGE,
    EntityCategory,
    UnitOfEnergy,
    UnitOfMass,
    UnitOfPower,
    UnitOfTime,
)
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
from homeassistant.helpers.typing import StateType
from homeassistant.util import dt as dt_util

from .aggregation import CurrentRates
from .coordinator import EmsConfigEntry
from .engine.books.ledger import Totals
from .engine.cycle import SiteSnapshot
from .engine.model import SiteState
from .engine.site.flows import FLOW_NAMES
from .engine.site.integration import ENERGY_SERIES
from .entity import EmsEntity
from .glue.device_sensors import EmsSensorEntityDescription, control_sensors, device_descriptions

PARALLEL_UPDATES = 0
# As the CO2 Signal integration reports grid intensity, so the two read alike.
CO2_INTENSITY_UNIT = "gCO2eq/kWh"


HUB_SENSORS: tuple[EmsSensorEntityDescription, ...] = (
    EmsSensorEntityDescription(
        key="requests_per_cycle",
        translation_key="requests_per_cycle",
        entity_category=EntityCategory.DIAGNOSTIC,
        state_class=SensorStateClass.MEASUREMENT,
        value_fn=lambda snapshot: snapshot.stats.requests,
    ),
    EmsSensorEntityDescription(
        key="failed_requests",
        translation_key="failed_requests",
        entity_category=EntityCategory.DIAGNOSTIC,
        state_class=SensorStateClass.MEASUREMENT,
        value_fn=lambda snapshot: snapshot.stats.failed_requests,
    ),
    EmsSensorEntityDescription(
        key="quarantined_registers",
        translation_key="quarantined_registers",
        entity_category=EntityCategory.DIAGNOSTIC,
        state_class=SensorStateClass.MEASUREMENT,
        value_fn=lambda snapshot: len(snapshot.stats.quarantined),
        attributes_fn=lambda snapshot: {
            "registers": [
                f"unit {unit} {function} {address}"
                for unit, function, address in snapshot.stats.quarantined
            ]
        },
    ),
    EmsSensorEntityDescription(
        key="cycle_time",
        translation_key="cycle_time",
        entity_category=EntityCategory.DIAGNOSTIC,
        device_class=SensorDeviceClass.DURATION,
        native_unit_of_measurement=UnitOfTime.MILLISECONDS,
        state_class=SensorStateClass.MEASUREMENT,
        suggested_display_precision=0,
        entity_registry_enabled_default=False,
        value_fn=lambda snapshot: round(snapshot.stats.duration_s * 1000, 1),
    ),
)


def _site_power(key: str, series: str) -> EmsSensorEntityDescription:
    return EmsSensorEntityDescription(
        key=key,
        translation_key=key,
        native_unit_of_measurement=UnitOfPower.WATT,
        device_class=SensorDeviceClass.POWER,
        state_class=SensorStateClass.MEASUREMENT,
        suggested_display_precision=0,
        value_fn=lambda snapshot: snapshot.site.power_w[series] if snapshot.site else None,
    )


def _flow_power(flow: str) -> EmsSensorEntityDescription:
    return EmsSensorEntityDescription(
        key=f"{flow}_power",
        translation_key=f"{flow}_power",
        native_unit_of_measurement=UnitOfPower.WATT,
        device_class=SensorDeviceClass.POWER,
        state_class=SensorStateClass.MEASUREMENT,
        suggested_display_precision=0,
        value_fn=lambda snapshot: (
            snapshot.site.flows_w[flow] if snapshot.site and snapshot.site.flows_w else None
        ),
    )


def _site_energy(series: str) -> EmsSensorEntityDescription:
    return EmsSensorEntityDescription(
        key=f"{series}_energy",
        translation_key=f"{series}_energy",
        native_unit_of_measurement=UnitOfEnergy.KILO_WATT_HOUR,
        device_class=SensorDeviceClass.ENERGY,
        state_class=SensorStateClass.TOTAL_INCREASING,
        suggested_display_precision=3,
        value_fn=lambda snapshot: snapshot.site.energy_kwh[series] if snapshot.site else None,
    )


def _site_share(key: str, value: Callable[[SiteState], float | None]) -> EmsSensorEntityDescription:
    return EmsSensorEntityDescription(
        key=key,
        translation_key=key,
        native_unit_of_measurement=PERCENTAGE,
        state_class=SensorStateClass.MEASUREMENT,
        suggested_display_precision=0,
        value_fn=lambda snapshot: value(snapshot.site) if snapshot.site else None,
    )


@dataclass(frozen=True, kw_only=True)
class EmsBookSensorEntityDescription(EmsSensorEntityDescription):
    """A total of the site's books over the local day or month (resets at its start)."""

    month: bool = False
    monetary: bool = False


def _book(
    key: str,
    amount: Callable[[Totals], float | None],
    *,
    month: bool,
    details: Callable[[Totals], dict[str, Any]] | None = None,
    **kwargs: Any,
) -> EmsBookSensorEntityDescription:
    def totals(snapshot: SiteSnapshot) -> Totals | None:
        return snapshot.month if month else snapshot.today

    def value(snapshot: SiteSnapshot) -> float | None:
        period = totals(snapshot)
        return None if period is None else _rounded(amount(period))

    def attributes(snapshot: SiteSnapshot) -> dict[str, Any]:
        period = totals(snapshot)
        return {} if period is None or details is None else details(period)

    return EmsBookSensorEntityDescription(
        key=f"{key}_{'month' if month else 'today'}",
        translation_key=f"{key}_{'month' if month else 'today'}",
        state_class=SensorStateClass.TOTAL,
        month=month,
        value_fn=value,
        attributes_fn=attributes if details is not None else None,
        **kwargs,
    )


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 6) + 0.0


def _book_pair(
    key: str, amount: Callable[[Totals], float | None], **kwargs: Any
) -> tuple[EmsBookSensorEntityDescription, ...]:
    return tuple(_book(key, amount, month=month, **kwargs) for month in (False, True))


def _net_cost_parts(totals: Totals) -> dict[str, Any]:
    """What the net cost is made of, as on a bill."""
    return {
        "import_cost": _rounded(totals.cost),
        "export_compensation": _rounded(totals.compensation),
        "fixed_fee": _rounded(totals.fixed_fee),
        "demand_charge": _rounded(totals.demand_charge),
    }


_ENERGY_BOOK = {
    "native_unit_of_measurement": UnitOfEnergy.KILO_WATT_HOUR,
    "device_class": SensorDeviceClass.ENERGY,
    "suggested_display_precision": 2,
}
_MONEY_BOOK = {"device_class": SensorDeviceClass.MONETARY, "monetary": True,
               "suggested_display_precision": 2}  # fmt: skip
_CO2_BOOK = {"native_unit_of_measurement": UnitOfMass.KILOGRAMS, "suggested_display_precision": 2}

BOOK_SENSORS: tuple[EmsBookSensorEntityDescription, ...] = (
    *_book_pair("grid_import", lambda t: t.energy_kwh["grid_import"], **_ENERGY_BOOK),
    *_book_pair("grid_export", lambda t: t.energy_kwh["grid_export"], **_ENERGY_BOOK),
    *_book_pair("production", lambda t: t.energy_kwh["production"], **_ENERGY_BOOK),
    *_book_pair("consumption", lambda t: t.energy_kwh["consumption"], **_ENERGY_BOOK),
    *_book_pair("import_cost", lambda t: t.cost, **_MONEY_BOOK),
    *_book_pair("export_compensation", lambda t: t.compensation, **_MONEY_BOOK),
    *_book_pair("net_cost", lambda t: t.net_cost, details=_net_cost_parts, **_MONEY_BOOK),
    *_book_pair("co2", lambda t: t.co2_kg, **_CO2_BOOK),
    *_book_pair("co2_avoided", lambda t: t.co2_avoided_kg, **_CO2_BOOK),
)
PEAK_DEMAND_MONTH = EmsSensorEntityDescription(
    key="peak_demand_month",
    translation_key="peak_demand_month",
    native_unit_of_measurement=UnitOfPower.KILO_WATT,
    device_class=SensorDeviceClass.POWER,
    state_class=SensorStateClass.MEASUREMENT,
    suggested_display_precision=2,
    value_fn=lambda snapshot: snapshot.month.peak_demand_kw if snapshot.month else None,
)


@dataclass(frozen=True, kw_only=True)
class EmsRateSensorEntityDescription(EmsSensorEntityDescription):
    """A rate the books apply now; a price is per kWh in HA's currency."""

    price: bool = False


def _rate(
    key: str, value: Callable[[CurrentRates], float | None], **kwargs: Any
) -> EmsRateSensorEntityDescription:
    return EmsRateSensorEntityDescription(
        key=key,
        translation_key=key,
        state_class=SensorStateClass.MEASUREMENT,
        value_fn=lambda snapshot: _rounded(value(snapshot.rates)) if snapshot.rates else None,
        **kwargs,
    )


RATE_SENSORS: tuple[EmsRateSensorEntityDescription, ...] = (
    _rate("current_import_price", lambda r: r.import_price, price=True,
          suggested_display_precision=4),
    _rate("current_export_price", lambda r: r.export_price, price=True,
          suggested_display_precision=4),
    _rate("current_co2_intensity", lambda r: r.co2_g_per_kwh,
          native_unit_of_measurement=CO2_INTENSITY_UNIT, suggested_display_precision=0),
)  # fmt: skip


SITE_SENSORS: tuple[EmsSensorEntityDescription, ...] = (
    _site_power("grid_power", "grid"),
    _site_power("production_power", "production"),
    _site_power("battery_power", "battery"),
    _site_power("consumption_power", "consumption"),
    *(_flow_power(flow) for flow in FLOW_NAMES),
    _site_share("self_sufficiency", lambda site: site.self_sufficiency_pct),
    _site_share("self_consumption", lambda site: site.self_consumption_pct),
    *(_site_energy(series) for series in ENERGY_SERIES),
    PEAK_DEMAND_MONTH,
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: EmsConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Create the hub's, the site's and every device's sensors."""
    coordinator = entry.runtime_data.coordinator
    async_add_entities(EmsSensor(coordinator, description) for description in HUB_SENSORS)
    async_add_entities(
        EmsSensor(coordinator, description, site=True) for description in SITE_SENSORS
    )
    async_add_entities(
        EmsBookSensor(coordinator, description, site=True) for description in BOOK_SENSORS
    )
    async_add_entities(
        EmsRateSensor(coordinator, description, site=True) for description in RATE_SENSORS
    )
    for subentry_id, device in coordinator.devices_by_subentry(entry):
        async_add_entities(
            (EmsSensor(coordinator, d, device) for d in device_descriptions(device)),
            config_subentry_id=subentry_id,
        )
    for subentry_id, device in coordinator.batteries_by_subentry(entry):
        async_add_entities(
            (EmsSensor(coordinator, d, device) for d in control_sensors(device.id)),
            config_subentry_id=subentry_id,
        )


class EmsSensor(EmsEntity, SensorEntity):
    """A sensor whose value comes from the latest cycle."""

    entity_description: EmsSensorEntityDescription

    @property
    def native_value(self) -> StateType | datetime:
        """The cleaned, normalized value; `None` when there is no trustworthy one."""
        return self.entity_description.value_fn(self.coordinator.data)

    @property
    def extra_state_attributes(self) -> dict[str, Any] | None:
        """Details a diagnostic sensor carries beside its count."""
        if self.entity_description.attributes_fn is None:
            return None
        return self.entity_description.attributes_fn(self.coordinator.data)


class EmsBookSensor(EmsSensor):
    """A day or month total of the site's books, in HA's currency for money."""

    entity_description: EmsBookSensorEntityDescription

    @property
    def native_unit_of_measurement(self) -> str | None:
        """Money is in the currency Home Assistant is configured with."""
        if self.entity_description.monetary:
            return self.hass.config.currency
        return super().native_unit_of_measurement

    @property
    def last_reset(self) -> datetime:
        """The start of the local day or month the total runs over."""
        now = dt_util.now()
        start = now.replace(day=1) if self.entity_description.month else now
        return dt_util.start_of_local_day(start)


class EmsRateSensor(EmsSensor):
    """The price or CO2 intensity the books apply to energy now."""

    entity_description: EmsRateSensorEntityDescription

    @property
    def native_unit_of_measurement(self) -> str | None:
        """Prices are per kWh in the currency Home Assistant is configured with."""
        if self.entity_description.price:
            return f"{self.hass.config.currency}/{UnitOfEnergy.KILO_WATT_HOUR}"
        return super().native_unit_of_measurement
