"""Any sequence of desk and coordinator commands on one event keeps the attendance honest.

For any generated sequence of check-ins, reverts, walk-in tallies, cancellations and closings:
a participant is never counted twice, reverted check-ins never count, and a cancelled event never
gains attendance. The event store is simulated in memory; like the real recorder, it refuses to
create an aggregate whose id already exists, which is what stops a second check-in of the same
participant (``Attendance.create_id(event_id, participant_id)`` is deterministic).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from typing import Any, TypeVar
from uuid import UUID, uuid4

from eventsourcing.application import project_aggregate
from eventsourcing.domain import Aggregate, CanMutateAggregate
from eventsourcing.persistence import IntegrityError
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from domain.attendance import Attendance, WalkInTally
from domain.errors import EventNotOpen, EventNotScheduled, InvalidValue, NotCheckedIn
from domain.events import Event, EventStatus
from domain.generations import DEFAULT_BANDS
from domain.participants import Participant
from domain.provenance import Provenance, Role

A = TypeVar("A", bound=Aggregate)

PARTICIPANTS = 5
DESK = Provenance(actor_id="token-desk", actor_role=Role.DESK, desk_id="desk-A")
SECOND_DESK = Provenance(actor_id="token-desk-2", actor_role=Role.DESK, desk_id="desk-B")
COORDINATOR = Provenance(actor_id="token-coord", actor_role=Role.COORDINATOR)
STARTS_AT = datetime(2026, 7, 4, 10, 0, tzinfo=timezone(timedelta(hours=9)))

participant_index = st.integers(min_value=0, max_value=PARTICIPANTS - 1)
walk_in_counts = st.dictionaries(
    st.sampled_from(DEFAULT_BANDS.ids), st.integers(min_value=0, max_value=30), max_size=3
)


class InMemoryEventStore:
    """Streams of domain events by aggregate id; a position in a stream is written only once."""

    def __init__(self) -> None:
        self.streams: dict[UUID, list[CanMutateAggregate[UUID]]] = {}
        self._replayed: list[Aggregate] | None = None

    def __contains__(self, aggregate_id: UUID) -> bool:
        return aggregate_id in self.streams

    def save(self, aggregate: Aggregate) -> None:
        pending = aggregate.collect_events()
        next_version: dict[UUID, int] = {}
        for domain_event in pending:
            stream_id = domain_event.originator_id
            expected = next_version.get(stream_id, len(self.streams.get(stream_id, [])) + 1)
            if domain_event.originator_version != expected:
                raise IntegrityError(
                    f"{stream_id} already has an event at version {domain_event.originator_version}"
                )
            next_version[stream_id] = expected + 1
        for domain_event in pending:
            self.streams.setdefault(domain_event.originator_id, []).append(domain_event)
        self._replayed = None

    def get(self, aggregate_id: UUID, kind: type[A]) -> A:
        aggregate: Any = project_aggregate(None, self.streams[aggregate_id])
        assert isinstance(aggregate, kind)
        return aggregate

    def all(self, kind: type[A]) -> list[A]:
        """Every aggregate of a kind, replayed from its stream (once per change of the store)."""
        if self._replayed is None:
            self._replayed = []
            for events in self.streams.values():
                aggregate: Any = project_aggregate(None, events)
                self._replayed.append(aggregate)
        return [aggregate for aggregate in self._replayed if isinstance(aggregate, kind)]


class AttendanceAtOneEvent(RuleBasedStateMachine):
    """Desks and a coordinator act on one event; a plain model predicts what must happen."""

    def __init__(self) -> None:
        super().__init__()
        self.store = InMemoryEventStore()
        self.event = Event.schedule(
            program_id=uuid4(),
            title="のぼりとミーティング",
            starts_at=STARTS_AT,
            ends_at=STARTS_AT + timedelta(hours=2),
            district_id="noborito",
            venue=None,
            recorded_by=COORDINATOR,
        )
        self.store.save(self.event)
        self.participants: list[Participant] = []
        for birth_year in (2019, 2012, 1990, 1958, 1940)[:PARTICIPANTS]:
            participant = Participant.register(
                birth_year=birth_year,
                band_id=None,
                district_id="noborito",
                today=date(2026, 7, 4),
                bands=DEFAULT_BANDS,
                recorded_by=DESK,
            )
            self.store.save(participant)
            self.participants.append(participant)
        # Aggregates as the commands left them in memory, to compare with their replay.
        self.live: dict[UUID, Aggregate] = {self.event.id: self.event}

        # The model.
        self.status = EventStatus.SCHEDULED
        self.counted: set[int] = set()
        self.ever_checked_in: set[int] = set()
        self.walk_ins = 0

        # What the store showed after the previous step.
        self.previous_counted: set[UUID] = set()
        self.previous_walk_ins = 0

    # Commands

    def _attendance_id(self, p: int) -> UUID:
        return Attendance.create_id(self.event.id, self.participants[p].id)

    def _expect_check_in(self, p: int) -> tuple[bool, bool]:
        """(refused, newly counted) as the model predicts for a check-in of participant p."""
        if p in self.counted:
            return False, False
        if self.status is not EventStatus.SCHEDULED:
            return True, False
        return False, True

    def _record_check_in(self, p: int, attendance: Attendance, newly_counted: bool) -> None:
        refused, expected_new = self._expect_check_in(p)
        assert not refused
        assert newly_counted is expected_new
        self.live[attendance.id] = attendance
        self.counted.add(p)
        self.ever_checked_in.add(p)

    @rule(p=participant_index)
    def check_in(self, p: int) -> None:
        """A desk that looks the participant up first, as the application does."""
        attendance_id = self._attendance_id(p)
        assert (attendance_id in self.store) is (p in self.ever_checked_in)
        try:
            if attendance_id in self.store:
                attendance = self.store.get(attendance_id, Attendance)
                newly_counted = attendance.check_in_again(event=self.event, recorded_by=DESK)
            else:
                attendance = Attendance.check_in(
                    event=self.event, participant=self.participants[p], recorded_by=DESK
                )
                newly_counted = True
        except EventNotOpen:
            assert self._expect_check_in(p)[0]
            return
        self.store.save(attendance)
        self._record_check_in(p, attendance, newly_counted)

    @rule(p=participant_index)
    def check_in_at_a_desk_that_did_not_look_first(self, p: int) -> None:
        """A second desk creates the check-in blindly; the store refuses a duplicate id."""
        try:
            attendance = Attendance.check_in(
                event=self.event, participant=self.participants[p], recorded_by=SECOND_DESK
            )
            newly_counted = True
            try:
                self.store.save(attendance)
            except IntegrityError:
                assert p in self.ever_checked_in
                attendance = self.store.get(attendance.id, Attendance)
                newly_counted = attendance.check_in_again(event=self.event, recorded_by=SECOND_DESK)
                self.store.save(attendance)
        except EventNotOpen:
            # A closed event refuses even the desk that would only have found a counted check-in.
            assert self.status is not EventStatus.SCHEDULED
            return
        self._record_check_in(p, attendance, newly_counted)

    @rule(p=participant_index)
    def revert(self, p: int) -> None:
        attendance_id = self._attendance_id(p)
        if attendance_id not in self.store:
            assert p not in self.ever_checked_in
            return  # nothing to correct: the application answers "not checked in"
        attendance = self.store.get(attendance_id, Attendance)
        try:
            attendance.revert(reason="別の方と取り違え", recorded_by=DESK)
        except NotCheckedIn:
            assert p not in self.counted
            return
        assert p in self.counted
        self.store.save(attendance)
        self.live[attendance.id] = attendance
        self.counted.discard(p)

    @rule(counts=walk_in_counts)
    def record_walk_ins(self, counts: dict[str, int]) -> None:
        try:
            tally = WalkInTally.record(
                event=self.event, counts=counts, bands=DEFAULT_BANDS, recorded_by=DESK
            )
        except EventNotOpen:
            assert self.status is not EventStatus.SCHEDULED
            return
        except InvalidValue:
            assert self.status is EventStatus.SCHEDULED
            assert sum(counts.values()) == 0
            return
        assert self.status is EventStatus.SCHEDULED
        assert sum(counts.values()) > 0
        self.store.save(tally)
        self.live[tally.id] = tally
        self.walk_ins += sum(counts.values())

    @rule()
    def cancel(self) -> None:
        try:
            self.event.cancel(reason="台風のため中止", recorded_by=COORDINATOR)
        except EventNotScheduled:
            assert self.status is not EventStatus.SCHEDULED
            return
        assert self.status is EventStatus.SCHEDULED
        self.store.save(self.event)
        self.status = EventStatus.CANCELLED

    @rule()
    def close(self) -> None:
        try:
            self.event.close(recorded_by=COORDINATOR)
        except EventNotScheduled:
            assert self.status is not EventStatus.SCHEDULED
            return
        assert self.status is EventStatus.SCHEDULED
        self.store.save(self.event)
        self.status = EventStatus.CLOSED

    # Invariants, checked on what the store replays

    def _stored_counted(self) -> set[UUID]:
        return {a.participant_id for a in self.store.all(Attendance) if a.counted}

    def _stored_walk_ins(self) -> int:
        return sum(tally.total for tally in self.store.all(WalkInTally) if tally.counted)

    @invariant()
    def counted_participants_are_the_ones_the_model_counts(self) -> None:
        assert self._stored_counted() == {self.participants[p].id for p in self.counted}
        assert self._stored_walk_ins() == self.walk_ins

    @invariant()
    def no_participant_holds_two_check_ins(self) -> None:
        attendances = self.store.all(Attendance)
        participant_ids = [attendance.participant_id for attendance in attendances]
        assert len(participant_ids) == len(set(participant_ids))
        for attendance in attendances:
            assert attendance.id == Attendance.create_id(self.event.id, attendance.participant_id)

    @invariant()
    def reverted_check_ins_never_count(self) -> None:
        reverted = {self.participants[p].id for p in self.ever_checked_in - self.counted}
        for attendance in self.store.all(Attendance):
            if attendance.participant_id in reverted:
                assert not attendance.counted
                assert attendance.revert_reason == "別の方と取り違え"

    @invariant()
    def a_cancelled_event_never_gains_attendance(self) -> None:
        counted, walk_ins = self._stored_counted(), self._stored_walk_ins()
        if self.store.get(self.event.id, Event).status is EventStatus.CANCELLED:
            assert counted <= self.previous_counted
            assert walk_ins <= self.previous_walk_ins
        self.previous_counted, self.previous_walk_ins = counted, walk_ins

    @invariant()
    def replaying_the_log_gives_the_state_the_commands_left(self) -> None:
        for aggregate_id, aggregate in self.live.items():
            replayed = self.store.get(aggregate_id, type(aggregate))
            assert replayed.version == aggregate.version
            if isinstance(aggregate, Attendance):
                assert isinstance(replayed, Attendance)
                assert replayed.counted is aggregate.counted
            elif isinstance(aggregate, Event):
                assert isinstance(replayed, Event)
                assert replayed.status is aggregate.status is self.status


AttendanceAtOneEvent.TestCase.settings = settings(
    max_examples=150,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestAttendanceAtOneEvent = AttendanceAtOneEvent.TestCase
