"""The shapes of the shop API (shop-api.md), for validation and for the OpenAPI schema.

Request fields are strict about JSON types: a number where a string belongs is a 400, not a
string made up from it, so that what the schema says is what the API accepts.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from django.utils.dateparse import parse_datetime
from rest_framework import serializers

from common.components import COMPONENTS
from integration.gateway import CHANNELS, CURRENCY_PATTERN, ORDER_REF_LIMIT, PROFILE_LIMITS
from integration.models import IntegrationMode, ProcessKind, ProcessStatus, TraceKind

SOURCES = ["orchestrator", "sales-replica", "crm"]


# --- strict request fields ------------------------------------------------------------------------


class _StringOnly:
    """Accept JSON strings only (DRF's text fields would turn 12 into "12")."""

    def to_internal_value(self, data: Any) -> Any:
        if not isinstance(data, str):
            self.fail("invalid")  # type: ignore[attr-defined]
        return super().to_internal_value(data)  # type: ignore[misc]


class StrictCharField(_StringOnly, serializers.CharField):
    default_error_messages = {"invalid": "Must be a string."}


class StrictEmailField(_StringOnly, serializers.EmailField):
    pass


class StrictRegexField(_StringOnly, serializers.RegexField):
    pass


class StrictBooleanField(serializers.BooleanField):
    default_error_messages = {"invalid": "Must be true or false."}

    def to_internal_value(self, data: Any) -> bool:
        if not isinstance(data, bool):
            self.fail("invalid")
        return data


class AwareDateTimeField(serializers.DateTimeField):
    """ISO 8601 with a time zone; a naive timestamp is refused rather than guessed."""

    default_error_messages = {
        "invalid": "An ISO 8601 timestamp with a time zone is required.",
        "naive": "The timestamp needs a time zone.",
    }

    def to_internal_value(self, value: Any) -> datetime:
        if not isinstance(value, str):
            self.fail("invalid")
        try:
            parsed = parse_datetime(value.strip())
        except ValueError:
            parsed = None
        if parsed is None:
            self.fail("invalid")
        if parsed.tzinfo is None:
            self.fail("naive")
        return super().to_internal_value(parsed)


# --- requests ---------------------------------------------------------------------------------


def _require_object(data: Any) -> None:
    if not isinstance(data, dict):
        raise serializers.ValidationError({"non_field_errors": ["Send a JSON object."]})


class ObjectSerializer(serializers.Serializer):
    def to_internal_value(self, data: Any) -> Any:
        _require_object(data)
        return super().to_internal_value(data)


def _profile_field(name: str, **options: Any) -> serializers.Field:
    """A profile field, as long as crm stores it; phone and company may be empty (or null)."""
    limit = PROFILE_LIMITS[name]
    if name == "email":
        return StrictEmailField(max_length=limit, **options)
    if name in ("phone", "company"):
        return StrictCharField(
            max_length=limit, required=False, allow_blank=True, allow_null=True, **options
        )
    return StrictCharField(max_length=limit, **options)


class _Profile(ObjectSerializer):
    def validate_phone(self, value: str | None) -> str:
        return value or ""

    def validate_company(self, value: str | None) -> str:
        return value or ""


class ClientRegistration(_Profile):
    email = _profile_field("email")
    first_name = _profile_field("first_name")
    last_name = _profile_field("last_name")
    phone = _profile_field("phone")
    company = _profile_field("company")
    marketing_consent = StrictBooleanField(required=False, default=False)


class ClientUpdate(_Profile):
    """Any of the updatable fields, at least one; any other field is refused, not ignored."""

    email = _profile_field("email", required=False)
    first_name = _profile_field("first_name", required=False)
    last_name = _profile_field("last_name", required=False)
    phone = _profile_field("phone")
    company = _profile_field("company")
    marketing_consent = StrictBooleanField(required=False)

    def to_internal_value(self, data: Any) -> Any:
        _require_object(data)
        unknown = sorted(set(data) - set(self.fields))
        if unknown:
            raise serializers.ValidationError(
                {field: ["This field cannot be changed."] for field in unknown}
            )
        if not data:
            raise serializers.ValidationError({"non_field_errors": ["Send at least one field."]})
        return super().to_internal_value(data)


class PurchaseOrder(ObjectSerializer):
    order_ref = StrictCharField(max_length=ORDER_REF_LIMIT)
    total = StrictRegexField(
        r"^[0-9]{1,10}(\.[0-9]{1,2})?$",
        trim_whitespace=False,
        help_text='A decimal string above zero with at most 2 decimals, such as "59.90"',
        error_messages={"invalid": 'A decimal string such as "59.90" is required.'},
    )
    currency = StrictRegexField(
        CURRENCY_PATTERN,
        trim_whitespace=False,
        help_text="ISO 4217, such as EUR",
        error_messages={"invalid": "An ISO 4217 code of three letters is required."},
    )
    purchased_at = AwareDateTimeField(required=False, allow_null=True)

    def validate_total(self, value: str) -> Decimal:
        amount = Decimal(value)
        if amount <= 0:
            raise serializers.ValidationError("Must be greater than 0.")
        return amount


class DetailsQuery(serializers.Serializer):
    min_version = serializers.IntegerField(
        required=False,
        min_value=1,
        help_text="Answer at this version of the client or newer (a `client_version` from a "
        "process or webhook): read your own writes",
    )


class ClientSearch(serializers.Serializer):
    email = StrictCharField(max_length=254)
    page = serializers.IntegerField(min_value=1, required=False)


# --- answers ----------------------------------------------------------------------------------


class ProcessLinks(serializers.Serializer):
    process = serializers.CharField()
    client = serializers.CharField()


class ProcessStarted(serializers.Serializer):
    process_id = serializers.UUIDField()
    client_id = serializers.UUIDField()
    kind = serializers.ChoiceField(choices=ProcessKind.choices)
    status = serializers.ChoiceField(choices=ProcessStatus.choices)
    mode = serializers.ChoiceField(choices=IntegrationMode.choices)
    links = ProcessLinks()


class TraceEntryOut(serializers.Serializer):
    seq = serializers.IntegerField(min_value=1, help_text="Only grows within a process")
    at = serializers.DateTimeField()
    component = serializers.ChoiceField(choices=COMPONENTS)
    name = serializers.CharField()
    kind = serializers.ChoiceField(choices=TraceKind.choices)
    status = serializers.CharField()
    attempt = serializers.IntegerField(min_value=1)
    detail = serializers.DictField(allow_null=True)


class ProcessOut(serializers.Serializer):
    id = serializers.UUIDField()
    kind = serializers.ChoiceField(choices=ProcessKind.choices)
    mode = serializers.ChoiceField(choices=IntegrationMode.choices)
    status = serializers.ChoiceField(choices=ProcessStatus.choices)
    correlation_id = serializers.UUIDField()
    client_id = serializers.UUIDField()
    client_version = serializers.IntegerField(
        allow_null=True,
        help_text="crm's version of the client once this process changed it there "
        "(registration, update); pass it as ?min_version= to read your own write",
    )
    started_at = serializers.DateTimeField()
    finished_at = serializers.DateTimeField(allow_null=True)
    trace = TraceEntryOut(many=True, help_text="Ordered by seq")


class CommunicationOut(serializers.Serializer):
    id = serializers.UUIDField()
    channel = serializers.ChoiceField(choices=CHANNELS)
    subject = serializers.CharField()
    occurred_at = serializers.DateTimeField()


class PurchaseOut(serializers.Serializer):
    order_ref = serializers.CharField()
    total = serializers.DecimalField(max_digits=12, decimal_places=2)
    currency = serializers.CharField()
    purchased_at = serializers.DateTimeField()


class ServedBy(serializers.Serializer):
    # `source` is a Field attribute: the field of that name is declared in get_fields.
    mode = serializers.ChoiceField(choices=IntegrationMode.choices)
    as_of = serializers.DateTimeField(allow_null=True)
    version = serializers.IntegerField(
        allow_null=True,
        help_text="crm's version of the client that the profile reflects (null when crm's part "
        "is unavailable)",
    )
    unavailable = serializers.ListField(child=serializers.ChoiceField(choices=COMPONENTS))

    def get_fields(self) -> dict[str, serializers.Field]:
        fields = super().get_fields()
        fields["source"] = serializers.ChoiceField(choices=SOURCES)
        return fields


class ClientDetailsOut(serializers.Serializer):
    id = serializers.UUIDField()
    email = serializers.EmailField(allow_null=True)
    first_name = serializers.CharField(allow_null=True)
    last_name = serializers.CharField(allow_null=True)
    phone = serializers.CharField(allow_null=True, allow_blank=True)
    company = serializers.CharField(allow_null=True, allow_blank=True)
    marketing_consent = serializers.BooleanField(allow_null=True)
    registered_at = serializers.DateTimeField(allow_null=True)
    communications = CommunicationOut(many=True)
    purchases = PurchaseOut(many=True)
    served_by = ServedBy()


class ClientSummaryOut(serializers.Serializer):
    id = serializers.UUIDField()
    email = serializers.EmailField()
    first_name = serializers.CharField()
    last_name = serializers.CharField()


class ClientPage(serializers.Serializer):
    count = serializers.IntegerField(min_value=0)
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)
    results = ClientSummaryOut(many=True)


class Problem(serializers.Serializer):
    """RFC 9457 problem details. (`errors` is a Serializer attribute: declared in get_fields.)"""

    type = serializers.CharField()
    title = serializers.CharField()
    status = serializers.IntegerField()
    detail = serializers.CharField()

    def get_fields(self) -> dict[str, serializers.Field]:
        fields = super().get_fields()
        fields["errors"] = serializers.DictField(
            child=serializers.ListField(child=serializers.CharField())
        )
        return fields


class ConflictProblem(Problem):
    client_id = serializers.UUIDField(
        required=False, help_text="The client the email belongs to (absent for a key in flight)"
    )
