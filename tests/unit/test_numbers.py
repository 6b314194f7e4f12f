"""The one test of a usable number that every stage shares."""

from __future__ import annotations

import math

import pytest

from custom_components.ems.engine.numbers import HOUR_S, J_PER_KWH, W_PER_KW, finite


@pytest.mark.parametrize("value", [0, -3, 2.5, 1e300, 10**15])
def test_finite_numbers_pass_as_floats(value: float) -> None:
    """Integers and finite floats come back as floats, unchanged."""
    assert finite(value) == float(value)
    assert isinstance(finite(value), float)


@pytest.mark.parametrize(
    "value", [None, True, False, "1.5", b"1", math.nan, math.inf, -math.inf, 10**400, [1.0]]
)
def test_anything_else_is_no_number(value: object) -> None:
    """Bools, text, NaN, infinities and integers too large for a float are no numbers."""
    assert finite(value) is None


def test_the_units_agree() -> None:
    """A kWh is a kW for an hour."""
    assert J_PER_KWH == W_PER_KW * HOUR_S == 3.6e6
