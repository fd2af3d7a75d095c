"""What the application needs from storage, described without naming a database."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Protocol

from eventsourcing.domain import DomainEventProtocol


@dataclass(frozen=True)
class Idempotency:
    """A client's Idempotency-Key, scoped to the client, and the fingerprint of its request."""

    scope: str
    key: str
    fingerprint: str


@dataclass(frozen=True)
class StoredOutcome:
    fingerprint: str
    created: bool
    result: dict[str, Any]


class Storage(Protocol):
    """Side tables kept in the same database, in the same transaction, as the event log."""

    def atomic(self) -> AbstractContextManager[object]:
        """One transaction around events and side rows; events saved inside it join it."""

    def find_outcome(self, scope: str, key: str) -> StoredOutcome | None:
        """The outcome first recorded under an idempotency key, if any."""

    def save_outcome(
        self, idempotency: Idempotency, command: str, created: bool, result: dict[str, Any]
    ) -> None:
        """Record an outcome; raises the store's IntegrityError when the key is already taken."""


class InlineProjection(Protocol):
    """A read model updated in the same transaction as the events it reads (read-your-writes)."""

    def process(self, events: Sequence[DomainEventProtocol[Any]]) -> None:
        """Apply newly recorded events; called inside ``Storage.atomic()``."""
