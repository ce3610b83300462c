"""marketing's choreography receivers, called directly with an event: the audience they keep
in marketing (and that they publish nothing)."""

from __future__ import annotations

import uuid

import pytest

from integration.events import ClientCreated, ClientErased, ClientUpdated
from marketing import handlers
from marketing.models import DEFAULT_AUDIENCE, AudienceMember, Lead
from tests.marketing.factories import AudienceMemberFactory, LeadFactory
from tests.support.events import published

pytestmark = pytest.mark.django_db


def client_state(
    event_type: type[ClientCreated] | type[ClientUpdated],
    client_id: uuid.UUID,
    version: int,
    *,
    consent: bool,
    email: str = "Ada@EXAMPLE.com",
) -> ClientCreated | ClientUpdated:
    return event_type(
        client_id=str(client_id),
        client_version=version,
        registered_at="2026-01-01T08:00:00+00:00",
        email=email,
        first_name="Ada",
        last_name="Lovelace",
        phone="",
        company="",
        marketing_consent=consent,
    )


def membership(member: AudienceMember) -> tuple[object, ...]:
    member.refresh_from_db()
    return (member.email, member.consent, member.left_at is None, member.client_version)


# --- sync_audience -------------------------------------------------------------------------------


def test_sync_audience_on_client_created_with_consent_adds_the_client() -> None:
    # given a new client who consents
    client_id = uuid.uuid4()

    # when marketing handles ClientCreated
    event = client_state(ClientCreated, client_id, version=1, consent=True)
    handlers.sync_audience(sender=ClientCreated, event=event)

    # then the client is in the default audience, at version 1, and nothing is published
    member = AudienceMember.objects.get()
    assert (member.audience, member.client_id) == (DEFAULT_AUDIENCE, client_id)
    assert membership(member) == ("Ada@example.com", True, True, 1)
    assert published() == []


def test_sync_audience_on_client_created_without_consent_writes_nothing() -> None:
    # given a new client who does not consent
    event = client_state(ClientCreated, uuid.uuid4(), version=1, consent=False)

    # when marketing handles ClientCreated
    handlers.sync_audience(sender=ClientCreated, event=event)

    # then nobody joins, and nothing is remembered
    assert AudienceMember.objects.count() == 0
    assert published() == []


def test_sync_audience_on_a_newer_client_updated_withdrawing_consent_makes_the_client_leave() -> (
    None
):
    # given a member at version 1
    member = AudienceMemberFactory.create(email="ada@example.com", consent=True, client_version=1)

    # when ClientUpdated at version 2 withdraws consent
    event = client_state(
        ClientUpdated, member.client_id, version=2, consent=False, email="ada@example.com"
    )
    handlers.sync_audience(sender=ClientUpdated, event=event)

    # then the member has left, at version 2 (the row stays so an older event cannot re-add it)
    assert membership(member) == ("ada@example.com", False, False, 2)
    assert AudienceMember.objects.count() == 1
    assert published() == []


def test_sync_audience_ignores_a_stale_client_updated() -> None:
    # given a member who left at version 3
    member = AudienceMemberFactory.create(email="ada@example.com", consent=False, client_version=3)
    AudienceMember.objects.filter(pk=member.pk).update(left_at=member.joined_at)
    before = membership(member)

    # when ClientUpdated at version 2, with consent, arrives late
    event = client_state(
        ClientUpdated, member.client_id, version=2, consent=True, email="old@example.com"
    )
    handlers.sync_audience(sender=ClientUpdated, event=event)

    # then the membership is unchanged
    assert membership(member) == before == ("ada@example.com", False, False, 3)
    assert published() == []


# --- erase_client --------------------------------------------------------------------------------


def test_erase_client_removes_the_memberships_and_blanks_the_converted_leads() -> None:
    # given a client in the audience, converted from a lead, and another member
    member = AudienceMemberFactory.create()
    lead = LeadFactory.create(converted_client_id=member.client_id)
    other = AudienceMemberFactory.create()
    other_lead = LeadFactory.create()

    # when ClientErased arrives
    handlers.erase_client(sender=ClientErased, event=ClientErased(client_id=str(member.client_id)))

    # then the client's membership is gone and its lead keeps no personal data
    assert list(AudienceMember.objects.all()) == [other]
    lead.refresh_from_db()
    assert (lead.email, lead.first_name, lead.last_name) == ("", "", "")
    # and the others are untouched
    untouched = Lead.objects.get(pk=other_lead.pk)
    assert (untouched.email, untouched.first_name, untouched.last_name) == (
        other_lead.email,
        "Grace",
        "Hopper",
    )
    assert published() == []
