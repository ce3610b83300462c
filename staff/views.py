"""Staff pages that span the business apps. Thin: check the input, call one gateway or overview
function, render. A domain error becomes a form error, never a server error."""

from __future__ import annotations

from uuid import UUID

from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import redirect, render
from django.templatetags.static import static
from django.utils import timezone

from common.emails import normalise_email
from common.errors import ApplicationError, Conflict, NotFound
from integration import gateway
from staff import compare_figures, exports, pages
from staff.forms import (
    ClientEditForm,
    ClientSearchForm,
    CommunicationForm,
    CompareWindowForm,
    ErasureForm,
    PurchaseForm,
    RegistrationForm,
    errors_to_form,
)
from staff.teams import (
    ADD_COMMUNICATION,
    CHANGE_CLIENT,
    ERASE_CLIENT,
    EXPORT_CLIENTS,
    RECORD_PURCHASE,
    REGISTER_CLIENT,
    VIEW_CLIENT,
    VIEW_PROCESSES,
)

CLIENTS_PER_PAGE = 25


def _initiator(request: HttpRequest) -> gateway.Initiator:
    return gateway.Initiator(user=request.user)


@login_required
def dashboard(request: HttpRequest) -> HttpResponse:
    context: dict[str, object] = {}
    if request.user.has_perm(VIEW_PROCESSES):
        context["figures"] = pages.dashboard_figures()
    else:
        context["mine"] = pages.processes_started_by(user=request.user)
    return render(request, "staff/dashboard.html", context)


@login_required
@permission_required(VIEW_CLIENT, raise_exception=True)
def client_search(request: HttpRequest) -> HttpResponse:
    form = ClientSearchForm(request.GET)
    page = None
    if form.is_valid():
        clients = gateway.clients_search(query=form.cleaned_data["q"])
        page = Paginator(clients, CLIENTS_PER_PAGE).get_page(request.GET.get("page"))
    rows = pages.client_rows(page) if page is not None else []
    return render(request, "staff/client_search.html", {"form": form, "page": page, "rows": rows})


@login_required
@permission_required(VIEW_CLIENT, raise_exception=True)
def client_detail(request: HttpRequest, client_id: UUID) -> HttpResponse:
    page = pages.client_page(client_id=client_id)
    return render(request, "staff/client_detail.html", {"page": page})


@login_required
@permission_required(REGISTER_CLIENT, raise_exception=True)
def client_new(request: HttpRequest) -> HttpResponse:
    form = RegistrationForm(request.POST or None)
    existing = None
    if request.method == "POST" and form.is_valid():
        try:
            process = gateway.client_register(**form.cleaned_data, initiator=_initiator(request))
        except Conflict as error:
            email = normalise_email(form.cleaned_data["email"])
            form.add_error("email", f"{email} is already registered to another client.")
            existing = error.extra.get("client_id")
        except ApplicationError as error:
            errors_to_form(form, error)
        else:
            return redirect("integration:process", process_id=process.id)
    return render(request, "staff/client_new.html", {"form": form, "existing": existing})


@login_required
@permission_required(VIEW_CLIENT, raise_exception=True)
@permission_required(EXPORT_CLIENTS, raise_exception=True)
def client_export(request: HttpRequest) -> HttpResponseBase:
    """The search's results as CSV, streamed: a hundred thousand rows never sit in memory."""
    form = ClientSearchForm(request.GET)
    if not form.is_valid():
        return render(request, "staff/client_search.html", {"form": form}, status=400)
    rows = exports.client_rows(query=form.cleaned_data["q"])
    response = StreamingHttpResponse(
        exports.csv_lines(rows), content_type="text/csv; charset=utf-8"
    )
    filename = f"clients-{timezone.localdate().isoformat()}.csv"
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


@login_required
@permission_required(CHANGE_CLIENT, raise_exception=True)
def client_edit(request: HttpRequest, client_id: UUID) -> HttpResponse:
    client = pages.client_profile(client_id=client_id)
    # A POST with no fields at all is still a submission (an unticked checkbox sends nothing).
    posted = request.POST if request.method == "POST" else None
    form = ClientEditForm(posted, current=client.profile)
    existing = None
    if request.method == "POST" and form.is_valid():
        try:
            process = gateway.client_update(
                client_id=client_id, **form.changes, initiator=_initiator(request)
            )
        except NotFound:
            raise Http404("No client with this id.") from None
        except Conflict as error:
            email = normalise_email(form.cleaned_data["email"])
            form.add_error("email", f"{email} already belongs to another client.")
            existing = error.extra.get("client_id")
        except ApplicationError as error:
            errors_to_form(form, error)
        else:
            return redirect("integration:process", process_id=process.id)
    context = {"form": form, "client": client, "existing": existing}
    return render(request, "staff/client_edit.html", context)


@login_required
@permission_required(ERASE_CLIENT, raise_exception=True)
def client_erase(request: HttpRequest, client_id: UUID) -> HttpResponse:
    client = pages.client_profile(client_id=client_id)
    form = ErasureForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        try:
            process = gateway.client_erase(client_id=client_id, initiator=_initiator(request))
        except NotFound:
            raise Http404("No client with this id.") from None
        return redirect("integration:process", process_id=process.id)
    return render(request, "staff/client_erase.html", {"form": form, "client": client})


@login_required
@permission_required(RECORD_PURCHASE, raise_exception=True)
def purchase_new(request: HttpRequest, client_id: UUID) -> HttpResponse:
    form = PurchaseForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            process, created = gateway.purchase_record(
                client_id=client_id, **form.cleaned_data, initiator=_initiator(request)
            )
        except NotFound:
            raise Http404("No client with this id.") from None
        except ApplicationError as error:
            errors_to_form(form, error)
        else:
            if not created:
                messages.info(request, "This order was recorded already: here is its process.")
            return redirect("integration:process", process_id=process.id)
    return render(request, "staff/purchase_new.html", {"form": form, "client_id": client_id})


@login_required
@permission_required(ADD_COMMUNICATION, raise_exception=True)
def communication_new(request: HttpRequest, client_id: UUID) -> HttpResponse:
    form = CommunicationForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            gateway.communication_add(
                client_id=client_id,
                channel=form.cleaned_data["channel"],
                subject=form.cleaned_data["subject"],
                body=form.cleaned_data["body"],
                initiator=_initiator(request),
            )
        except NotFound:
            raise Http404("No client with this id.") from None
        except ApplicationError as error:
            errors_to_form(form, error)
        else:
            messages.success(request, "The communication was added to the client's history.")
            return redirect("integration:client", client_id=client_id)
    context = {"form": form, "client_id": client_id}
    return render(request, "staff/communication_new.html", context)


@login_required
def process_detail(request: HttpRequest, process_id: UUID) -> HttpResponse:
    page = pages.process_page(process_id=process_id)
    if not pages.may_follow(request.user, page.process):
        raise PermissionDenied
    return render(request, "staff/process_detail.html", {"page": page})


@login_required
def integration_map(request: HttpRequest) -> HttpResponse:
    if not request.user.is_staff:
        raise PermissionDenied
    return render(request, "staff/map.html", {"map": pages.integration_map()})


@login_required
@permission_required(VIEW_PROCESSES, raise_exception=True)
def integration_compare(request: HttpRequest) -> HttpResponse:
    form = CompareWindowForm(request.GET)
    if not form.is_valid():
        return render(request, "staff/compare.html", {"form": form}, status=400)
    window = compare_figures.window_of(
        choice=form.cleaned_data["window"],
        since=form.cleaned_data["since"],
        until=form.cleaned_data["until"],
    )
    page = compare_figures.compare_page(window=window)
    return render(request, "staff/compare.html", {"form": form, "page": page})


def favicon(request: HttpRequest) -> HttpResponse:
    # The static name carries a content hash in production: ask the storage every time.
    return redirect(static("ensemble/favicon.svg"))
