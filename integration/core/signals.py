"""What the process core announces. The faces subscribe (webhooks, live pages); the core never
imports them. Both are sent inside the transaction that made the change: receivers that reach
outside the database defer their work to `transaction.on_commit`."""

from __future__ import annotations

from django.dispatch import Signal

# A trace entry was written: kwargs process_id.
trace_written = Signal()

# A process moved to completed, failed, stuck or closed: kwargs process, status.
process_status_changed = Signal()

# The integration layer scrubbed what it keeps about an erased client: kwargs client_id.
# Receivers forget what they keep (stored lookup answers, idempotency records) and may answer
# with a dict of counts for the erasure's result.
client_scrubbed = Signal()
