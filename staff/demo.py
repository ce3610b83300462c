"""Demo data for `make run`: one login per team, clients with history, campaigns.

Loaded once (the admin login marks it loaded). Every row is written through the owning app's
services, so the demo data obeys the same rules as real data.
"""

from __future__ import annotations

import random
import uuid
from datetime import date, timedelta
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import transaction
from django.utils import timezone

from crm import services as crm_services
from integration.gateway import registry_add
from marketing import services as marketing_services
from sales import services as sales_services
from staff.teams import teams_ensure

DEMO_PASSWORD = "ensemble-demo"
DEMO_USERS = [
    ("admin", "superuser: every page and the admin"),
    ("marketing", "Marketing: registers clients, runs campaigns"),
    ("sales", "Sales: sees clients, records purchases"),
    ("relations", "Customer Relations: sees clients, adds communications"),
    ("operations", "Operations: follows processes and acts on them"),
]
TEAM_OF = {
    "marketing": "Marketing",
    "sales": "Sales",
    "relations": "Customer Relations",
    "operations": "Operations",
}
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


def demo_loaded() -> bool:
    return get_user_model().objects.filter(username="admin").exists()


def _users(groups: dict[str, Group]) -> None:
    User = get_user_model()
    User.objects.create_superuser("admin", "admin@ensemble.invalid", DEMO_PASSWORD)
    for username, team in TEAM_OF.items():
        user = User.objects.create_user(
            username,
            f"{username}@ensemble.invalid",
            DEMO_PASSWORD,
            is_staff=True,
            first_name=team.split()[0],
        )
        user.groups.add(groups[team])


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


@transaction.atomic
def demo_load() -> bool:
    """Load the demo data unless it is there already; True when it was loaded now."""
    if demo_loaded():
        return False
    _users(teams_ensure())
    _clients(random.Random(1815))
    _campaigns()
    return True
