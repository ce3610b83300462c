"""Bearer tokens for the shop: issued by `manage.py issue_api_token`, kept hashed, revocable.

A token authenticates the shop API only. Staff pages and the admin use Django sessions and ignore
the Authorization header, so a shop token counts for nothing there.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone
from rest_framework import authentication, exceptions
from rest_framework.request import Request

from common.errors import Conflict, NotFound, ValidationFailed
from common.recent import Recent
from integration.models import ApiToken

TOKEN_PREFIX = "ens_"


def hash_token(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


@dataclass(frozen=True)
class IssuedToken:
    token: ApiToken
    raw: str
    secret: str | None


def token_issue(*, name: str, callback_url: str = "") -> IssuedToken:
    """Create a token; the raw value (and webhook secret) exist only in the return value."""
    name = name.strip()
    if not name or len(name) > 100:
        raise ValidationFailed("A token needs a name of 1 to 100 characters.")
    raw = TOKEN_PREFIX + secrets.token_urlsafe(32)
    secret = secrets.token_urlsafe(32) if callback_url else None
    try:
        with transaction.atomic():
            token = ApiToken.objects.create(
                name=name,
                key_hash=hash_token(raw),
                prefix=raw[: len(TOKEN_PREFIX) + 6],
                callback_url=callback_url,
                webhook_secret=secret or "",
            )
    except IntegrityError:
        raise Conflict(f"A token named {name!r} exists already.") from None
    return IssuedToken(token=token, raw=raw, secret=secret)


def token_revoke(*, name: str) -> ApiToken:
    updated = ApiToken.objects.filter(name=name, revoked_at__isnull=True).update(
        revoked_at=timezone.now()
    )
    token = ApiToken.objects.filter(name=name).first()
    if token is None:
        raise NotFound(f"No token named {name!r}.")
    if not updated:
        raise Conflict(f"The token {name!r} was revoked already.")
    _active.forget(token.key_hash)
    return token


class ShopPrincipal:
    """request.user for a shop: authenticated, no staff rights."""

    is_authenticated = True
    is_anonymous = False
    is_staff = False
    is_superuser = False

    def __init__(self, token: ApiToken) -> None:
        self.token = token

    def __str__(self) -> str:
        return f"shop:{self.token.name}"


# Tokens in use, by hash, for at most a second: a revoked token stops working within it.
_active = Recent[ApiToken | None]()


def active_token(key_hash: str) -> ApiToken | None:
    return _active.get(
        key_hash,
        lambda: (
            ApiToken.objects.filter(key_hash=key_hash, revoked_at__isnull=True)
            .only("id", "name", "key_hash", "callback_url")
            .first()
        ),
    )


class BearerTokenAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request: Request) -> tuple[ShopPrincipal, ApiToken] | None:
        header = request.META.get("HTTP_AUTHORIZATION", "")
        if not header:
            return None
        scheme, _, raw = header.partition(" ")
        if scheme.lower() != "bearer" or not raw.strip():
            raise exceptions.AuthenticationFailed("Use Authorization: Bearer <token>.")
        token = active_token(hash_token(raw.strip()))
        if token is None:
            raise exceptions.AuthenticationFailed("The token is invalid or revoked.")
        return ShopPrincipal(token), token

    def authenticate_header(self, request: Any) -> str:
        return self.keyword
