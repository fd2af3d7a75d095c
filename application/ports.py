"""What the application needs from storage, described without naming a database."""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable
from uuid import UUID

from eventsourcing.domain import DomainEventProtocol
from eventsourcing.persistence import StoredEvent


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
    participant_id: UUID | None = None
    """Set when the answer is about a participant: its fingerprint is keyed with their key."""


@runtime_checkable
class StreamReader(Protocol):
    """A recorder that reads many streams in one query (optional: group commit then fetches
    the streams a batch of commands will read at once)."""

    def select_streams(
        self, originator_ids: Sequence[UUID], *, before_lock: bool = False
    ) -> Mapping[UUID, Sequence[StoredEvent]]:
        """Every stored event of each stream, in version order; streams without any left out.

        ``before_lock``: the read may run before the transaction takes the store's write
        lock, provided the store then checks, under the lock and before anything is written,
        that none of these streams has changed since, and fails the transaction if one has
        (as for a lost race: IntegrityError)."""


class Storage(Protocol):
    """Side tables kept in the same database, in the same transaction, as the event log."""

    def atomic(self) -> AbstractContextManager[object]:
        """One transaction around events and side rows; events saved inside it join it."""

    def find_outcome(self, scope: str, key: str) -> StoredOutcome | None:
        """The outcome first recorded under an idempotency key, if any."""

    def save_outcome(
        self,
        idempotency: Idempotency,
        command: str,
        created: bool,
        result: dict[str, Any],
        *,
        participant_id: UUID | None = None,
    ) -> None:
        """Record an outcome; the store's IntegrityError when the key is already taken, here
        or when the transaction commits (outcomes may be written together at commit, and
        ``find_outcome`` finds them before). ``participant_id``: the answer is about that
        participant."""

    def erase_outcomes(
        self,
        participant_id: UUID,
        commands: Collection[str],
        fingerprint: str,
        rewrite: Callable[[dict[str, Any]], dict[str, Any]],
    ) -> None:
        """In the current transaction, overwrite every stored answer about the participant:
        those saved with its id and, among the given commands' answers saved without one,
        those whose ``id`` is the participant's. Each gets ``fingerprint`` and its result
        rewritten, and is marked as about the participant."""


class InlineProjection(Protocol):
    """A read model updated in the same transaction as the events it reads (read-your-writes)."""

    def process(self, events: Sequence[DomainEventProtocol[Any]]) -> None:
        """Apply newly recorded events; called inside ``Storage.atomic()``."""


class Sealer(Protocol):
    """Encryption with one participant's own key."""

    def seal(self, content: dict[str, Any]) -> str:
        """An opaque envelope holding the content."""

    def open(self, envelope: str) -> dict[str, Any]:
        """The content of an envelope this key sealed."""

    def keyed(self, text: str) -> str:
        """A keyed hash (hex) of the text: comparable only while the key exists."""


class ParticipantKeys(Protocol):
    """Per-participant keys, kept apart from the log; destroying one erases what it sealed."""

    def create(self, participant_id: UUID) -> Sealer:
        """A new key for a new participant, written in the current transaction."""

    def find(self, participant_id: UUID) -> Sealer | None:
        """The participant's key, or None once it was destroyed (or never existed)."""

    def destroy(self, participant_id: UUID) -> None:
        """Delete the key for good, in the current transaction; harmless when already gone."""

    def purge(self) -> None:
        """After the deleting transaction committed: leave no copy of a destroyed key in the
        store's files (e.g. SQLite's write-ahead log)."""


class AttendanceIndex(Protocol):
    """Which events a participant was checked in at (a read model), for the disclosure."""

    def events_attended_by(self, participant_id: UUID) -> list[UUID]:
        """Ids of the events with a check-in of this participant, reverted ones included."""
