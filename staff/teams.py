"""The teams are groups with permissions; they exist on every install (post_migrate), not only
with the demo data. Staff pages check these permissions, never group names."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import Group, Permission

# What each page or action asks for.
VIEW_CLIENT = "crm.view_client"
REGISTER_CLIENT = "crm.add_client"
CHANGE_CLIENT = "crm.change_client"
ERASE_CLIENT = "crm.delete_client"
# Exporting clients is audience work: the file feeds campaigns, so it is asked of whoever may
# see the marketing audience, not of everyone who may look a client up.
EXPORT_CLIENTS = "marketing.view_audiencemember"
VIEW_COMMUNICATIONS = "crm.view_communication"
ADD_COMMUNICATION = "crm.add_communication"
VIEW_PURCHASES = "sales.view_purchase"
RECORD_PURCHASE = "sales.add_purchase"
VIEW_CAMPAIGNS = "marketing.view_campaign"
ADD_CAMPAIGN = "marketing.add_campaign"
VIEW_PROCESSES = "integration.view_process"
ACT_ON_PROCESSES = "integration.change_process"
ACT_ON_DELIVERIES = "integration.change_delivery"
SWITCH_LISTENERS = "integration.change_listenerswitch"
SWITCH_COMPONENTS = "integration.change_componentswitch"
SWITCH_MODE = "integration.change_runtimemode"

OPERATIONS_MODELS = {
    "process": ("view", "change"),
    "traceentry": ("view",),
    "step": ("view", "change"),
    "eventrecord": ("view",),
    "delivery": ("view", "change"),
    "listenerswitch": ("view", "change"),
    "componentswitch": ("view", "change"),
    "runtimemode": ("view", "change"),
    "webhookdelivery": ("view",),
    "webhookattempt": ("view",),
    "auditentry": ("view",),
    "reconcilerun": ("view",),
}

TEAMS: dict[str, dict[str, list[str]]] = {
    "Marketing": {
        # Marketing registers clients, so it corrects what it entered and records consent.
        "crm": ["view_client", "add_client", "change_client"],
        "marketing": [
            "view_campaign",
            "add_campaign",
            "change_campaign",
            "view_lead",
            "add_lead",
            "change_lead",
            "view_audiencemember",
        ],
    },
    "Sales": {
        "crm": ["view_client", "view_communication"],
        "sales": ["view_purchase", "add_purchase", "view_customeraccount"],
    },
    "Customer Relations": {
        # Customer Relations hears a client's changes and erasure requests first.
        "crm": [
            "view_client",
            "change_client",
            "delete_client",
            "view_communication",
            "add_communication",
        ],
        "sales": ["view_purchase"],
        "correspondence": ["view_message"],
    },
    "Operations": {
        # Operations carry out erasures asked for by other channels (the shop, the DPO).
        "crm": ["delete_client"],
        "integration": [
            f"{action}_{model}"
            for model, actions in OPERATIONS_MODELS.items()
            for action in actions
        ],
    },
}


def teams_ensure(**kwargs: Any) -> dict[str, Group]:
    """Create the team groups and grant their permissions (idempotent: grants are only added,
    so what an administrator granted on top stays)."""
    groups = {}
    for team, by_app in TEAMS.items():
        group, _ = Group.objects.get_or_create(name=team)
        for app_label, codenames in by_app.items():
            group.permissions.add(
                *Permission.objects.filter(
                    content_type__app_label=app_label, codename__in=codenames
                )
            )
        groups[team] = group
    return groups
