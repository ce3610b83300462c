"""Demo data for `make run`: one login per team, clients with history, campaigns.

Loaded once (the admin login marks it loaded). The logins and their teams are the staff face's;
the clients and campaigns are written by integration/demo.py through the owning apps' services,
so the demo data obeys the same rules as real data.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import transaction

from integration.demo import business_demo_load
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


@transaction.atomic
def demo_load() -> bool:
    """Load the demo data unless it is there already; True when it was loaded now."""
    if demo_loaded():
        return False
    _users(teams_ensure())
    business_demo_load()
    return True
