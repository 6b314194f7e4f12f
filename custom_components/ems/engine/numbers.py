"""Facts every stage shares: what a usable number is, and the units of time, power and energy."""

from __future__ import annotations

import math
from typing import Final

QUARTER_HOUR_S: Final = 900  # demand is averaged, and tariffs change, on the quarter hour
HOUR_S: Final = 3600
W_PER_KW: Final = 1000.0
J_PER_KWH: Final = W_PER_KW * HOUR_S
# Two sums of the same float readings that differ by less than this are the same number.
FLOAT_TOLERANCE: Final = 1e-9
# Entity prices, listed prices and ledger samples are kept this long: the ledger can price the
# last two days again when a price list is revised.
REPRICE_WINDOW_S: Final = 48 * HOUR_S


def finite(value: object) -> float | None:
    """The value as a float if it is a finite number, else None (bools, text, NaN, ±inf and
    integers too large for a float are no numbers to a stage)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


def without_float_noise(value: float) -> float:
    """The value at 12 significant digits. A product or sum of readings (a unit conversion, a
    scale factor) carries float noise in its 16th digit (12.345 Wh to kWh is
    0.012345000000000001); no meter resolves a 12th."""
    return float(f"{value:.12g}") + 0.0
