"""Tariff and CO2 options: the options form's fields into the tariff and emission models, and
the form's field errors.

What needs Home Assistant stays with the caller: the currency (`hass.config.currency`),
whether an entity exists and is numeric, and the price or intensity series sampled from an
entity. Times no time-of-use period covers take the default price (`import_price`); without
one, the schedule must cover every quarter hour of every day of the year.

Prices and intensities read from an entity (Nord Pool, Tibber, CO2 Signal, ...) are series of
(hour start -> value) the caller collected. Each value holds until the next sample, and at
most `ENTITY_HOLD_S` (6 h): a missed sample or a short outage of the entity reuses the last
known value, but a longer gap, and the time before the first sample, has no price, so its cost
is unknown (None), never a guess carried over days. There is no other fallback.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from enum import StrEnum
import math
from typing import Any, Final

from ..numbers import HOUR_S
from .errors import (
    ERROR_AMOUNT_INVALID,
    ERROR_ENTITY_NOT_NUMERIC,
    ERROR_ENTITY_REQUIRED,
    ERROR_INVALID_CHOICE,
    ERROR_NEEDS_PRICE,
    ERROR_PRICE_INVALID,
    ERROR_PRICE_REQUIRED,
    ERROR_TARIFF_INVALID,
    ERROR_TOU_MONTHS_INVALID,
    ERROR_TOU_NOT_COVERED,
    ERROR_TOU_NOT_QUARTER_HOUR,
    ERROR_TOU_OVERLAP,
    ERROR_TOU_PERIOD_EMPTY,
)
from .model import (
    Co2Factor,
    Co2Intensity,
    DemandCharge,
    DynamicPrice,
    Emissions,
    FeePeriod,
    FixedFee,
    FlatPrice,
    PriceModel,
    Tariff,
    TimeOfUse,
    TimeSeries,
)
from .schedule import parse_schedule
from .validation import validate_emissions, validate_tariff

# The hub options this module reads; the flow imports them from here.
CONF_PRICE_MODE: Final = "price_mode"
CONF_IMPORT_PRICE: Final = "import_price"
CONF_TOU_SCHEDULE: Final = "tou_schedule"
CONF_PRICE_ENTITY: Final = "price_entity"
CONF_EXPORT_MODE: Final = "export_mode"
CONF_EXPORT_PRICE: Final = "export_price"
CONF_EXPORT_PRICE_ENTITY: Final = "export_price_entity"
CONF_FEE_AMOUNT: Final = "fee_amount"
CONF_FEE_PERIOD: Final = "fee_period"
CONF_DEMAND_CHARGE: Final = "demand_charge"
CONF_CO2_MODE: Final = "co2_mode"
CONF_CO2_FACTOR: Final = "co2_factor"
CONF_CO2_ENTITY: Final = "co2_entity"
CONF_CO2_EXPORT_AVOIDED: Final = "co2_export_avoided"

DEFAULT_CO2_FACTOR: Final = 0.4  # kg/kWh
ENTITY_HOLD_S: Final = 6.0 * HOUR_S


class PriceMode(StrEnum):
    """Where the import price comes from."""

    NONE = "none"
    FLAT = "flat"
    TIME_OF_USE = "time_of_use"
    ENTITY = "entity"


class ExportMode(StrEnum):
    """Where the export compensation comes from."""

    NONE = "none"
    FLAT = "flat"
    ENTITY = "entity"


class Co2Mode(StrEnum):
    """How CO2 is counted."""

    NONE = "none"
    FACTOR = "factor"
    ENTITY = "entity"


# Error keys (options.error in translations/en.json).

# validate_tariff / validate_emissions codes -> (field, error key); the first match wins.
_TARIFF_CODES: Final[tuple[tuple[str, str, str], ...]] = (
    ("import_tou_not_quarter_hour", CONF_TOU_SCHEDULE, ERROR_TOU_NOT_QUARTER_HOUR),
    ("import_tou_period_empty", CONF_TOU_SCHEDULE, ERROR_TOU_PERIOD_EMPTY),
    ("import_tou_months_invalid", CONF_TOU_SCHEDULE, ERROR_TOU_MONTHS_INVALID),
    ("import_tou_overlap", CONF_TOU_SCHEDULE, ERROR_TOU_OVERLAP),
    ("import_tou_not_covered", CONF_TOU_SCHEDULE, ERROR_TOU_NOT_COVERED),
    ("import_price_", CONF_IMPORT_PRICE, ERROR_PRICE_INVALID),
    ("export_price_", CONF_EXPORT_PRICE, ERROR_PRICE_INVALID),
    ("fee_period_", CONF_FEE_PERIOD, ERROR_INVALID_CHOICE),
    ("fee_", CONF_FEE_AMOUNT, ERROR_AMOUNT_INVALID),
    ("demand_charge_", CONF_DEMAND_CHARGE, ERROR_AMOUNT_INVALID),
    ("co2_", CONF_CO2_FACTOR, ERROR_AMOUNT_INVALID),
)
_INTENSITY_CODES: Final = (("co2_", CONF_CO2_ENTITY, ERROR_ENTITY_NOT_NUMERIC),)


class TariffOptionsError(ValueError):
    """Stored options that do not make a usable tariff or emissions model."""

    def __init__(self, errors: Mapping[str, str]) -> None:
        """Field -> error key."""
        super().__init__(", ".join(f"{field}: {key}" for field, key in errors.items()))
        self.errors = dict(errors)


def _mode[M: StrEnum](options: Mapping[str, Any], key: str, kind: type[M], default: M) -> M | None:
    """The option as a member of `kind`; `default` when unset; None when not a member."""
    value = options.get(key)
    if value is None:
        return default
    try:
        return kind(value)
    except ValueError:
        return None


class _NotANumberError(Exception):
    """An option that should hold a number holds something else."""


def _amount(options: Mapping[str, Any], key: str) -> float | None:
    """The option as a float; None when unset. _NotANumberError when not a finite number."""
    value = options.get(key)
    if value is None or value == "":
        return None
    try:
        number = math.nan if isinstance(value, bool) else float(value)
    except (TypeError, ValueError):
        raise _NotANumberError(key) from None
    if not math.isfinite(number):
        raise _NotANumberError(key)
    return number


def _entity(options: Mapping[str, Any], key: str) -> str | None:
    value = options.get(key)
    return (value.strip() or None) if isinstance(value, str) else None


def _price(
    options: Mapping[str, Any],
    errors: dict[str, str],
    price_key: str,
    prices: TimeSeries | None,
    *,
    dynamic: bool,
    entity_key: str,
) -> PriceModel | None:
    """A flat price from `price_key`, or a dynamic one from `prices` (entity in `entity_key`)."""
    if dynamic:
        if _entity(options, entity_key) is None:
            errors.setdefault(entity_key, ERROR_ENTITY_REQUIRED)
            return None
        return DynamicPrice(prices=prices or {}, max_hold_s=ENTITY_HOLD_S)
    try:
        price = _amount(options, price_key)
    except _NotANumberError:
        errors.setdefault(price_key, ERROR_PRICE_INVALID)
        return None
    if price is None:
        errors.setdefault(price_key, ERROR_PRICE_REQUIRED)
        return None
    return FlatPrice(price=price)


def _time_of_use(options: Mapping[str, Any], errors: dict[str, str]) -> TimeOfUse | None:
    text = options.get(CONF_TOU_SCHEDULE)
    periods, line_problems = parse_schedule(text if isinstance(text, str) else "")
    if line_problems:
        errors.setdefault(CONF_TOU_SCHEDULE, line_problems[0][1])
    try:
        default = _amount(options, CONF_IMPORT_PRICE)
    except _NotANumberError:
        errors.setdefault(CONF_IMPORT_PRICE, ERROR_PRICE_INVALID)
        return None
    if line_problems:
        return None
    return TimeOfUse(periods=tuple(periods), default_price=default)


def _extras(
    options: Mapping[str, Any], errors: dict[str, str], *, priced: bool
) -> tuple[FixedFee | None, DemandCharge | None]:
    """The fixed fee and the demand charge (0 or unset: none)."""
    values: dict[str, float] = {}
    for key in (CONF_FEE_AMOUNT, CONF_DEMAND_CHARGE):
        try:
            values[key] = _amount(options, key) or 0.0
        except _NotANumberError:
            errors.setdefault(key, ERROR_AMOUNT_INVALID)
            continue
        if values[key] and not priced:
            errors.setdefault(key, ERROR_NEEDS_PRICE)
    per = _mode(options, CONF_FEE_PERIOD, FeePeriod, FeePeriod.MONTH)
    if per is None:
        errors.setdefault(CONF_FEE_PERIOD, ERROR_INVALID_CHOICE)
    fee_amount = values.get(CONF_FEE_AMOUNT)
    demand = values.get(CONF_DEMAND_CHARGE)
    fee = FixedFee(amount=fee_amount, per=per or FeePeriod.MONTH) if fee_amount else None
    return fee, DemandCharge(per_kw_month=demand) if demand else None


def _tariff(
    options: Mapping[str, Any],
    errors: dict[str, str],
    *,
    currency: str | None,
    import_prices: TimeSeries | None,
    export_prices: TimeSeries | None,
) -> Tariff | None:
    """The tariff the options describe (None: no price), collecting field errors."""
    price_mode = _mode(options, CONF_PRICE_MODE, PriceMode, PriceMode.NONE)
    export_mode = _mode(options, CONF_EXPORT_MODE, ExportMode, ExportMode.NONE)
    if price_mode is None:
        errors.setdefault(CONF_PRICE_MODE, ERROR_INVALID_CHOICE)
    if export_mode is None:
        errors.setdefault(CONF_EXPORT_MODE, ERROR_INVALID_CHOICE)
    priced = price_mode not in (None, PriceMode.NONE)
    fee, demand = _extras(options, errors, priced=priced)
    if export_mode not in (None, ExportMode.NONE) and not priced:
        errors.setdefault(CONF_EXPORT_MODE, ERROR_NEEDS_PRICE)
    if price_mode in (None, PriceMode.NONE) or export_mode is None:
        return None
    import_price: PriceModel | None
    if price_mode is PriceMode.TIME_OF_USE:
        import_price = _time_of_use(options, errors)
    else:
        import_price = _price(
            options,
            errors,
            CONF_IMPORT_PRICE,
            import_prices,
            dynamic=price_mode is PriceMode.ENTITY,
            entity_key=CONF_PRICE_ENTITY,
        )
    export_price: PriceModel | None = None
    if export_mode is not ExportMode.NONE:
        export_price = _price(
            options,
            errors,
            CONF_EXPORT_PRICE,
            export_prices,
            dynamic=export_mode is ExportMode.ENTITY,
            entity_key=CONF_EXPORT_PRICE_ENTITY,
        )
    if import_price is None or errors:
        return None
    return Tariff(
        import_price=import_price,
        export_price=export_price,
        fee=fee,
        demand_charge=demand,
        currency=currency,
    )


def _emissions(
    options: Mapping[str, Any], errors: dict[str, str], *, intensity: TimeSeries | None
) -> Emissions | None:
    mode = _mode(options, CONF_CO2_MODE, Co2Mode, Co2Mode.NONE)
    if mode is None:
        errors.setdefault(CONF_CO2_MODE, ERROR_INVALID_CHOICE)
        return None
    source: Co2Factor | Co2Intensity
    if mode is Co2Mode.NONE:
        return None
    if mode is Co2Mode.ENTITY:
        if _entity(options, CONF_CO2_ENTITY) is None:
            errors.setdefault(CONF_CO2_ENTITY, ERROR_ENTITY_REQUIRED)
            return None
        source = Co2Intensity(g_per_kwh=intensity or {}, max_hold_s=ENTITY_HOLD_S)
    else:
        try:
            factor = _amount(options, CONF_CO2_FACTOR)
        except _NotANumberError:
            errors.setdefault(CONF_CO2_FACTOR, ERROR_AMOUNT_INVALID)
            return None
        source = Co2Factor(kg_per_kwh=DEFAULT_CO2_FACTOR if factor is None else factor)
    return Emissions(
        source=source, count_export_as_avoided=bool(options.get(CONF_CO2_EXPORT_AVOIDED))
    )


def _map_codes(
    codes: Iterable[str],
    errors: dict[str, str],
    table: tuple[tuple[str, str, str], ...] = _TARIFF_CODES,
) -> None:
    for code in codes:
        for prefix, field, key in table:
            if code.startswith(prefix):
                errors.setdefault(field, key)
                break
        else:
            errors.setdefault("base", ERROR_TARIFF_INVALID)


def _check_emissions(emissions: Emissions | None, errors: dict[str, str]) -> None:
    if emissions is not None:
        table = _INTENSITY_CODES if isinstance(emissions.source, Co2Intensity) else _TARIFF_CODES
        _map_codes(validate_emissions(emissions), errors, table)


def problems(options: Mapping[str, Any]) -> dict[str, str]:
    """Field -> error key for the tariff step; {} when the options make a usable tariff and
    CO2 model. Entities are only checked for being set: whether they exist and are numeric is
    for the caller (it needs Home Assistant)."""
    errors: dict[str, str] = {}
    tariff = _tariff(options, errors, currency=None, import_prices=None, export_prices=None)
    if tariff is not None:
        _map_codes(validate_tariff(tariff), errors)
    _check_emissions(_emissions(options, errors, intensity=None), errors)
    return errors


def tariff_from_options(
    options: Mapping[str, Any],
    *,
    currency: str | None,
    import_prices: TimeSeries | None = None,
    export_prices: TimeSeries | None = None,
) -> Tariff | None:
    """The tariff of the options; None when no import price is configured (price mode none).

    For the `entity` modes, `import_prices` / `export_prices` are the series (hour start ->
    price, aware datetimes or epoch seconds) the caller sampled from the entity; each price
    holds until the next, for at most `ENTITY_HOLD_S`, with no fallback beyond (see the module
    docstring). Raises `TariffOptionsError` for options the flow would have refused.
    """
    errors: dict[str, str] = {}
    tariff = _tariff(
        options,
        errors,
        currency=currency,
        import_prices=import_prices,
        export_prices=export_prices,
    )
    if tariff is not None:
        _map_codes(validate_tariff(tariff), errors)
    if errors:
        raise TariffOptionsError(errors)
    return tariff


def emissions_from_options(
    options: Mapping[str, Any], *, intensity: TimeSeries | None = None
) -> Emissions | None:
    """How CO2 is counted; None when CO2 mode is none. `intensity` is the series (hour start ->
    g/kWh) sampled from the intensity entity, held like an entity price. Raises
    `TariffOptionsError` for options the flow would have refused."""
    errors: dict[str, str] = {}
    emissions = _emissions(options, errors, intensity=intensity)
    _check_emissions(emissions, errors)
    if errors:
        raise TariffOptionsError(errors)
    return emissions
