"""Admin for Marketing. Audiences follow consent recorded in crm, so they are view-only."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import Count, QuerySet
from django.http import HttpRequest

from marketing.models import AudienceMember, Campaign, Lead


@admin.register(Campaign)
class CampaignAdmin(admin.ModelAdmin):
    list_display = ("name", "channel", "starts_on", "ends_on", "lead_count", "created_at")
    list_filter = ("channel", "starts_on")
    search_fields = ("name", "description")
    readonly_fields = ("created_at",)

    def get_queryset(self, request: HttpRequest) -> QuerySet[Campaign]:
        # One aggregate in the list query instead of a count per row.
        return super().get_queryset(request).annotate(lead_total=Count("leads"))

    @admin.display(description="leads", ordering="lead_total")
    def lead_count(self, obj: Any) -> int:
        return int(obj.lead_total)


@admin.register(Lead)
class LeadAdmin(admin.ModelAdmin):
    list_display = ("email", "first_name", "last_name", "source", "campaign", "converted_at")
    list_filter = ("source", "campaign", "converted_at")
    list_select_related = ("campaign",)
    search_fields = ("email", "first_name", "last_name", "campaign__name", "=converted_client_id")
    readonly_fields = ("converted_client_id", "converted_at", "created_at")
    autocomplete_fields = ("campaign",)


@admin.register(AudienceMember)
class AudienceMemberAdmin(admin.ModelAdmin):
    list_display = ("email", "audience", "client_id", "consent", "joined_at", "left_at")
    list_filter = ("audience", "consent")
    search_fields = ("email", "=client_id")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
