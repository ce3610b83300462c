"""The demo data is what staff see on a new install: it must look like the product's own work."""

from __future__ import annotations

import pytest

from crm.models import Client
from marketing.models import AudienceMember
from staff.demo import demo_load


@pytest.mark.django_db
def test_the_demo_audience_holds_each_consenting_clients_own_email() -> None:
    # when the demo data is loaded
    assert demo_load() is True

    # then the audience is exactly the consenting clients, each under the email crm holds
    consenting = set(Client.objects.filter(marketing_consent=True).values_list("id", "email"))
    assert consenting
    assert set(AudienceMember.objects.values_list("client_id", "email")) == consenting


@pytest.mark.django_db
def test_the_demo_data_is_loaded_once() -> None:
    assert demo_load() is True
    clients = Client.objects.count()

    assert demo_load() is False
    assert Client.objects.count() == clients
