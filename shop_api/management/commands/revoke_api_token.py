"""`manage.py revoke_api_token NAME`: the token stops working at once."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from common.errors import ApplicationError
from shop_api.auth import token_revoke


class Command(BaseCommand):
    help = "Revoke a shop API token."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("name")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            token = token_revoke(name=options["name"])
        except ApplicationError as error:
            raise CommandError(error.detail) from None
        self.stdout.write(f"revoked {token.name}")
