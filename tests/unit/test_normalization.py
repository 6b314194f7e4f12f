"""pint brings every unit the profiles use to the canonical units of DESIGN.md §3."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from custom_components.ems.engine.model import Quality, Reading
from custom_components.ems.engine.normalization import UnitError, canonical_unit, normalize
from custom_components.ems.engine.profiles.loader import COUNTER_UNITS


@pytest.mark.parametrize(
    ("unit", "value", "canonical", "expected"),
    [
        ("W", 1500.0, "W", 1500.0),
        ("kW", 1.5, "W", 1500.0),
        ("var", 200.0, "var", 200.0),
        ("kvar", 0.2, "var", 200.0),
        ("VA", 300.0, "VA", 300.0),
        ("kVA", 0.3, "VA", 300.0),
        ("Wh", 1500.0, "kWh", 1.5),
        ("kWh", 1.5, "kWh", 1.5),
        ("MWh", 0.0015, "kWh", 1.5),
        ("kvarh", 2.0, "kvarh", 2.0),
        ("varh", 2000.0, "kvarh", 2.0),
        ("V", 230.0, "V", 230.0),
        ("mV", 230000.0, "V", 230.0),
        ("A", 5.0, "A", 5.0),
        ("mA", 5000.0, "A", 5.0),
        ("Hz", 50.0, "Hz", 50.0),
        ("°C", 21.5, "°C", 21.5),
        ("degF", 212.0, "°C", 100.0),
        ("%", 55.0, "%", 55.0),
        ("s", 90.0, "s", 90.0),
        ("min", 1.5, "s", 90.0),
        (None, 0.98, None, 0.98),
    ],
)
def test_conversion_to_canonical_unit(
    unit: str | None, value: float, canonical: str | None, expected: float
) -> None:
    """Each unit lands in its canonical unit with the right value."""
    reading = Reading(
        device_id="d",
        channel="c",
        timestamp=datetime.now(UTC),
        value=value,
        quality=Quality.OK,
        unit=unit,
    )
    normalized = normalize(reading)
    assert normalized.unit == canonical
    assert normalized.value == pytest.approx(expected)


def test_reactive_power_never_becomes_watts() -> None:
    """var is its own dimension; it is not silently treated as W."""
    assert canonical_unit("kvar") == "var"
    assert canonical_unit("kW") == "W"


@pytest.mark.parametrize("unit", ["parsec/fortnight", "bananas", "kg"])
def test_unknown_or_unsupported_unit(unit: str) -> None:
    """A unit without a canonical counterpart is an error naming the unit."""
    with pytest.raises(UnitError, match="unit"):
        canonical_unit(unit)


@pytest.mark.parametrize("unit", sorted(COUNTER_UNITS))
def test_every_counter_unit_has_a_canonical_unit(unit: str) -> None:
    """The units that make a channel a counter are all units the validator accepts."""
    assert canonical_unit(unit) in {"kWh", "kvarh", "kVAh", "Ah"}
