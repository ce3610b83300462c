"""Forms of the staff pages and the process admin. They check the shape of the input; the rules
are the gateway's, whose errors land on the same fields (`errors_to_form`)."""

from __future__ import annotations

from decimal import Decimal

from django import forms

from common.errors import ApplicationError
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
    email = forms.CharField(
        label="Email", max_length=254, widget=forms.EmailInput(attrs={"autocomplete": "off"})
    )
    first_name = forms.CharField(label="First name", max_length=150)
    last_name = forms.CharField(label="Last name", max_length=150)
    phone = forms.CharField(label="Phone", max_length=40, required=False)
    company = forms.CharField(label="Company", max_length=200, required=False)
    # Labels stay distinct: "Email" must name one field only.
    marketing_consent = forms.BooleanField(
        label="Marketing consent: agrees to receive our newsletter and offers", required=False
    )


class PurchaseForm(forms.Form):
    order_ref = forms.CharField(label="Order reference", max_length=64)
    total = forms.DecimalField(
        label="Total", max_digits=12, decimal_places=2, min_value=Decimal("0.01")
    )
    currency = forms.CharField(label="Currency", min_length=3, max_length=3, initial="EUR")
    purchased_at = forms.DateTimeField(
        label="Purchased at (optional)",
        required=False,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
    )

    def gateway_data(self) -> dict[str, object]:
        data = self.cleaned_data
        return {
            "order_ref": data["order_ref"],
            "total": str(data["total"]),
            "currency": data["currency"],
            "purchased_at": data["purchased_at"],
        }


class CommunicationForm(forms.Form):
    channel = forms.ChoiceField(
        label="Channel", choices=[("email", "Email"), ("phone", "Phone"), ("note", "Note")]
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
