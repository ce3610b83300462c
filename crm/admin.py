"""Admin for Customer Relations: view-only, because a client changes through its processes
(versions, replicas, tombstones), never behind their back."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from crm.models import Client, Communication, ErasedClient


class ViewOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class CommunicationInline(admin.TabularInline):
    model = Communication
    fields = ("occurred_at", "channel", "subject", "reference")
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Client)
class ClientAdmin(ViewOnlyAdmin):
    list_display = (
        "email",
        "last_name",
        "first_name",
        "company",
        "marketing_consent",
        "purchase_count",
        "version",
        "registered_at",
    )
    list_filter = ("marketing_consent", "registered_at")
    search_fields = ("email", "first_name", "last_name", "company", "=id")
    date_hierarchy = "registered_at"
    inlines = (CommunicationInline,)


@admin.register(Communication)
class CommunicationAdmin(ViewOnlyAdmin):
    list_display = ("occurred_at", "client", "channel", "subject", "reference")
    list_filter = ("channel", "occurred_at")
    list_select_related = ("client",)
    search_fields = ("subject", "reference", "client__email", "client__last_name")
    raw_id_fields = ("client",)


@admin.register(ErasedClient)
class ErasedClientAdmin(ViewOnlyAdmin):
    list_display = ("client_id", "erased_at")
    search_fields = ("=client_id",)
