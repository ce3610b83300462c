"""The shapes of the shop API (shop-api.md), for validation and for the OpenAPI schema."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from rest_framework import serializers

from integration.models import IntegrationMode, Process, ProcessKind, TraceEntry

COMPONENTS = ["crm", "sales", "marketing", "correspondence", "integration"]
SOURCES = ["orchestrator", "sales-replica"]
CHANNELS = ["email", "phone", "note"]


class ClientRegistrationRequest(serializers.Serializer):
    email = serializers.EmailField(max_length=254)
    first_name = serializers.CharField(max_length=150)
    last_name = serializers.CharField(max_length=150)
    phone = serializers.CharField(max_length=40, required=False, allow_blank=True, allow_null=True)
    company = serializers.CharField(
        max_length=200, required=False, allow_blank=True, allow_null=True
    )
    marketing_consent = serializers.BooleanField(required=False, default=False)

    def to_internal_value(self, data: Any) -> Any:
        _require_object(data)
        return super().to_internal_value(data)


class ClientUpdateRequest(serializers.Serializer):
    email = serializers.EmailField(max_length=254, required=False)
    first_name = serializers.CharField(max_length=150, required=False)
    last_name = serializers.CharField(max_length=150, required=False)
    phone = serializers.CharField(max_length=40, required=False, allow_blank=True, allow_null=True)
    company = serializers.CharField(
        max_length=200, required=False, allow_blank=True, allow_null=True
    )
    marketing_consent = serializers.BooleanField(required=False)

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


class PurchaseRequest(serializers.Serializer):
    order_ref = serializers.CharField(max_length=64)
    total = serializers.DecimalField(
        max_digits=12, decimal_places=2, min_value=Decimal("0.01"), coerce_to_string=True
    )
    currency = serializers.RegexField(r"^[A-Za-z]{3}$", max_length=3)
    purchased_at = serializers.DateTimeField(required=False, allow_null=True)

    def to_internal_value(self, data: Any) -> Any:
        _require_object(data)
        return super().to_internal_value(data)


def _require_object(data: Any) -> None:
    if not isinstance(data, dict):
        raise serializers.ValidationError({"non_field_errors": ["Send a JSON object."]})


class ProcessLinks(serializers.Serializer):
    process = serializers.CharField()
    client = serializers.CharField()


class ProcessStarted(serializers.Serializer):
    process_id = serializers.UUIDField()
    client_id = serializers.UUIDField()
    kind = serializers.ChoiceField(choices=ProcessKind.choices)
    status = serializers.CharField()
    mode = serializers.ChoiceField(choices=IntegrationMode.choices)
    links = ProcessLinks()


class TraceEntryOut(serializers.ModelSerializer):
    component = serializers.ChoiceField(choices=COMPONENTS)
    detail = serializers.JSONField(allow_null=True)

    class Meta:
        model = TraceEntry
        fields = ["seq", "at", "component", "name", "kind", "status", "attempt", "detail"]


class ProcessOut(serializers.ModelSerializer):
    correlation_id = serializers.UUIDField(source="id")
    trace = TraceEntryOut(many=True)

    class Meta:
        model = Process
        fields = [
            "id",
            "kind",
            "mode",
            "status",
            "correlation_id",
            "client_id",
            "started_at",
            "finished_at",
            "trace",
        ]


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
    phone = serializers.CharField(allow_null=True)
    company = serializers.CharField(allow_null=True)
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
    client_id = serializers.UUIDField()
