"""`manage.py load_demo_data`: the demo logins and data, once."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from staff.demo import demo_load


class Command(BaseCommand):
    help = "Load the demo users, clients and campaigns (does nothing when they are there)."

    def handle(self, *args: Any, **options: Any) -> None:
        loaded = demo_load()
        self.stdout.write("demo data loaded" if loaded else "demo data already present")
