"""Log records carry the correlation id of the process they belong to."""

from __future__ import annotations

import logging

from common import correlation


class CorrelationIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.correlation_id = correlation.get() or "-"
        return True
