"""The facts indicators are made of, distilled from domain events, kept in memory.

Each fact is the whole current state of one thing (an event, a check-in, a tally...) after a
change. Stored with its log position and recording time, the facts' history answers "as of"
questions; the latest fact of each thing is the present.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, replace
from datetime import date, datetime
from functools import singledispatchmethod
from typing import Any
from uuid import UUID

from domain.attendance import Attendance, WalkInTally
from domain.events import Event, local_date
from domain.fiscal import fiscal_year_of
from domain.participants import Participant
from domain.programs import Program


@dataclass(frozen=True, slots=True)
class ProgramFact:
    program_id: UUID
    policy: str
    host_ids: tuple[UUID, ...]


@dataclass(frozen=True, slots=True)
class EventFact:
    event_id: UUID
    program_id: UUID
    district_id: str
    local_date: date
    cancelled: bool

    @property
    def fiscal_year(self) -> int:
        return fiscal_year_of(self.local_date)


@dataclass(frozen=True, slots=True)
class ParticipantFact:
    participant_id: UUID
    birth_year: int | None
    band_id: str | None


@dataclass(frozen=True, slots=True)
class AttendanceFact:
    attendance_id: UUID
    event_id: UUID
    participant_id: UUID
    counted: bool


@dataclass(frozen=True, slots=True)
class WalkInFact:
    tally_id: UUID
    event_id: UUID
    counts: tuple[tuple[str, int], ...]
    counted: bool


Fact = ProgramFact | EventFact | ParticipantFact | AttendanceFact | WalkInFact


@dataclass(frozen=True, slots=True)
class Recorded:
    """A fact with where it stands in the log."""

    position: int
    recorded_at: datetime
    fact: Fact


class Facts:
    """The present state of every fact, with the indexes the indicators need."""

    def __init__(self) -> None:
        self.programs: dict[UUID, ProgramFact] = {}
        self.events: dict[UUID, EventFact] = {}
        self.participants: dict[UUID, ParticipantFact] = {}
        self.attendances: dict[UUID, AttendanceFact] = {}
        self.walk_ins: dict[UUID, WalkInFact] = {}
        self.attendances_by_event: defaultdict[UUID, set[UUID]] = defaultdict(set)
        self.walk_ins_by_event: defaultdict[UUID, set[UUID]] = defaultdict(set)
        self.events_by_year: defaultdict[int, set[UUID]] = defaultdict(set)
        self.events_by_participant: defaultdict[UUID, set[UUID]] = defaultdict(set)
        self.revisions: defaultdict[UUID, int] = defaultdict(int)
        """Bumped whenever anything an event's indicators depend on changes."""

    # Reading domain events -------------------------------------------------------------

    def translate(self, domain_event: Any) -> Fact | None:
        """The fact a domain event leaves behind, or None when indicators ignore it."""
        fact: Fact | None = self._translate(domain_event)
        return fact

    @singledispatchmethod
    def _translate(self, domain_event: object) -> Fact | None:
        return None

    @_translate.register
    def _(self, e: Program.Launched) -> Fact | None:
        return ProgramFact(e.originator_id, e.policy.value, tuple(e.host_organization_ids))

    @_translate.register
    def _(self, e: Event.Scheduled) -> Fact | None:
        return EventFact(
            e.originator_id, e.program_id, e.district_id, local_date(e.starts_at), False
        )

    # Events that change a thing need its earlier fact. It is missing only when the log is
    # read from a cut (an "as of" time): then the change is after the cut too.

    @_translate.register
    def _(self, e: Event.Rescheduled) -> Fact | None:
        event = self.events.get(e.originator_id)
        return event and replace(event, local_date=local_date(e.starts_at))

    @_translate.register
    def _(self, e: Event.Cancelled) -> Fact | None:
        event = self.events.get(e.originator_id)
        return event and replace(event, cancelled=True)

    @_translate.register
    def _(self, e: Participant.Registered) -> Fact | None:
        return ParticipantFact(e.originator_id, e.birth_year, e.band_id)

    @_translate.register
    def _(self, e: Attendance.CheckedIn) -> Fact | None:
        return AttendanceFact(e.originator_id, e.event_id, e.participant_id, True)

    @_translate.register
    def _(self, e: Attendance.CheckedInAgain) -> Fact | None:
        attendance = self.attendances.get(e.originator_id)
        return attendance and replace(attendance, counted=True)

    @_translate.register
    def _(self, e: Attendance.CheckInReverted) -> Fact | None:
        attendance = self.attendances.get(e.originator_id)
        return attendance and replace(attendance, counted=False)

    @_translate.register
    def _(self, e: WalkInTally.Recorded) -> Fact | None:
        return WalkInFact(e.originator_id, e.event_id, tuple(sorted(e.counts.items())), True)

    @_translate.register
    def _(self, e: WalkInTally.Reverted) -> Fact | None:
        tally = self.walk_ins.get(e.originator_id)
        return tally and replace(tally, counted=False)

    # Applying facts ----------------------------------------------------------------------

    def put(self, fact: Fact) -> set[int]:
        """Make a fact the present one; answers the fiscal years whose indicators it may change."""
        if isinstance(fact, AttendanceFact):
            self.attendances[fact.attendance_id] = fact
            self.attendances_by_event[fact.event_id].add(fact.attendance_id)
            self.events_by_participant[fact.participant_id].add(fact.event_id)
            return self._touch(fact.event_id)
        if isinstance(fact, WalkInFact):
            self.walk_ins[fact.tally_id] = fact
            self.walk_ins_by_event[fact.event_id].add(fact.tally_id)
            return self._touch(fact.event_id)
        if isinstance(fact, EventFact):
            years = set()
            previous = self.events.get(fact.event_id)
            if previous is not None:
                years.add(previous.fiscal_year)
                self.events_by_year[previous.fiscal_year].discard(fact.event_id)
            self.events[fact.event_id] = fact
            self.events_by_year[fact.fiscal_year].add(fact.event_id)
            return years | self._touch(fact.event_id)
        if isinstance(fact, ParticipantFact):
            self.participants[fact.participant_id] = fact
            years = set()
            for event_id in self.events_by_participant.get(fact.participant_id, ()):
                years |= self._touch(event_id)
            return years
        self.programs[fact.program_id] = fact
        return set()

    def _touch(self, event_id: UUID) -> set[int]:
        self.revisions[event_id] += 1
        event = self.events.get(event_id)
        return {event.fiscal_year} if event is not None else set()

    @property
    def fiscal_years(self) -> list[int]:
        """Fiscal years with at least one event, oldest first."""
        return sorted(year for year, events in self.events_by_year.items() if events)
