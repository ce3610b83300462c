"""Fixtures for the staff pages: a member of each team, clients the gateway knows, and
details lookups answered in this process (no worker runs in these tests)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.test import Client as Browser

from crm import services as crm_services
from crm.models import Client
from integration import actions, gateway
from integration.orchestrator import lookups
from sales import services as sales_services

PASSWORD = "a-long-test-password"
TEAM_MEMBERS = {
    "Marketing": "marketer",
    "Sales": "seller",
    "Customer Relations": "carer",
    "Operations": "operator",
}


@pytest.fixture(autouse=True)
def orchestration(db: Any) -> None:
    actions.mode_switch(mode="orchestration", changed_by="test")


@pytest.fixture
def member(db: Any) -> Callable[..., Any]:
    """A staff user in a team (None: in no team)."""

    def make(team: str | None, username: str | None = None) -> Any:
        users = get_user_model().objects
        name = username or TEAM_MEMBERS.get(team or "", "nobody")
        name = name if not users.filter(username=name).exists() else f"{name}{users.count()}"
        user = users.create_user(name, password=PASSWORD, is_staff=True)
        if team is not None:
            user.groups.add(Group.objects.get(name=team))
        return user

    return make


@pytest.fixture
def browser_for(member: Callable[..., Any]) -> Callable[..., Browser]:
    """A test client logged in as a new member of the team."""

    def login(team: str | None, username: str | None = None) -> Browser:
        browser = Browser()
        browser.force_login(member(team, username))
        return browser

    return login


@pytest.fixture
def lookups_in_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """Orchestrated details ask crm and sales through workers; here they answer in-process."""

    def ask(components: list[str], client_id: uuid.UUID) -> tuple[dict[str, Any], list[str]]:
        return {name: lookups.answer(name, client_id) for name in components}, []

    monkeypatch.setattr(lookups, "ask", ask)


@pytest.fixture
def known_client(db: Any) -> Callable[..., Client]:
    """A client as a finished registration leaves it: in crm, in sales, in the registry."""

    def make(**profile: Any) -> Client:
        client_id = uuid.uuid4()
        fields = {
            "email": f"{client_id.hex[:10]}@example.com",
            "first_name": "Ada",
            "last_name": "Lovelace",
            "company": "Analytical Engines",
            **profile,
        }
        client = crm_services.client_create(client_id=client_id, **fields)
        gateway.registry_add(client_id=client_id, email=client.email)
        sales_services.account_open(client_id=client_id)
        return client

    return make
