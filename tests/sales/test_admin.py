from __future__ import annotations

from collections.abc import Callable

import pytest
from django.db import connection
from django.test import Client as HttpClient
from django.test.utils import CaptureQueriesContext

from tests.sales.factories import CustomerAccountFactory, PurchaseFactory

pytestmark = pytest.mark.django_db


def list_queries(admin_client: HttpClient, url: str) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = admin_client.get(url)
    assert response.status_code == 200
    return len(queries)


@pytest.mark.parametrize(
    ("url", "make"),
    [
        ("/admin/sales/customeraccount/", CustomerAccountFactory.create),
        ("/admin/sales/purchase/", PurchaseFactory.create),
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


def test_purchases_are_searched_by_order_ref_and_filtered_by_currency(
    admin_client: HttpClient,
) -> None:
    # given purchases in two currencies
    euro = PurchaseFactory.create(order_ref="ORD-42", currency="EUR")
    PurchaseFactory.create(order_ref="ORD-43", currency="USD")

    # then the order ref and the currency filter each find the euro one
    by_ref = admin_client.get("/admin/sales/purchase/", {"q": "ORD-42"})
    by_currency = admin_client.get("/admin/sales/purchase/", {"currency": "EUR"})
    assert list(by_ref.context["cl"].result_list) == [euro]
    assert list(by_currency.context["cl"].result_list) == [euro]


def test_purchases_are_read_only(admin_client: HttpClient) -> None:
    purchase = PurchaseFactory.create()
    assert admin_client.get(f"/admin/sales/purchase/{purchase.id}/change/").status_code == 200
    assert admin_client.get("/admin/sales/purchase/add/").status_code == 403
    assert admin_client.post(f"/admin/sales/purchase/{purchase.id}/change/", {}).status_code == 403
