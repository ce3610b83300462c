"""Email addresses are compared after one normalisation, everywhere."""

from __future__ import annotations


def normalise_email(raw: str) -> str:
    """Trim the address and lower-case its domain; the local part keeps its case."""
    address = raw.strip()
    local, at, domain = address.rpartition("@")
    if not at:
        return address
    return f"{local}@{domain.lower()}"
