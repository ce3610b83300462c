"""Admin for Sales. Purchases are facts from the shop: read-only."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from sales.models import CustomerAccount, Purchase


@admin.register(CustomerAccount)
class CustomerAccountAdmin(admin.ModelAdmin):
    list_display = ("client_id", "status", "opened_at")
    list_filter = ("status", "opened_at")
    search_fields = ("=client_id",)
    readonly_fields = ("client_id", "opened_at")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # accounts are opened by the registration process


@admin.register(Purchase)
class PurchaseAdmin(admin.ModelAdmin):
    list_display = ("order_ref", "client_id", "total", "currency", "purchased_at", "recorded_at")
    list_filter = ("currency", "purchased_at")
    search_fields = ("order_ref", "=client_id")
    date_hierarchy = "purchased_at"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
