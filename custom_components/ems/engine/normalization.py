"""Normalization: every value leaves in the canonical unit of its quantity (DESIGN.md §3).

Profiles keep the units the device uses (kW, Wh, mA, …). pint does the conversion; nothing
here multiplies by a hand-written factor.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import cache
import math
from tokenize import TokenError

import pint

from .cleaning import REASON_OUT_OF_RANGE
from .model import Quality, Reading
from .numbers import without_float_noise

_REGISTRY: pint.UnitRegistry[float] = pint.UnitRegistry()
# Reactive power gets a dimension of its own so that it can never be converted into watts.
_REGISTRY.define("var = [reactive_power] = VAr")
_REGISTRY.define("varh = var * hour = VArh")
# Apparent energy (SunSpec meters' VAh totals) is no energy in watt-hours either.
_REGISTRY.define("VAh = [apparent_energy]")

_POWER = _REGISTRY.watt.dimensionality
_ENERGY = _REGISTRY.kilowatt_hour.dimensionality
_CANONICAL_BY_DIMENSION: dict[object, str] = {
    _ENERGY: "kWh",
    _REGISTRY.var.dimensionality: "var",
    _REGISTRY.varh.dimensionality: "kvarh",
    _REGISTRY.VAh.dimensionality: "kVAh",
    _REGISTRY.ohm.dimensionality: "Ω",
    _REGISTRY.volt.dimensionality: "V",
    _REGISTRY.ampere.dimensionality: "A",
    _REGISTRY.hertz.dimensionality: "Hz",
    _REGISTRY.degree_Celsius.dimensionality: "°C",
    _REGISTRY.ampere_hour.dimensionality: "Ah",
    _REGISTRY.second.dimensionality: "s",
}
_PINT_SPELLING = {"°C": "degC", "%": "percent", "VA": "volt_ampere", "Ω": "ohm"}


class UnitError(ValueError):
    """A unit that pint does not know or that has no canonical counterpart."""


@dataclass(frozen=True, slots=True)
class Conversion:
    """An affine map into the canonical unit; affine because of °F and K."""

    unit: str | None
    factor: float = 1.0
    offset: float = 0.0

    def apply(self, value: float) -> float:
        """Convert a value from the profile's unit; identity keeps integers integers."""
        if self.factor == 1.0 and self.offset == 0.0:
            return value
        return without_float_noise(value * self.factor + self.offset)


@cache
def conversion_for(unit: str | None) -> Conversion:
    """How to bring a value in `unit` to its canonical unit; cached per unit string."""
    if unit is None or unit == "%":
        return Conversion(unit)
    try:
        quantity = _REGISTRY.Quantity(1.0, _PINT_SPELLING.get(unit, unit))
    # pint parses the text as an expression: besides unknown names, text that is no unit at all
    # ("1/0", "$", an open bracket) fails inside its tokenizer and evaluator.
    except (
        pint.errors.UndefinedUnitError,
        AttributeError,
        ValueError,
        TypeError,
        AssertionError,
        ZeroDivisionError,
        TokenError,
    ) as err:
        raise UnitError(f"unknown unit '{unit}'") from err
    canonical = _canonical_unit(quantity)
    target = _PINT_SPELLING.get(canonical, canonical)
    zero = _REGISTRY.Quantity(0.0, quantity.units).to(target).magnitude
    one = _REGISTRY.Quantity(1.0, quantity.units).to(target).magnitude
    return Conversion(canonical, factor=float(one - zero), offset=float(zero))


def canonical_unit(unit: str | None) -> str | None:
    """The unit an entity reports for a channel declared in `unit`."""
    return conversion_for(unit).unit


def _canonical_unit(quantity: pint.Quantity[float]) -> str:
    dimensionality = quantity.dimensionality
    if dimensionality == _POWER:
        # Apparent power shares watts' dimension in pint; the unit's name tells them apart.
        return "VA" if "volt_ampere" in str(quantity.units) else "W"
    if dimensionality in _CANONICAL_BY_DIMENSION:
        return _CANONICAL_BY_DIMENSION[dimensionality]
    raise UnitError(f"unit '{quantity.units}' has no canonical unit")


def normalize(reading: Reading) -> Reading:
    """Bring a reading into its canonical unit; text and missing values keep their unit."""
    conversion = conversion_for(reading.unit)
    if conversion.unit == reading.unit and conversion.factor == 1.0 and conversion.offset == 0.0:
        return reading  # already canonical: most channels, every cycle
    if not isinstance(reading.value, float | int):
        return replace(reading, unit=conversion.unit)
    value = conversion.apply(reading.value)
    if not math.isfinite(value) and reading.usable:
        # 1e306 kW is a finite reading but no finite number of watts.
        return replace(reading, unit=conversion.unit, quality=Quality.REJECTED,
                       reason=REASON_OUT_OF_RANGE)  # fmt: skip
    return replace(reading, value=value, unit=conversion.unit)
