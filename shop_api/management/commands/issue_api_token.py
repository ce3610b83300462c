"""`manage.py issue_api_token NAME [--callback-url URL]`: a shop token, shown once.

The token is the last line of stdout; with a callback URL, the webhook secret is the line before.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.core.validators import URLValidator

from common.errors import ApplicationError
from shop_api.auth import token_issue


class Command(BaseCommand):
    help = "Issue a bearer token for the shop API (printed once; only its hash is kept)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("name")
        parser.add_argument("--callback-url", default="")

    def handle(self, *args: Any, **options: Any) -> None:
        url = options["callback_url"].strip()
        if url:
            try:
                URLValidator(schemes=["http", "https"])(url)
            except ValidationError:
                raise CommandError(f"not an http(s) URL: {url!r}") from None
        try:
            issued = token_issue(name=options["name"], callback_url=url)
        except ApplicationError as error:
            raise CommandError(error.detail) from None
        self.stderr.write(f"Token {issued.token.name!r} issued; it is shown only now.")
        if issued.secret:
            self.stdout.write(issued.secret)
        self.stdout.write(issued.raw)
