"""What each orchestrated step does, in the component that carries it out.

Each command calls one service of its component and returns the ids (and, where a later step needs
them, the few values) the orchestrator hands on. A domain refusal (ApplicationError) fails the step
at once, except NotFound (what is missing may be on its way); anything else is retried.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any
from uuid import UUID

from django.utils.dateparse import parse_datetime

from correspondence import services as correspondence_services
from crm import services as crm_services
from integration.core import erasure
from integration.orchestrator.context import StepContext
from marketing import services as marketing_services
from sales import services as sales_services

PROFILE_FIELDS = ("email", "first_name", "last_name", "phone", "company", "marketing_consent")


def create_client(context: StepContext) -> dict[str, Any]:
    profile = {key: context.input[key] for key in PROFILE_FIELDS if key in context.input}
    client = crm_services.client_create(client_id=context.client_id, **profile)
    return {"version": client.version}


def open_account(context: StepContext) -> dict[str, Any]:
    sales_services.account_open(client_id=context.client_id)
    return {}


def send_welcome_email(context: StepContext) -> dict[str, Any]:
    """Queue the welcome email; it is sent after the step's commit (`deliver_email`)."""
    queued = correspondence_services.message_queue_claimed(
        client_id=context.client_id,
        recipient=context.input["email"],
        template_key="welcome",
        context={"first_name": context.input["first_name"]},
        reference=str(context.process_id),
    )
    return _intent(queued)


def _intent(queued: correspondence_services.Queued) -> dict[str, Any]:
    """What `deliver_email` is handed after commit, in the same worker."""
    return {"message_id": str(queued.message.id), "claimed": queued.claimed}


def deliver_email(queued: dict[str, Any], settle: Callable[[str, dict[str, Any]], None]) -> None:
    """After the step's commit: send the queued message. The step is done in the transaction
    that records it sent (or cancelled: its client is erased)."""
    correspondence_services.message_deliver(
        message_id=UUID(queued["message_id"]),
        on_settled=lambda message: settle(message.status, _sent(message)),
        claimed=bool(queued.get("claimed")),
    )


def record_welcome_email(context: StepContext) -> dict[str, Any]:
    return _record_email(context, context.results["send_welcome_email"])


def add_to_audience(context: StepContext) -> dict[str, Any]:
    applied = marketing_services.audience_apply(
        client_id=context.client_id,
        email=context.input["email"],
        consent=True,
        client_version=context.results["create_client"]["version"],
    )
    return {"applied": applied}


def record_purchase(context: StepContext) -> dict[str, Any]:
    order = context.input
    purchased_at = parse_datetime(order["purchased_at"]) if order.get("purchased_at") else None
    purchase, created = sales_services.purchase_record(
        client_id=context.client_id,
        order_ref=order["order_ref"],
        total=Decimal(order["total"]),
        currency=order["currency"],
        purchased_at=purchased_at,
    )
    return {"purchase_id": str(purchase.id), "created": created}


def add_client_value(context: StepContext) -> dict[str, Any]:
    client = crm_services.client_add_purchase_value(
        client_id=context.client_id,
        total=Decimal(context.input["total"]),
        currency=context.input["currency"],
    )
    # The receipt goes to the address crm holds: the orchestrator hands it to correspondence.
    return {"email": client.email, "first_name": client.first_name, "version": client.version}


def send_receipt(context: StepContext) -> dict[str, Any]:
    contact = context.results["add_client_value"]
    queued = correspondence_services.message_queue_claimed(
        client_id=context.client_id,
        recipient=contact["email"],
        template_key="receipt",
        context={
            "first_name": contact["first_name"],
            "order_ref": context.input["order_ref"],
            "total": context.input["total"],
            "currency": context.input["currency"],
        },
        reference=str(context.process_id),
    )
    return _intent(queued)


def record_receipt(context: StepContext) -> dict[str, Any]:
    return _record_email(context, context.results["send_receipt"])


def update_client(context: StepContext) -> dict[str, Any]:
    client = crm_services.client_update(client_id=context.client_id, **context.input)
    return {
        "version": client.version,
        "email": client.email,
        "marketing_consent": client.marketing_consent,
    }


def sync_audience(context: StepContext) -> dict[str, Any]:
    """Two updates of one client run as two processes: the audience takes the newer version of
    the client whichever of them reaches marketing last."""
    client = context.results["update_client"]
    applied = marketing_services.audience_apply(
        client_id=context.client_id,
        email=client["email"],
        consent=client["marketing_consent"],
        client_version=client["version"],
    )
    return {"in_audience": client["marketing_consent"], "applied": applied}


def erase_crm(context: StepContext) -> dict[str, Any]:
    crm_services.client_erase(client_id=context.client_id)
    return {}


def erase_sales(context: StepContext) -> dict[str, Any]:
    sales_services.client_sales_erase(client_id=context.client_id)
    return {}


def erase_marketing(context: StepContext) -> dict[str, Any]:
    marketing_services.marketing_erase_client(client_id=context.client_id)
    return {}


def erase_correspondence(context: StepContext) -> dict[str, Any]:
    correspondence_services.message_erase_client(client_id=context.client_id)
    return {}


def erase_traces(context: StepContext) -> dict[str, Any]:
    return erasure.scrub_integration(client_id=context.client_id)


def _sent(message: Any) -> dict[str, Any]:
    return {
        "status": message.status,
        "message_id": str(message.id),
        "subject": message.subject,
        "sent_at": message.sent_at.isoformat() if message.sent_at else None,
    }


def _record_email(context: StepContext, sent: dict[str, Any]) -> dict[str, Any]:
    communication = crm_services.communication_record(
        client_id=context.client_id,
        channel="email",
        subject=sent["subject"],
        occurred_at=parse_datetime(sent["sent_at"]) if sent.get("sent_at") else None,
        reference=sent["message_id"],
    )
    return {"communication_id": str(communication.id)}
