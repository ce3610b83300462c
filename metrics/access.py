"""Who may read `/metrics`. With METRICS_TOKEN set: whoever sends it as a bearer token, from
anywhere; without it: loopback clients only (a scraper on the same host, or behind a proxy that
the operator configured there), so that a fresh install shows nothing to the network."""

from __future__ import annotations

import hmac
import ipaddress

from django.conf import settings
from django.http import HttpRequest, HttpResponse


def refusal(request: HttpRequest) -> HttpResponse | None:
    """None when the request may read the metrics, else the answer that refuses it."""
    token = settings.METRICS_TOKEN
    if token:
        sent = request.headers.get("Authorization", "")
        scheme, _, credentials = sent.partition(" ")
        # Compared in constant time, and as bytes: a non-ASCII header must not raise.
        if scheme.lower() == "bearer" and hmac.compare_digest(
            credentials.strip().encode(), token.encode()
        ):
            return None
        response = HttpResponse(
            "A bearer token is required.\n", status=401, content_type="text/plain"
        )
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    if is_loopback(request.META.get("REMOTE_ADDR", "")):
        return None
    return HttpResponse(
        "Metrics answer loopback clients only (set METRICS_TOKEN to scrape from elsewhere).\n",
        status=403,
        content_type="text/plain",
    )


def is_loopback(address: str) -> bool:
    """127.0.0.0/8 or ::1 (an IPv4 loopback address mapped into IPv6 too)."""
    try:
        ip = ipaddress.ip_address(address.strip())
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_loopback
