"""The admin for operators: processes with their trace as a timeline and a sequence diagram, the
actions people need (retry a step or a delivery, replay an event, close a process), the outbox,
listener switches, webhooks, the runtime mode and the audit trail.

Rows here change only through the functions that own them (engine, bus, lifecycle, listeners,
modes), so every admin is read-only and every action is a POST to one of those functions, which
writes its audit row. Each list page runs a constant number of queries, however many rows.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any
from uuid import UUID

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import Count, Q, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.decorators import method_decorator
from django.utils.functional import cached_property
from django.utils.html import format_html
from django.views.decorators.http import require_POST

from common.components import COMPONENTS
from common.emails import normalise_email
from common.errors import ApplicationError
from integration import actions, bus
from integration.choreography import switches
from integration.core import components, modes, tally
from integration.models import (
    ApiToken,
    AuditEntry,
    ComponentState,
    ComponentSwitch,
    Delivery,
    DeliveryStatus,
    EventRecord,
    ListenerSwitch,
    Process,
    ProcessStatus,
    ReconcileRun,
    RegisteredEmail,
    RuntimeMode,
    Step,
    StepStatus,
    WebhookAttempt,
    WebhookDelivery,
)
from staff import diagrams, pages
from staff.forms import CloseProcessForm, ListenerForm, ModeForm
from staff.teams import (
    ACT_ON_DELIVERIES,
    ACT_ON_PROCESSES,
    SWITCH_COMPONENTS,
    SWITCH_LISTENERS,
    SWITCH_MODE,
)

admin.site.site_header = "Ensemble administration"
admin.site.site_title = "Ensemble admin"


class ReadOnlyAdmin(admin.ModelAdmin):
    """Seen, never edited here: the owning functions change these rows."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


def actor(request: HttpRequest) -> str:
    return f"user:{request.user.get_username()}"


def _act(request: HttpRequest, done: str, action: Callable[[], object]) -> None:
    """Run an operator's action; its outcome (or why it was refused) becomes a message."""
    try:
        action()
    except ApplicationError as error:
        messages.error(request, f"Not done: {error.detail}")
    else:
        messages.success(request, done)


def process_link(process_id: UUID | None) -> str:
    if process_id is None:
        return "—"
    url = reverse("admin:integration_process_change", args=[process_id])
    return format_html('<a href="{}">{}</a>', url, str(process_id)[:8])


# --- processes ------------------------------------------------------------------------------------


class TalliedPaginator(Paginator):
    """Counts the process list from the kept tallies when it is filtered by kind, mode and
    status only (the list's filters): a COUNT(*) of every process otherwise."""

    def __init__(self, *args: Any, tallied: dict[str, str] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.tallied = tallied

    @cached_property
    def count(self) -> int:
        if self.tallied is None:
            return super().count
        return tally.process_total(**self.tallied)


# The list's filters the tallies answer, and the parameters that only order or page the list.
TALLIED_FILTERS = {"kind__exact": "kind", "mode__exact": "mode", "status__exact": "status"}
LIST_ONLY = {"o", "p"}


@admin.register(Process)
class ProcessAdmin(ReadOnlyAdmin):
    list_display = (
        "id",
        "kind",
        "mode",
        "status_badge",
        "current_step",
        "client_id",
        "started_at",
        "last_activity_at",
        "trace_count",
    )
    list_filter = ("kind", "mode", "status")
    search_fields = ("=id",)  # see get_search_results: ids and client emails
    search_help_text = "A process id (the correlation id), a client id or a client's email."
    fields = (
        "id",
        "kind",
        "mode",
        "status",
        "current_step",
        "client_id",
        "initiator_user",
        "initiator_token",
        "started_at",
        "finished_at",
        "last_activity_at",
        "trace_count",
    )
    readonly_fields = fields
    change_form_template = "admin/integration/process/change_form.html"
    list_per_page = 50
    show_full_result_count = False

    def get_paginator(
        self,
        request: HttpRequest,
        queryset: QuerySet[Process],
        per_page: int,
        *args: Any,
        **kwargs: Any,
    ) -> Paginator:
        asked = set(request.GET) - LIST_ONLY
        tallied = None
        if asked <= set(TALLIED_FILTERS):
            tallied = {TALLIED_FILTERS[key]: request.GET[key] for key in asked}
        return TalliedPaginator(queryset, per_page, *args, tallied=tallied, **kwargs)

    @admin.display(description="status", ordering="status")
    def status_badge(self, obj: Process) -> str:
        return format_html('<span class="status status-{}">{}</span>', obj.status, obj.status)

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Process], search_term: str
    ) -> tuple[QuerySet[Process], bool]:
        term = search_term.strip()
        if not term:
            return queryset, False
        try:
            wanted = UUID(term)
        except ValueError:
            pass
        else:
            return queryset.filter(Q(pk=wanted) | Q(client_id=wanted)), False
        if "@" in term:
            owners = RegisteredEmail.objects.filter(email=normalise_email(term))
            return queryset.filter(client_id__in=owners.values("client_id")), False
        return queryset.filter(Q(current_step__icontains=term) | Q(kind__icontains=term)), False

    def get_urls(self) -> list[URLPattern]:
        own = [
            path(
                "<uuid:process_id>/retry-step/<uuid:step_id>/",
                self.admin_site.admin_view(self.retry_step_view),
                name="integration_process_retry_step",
            ),
            path(
                "<uuid:process_id>/close/",
                self.admin_site.admin_view(self.close_view),
                name="integration_process_close",
            ),
        ]
        return own + super().get_urls()

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        process = self.get_object(request, object_id)
        if process is not None:
            extra_context = {**(extra_context or {}), **self._trace_context(request, process)}
        return super().change_view(request, object_id, form_url, extra_context)

    def _trace_context(self, request: HttpRequest, process: Process) -> dict[str, Any]:
        trace = list(process.trace.order_by("seq"))
        events = list(process.events.order_by("published_at"))
        listeners_by_event = {
            event.name: [entry.name for entry in bus.listeners_of(event.name)] for event in events
        }
        steps = list(process.steps.order_by("position"))
        deliveries = list(process.deliveries.select_related("event").order_by("created_at"))
        can_act = request.user.has_perm(ACT_ON_PROCESSES)
        can_redeliver = request.user.has_perm(ACT_ON_DELIVERIES)
        closable = process.status not in (ProcessStatus.COMPLETED, ProcessStatus.CLOSED)
        return {
            "trace": trace,
            "diagram": diagrams.trace_svg(trace),
            "steps": steps,
            "deliveries": deliveries,
            "waiting_for": pages.waiting_for(steps, deliveries),
            "events": [(event, listeners_by_event[event.name]) for event in events],
            "can_act": can_act,
            "can_redeliver": can_redeliver,
            "closable": closable,
            "has_actions": (can_act and (closable or _any_failed(steps)))
            or (can_redeliver and any(listeners_by_event.values())),
            "close_form": CloseProcessForm(),
            "failed_step": StepStatus.FAILED,
            "dead_delivery": DeliveryStatus.DEAD,
        }

    def _require(self, request: HttpRequest, permission: str) -> None:
        if not request.user.has_perm(permission):
            raise PermissionDenied

    @staticmethod
    def _back(process_id: UUID) -> HttpResponseRedirect:
        return redirect("admin:integration_process_change", process_id)

    @method_decorator(require_POST)
    def retry_step_view(
        self, request: HttpRequest, process_id: UUID, step_id: UUID
    ) -> HttpResponseRedirect:
        self._require(request, ACT_ON_PROCESSES)
        step = get_object_or_404(Step, pk=step_id, process_id=process_id)
        _act(
            request,
            f"Step {step.name} is being retried.",
            lambda: actions.step_retry(step_id=step.id, by=actor(request)),
        )
        return self._back(process_id)

    @method_decorator(require_POST)
    def close_view(self, request: HttpRequest, process_id: UUID) -> HttpResponseRedirect:
        self._require(request, ACT_ON_PROCESSES)
        form = CloseProcessForm(request.POST)
        if not form.is_valid():
            messages.error(request, "Not closed: give a reason (at most 500 characters).")
            return self._back(process_id)
        _act(
            request,
            "The process is closed.",
            lambda: actions.process_close(
                process_id=process_id, reason=form.cleaned_data["reason"], by=actor(request)
            ),
        )
        return self._back(process_id)


def _any_failed(steps: list[Step]) -> bool:
    return any(step.status == StepStatus.FAILED for step in steps)


# --- the outbox: steps, events, deliveries ------------------------------------------------------


@admin.register(Step)
class StepAdmin(ReadOnlyAdmin):
    list_display = (
        "name",
        "component",
        "status",
        "attempts",
        "process_of",
        "sent_at",
        "next_attempt_at",
        "done_at",
    )
    list_filter = ("status", "component", "name")
    search_fields = ("=id", "=process__id")
    exclude = ("result",)  # what a step returns may hold personal data
    actions = ("retry_failed_steps",)
    list_per_page = 100
    show_full_result_count = False

    @admin.display(description="process", ordering="process_id")
    def process_of(self, obj: Step) -> str:
        return process_link(obj.process_id)

    def has_retry_permission(self, request: HttpRequest) -> bool:
        return bool(request.user.has_perm(ACT_ON_PROCESSES))

    @admin.action(description="Retry the selected failed steps", permissions=["retry"])
    def retry_failed_steps(self, request: HttpRequest, queryset: QuerySet[Step]) -> None:
        for step_id in queryset.filter(status=StepStatus.FAILED).values_list("id", flat=True):
            _act(
                request,
                f"Step {step_id} is being retried.",
                partial(actions.step_retry, step_id=step_id, by=actor(request)),
            )


class DeliveryInline(admin.TabularInline):
    model = Delivery
    fields = ("listener", "component", "status", "attempts", "sends", "replay", "done_at")
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(EventRecord)
class EventRecordAdmin(ReadOnlyAdmin):
    list_display = ("name", "source", "process_of", "client_id", "published_at", "delivery_count")
    list_filter = ("name", "source")
    search_fields = ("=id", "=process__id", "=client_id")
    exclude = ("payload",)  # personal data: the trace and the deliveries say what happened
    inlines = (DeliveryInline,)
    change_form_template = "admin/integration/eventrecord/change_form.html"
    list_per_page = 100
    show_full_result_count = False

    def get_queryset(self, request: HttpRequest) -> QuerySet[EventRecord]:
        return super().get_queryset(request).annotate(deliveries_total=Count("deliveries"))

    @admin.display(description="deliveries", ordering="deliveries_total")
    def delivery_count(self, obj: Any) -> int:
        return int(obj.deliveries_total)

    @admin.display(description="process", ordering="process_id")
    def process_of(self, obj: EventRecord) -> str:
        return process_link(obj.process_id)

    def get_urls(self) -> list[URLPattern]:
        own = [
            path(
                "<uuid:event_id>/replay/",
                self.admin_site.admin_view(self.replay_view),
                name="integration_eventrecord_replay",
            ),
        ]
        return own + super().get_urls()

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        event = self.get_object(request, object_id)
        if event is not None:
            extra_context = {
                **(extra_context or {}),
                "listeners": [entry.name for entry in bus.listeners_of(event.name)],
                "can_redeliver": request.user.has_perm(ACT_ON_DELIVERIES),
            }
        return super().change_view(request, object_id, form_url, extra_context)

    @method_decorator(require_POST)
    def replay_view(self, request: HttpRequest, event_id: UUID) -> HttpResponseRedirect:
        if not request.user.has_perm(ACT_ON_DELIVERIES):
            raise PermissionDenied
        event = get_object_or_404(EventRecord, pk=event_id)
        listener = request.POST.get("listener", "")
        _act(
            request,
            f"{event.name} is being replayed to {listener}.",
            lambda: actions.event_replay(event_id=event.id, listener=listener, by=actor(request)),
        )
        back = request.POST.get("next", "")
        if event.process_id and back == "process":
            return redirect("admin:integration_process_change", event.process_id)
        return redirect("admin:integration_eventrecord_change", event.id)


@admin.register(Delivery)
class DeliveryAdmin(ReadOnlyAdmin):
    list_display = (
        "event_name",
        "listener",
        "component",
        "status",
        "attempts",
        "sends",
        "replay",
        "process_of",
        "created_at",
        "next_attempt_at",
    )
    list_filter = ("status", "component", "listener", "replay")
    list_select_related = ("event",)
    search_fields = ("=id", "=process__id", "=event__id", "listener")
    actions = ("retry_dead_deliveries",)
    list_per_page = 100
    show_full_result_count = False

    @admin.display(description="event", ordering="event__name")
    def event_name(self, obj: Delivery) -> str:
        return obj.event.name

    def get_urls(self) -> list[URLPattern]:
        own = [
            path(
                "<uuid:delivery_id>/retry/",
                self.admin_site.admin_view(self.retry_view),
                name="integration_delivery_retry",
            ),
        ]
        return own + super().get_urls()

    @method_decorator(require_POST)
    def retry_view(self, request: HttpRequest, delivery_id: UUID) -> HttpResponseRedirect:
        if not request.user.has_perm(ACT_ON_DELIVERIES):
            raise PermissionDenied
        delivery = get_object_or_404(Delivery, pk=delivery_id)
        _act(
            request,
            f"The delivery to {delivery.listener} is being retried.",
            lambda: actions.delivery_retry(delivery_id=delivery.id, by=actor(request)),
        )
        if delivery.process_id and request.POST.get("next") == "process":
            return redirect("admin:integration_process_change", delivery.process_id)
        return redirect("admin:integration_delivery_change", delivery.id)

    @admin.display(description="process", ordering="process_id")
    def process_of(self, obj: Delivery) -> str:
        return process_link(obj.process_id)

    def has_retry_permission(self, request: HttpRequest) -> bool:
        return bool(request.user.has_perm(ACT_ON_DELIVERIES))

    @admin.action(description="Retry the selected dead deliveries", permissions=["retry"])
    def retry_dead_deliveries(self, request: HttpRequest, queryset: QuerySet[Delivery]) -> None:
        for delivery_id in queryset.filter(status=DeliveryStatus.DEAD).values_list("id", flat=True):
            _act(
                request,
                f"Delivery {delivery_id} is being retried.",
                partial(actions.delivery_retry, delivery_id=delivery_id, by=actor(request)),
            )


# --- listener switches, the mode ------------------------------------------------------------------


@admin.register(ListenerSwitch)
class ListenerSwitchAdmin(ReadOnlyAdmin):
    """Every listener of the bus with its state and backlog (a listener without a row is
    enabled), and a switch for each one or for a whole component."""

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        if request.method == "POST":
            return self._switch(request)
        states = switches.listener_states()
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": "Listener switches",
            "rows": [
                (name, state, backlog, ListenerForm(initial={"name": name, "state": state}))
                for name, state, backlog in states
            ],
            "components": sorted({name.partition(".")[0] for name, _, _ in states}),
            "component_form": ListenerForm(),
            "can_switch": request.user.has_perm(SWITCH_LISTENERS),
        }
        return TemplateResponse(request, "admin/integration/listenerswitch/switches.html", context)

    def _switch(self, request: HttpRequest) -> HttpResponse:
        if not request.user.has_perm(SWITCH_LISTENERS):
            raise PermissionDenied
        form = ListenerForm(request.POST)
        if form.is_valid():
            name, state = form.cleaned_data["name"], form.cleaned_data["state"]
            _act(
                request,
                f"{name}: {state}.",
                lambda: actions.listener_set(name=name, state=state, by=actor(request)),
            )
        else:
            messages.error(request, "Not switched: choose a listener and a state.")
        return redirect("admin:integration_listenerswitch_changelist")


@admin.register(ComponentSwitch)
class ComponentSwitchAdmin(ReadOnlyAdmin):
    """Every component with its state and what it holds, and the maintenance switch."""

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        if request.method == "POST":
            return self._switch(request)
        held = components.held_counts()
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": "Component switches",
            "rows": [
                (name, state, held[name]) for name, state in components.component_states().items()
            ],
            "can_switch": request.user.has_perm(SWITCH_COMPONENTS),
        }
        return TemplateResponse(request, "admin/integration/componentswitch/switches.html", context)

    def _switch(self, request: HttpRequest) -> HttpResponse:
        if not request.user.has_perm(SWITCH_COMPONENTS):
            raise PermissionDenied
        name, state = request.POST.get("name", ""), request.POST.get("state", "")
        if name not in COMPONENTS or state not in ComponentState.values:
            messages.error(request, "Not switched: choose a component and a state.")
        else:
            _act(
                request,
                f"{name}: {state}.",
                lambda: actions.component_set(name=name, state=state, by=actor(request)),
            )
        return redirect("admin:integration_componentswitch_changelist")


@admin.register(RuntimeMode)
class RuntimeModeAdmin(ReadOnlyAdmin):
    """The mode new processes start in; processes in flight keep theirs."""

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        if request.method == "POST":
            return self._switch(request)
        current = RuntimeMode.objects.filter(singleton=1).first()
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": "Runtime integration mode",
            "mode": modes.mode_get(),
            "current": current,
            "form": ModeForm(initial={"mode": modes.mode_get()}),
            "can_switch": request.user.has_perm(SWITCH_MODE),
        }
        return TemplateResponse(request, "admin/integration/runtimemode/mode.html", context)

    def _switch(self, request: HttpRequest) -> HttpResponse:
        if not request.user.has_perm(SWITCH_MODE):
            raise PermissionDenied
        form = ModeForm(request.POST)
        if form.is_valid():
            mode = form.cleaned_data["mode"]
            _act(
                request,
                f"New processes start in {mode} mode.",
                lambda: actions.mode_switch(mode=mode, changed_by=actor(request)),
            )
        else:
            messages.error(request, "Not switched: choose orchestration or choreography.")
        return redirect("admin:integration_runtimemode_changelist")


# --- webhooks, audit, tokens ----------------------------------------------------------------------


class WebhookAttemptInline(admin.TabularInline):
    model = WebhookAttempt
    fields = ("at", "status_code", "error", "duration_ms")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ReadOnlyAdmin):
    list_display = (
        "event",
        "process_of",
        "token",
        "status",
        "attempts",
        "attempt_count",
        "next_attempt_at",
        "created_at",
        "delivered_at",
    )
    list_filter = ("status", "event")
    list_select_related = ("token",)
    search_fields = ("=id", "=process__id", "token__name")
    exclude = ("payload",)
    inlines = (WebhookAttemptInline,)
    list_per_page = 100
    show_full_result_count = False

    def get_queryset(self, request: HttpRequest) -> QuerySet[WebhookDelivery]:
        return super().get_queryset(request).annotate(tries_total=Count("tries"))

    @admin.display(description="attempts kept", ordering="tries_total")
    def attempt_count(self, obj: Any) -> int:
        return int(obj.tries_total)

    @admin.display(description="process", ordering="process_id")
    def process_of(self, obj: WebhookDelivery) -> str:
        return process_link(obj.process_id)


@admin.register(AuditEntry)
class AuditEntryAdmin(ReadOnlyAdmin):
    list_display = ("at", "actor", "action", "target")
    list_filter = ("action",)
    search_fields = ("actor", "target", "action")
    date_hierarchy = "at"
    list_per_page = 100


@admin.register(ReconcileRun)
class ReconcileRunAdmin(ReadOnlyAdmin):
    """What each comparison of the replicas with crm found (`manage.py reconcile`, the
    scheduler), newest first."""

    list_display = ("started_at", "finished_at", "by", "clients", "drift", "repaired")
    list_filter = ("by",)
    ordering = ("-started_at", "-id")
    fields = ("started_at", "finished_at", "by", "clients", "differences", "repaired")
    readonly_fields = fields
    date_hierarchy = "started_at"

    @admin.display(description="differences")
    def drift(self, obj: ReconcileRun) -> str:
        return ", ".join(f"{name} {count}" for name, count in obj.differences.items()) or "—"


@admin.register(ApiToken)
class ApiTokenAdmin(ReadOnlyAdmin):
    """Tokens are issued and revoked with `manage.py issue_api_token` / `revoke_api_token`."""

    list_display = ("name", "prefix", "callback_url", "created_at", "revoked_at")
    list_filter = ("revoked_at",)
    search_fields = ("name", "prefix")
    exclude = ("key_hash", "webhook_secret")
