"""The demo's business data (`make run`): clients with history in every component, campaigns.
Every row is written through the owning app's services and the gateway's registry, so the demo
data obeys the same rules as real data. (The staff face adds the logins: staff/demo.py.)"""

from __future__ import annotations

import random
import uuid
from datetime import date, timedelta
from decimal import Decimal

from django.utils import timezone

from crm import services as crm_services
from integration.gateway import registry_add
from marketing import services as marketing_services
from sales import services as sales_services

PEOPLE = [
    ("Ada", "Lovelace", "Analytical Engines"),
    ("Grace", "Hopper", "Compiler Works"),
    ("Alan", "Turing", "Bletchley Instruments"),
    ("Katherine", "Johnson", "Orbital Maths"),
    ("Edsger", "Dijkstra", "Shortest Paths BV"),
    ("Barbara", "Liskov", "Substitution Ltd"),
    ("Donald", "Knuth", "Literate Press"),
    ("Margaret", "Hamilton", "Apollo Software"),
    ("Tim", "Berners-Lee", "Hypertext & Co"),
    ("Radia", "Perlman", "Spanning Trees"),
    ("Ken", "Thompson", ""),
    ("Frances", "Allen", "Optimising Compilers"),
]


def business_demo_load() -> None:
    _clients(random.Random(1815))
    _campaigns()


def _clients(rng: random.Random) -> None:
    now = timezone.now()
    for index, (first, last, company) in enumerate(PEOPLE):
        client_id = uuid.UUID(int=rng.getrandbits(128), version=4)
        registered = now - timedelta(days=400 - index * 30)
        email = f"{first}.{last}@example.com".lower()
        consent = index % 3 != 0
        crm_services.client_create(
            client_id=client_id,
            email=email,
            first_name=first,
            last_name=last,
            phone=f"+44 20 7946 {1000 + index:04d}",
            company=company,
            marketing_consent=consent,
            registered_at=registered,
        )
        registry_add(client_id=client_id, email=email)
        sales_services.account_open(client_id=client_id)
        crm_services.communication_record(
            client_id=client_id,
            channel="email",
            subject="Welcome to Ensemble",
            occurred_at=registered,
            reference=f"demo-welcome-{index}",
        )
        for order in range(index % 4):
            total = Decimal(rng.randrange(1_500, 40_000)) / 100
            when = registered + timedelta(days=20 * (order + 1))
            sales_services.purchase_record(
                client_id=client_id,
                order_ref=f"DEMO-{index:02d}{order:02d}",
                total=total,
                currency="EUR",
                purchased_at=when,
            )
            crm_services.client_add_purchase_value(client_id=client_id, total=total, currency="EUR")
        if index % 2 == 0:
            crm_services.communication_record(
                client_id=client_id,
                channel="phone",
                subject="Follow-up call",
                body="Asked about the spring range.",
                occurred_at=now - timedelta(days=index + 1),
            )
        if consent:
            marketing_services.audience_add(client_id=client_id, email=email)


def _campaigns() -> None:
    today = date.today()
    spring = marketing_services.campaign_create(
        name="Spring launch",
        channel="email",
        starts_on=today - timedelta(days=60),
        ends_on=today + timedelta(days=30),
        description="New range, early-bird discount.",
    )
    marketing_services.campaign_create(
        name="Trade fair Berlin",
        channel="event",
        starts_on=today + timedelta(days=45),
    )
    marketing_services.lead_create(
        email="curious@example.com",
        first_name="Curious",
        last_name="Visitor",
        source="campaign",
        campaign_id=spring.id,
    )
