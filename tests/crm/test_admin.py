from __future__ import annotations

from collections.abc import Callable

import pytest
from django.db import connection
from django.test import Client as HttpClient
from django.test.utils import CaptureQueriesContext

from tests.crm.factories import ClientFactory, CommunicationFactory, ErasedClientFactory

pytestmark = pytest.mark.django_db


def list_queries(admin_client: HttpClient, url: str) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = admin_client.get(url)
    assert response.status_code == 200
    return len(queries)


@pytest.mark.parametrize(
    ("url", "make"),
    [
        ("/admin/crm/client/", ClientFactory.create),
        ("/admin/crm/communication/", CommunicationFactory.create),
        ("/admin/crm/erasedclient/", ErasedClientFactory.create),
    ],
)
def test_list_pages_take_a_constant_number_of_queries(
    admin_client: HttpClient, url: str, make: Callable[[], object]
) -> None:
    # given one row, then five
    make()
    with_one = list_queries(admin_client, url)
    for _ in range(4):
        make()

    # then the list page costs the same number of queries
    assert list_queries(admin_client, url) == with_one


def test_client_search_finds_by_email_and_id(admin_client: HttpClient) -> None:
    # given two clients
    ada = ClientFactory.create(email="ada@example.com")
    ClientFactory.create(email="grace@example.com")

    # when searching by email or by id
    by_email = admin_client.get("/admin/crm/client/", {"q": "ada@"})
    by_id = admin_client.get("/admin/crm/client/", {"q": str(ada.id)})

    # then only Ada is listed
    assert list(by_email.context["cl"].result_list) == [ada]
    assert list(by_id.context["cl"].result_list) == [ada]


def test_clients_are_view_only(admin_client: HttpClient) -> None:
    # given a client
    client = ClientFactory.create()

    # then it can be viewed but not added, changed or deleted
    assert admin_client.get(f"/admin/crm/client/{client.id}/change/").status_code == 200
    assert admin_client.get("/admin/crm/client/add/").status_code == 403
    assert admin_client.post(f"/admin/crm/client/{client.id}/change/", {}).status_code == 403
    assert admin_client.get(f"/admin/crm/client/{client.id}/delete/").status_code == 403
