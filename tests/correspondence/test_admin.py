from __future__ import annotations

import pytest
from django.db import connection
from django.test import Client as HttpClient
from django.test.utils import CaptureQueriesContext

from correspondence.models import MessageStatus, Template
from tests.correspondence.factories import MessageFactory

pytestmark = pytest.mark.django_db


def list_queries(admin_client: HttpClient, url: str) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = admin_client.get(url)
    assert response.status_code == 200
    return len(queries)


def test_message_list_takes_a_constant_number_of_queries(admin_client: HttpClient) -> None:
    # given one message, then five
    MessageFactory.create()
    with_one = list_queries(admin_client, "/admin/correspondence/message/")
    MessageFactory.create_batch(4)

    # then the list page costs the same number of queries
    assert list_queries(admin_client, "/admin/correspondence/message/") == with_one


def test_template_list_shows_the_seeded_templates(admin_client: HttpClient) -> None:
    response = admin_client.get("/admin/correspondence/template/")
    assert [t.key for t in response.context["cl"].result_list] == ["receipt", "welcome"]


def test_messages_are_searched_by_recipient_and_filtered_by_status(
    admin_client: HttpClient,
) -> None:
    failed = MessageFactory.create(recipient="ada@example.com", status=MessageStatus.FAILED)
    MessageFactory.create(recipient="grace@example.com")
    by_recipient = admin_client.get("/admin/correspondence/message/", {"q": "ada@"})
    by_status = admin_client.get("/admin/correspondence/message/", {"status": "failed"})
    assert list(by_recipient.context["cl"].result_list) == [failed]
    assert list(by_status.context["cl"].result_list) == [failed]


def test_messages_are_read_only(admin_client: HttpClient) -> None:
    message = MessageFactory.create()
    url = f"/admin/correspondence/message/{message.id}/change/"
    assert admin_client.get(url).status_code == 200
    assert admin_client.get("/admin/correspondence/message/add/").status_code == 403
    assert admin_client.post(url, {}).status_code == 403


def test_a_template_with_broken_syntax_is_refused(admin_client: HttpClient) -> None:
    # when staff save the welcome template with a syntax error
    response = admin_client.post(
        "/admin/correspondence/template/welcome/change/",
        {"subject": "Welcome {{ first_name }}", "body": "{% if %}"},
    )

    # then the form is shown again with the error, and the template is unchanged
    assert response.status_code == 200
    assert list(response.context["adminform"].form.errors) == ["body"]
    assert Template.objects.get(key="welcome").body.startswith("Hello {{ first_name }}")
