"""The teams exist on every install with their permissions; the demo logins use them."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from staff import demo
from staff.teams import CHANGE_CLIENT, ERASE_CLIENT, EXPORT_CLIENTS, TEAMS, teams_ensure

pytestmark = pytest.mark.django_db


def permissions_of(team: str) -> set[str]:
    group = Group.objects.get(name=team)
    return {
        f"{app}.{codename}"
        for app, codename in group.permissions.values_list("content_type__app_label", "codename")
    }


def test_migrate_creates_every_team_with_its_permissions() -> None:
    assert set(Group.objects.values_list("name", flat=True)) >= set(TEAMS)
    for team, by_app in TEAMS.items():
        wanted = {f"{app}.{name}" for app, codenames in by_app.items() for name in codenames}
        assert permissions_of(team) == wanted, team


def test_what_each_team_may_do() -> None:
    assert {"crm.add_client", "marketing.add_campaign"} <= permissions_of("Marketing")
    assert {"sales.view_purchase", "sales.add_purchase"} <= permissions_of("Sales")
    assert {"crm.view_communication", "crm.add_communication"} <= permissions_of(
        "Customer Relations"
    )
    assert {
        "integration.view_process",
        "integration.change_process",
        "integration.change_delivery",
        "integration.change_listenerswitch",
        "integration.change_runtimemode",
    } <= permissions_of("Operations")
    assert "crm.add_client" not in permissions_of("Sales") | permissions_of("Operations")


def test_who_may_change_erase_and_export_clients() -> None:
    teams = ("Marketing", "Sales", "Customer Relations", "Operations")
    allowed = {
        permission: {team for team in teams if permission in permissions_of(team)}
        for permission in (CHANGE_CLIENT, ERASE_CLIENT, EXPORT_CLIENTS)
    }

    assert allowed == {
        CHANGE_CLIENT: {"Marketing", "Customer Relations"},
        ERASE_CLIENT: {"Customer Relations", "Operations"},
        EXPORT_CLIENTS: {"Marketing"},
    }


def test_ensuring_the_teams_again_keeps_what_an_administrator_added() -> None:
    from django.contrib.auth.models import Permission

    extra = Permission.objects.get(codename="delete_campaign")
    Group.objects.get(name="Marketing").permissions.add(extra)

    teams_ensure()

    assert Group.objects.filter(name="Marketing").count() == 1
    assert "marketing.delete_campaign" in permissions_of("Marketing")


def test_the_demo_logins_belong_to_their_teams(settings: Any) -> None:
    assert demo.demo_load() is True

    users = get_user_model().objects
    assert users.get(username="admin").is_superuser
    for username, team in demo.TEAM_OF.items():
        user = users.get(username=username)
        assert list(user.groups.values_list("name", flat=True)) == [team]
        assert user.check_password(demo.DEMO_PASSWORD) and user.is_staff
