"""Filling the replicas from their owners before choreography answers from them."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from correspondence.models import Recipient
from integration import actions
from integration.choreography.replicas import replicas_fill
from integration.models import AuditEntry
from marketing.models import AudienceMember
from sales import services as sales_services
from sales.models import CommunicationReplica, CustomerReplica
from tests.crm.factories import ClientFactory, CommunicationFactory
from tests.marketing.factories import AudienceMemberFactory

pytestmark = pytest.mark.django_db

REGISTERED_AT = datetime(2025, 3, 1, 9, 30, tzinfo=UTC)


def test_every_replica_is_filled_at_the_clients_version() -> None:
    # given two clients, one consenting, with a communication each
    ada = ClientFactory.create(
        email="ada@example.com",
        first_name="Ada",
        last_name="Lovelace",
        phone="+44 1",
        company="Engines",
        marketing_consent=True,
        registered_at=REGISTERED_AT,
        version=4,
    )
    grace = ClientFactory.create(email="grace@example.com", first_name="Grace", version=2)
    first = CommunicationFactory.create(client=ada, subject="Welcome")
    second = CommunicationFactory.create(client=grace, channel="phone", subject="Call")

    # when the replicas are filled
    counts = replicas_fill()

    # then sales, correspondence and marketing hold what crm holds, at crm's versions
    assert counts == {"clients": 2, "communications": 2}
    assert list(
        CustomerReplica.objects.order_by("email").values_list(
            "client_id",
            "email",
            "first_name",
            "last_name",
            "phone",
            "company",
            "marketing_consent",
            "registered_at",
            "client_version",
        )
    ) == [
        (ada.id, "ada@example.com", "Ada", "Lovelace", "+44 1", "Engines", True, REGISTERED_AT, 4),
        (
            grace.id,
            "grace@example.com",
            "Grace",
            grace.last_name,
            "",
            "",
            False,
            grace.registered_at,
            2,
        ),
    ]
    assert sorted(
        CommunicationReplica.objects.values_list("id", "client_id", "channel", "subject")
    ) == sorted([(first.id, ada.id, "email", "Welcome"), (second.id, grace.id, "phone", "Call")])
    assert sorted(
        Recipient.objects.values_list("client_id", "email", "first_name", "client_version")
    ) == sorted(
        [(ada.id, "ada@example.com", "Ada", 4), (grace.id, "grace@example.com", "Grace", 2)]
    )
    assert list(AudienceMember.objects.values_list("client_id", "consent", "client_version")) == [
        (ada.id, True, 4)
    ]


def test_switching_to_choreography_fills_the_replicas_and_audits_the_fill() -> None:
    # given crm holds a client and the mode is orchestration
    ClientFactory.create(email="ada@example.com", marketing_consent=True)
    actions.mode_switch(mode="orchestration", changed_by="user:ops")

    # when a person switches to choreography
    actions.mode_switch(mode="choreography", changed_by="user:ops")

    # then the fill and the switch are audited, in that order
    assert list(AuditEntry.objects.order_by("at").values_list("actor", "action", "detail")) == [
        ("user:ops", "replicas.fill", {"clients": 1, "communications": 0}),
        ("user:ops", "mode.switch", {"from": "orchestration"}),
    ]
    assert CustomerReplica.objects.count() == 1


def test_a_newer_replica_is_left_alone_and_an_older_one_is_brought_up_to_date() -> None:
    # given sales holds a newer copy of one client and an older copy of another, and marketing
    # already saw the consenting one withdraw at a later version
    newer = ClientFactory.create(email="new@example.com", first_name="Master", version=2)
    older = ClientFactory.create(
        email="old@example.com", first_name="Master", marketing_consent=True, version=5
    )
    for client, version in ((newer, 7), (older, 1)):
        sales_services.customer_replica_apply(
            client_id=client.id,
            client_version=version,
            profile={
                "email": f"replica-{client.email}",
                "first_name": "Replica",
                "last_name": client.last_name,
                "phone": "",
                "company": "",
                "marketing_consent": False,
                "registered_at": client.registered_at,
            },
        )
    member = AudienceMemberFactory.create(client_id=older.id, consent=False, client_version=9)

    # when the replicas are filled
    replicas_fill()

    # then the newer copies stay as they are, the older one is at crm's version
    assert sorted(
        CustomerReplica.objects.values_list("client_id", "first_name", "client_version")
    ) == sorted([(newer.id, "Replica", 7), (older.id, "Master", 5)])
    member.refresh_from_db()
    assert (member.consent, member.client_version) == (False, 9)


def test_filling_twice_changes_nothing_more() -> None:
    ClientFactory.create(marketing_consent=True)
    CommunicationFactory.create()
    replicas_fill()
    before = (
        list(CustomerReplica.objects.values_list("client_id", "client_version", "as_of")),
        CommunicationReplica.objects.count(),
        Recipient.objects.count(),
        AudienceMember.objects.count(),
    )

    replicas_fill()

    assert (
        list(CustomerReplica.objects.values_list("client_id", "client_version", "as_of")),
        CommunicationReplica.objects.count(),
        Recipient.objects.count(),
        AudienceMember.objects.count(),
    ) == before
