"""Model validation turned into the domain's error type, so services never leak Django's."""

from __future__ import annotations

from collections.abc import Iterable

from django.core.exceptions import ValidationError
from django.db import models

from common.errors import ValidationFailed


def full_clean_or_raise(instance: models.Model, *, exclude: Iterable[str] = ()) -> None:
    """Run field validation only: uniqueness is left to the database, which answers races."""
    try:
        instance.full_clean(
            exclude=list(exclude), validate_unique=False, validate_constraints=False
        )
    except ValidationError as error:
        raise ValidationFailed("Invalid input.", errors=error.message_dict) from None
