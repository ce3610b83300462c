"""Forms of the staff pages and the process admin. They check the shape of the input; the rules
are the gateway's, whose errors land on the same fields (`errors_to_form`)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django import forms

from common.emails import normalise_email
from common.errors import ApplicationError
from integration.gateway import CHANNELS, CURRENCY_PATTERN, ORDER_REF_LIMIT, PROFILE_LIMITS
from integration.models import IntegrationMode, ListenerState


def errors_to_form(form: forms.Form, error: ApplicationError) -> None:
    """Put a domain error on the fields it names (the rest on the form as a whole)."""
    if not error.errors:
        form.add_error(None, error.detail)
        return
    for field, messages in error.errors.items():
        form.add_error(field if field in form.fields else None, list(messages))


class ClientSearchForm(forms.Form):
    q = forms.CharField(label="Name, email or company", required=False, max_length=200)


class RegistrationForm(forms.Form):
    email = forms.EmailField(
        label="Email",
        max_length=PROFILE_LIMITS["email"],
        widget=forms.EmailInput(attrs={"autocomplete": "off"}),
    )
    first_name = forms.CharField(label="First name", max_length=PROFILE_LIMITS["first_name"])
    last_name = forms.CharField(label="Last name", max_length=PROFILE_LIMITS["last_name"])
    phone = forms.CharField(label="Phone", max_length=PROFILE_LIMITS["phone"], required=False)
    company = forms.CharField(label="Company", max_length=PROFILE_LIMITS["company"], required=False)
    # Labels stay distinct: "Email" must name one field only.
    marketing_consent = forms.BooleanField(
        label="Marketing consent: agrees to receive our newsletter and offers", required=False
    )


class ClientEditForm(RegistrationForm):
    """The registration's fields, prefilled with the client's current details. `changes` holds
    only what differs from them: the gateway treats a field left out as unchanged."""

    def __init__(self, data: Any = None, *, current: dict[str, Any]) -> None:
        super().__init__(data, initial=current)
        self.current = current
        self.changes: dict[str, Any] = {}

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if self.errors:
            return cleaned
        self.changes = {
            name: value
            for name, value in cleaned.items()
            if _comparable(name, value) != _comparable(name, self.current.get(name))
        }
        if not self.changes:
            raise forms.ValidationError(
                "Nothing changed: change at least one field before saving.", code="unchanged"
            )
        return cleaned


def _comparable(name: str, value: Any) -> Any:
    """A value as the gateway will store it, so that retyping the same thing is no change."""
    if name == "email":
        return normalise_email(value or "")
    if name == "marketing_consent":
        return bool(value)
    return (value or "").strip()


class ErasureForm(forms.Form):
    confirm = forms.BooleanField(
        label="I understand that erasing this client cannot be undone",
        error_messages={"required": "Tick the box to confirm the erasure."},
    )


class PurchaseForm(forms.Form):
    order_ref = forms.CharField(label="Order reference", max_length=ORDER_REF_LIMIT)
    total = forms.DecimalField(
        label="Total", max_digits=12, decimal_places=2, min_value=Decimal("0.01")
    )
    currency = forms.RegexField(
        CURRENCY_PATTERN,
        label="Currency",
        initial="EUR",
        error_messages={"invalid": "An ISO 4217 code of three letters is required."},
    )
    purchased_at = forms.DateTimeField(
        label="Purchased at (optional)",
        required=False,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
    )


class CommunicationForm(forms.Form):
    channel = forms.ChoiceField(
        label="Channel", choices=[(channel, channel.capitalize()) for channel in CHANNELS]
    )
    subject = forms.CharField(label="Subject", max_length=200)
    body = forms.CharField(label="What was said", required=False, widget=forms.Textarea)


# --- the process admin ------------------------------------------------------------------------


class CloseProcessForm(forms.Form):
    reason = forms.CharField(label="Reason for closing", max_length=500, widget=forms.Textarea)


class ReplayForm(forms.Form):
    listener = forms.ChoiceField(label="Replay to listener")

    def __init__(self, *args: object, listeners: list[str], **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.fields["listener"].choices = [(name, name) for name in listeners]  # type: ignore[attr-defined]


class ModeForm(forms.Form):
    mode = forms.ChoiceField(
        label="Mode for processes that start from now on", choices=IntegrationMode.choices
    )


class ListenerForm(forms.Form):
    name = forms.CharField(max_length=80, widget=forms.HiddenInput)
    state = forms.ChoiceField(label="State", choices=ListenerState.choices)


class CompareWindowForm(forms.Form):
    """The window of the mode comparison: the last hour, day or week, or from/to dates."""

    window = forms.ChoiceField(
        label="Window",
        required=False,
        choices=[("hour", "Last hour"), ("day", "Last day"), ("week", "Last week")],
    )
    since = forms.DateField(
        label="From", required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    until = forms.DateField(
        label="To", required=False, widget=forms.DateInput(attrs={"type": "date"})
    )

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        since, until = cleaned.get("since"), cleaned.get("until")
        if since and until and until < since:
            self.add_error("until", "The end comes before the start.")
        cleaned["window"] = cleaned.get("window") or "day"
        return cleaned
