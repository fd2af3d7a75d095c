"""Attendance at an event: check-ins and walk-in headcounts.

Each (event, participant) pair has its own small aggregate with a deterministic id, so desks
checking people in at one event never write to the same stream, and a participant can hold at
most one check-in per event: the store refuses a second creation of the same id.
"""

from __future__ import annotations

import functools
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import event

from domain.errors import InvalidValue, NotCheckedIn
from domain.events import Event
from domain.generations import BandScheme
from domain.organizations import clean_name
from domain.participants import Participant
from domain.provenance import Provenance
from domain.recording import RecordedAggregate

ATTENDANCE_NAMESPACE = uuid5(NAMESPACE_URL, "https://tsunagari.invalid/attendance")
MAX_WALK_INS_PER_BAND = 10_000


@functools.lru_cache(maxsize=4096)
def _attendance_id(event_id: UUID, participant_id: UUID) -> UUID:
    """Remembered a while: a check-in works it out to read the attendance, then again as the
    library creates it (a SHA-1 and a UUID each time, a few % of the check-in writer's time)."""
    return uuid5(ATTENDANCE_NAMESPACE, f"{event_id}/{participant_id}")


class Attendance(RecordedAggregate):
    """One participant's attendance at one event: checked in, reverted, checked in again."""

    class CheckedIn(RecordedAggregate.Created):
        event_id: UUID
        participant_id: UUID
        recorded_by: Provenance

    class CheckedInAgain(RecordedAggregate.Event):
        recorded_by: Provenance

    class CheckInReverted(RecordedAggregate.Event):
        reason: str
        recorded_by: Provenance

    @staticmethod
    def create_id(event_id: UUID, participant_id: UUID) -> UUID:
        return _attendance_id(event_id, participant_id)

    @classmethod
    def check_in(
        cls, *, event: Event, participant: Participant, recorded_by: Provenance
    ) -> Attendance:
        event.ensure_takes_attendance()
        return cls(event_id=event.id, participant_id=participant.id, recorded_by=recorded_by)

    @event(CheckedIn)
    def __init__(self, *, event_id: UUID, participant_id: UUID, recorded_by: Provenance) -> None:
        self.event_id = event_id
        self.participant_id = participant_id
        self.counted = True
        self.revert_reason: str | None = None

    def check_in_again(self, *, event: Event, recorded_by: Provenance) -> bool:
        """Check in again after a revert. False when the check-in already counts."""
        if self.counted:
            return False
        event.ensure_takes_attendance()
        self._check_in_again(recorded_by=recorded_by)
        return True

    @event(CheckedInAgain)
    def _check_in_again(self, *, recorded_by: Provenance) -> None:
        self.counted = True
        self.revert_reason = None

    def revert(self, *, reason: str, recorded_by: Provenance) -> None:
        """Correct a wrong check-in: it stops counting, and the record of it stays."""
        if not self.counted:
            raise NotCheckedIn(
                f"participant {self.participant_id} has no counted check-in at "
                f"event {self.event_id}: it was already reverted"
            )
        self._revert(reason=clean_name(reason, "reason"), recorded_by=recorded_by)

    @event(CheckInReverted)
    def _revert(self, *, reason: str, recorded_by: Provenance) -> None:
        self.counted = False
        self.revert_reason = reason


class WalkInTally(RecordedAggregate):
    """Headcounts by generation band of people who attended without registering.

    They count toward total attendances and toward the generations present, never toward
    unique people. Each recording is its own aggregate, so desks never contend.
    """

    class Recorded(RecordedAggregate.Created):
        event_id: UUID
        counts: dict[str, int]
        recorded_by: Provenance

    class Reverted(RecordedAggregate.Event):
        reason: str
        recorded_by: Provenance

    @classmethod
    def record(
        cls,
        *,
        event: Event,
        counts: dict[str, int],
        bands: BandScheme,
        recorded_by: Provenance,
    ) -> WalkInTally:
        event.ensure_takes_attendance()
        cleaned: dict[str, int] = {}
        for band_id, count in counts.items():
            bands.get(band_id)
            if isinstance(count, bool) or not isinstance(count, int) or count < 0:
                raise InvalidValue(f"walk-in count for {band_id!r} must be a whole number ≥ 0")
            if count > MAX_WALK_INS_PER_BAND:
                raise InvalidValue(
                    f"walk-in count for {band_id!r} is over {MAX_WALK_INS_PER_BAND}: "
                    "record large crowds in several tallies"
                )
            if count:
                cleaned[band_id] = count
        if not cleaned:
            raise InvalidValue("a walk-in tally needs at least one band with a count above 0")
        return cls(event_id=event.id, counts=cleaned, recorded_by=recorded_by)

    @event(Recorded)
    def __init__(self, *, event_id: UUID, counts: dict[str, int], recorded_by: Provenance) -> None:
        self.event_id = event_id
        self.counts = dict(counts)
        self.counted = True
        self.revert_reason: str | None = None

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def revert(self, *, reason: str, recorded_by: Provenance) -> None:
        if not self.counted:
            raise NotCheckedIn(f"walk-in tally {self.id} was already reverted")
        self._revert(reason=clean_name(reason, "reason"), recorded_by=recorded_by)

    @event(Reverted)
    def _revert(self, *, reason: str, recorded_by: Provenance) -> None:
        self.counted = False
        self.revert_reason = reason
