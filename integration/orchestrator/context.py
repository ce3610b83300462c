"""What a step is handed: its process, its client, the process's input and earlier results."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from uuid import UUID


@dataclass(frozen=True)
class StepContext:
    process_id: UUID
    client_id: UUID
    input: dict[str, Any]
    results: Mapping[str, dict[str, Any]]  # read only when a step asks
