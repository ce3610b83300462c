"""kombu's filesystem transport, with messages that appear whole.

kombu writes a message file in place and a reader may list, move and read it before the writer
has written anything: the worker then fails to decode an empty message and stops. Here a message
is written under a name readers ignore and renamed into place (atomic on POSIX), and a message that
cannot be decoded is logged and dropped instead of stopping the worker (the database still knows
the work, and the sweeper sends it again).
"""

from __future__ import annotations

import logging
import os
import uuid
from queue import Empty
from time import monotonic
from typing import Any

from kombu.transport import TRANSPORT_ALIASES, filesystem
from kombu.utils.encoding import str_to_bytes
from kombu.utils.json import dumps

from config.kombu_envelopes import EnvelopeCheckingTransport

logger = logging.getLogger(__name__)


class Channel(filesystem.Channel):
    # The stubs of kombu's base and filesystem channels disagree on these signatures.
    def _put(self, queue: str, message: Any, **kwargs: Any) -> None:  # type: ignore[override]
        name = f"{round(monotonic() * 1000)}_{uuid.uuid4()}.{queue}.msg"
        final = os.path.join(self.data_folder_out, name)
        hidden = os.path.join(self.data_folder_out, f".{name}.part")
        with open(hidden, "wb") as file:
            file.write(str_to_bytes(dumps(message)))
        os.replace(hidden, final)

    def _get(self, queue: str, timeout: float | None = None) -> Any:
        try:
            return super()._get(queue)
        except ValueError as error:  # undecodable: drop it, the database will resend the work
            logger.error("dropped an unreadable message on %s: %s", queue, error)
            raise Empty() from None


class Transport(EnvelopeCheckingTransport, filesystem.Transport):
    Channel = Channel


def install() -> None:
    """Make `filesystem://` mean this transport (before any connection is made)."""
    TRANSPORT_ALIASES["filesystem"] = f"{__name__}:Transport"
