"""Errors are RFC 9457 problem details from one handler, exactly where the contract puts them,
and bad input of any kind is a 4xx: never a 500, never an HTML page."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest

from integration.models import IdempotencyRecord, Process
from tests.api.conftest import Answer, Shop

pytestmark = pytest.mark.django_db

PROBLEM = "application/problem+json"
ADA = {"email": "ada@example.com", "first_name": "Ada", "last_name": "Lovelace"}
ORDER = {"order_ref": "SHOP-1", "total": "59.90", "currency": "EUR"}
TYPE = "https://ensemble.invalid/problems/"


def problem(status: int, title: str, detail: str, errors: Any = None) -> dict[str, Any]:
    return {
        "type": TYPE + title.lower().replace(" ", "-"),
        "title": title,
        "status": status,
        "detail": detail,
        "errors": errors or {},
    }


def assert_field_errors(answer: Answer, errors: dict[str, list[str]]) -> None:
    assert (answer.status, answer.content_type) == (400, PROBLEM)
    assert answer.body == problem(400, "Bad request", "The request has invalid fields.", errors)


@pytest.fixture
def client_id(shop: Shop) -> str:
    answer = shop.post("/api/v1/clients/", ADA)
    assert answer.status == 202
    return str(answer.body["client_id"])


# --- the body as a whole ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [b"{", b'{"email": }', b"not json", b"{'email': 'a'}", b'{"a": NaN}', b'{"a": Infinity}'],
)
def test_malformed_json_is_400(shop: Shop, raw: bytes) -> None:
    answer = shop.post("/api/v1/clients/", raw=raw)

    assert (answer.status, answer.content_type) == (400, PROBLEM)
    assert answer.body["detail"].startswith("JSON parse error")
    assert (answer.body["title"], answer.body["errors"]) == ("Bad request", {})
    assert Process.objects.count() == 0


def test_invalid_utf8_and_raw_nul_bytes_are_400(shop: Shop) -> None:
    for raw in (b'{"email": "\xff\xfe"}', b'{"first_name": "A\x00da"}'):
        answer = shop.post("/api/v1/clients/", raw=raw)
        assert (answer.status, answer.content_type) == (400, PROBLEM)
        assert answer.body["detail"].startswith("JSON parse error")


def test_an_unknown_charset_is_read_as_utf8(shop: Shop) -> None:
    answer = shop.post(
        "/api/v1/clients/", ADA, content_type="application/json; charset=no-such-charset"
    )

    assert answer.status == 202


@pytest.mark.parametrize("depth", [33, 5_000, 200_000])
def test_deeply_nested_json_is_400(shop: Shop, depth: int) -> None:
    raw = b'{"email": ' + b"[" * depth + b"]" * depth + b"}"

    answer = shop.post("/api/v1/clients/", raw=raw)

    assert (answer.status, answer.content_type) == (400, PROBLEM)
    assert answer.body["detail"].startswith("JSON parse error")


@pytest.mark.parametrize("body", [[], [ADA], "ada@example.com", 42, None, True])
def test_a_body_that_is_not_an_object_is_400(shop: Shop, body: Any) -> None:
    answer = shop.post("/api/v1/clients/", raw=json.dumps(body).encode())

    assert_field_errors(answer, {"non_field_errors": ["Send a JSON object."]})


def test_an_empty_body_names_the_required_fields(shop: Shop) -> None:
    answer = shop.post("/api/v1/clients/")

    required = ["This field is required."]
    assert_field_errors(answer, {"email": required, "first_name": required, "last_name": required})


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", ""],
)
def test_a_body_that_is_not_json_is_415(shop: Shop, content_type: str) -> None:
    answer = shop.post("/api/v1/clients/", raw=json.dumps(ADA).encode(), content_type=content_type)

    assert (answer.status, answer.content_type) == (415, PROBLEM)
    assert answer.body["title"] == "Unsupported media type"
    assert Process.objects.count() == 0


def test_json_with_a_charset_parameter_is_json(shop: Shop) -> None:
    answer = shop.post("/api/v1/clients/", ADA, content_type="application/json; charset=utf-8")

    assert answer.status == 202


def test_a_body_over_1_mib_is_413_without_being_read(shop: Shop) -> None:
    raw = b'{"email": "' + b"a" * (10 * 1024 * 1024) + b'"}'

    answer = shop.post("/api/v1/clients/", raw=raw, key="big")

    assert (answer.status, answer.content_type) == (413, PROBLEM)
    assert answer.body == problem(413, "Request body too large", "The body is larger than 1 MiB.")
    assert IdempotencyRecord.objects.count() == 0


def test_exactly_1_mib_is_not_too_large(shop: Shop) -> None:
    padding = 1024 * 1024 - len(json.dumps({**ADA, "pad": ""}))
    raw = json.dumps({**ADA, "pad": "x" * padding}).encode()
    assert len(raw) == 1024 * 1024

    assert shop.post("/api/v1/clients/", raw=raw).status == 202


def chunked(shop: Shop, raw: bytes) -> Answer:
    """A body without Content-Length (Transfer-Encoding: chunked, as the server hands it on)."""
    return shop.post(
        "/api/v1/clients/",
        raw=b"",
        HTTP_TRANSFER_ENCODING="chunked",
        CONTENT_TYPE="application/json",
        CONTENT_LENGTH="",
        **{"wsgi.input": io.BytesIO(raw)},
    )


def test_a_chunked_body_over_1_mib_is_413(shop: Shop) -> None:
    answer = chunked(shop, b"[" + b" " * (2 * 1024 * 1024) + b"]")

    assert (answer.status, answer.content_type) == (413, PROBLEM)


def test_a_chunked_body_within_1_mib_is_read(shop: Shop) -> None:
    answer = chunked(shop, json.dumps(ADA).encode())

    assert (answer.status, answer.body["kind"]) == (202, "client_registration")


def test_a_content_length_that_is_not_a_number_is_400(shop: Shop) -> None:
    answer = shop.post("/api/v1/clients/", ADA, CONTENT_LENGTH="-5")

    assert (answer.status, answer.content_type) == (400, PROBLEM)


# --- fields ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "errors"),
    [
        ({"email": 42}, {"email": ["Enter a valid email address."]}),
        ({"first_name": 42}, {"first_name": ["Must be a string."]}),
        ({"first_name": ["Ada"]}, {"first_name": ["Must be a string."]}),
        ({"last_name": {"a": 1}}, {"last_name": ["Must be a string."]}),
        ({"marketing_consent": "yes"}, {"marketing_consent": ["Must be true or false."]}),
        ({"marketing_consent": 1}, {"marketing_consent": ["Must be true or false."]}),
        ({"email": "not-an-email"}, {"email": ["Enter a valid email address."]}),
        ({"first_name": "   "}, {"first_name": ["This field may not be blank."]}),
        (
            {"first_name": "A" * 151},
            {"first_name": ["Ensure this field has no more than 150 characters."]},
        ),
        ({"first_name": "A\x00da"}, {"first_name": ["Null characters are not allowed."]}),
        ({"last_name": "\ud800"}, {"last_name": ["Surrogate characters are not allowed: U+D800."]}),
        ({"phone": 44}, {"phone": ["Must be a string."]}),
    ],
)
def test_registration_field_errors_name_each_field(
    shop: Shop, changes: dict[str, Any], errors: dict[str, list[str]]
) -> None:
    answer = shop.post("/api/v1/clients/", {**ADA, **changes})

    assert_field_errors(answer, errors)
    assert Process.objects.count() == 0


@pytest.mark.parametrize(
    "name",
    [
        "Ada 💡 Lovelace",
        "עדה",
        "'; DROP TABLE crm_client; --",
        "<script>alert(1)</script>",
        "${jndi:ldap://x}",
        "%00%s%n",
        "Zalgo Ą̷̙̓d̵a̶",
    ],
)
def test_unicode_and_injection_strings_are_data(shop: Shop, name: str) -> None:
    answer = shop.post("/api/v1/clients/", {**ADA, "first_name": name})

    assert answer.status == 202
    assert Process.objects.get().input["first_name"] == name


def test_injection_in_the_email_query_finds_nothing(shop: Shop) -> None:
    answer = shop.get("/api/v1/clients/?email=%27%20OR%201%3D1%20--")

    assert (answer.status, answer.body["count"], answer.body["results"]) == (200, 0, [])


def test_a_nul_byte_in_the_email_query_is_400(shop: Shop) -> None:
    answer = shop.get("/api/v1/clients/?email=ada%00@example.com")

    assert_field_errors(answer, {"email": ["Null characters are not allowed."]})


@pytest.mark.parametrize(
    ("changes", "errors"),
    [
        ({"total": 59.9}, {"total": ['A decimal string such as "59.90" is required.']}),
        ({"total": "59.999"}, {"total": ['A decimal string such as "59.90" is required.']}),
        ({"total": "1e5"}, {"total": ['A decimal string such as "59.90" is required.']}),
        ({"total": "0.00"}, {"total": ["Must be greater than 0."]}),
        ({"total": "-5.00"}, {"total": ['A decimal string such as "59.90" is required.']}),
        ({"currency": "EU"}, {"currency": ["An ISO 4217 code of three letters is required."]}),
        ({"currency": 978}, {"currency": ["An ISO 4217 code of three letters is required."]}),
        ({"order_ref": ""}, {"order_ref": ["This field may not be blank."]}),
        (
            {"purchased_at": "2025-03-01T10:00:00"},
            {"purchased_at": ["The timestamp needs a time zone."]},
        ),
        (
            {"purchased_at": "yesterday"},
            {"purchased_at": ["An ISO 8601 timestamp with a time zone is required."]},
        ),
    ],
)
def test_purchase_field_errors(
    shop: Shop, client_id: str, changes: dict[str, Any], errors: dict[str, list[str]]
) -> None:
    answer = shop.post(f"/api/v1/clients/{client_id}/purchases/", {**ORDER, **changes})

    assert_field_errors(answer, errors)
