"""Every read of Customer Relations."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import reduce
from operator import and_
from uuid import UUID

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db.models import Q, QuerySet

from common import plain_sql
from common.emails import normalise_email
from common.errors import NotFound
from crm.models import Client, Communication, ErasedClient


def client_get(*, client_id: UUID) -> Client:
    client = Client.objects.filter(id=client_id).first()
    if client is None:
        raise NotFound("Client not found.", extra={"client_id": str(client_id)})
    return client


def client_get_by_email(*, email: str) -> Client | None:
    return Client.objects.filter(email=normalise_email(email)).first()


# Asked by every registration: in plain SQL (common/plain_sql.py says why).
_ID_BY_EMAIL_SQL = f"SELECT id FROM {Client._meta.db_table} WHERE email = %s"


# The same probe as a condition another statement embeds (one parameter: the normalised address):
# a registration claims its email in the gateway's registry unless crm holds it, in one INSERT.
EMAIL_HELD_SQL = f"EXISTS (SELECT 1 FROM {Client._meta.db_table} WHERE email = %s)"


def client_id_by_email(*, email: str) -> UUID | None:
    """The id of the client holding this address (by its unique index), or None."""
    row = plain_sql.fetch_one(_ID_BY_EMAIL_SQL, [normalise_email(email)])
    return plain_sql.uuid_of(row[0]) if row is not None else None


def client_search(*, query: str) -> QuerySet[Client]:
    """Clients matching every whitespace-separated term in their names, email or company; an
    empty query matches everyone."""
    terms = query.split()
    if not terms:
        return Client.objects.all()
    if len(terms) == 1 and _is_email(terms[0]):
        # A whole address is found by its unique index (addresses are stored normalised).
        return Client.objects.filter(email=normalise_email(terms[0]))
    return Client.objects.filter(reduce(and_, (_term_matches(term) for term in terms)))


def _is_email(term: str) -> bool:
    try:
        validate_email(term)
    except ValidationError:
        return False
    return True


def _term_matches(term: str) -> Q:
    # search_text joins the names, the email and the company with spaces, which a term never
    # holds: a term matches when it is found in one of them
    return Q(search_text__icontains=term)


@dataclass(frozen=True)
class ClientCard:
    """What crm tells the orchestrator about a client for its details."""

    id: UUID
    version: int
    email: str
    first_name: str
    last_name: str
    phone: str
    company: str
    marketing_consent: bool
    registered_at: datetime


@dataclass(frozen=True)
class CommunicationEntry:
    id: UUID
    channel: str
    subject: str
    occurred_at: datetime


# Every orchestrated details request reads these two, in plain SQL (common/plain_sql.py says why).
_CARD_SQL = (
    "SELECT id, version, email, first_name, last_name, phone, company, marketing_consent,"
    f" registered_at FROM {Client._meta.db_table} WHERE id = %s"
)
_COMMUNICATIONS_SQL = (
    f"SELECT id, channel, subject, occurred_at FROM {Communication._meta.db_table}"
    " WHERE client_id = %s ORDER BY occurred_at DESC, recorded_at DESC"
)


def client_card(*, client_id: UUID) -> ClientCard | None:
    row = plain_sql.fetch_one(_CARD_SQL, [plain_sql.bound(Client, "id", client_id)])
    if row is None:
        return None
    id_, version, email, first, last, phone, company, consent, registered_at = row
    return ClientCard(
        id=plain_sql.uuid_of(id_),
        version=int(version),
        email=email,
        first_name=first,
        last_name=last,
        phone=phone,
        company=company,
        marketing_consent=bool(consent),
        registered_at=plain_sql.moment(registered_at),
    )


def communication_entries(*, client_id: UUID) -> list[CommunicationEntry]:
    """A client's communications, newest first (as `communication_list` orders them)."""
    rows = plain_sql.fetch_all(
        _COMMUNICATIONS_SQL, [plain_sql.bound(Communication, "client_id", client_id)]
    )
    return [
        CommunicationEntry(plain_sql.uuid_of(id_), channel, subject, plain_sql.moment(at))
        for id_, channel, subject, at in rows
    ]


def communication_list(*, client_id: UUID) -> QuerySet[Communication]:
    return Communication.objects.filter(client_id=client_id).order_by(
        "-occurred_at", "-recorded_at"
    )


def client_is_erased(*, client_id: UUID) -> bool:
    return ErasedClient.objects.filter(client_id=client_id).exists()
