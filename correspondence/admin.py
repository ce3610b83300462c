"""Admin for Correspondence: staff edit the templates; messages are a read-only record."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from correspondence.models import Message, Template


@admin.register(Template)
class TemplateAdmin(admin.ModelAdmin):
    list_display = ("key", "subject", "updated_at")
    search_fields = ("key", "subject")
    readonly_fields = ("updated_at",)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        # The key is what the code asks for: it is fixed once the template exists.
        return ("key", "updated_at") if obj is not None else ("updated_at",)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Message)
class MessageAdmin(admin.ModelAdmin):
    list_display = (
        "created_at",
        "template_key",
        "recipient",
        "subject",
        "status",
        "attempts",
        "sent_at",
    )
    list_filter = ("status", "template_key", "created_at")
    # A bounce or a complaint quotes the Message-ID: it finds the message.
    search_fields = ("recipient", "reference", "subject", "=client_id", "=message_id_header")
    date_hierarchy = "created_at"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
