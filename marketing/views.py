"""Marketing's staff pages: its campaigns. Thin: check the input, call one service, render."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from common.errors import ApplicationError
from marketing import selectors, services
from marketing.forms import CampaignForm

CAMPAIGNS_PER_PAGE = 25


@login_required
@permission_required("marketing.view_campaign", raise_exception=True)
def campaign_list(request: HttpRequest) -> HttpResponse:
    page = Paginator(selectors.campaign_list(), CAMPAIGNS_PER_PAGE).get_page(
        request.GET.get("page")
    )
    return render(request, "marketing/campaign_list.html", {"page": page})


@login_required
@permission_required("marketing.add_campaign", raise_exception=True)
def campaign_new(request: HttpRequest) -> HttpResponse:
    form = CampaignForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            campaign = services.campaign_create(**form.cleaned_data)
        except ApplicationError as error:
            form.add_service_error(error)
        else:
            messages.success(request, f"The campaign “{campaign.name}” was created.")
            return redirect("marketing:campaigns")
    return render(request, "marketing/campaign_new.html", {"form": form})
