"""Forms of Marketing's staff pages: the shape of the input; the rules are the services'."""

from __future__ import annotations

from django import forms

from common.errors import ApplicationError
from marketing.models import CampaignChannel


class CampaignForm(forms.Form):
    name = forms.CharField(label="Name", max_length=200)
    channel = forms.ChoiceField(label="Channel", choices=CampaignChannel.choices)
    starts_on = forms.DateField(label="Starts on", widget=forms.DateInput(attrs={"type": "date"}))
    ends_on = forms.DateField(
        label="Ends on", required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    description = forms.CharField(label="Description", required=False, widget=forms.Textarea)

    def add_service_error(self, error: ApplicationError) -> None:
        """Put a service's error on the fields it names (the rest on the form as a whole)."""
        if not error.errors:
            self.add_error(None, error.detail)
        for field, messages in error.errors.items():
            self.add_error(field if field in self.fields else None, list(messages))
