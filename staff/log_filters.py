"""Filters the logging configuration attaches to Django's loggers (config/settings.py)."""

from __future__ import annotations

import logging


class RefusalWithoutTraceback(logging.Filter):
    """A 403 is an everyday answer (a team opening a page it may not use), not a fault: its
    warning line stays, the traceback Django attaches to it goes."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "status_code", None) == 403:
            record.exc_info = None
            record.exc_text = None
        return True
