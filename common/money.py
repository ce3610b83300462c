"""Money is a Decimal with two places and an ISO 4217 currency code, in every app."""

from __future__ import annotations

import re
from decimal import Decimal

from django.core.validators import RegexValidator

from common.errors import ValidationFailed

CENT = Decimal("0.01")
# DecimalField(max_digits=12, decimal_places=2) holds amounts below 10**10.
AMOUNT_LIMIT = Decimal(10) ** 10
CURRENCY_RE = re.compile(r"^[A-Z]{3}$")
currency_validator = RegexValidator(CURRENCY_RE, "Enter a three-letter ISO 4217 currency code.")


def normalise_currency(raw: str, *, field: str = "currency") -> str:
    """Upper-case the code and require three letters A-Z."""
    code = raw.strip().upper()
    if not CURRENCY_RE.match(code):
        raise ValidationFailed(
            "Invalid currency.", errors={field: ["Enter a three-letter ISO 4217 currency code."]}
        )
    return code


def positive_amount(raw: Decimal, *, field: str = "total") -> Decimal:
    """A finite amount above zero with at most two decimal places, returned with exactly two."""
    if not isinstance(raw, Decimal) or not raw.is_finite():
        raise ValidationFailed("Invalid amount.", errors={field: ["Enter a decimal amount."]})
    if raw <= 0:
        raise ValidationFailed("Invalid amount.", errors={field: ["Must be greater than 0."]})
    if raw >= AMOUNT_LIMIT:
        raise ValidationFailed(
            "Invalid amount.", errors={field: [f"Must be less than {AMOUNT_LIMIT:,}."]}
        )
    if raw != raw.quantize(CENT):
        raise ValidationFailed("Invalid amount.", errors={field: ["Use at most 2 decimal places."]})
    return raw.quantize(CENT)
