"""Client details, one shape in both modes (shop-api.md, GET /api/v1/clients/<id>/)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from sales import selectors as sales_selectors

PROFILE_KEYS = ("email", "first_name", "last_name", "phone", "company", "registered_at")


class ReplicaBehind(Exception):
    """The replica has not received the client yet, or not at the version asked for: the
    gateway asks the owner instead."""


def at_version(min_version: int | None) -> str:
    return f" at version {min_version}" if min_version is not None else ""


def compose(
    *,
    client_id: UUID,
    profile: dict[str, Any] | None,
    communications: list[dict[str, Any]],
    purchases: list[dict[str, Any]],
    served_by: dict[str, Any],
) -> dict[str, Any]:
    details: dict[str, Any] = {"id": str(client_id)}
    for key in PROFILE_KEYS:
        details[key] = profile.get(key) if profile else None
    details["marketing_consent"] = profile.get("marketing_consent") if profile else None
    details["communications"] = communications
    details["purchases"] = purchases
    details["served_by"] = served_by
    return details


def purchases_of(client_id: UUID) -> list[dict[str, Any]]:
    """A client's purchases in the details shape, newest first (sales' own data)."""
    return [purchase_shape(item) for item in sales_selectors.purchase_rows(client_id=client_id)]


def purchase_shape(purchase: Any) -> dict[str, Any]:
    """A purchase (a sales Purchase, or a row of its history) in the details shape."""
    return {
        "order_ref": purchase.order_ref,
        "total": f"{purchase.total:.2f}",
        "currency": purchase.currency,
        "purchased_at": purchase.purchased_at.isoformat(),
    }
