"""The tariff form's error codes, one per problem a user can fix (translated in en.json's
`options.error`, keyed by these values)."""

from __future__ import annotations

from typing import Final

ERROR_TOU_SYNTAX: Final = "tou_syntax"
ERROR_TOU_NOT_QUARTER_HOUR: Final = "tou_not_quarter_hour"
ERROR_TOU_PERIOD_EMPTY: Final = "tou_period_empty"
ERROR_TOU_PRICE_INVALID: Final = "tou_price_invalid"
ERROR_TOU_MONTHS_INVALID: Final = "tou_months_invalid"
ERROR_TOU_OVERLAP: Final = "tou_overlap"
ERROR_TOU_NOT_COVERED: Final = "tou_not_covered"
ERROR_PRICE_REQUIRED: Final = "price_required"
ERROR_PRICE_INVALID: Final = "price_invalid"
ERROR_ENTITY_REQUIRED: Final = "entity_required"
ERROR_ENTITY_NOT_FOUND: Final = "entity_not_found"  # the flow's check (HA side)
ERROR_ENTITY_NOT_NUMERIC: Final = "entity_not_numeric"  # the flow's check (HA side)
ERROR_AMOUNT_INVALID: Final = "amount_invalid"
ERROR_NEEDS_PRICE: Final = "needs_price"  # export, fee or demand charge without an import price
ERROR_INVALID_CHOICE: Final = "invalid_choice"
ERROR_TARIFF_INVALID: Final = "tariff_invalid"  # anything else validate_tariff finds (base)
