"""The Tsunagari application: every command and query of the participation log.

Commands read aggregates, let the domain decide, then save the new events, the inline read
models and the idempotency record in one transaction. A write that loses a race (two desks
creating the same check-in, or appending to the same stream) rolls back whole and is decided
again on fresh state, so a desk never sees the conflict.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Hashable, Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from typing import Any, Generic, TypeVar
from uuid import UUID, uuid4

from eventsourcing.application import AggregateNotFoundError, Application, ProcessingEvent
from eventsourcing.domain import Aggregate, DomainEventProtocol
from eventsourcing.persistence import ApplicationRecorder, IntegrityError, JSONTranscoder
from eventsourcing.utils import EnvType

from application.errors import (
    IdempotencyKeyReused,
    NotFound,
    PersonalDataUnavailable,
    TooMuchContention,
)
from application.group_commit import REFUSALS, GroupCommit
from application.personal_data import (
    AttendanceDisclosure,
    DisclosureView,
    PersonalDataReader,
    SensitiveDisclosure,
    history_of,
)
from application.ports import (
    AttendanceIndex,
    Idempotency,
    InlineProjection,
    ParticipantKeys,
    Sealer,
    Storage,
    StoredOutcome,
    StreamReader,
)
from application.transcodings import register_domain_transcodings
from application.views import (
    AttendanceStatus,
    CheckInView,
    EventView,
    OrganizationView,
    ParticipantView,
    PersonalDataState,
    ProgramView,
    View,
    WalkInView,
)
from domain.attendance import Attendance, WalkInTally
from domain.districts import DEFAULT_DISTRICTS, DistrictTable
from domain.errors import ParticipantErased, UnknownReference
from domain.events import Event, local_date
from domain.generations import DEFAULT_BANDS, BandScheme
from domain.organizations import Organization, OrganizationKind
from domain.participants import Participant, PersonalData
from domain.programs import Policy, Program, ProgramArea
from domain.provenance import Provenance
from domain.recording import recording_clock

V = TypeVar("V", bound=View)
A = TypeVar("A", bound=Aggregate)

MAX_ATTEMPTS = 8

PARTICIPANT_COMMANDS = (
    "register_participant",
    "correct_personal_data",
    "record_consent",
    "record_sensitive_data",
    "erase_participant",
)
"""Commands whose answer (and request) is about one participant's personal data."""
KEY_DESTROYED = "key-destroyed"
"""The fingerprint of a participant's stored answer once nothing can key it any more."""


@dataclass(frozen=True)
class Outcome(Generic[V]):
    """A command's answer: the resulting view, whether it created something, whether replayed."""

    result: V
    created: bool
    replayed: bool = False


@dataclass(frozen=True, slots=True)
class CheckIn:
    """One check-in command, as ``check_in`` takes it: for ``check_in_all``."""

    event_id: UUID
    participant_id: UUID
    recorded_by: Provenance
    idempotency: Idempotency | None = None


@dataclass(frozen=True)
class Decision(Generic[V]):
    """What a command decided: the view to answer and the aggregates holding new events."""

    result: V
    created: bool
    aggregates: tuple[Aggregate, ...] = field(default=())


def _project(aggregate: Any, domain_events: Iterable[Any]) -> Any:
    """eventsourcing's ``project_aggregate`` without its ``isinstance`` check of every event
    against a runtime-checkable Protocol: on Python 3.11 that check walks the protocol's
    attributes each time, and it took a third of reconstructing a participant on the
    check-in path. Every event read here comes from our own mapper, each with ``mutate``."""
    for domain_event in domain_events:
        aggregate = domain_event.mutate(aggregate)
    return aggregate


def utc_now() -> datetime:
    return datetime.now(UTC)


class Tsunagari(Application[UUID]):
    """Participation records as an immutable event log."""

    name = "tsunagari"

    def __init__(
        self,
        env: EnvType | None = None,
        *,
        storage_factory: Callable[[ApplicationRecorder], Storage],
        keys_factory: Callable[[], ParticipantKeys],
        clock: Callable[[], datetime] = utc_now,
        bands: BandScheme = DEFAULT_BANDS,
        districts: DistrictTable = DEFAULT_DISTRICTS,
    ) -> None:
        super().__init__(env)
        self.storage = storage_factory(self.recorder)
        self.keys = keys_factory()
        self.attendance_index: AttendanceIndex | None = None
        self.clock = clock
        self.bands = bands
        self.districts = districts
        self.inline_projections: list[InlineProjection] = []
        # The open transaction's aggregates: written, and lent to read-only lookups.
        self._written: list[UUID] = []
        self._lent: dict[UUID, object] = {}
        # Whether each stream the open transaction's prefetch asked for is in the store (or
        # was written since); a stream it did not ask for is not in it.
        self._found: dict[UUID, bool] = {}
        streams = self.recorder if isinstance(self.recorder, StreamReader) else None
        self._streams: StreamReader | None = streams
        self.commits = GroupCommit(self._transaction, prepare=self._prefetch)

    def close(self) -> None:
        self.commits.close()
        super().close()

    def register_transcodings(self, transcoder: JSONTranscoder) -> None:
        super().register_transcodings(transcoder)
        register_domain_transcodings(transcoder)

    def add_inline_projection(self, projection: InlineProjection) -> None:
        """Keep a read model up to date in the same transaction as every command's events."""
        self.inline_projections.append(projection)

    def use_attendance_index(self, index: AttendanceIndex) -> None:
        """The read model that says which events a participant attended (for disclosures)."""
        self.attendance_index = index

    def today(self) -> date:
        """Today's date in Asia/Tokyo."""
        return local_date(self.clock())

    # Organisations, programmes, events -------------------------------------------------

    def register_organization(
        self,
        *,
        name: str,
        kind: OrganizationKind,
        district_id: str | None,
        recorded_by: Provenance,
        idempotency: Idempotency | None = None,
    ) -> Outcome[OrganizationView]:
        def decide() -> Decision[OrganizationView]:
            if district_id is not None:
                self.districts.get(district_id)
            organization = Organization.register(
                name=name, kind=kind, district_id=district_id, recorded_by=recorded_by
            )
            return Decision(OrganizationView.of(organization), True, (organization,))

        return self._execute("register_organization", OrganizationView, idempotency, decide)

    def launch_program(
        self,
        *,
        name: str,
        policy: Policy,
        area: ProgramArea,
        host_organization_ids: list[UUID],
        recorded_by: Provenance,
        idempotency: Idempotency | None = None,
    ) -> Outcome[ProgramView]:
        def decide() -> Decision[ProgramView]:
            for organization_id in host_organization_ids:
                self._referenced(Organization, organization_id, "organisation")
            program = Program.launch(
                name=name,
                policy=policy,
                area=area,
                host_organization_ids=host_organization_ids,
                recorded_by=recorded_by,
            )
            return Decision(ProgramView.of(program), True, (program,))

        return self._execute("launch_program", ProgramView, idempotency, decide)

    def schedule_event(
        self,
        *,
        program_id: UUID,
        title: str,
        starts_at: datetime,
        ends_at: datetime | None,
        district_id: str,
        venue: str | None,
        recorded_by: Provenance,
        idempotency: Idempotency | None = None,
    ) -> Outcome[EventView]:
        def decide() -> Decision[EventView]:
            self._referenced(Program, program_id, "programme")
            self.districts.get(district_id)
            event = Event.schedule(
                program_id=program_id,
                title=title,
                starts_at=starts_at,
                ends_at=ends_at,
                district_id=district_id,
                venue=venue,
                recorded_by=recorded_by,
            )
            return Decision(EventView.of(event), True, (event,))

        return self._execute("schedule_event", EventView, idempotency, decide)

    def reschedule_event(
        self,
        event_id: UUID,
        *,
        starts_at: datetime,
        ends_at: datetime | None,
        recorded_by: Provenance,
        idempotency: Idempotency | None = None,
    ) -> Outcome[EventView]:
        def decide() -> Decision[EventView]:
            event = self._get(Event, event_id, "event")
            event.reschedule(starts_at=starts_at, ends_at=ends_at, recorded_by=recorded_by)
            return Decision(EventView.of(event), False, (event,))

        return self._execute("reschedule_event", EventView, idempotency, decide)

    def cancel_event(
        self,
        event_id: UUID,
        *,
        reason: str,
        recorded_by: Provenance,
        idempotency: Idempotency | None = None,
    ) -> Outcome[EventView]:
        def decide() -> Decision[EventView]:
            event = self._get(Event, event_id, "event")
            event.cancel(reason=reason, recorded_by=recorded_by)
            # Created: the cancellation, a record of its own in the log (HTTP 201, as the
            # creations), where a reschedule amends the schedule (200).
            return Decision(EventView.of(event), True, (event,))

        return self._execute("cancel_event", EventView, idempotency, decide)

    def close_event(
        self,
        event_id: UUID,
        *,
        recorded_by: Provenance,
        idempotency: Idempotency | None = None,
    ) -> Outcome[EventView]:
        def decide() -> Decision[EventView]:
            event = self._get(Event, event_id, "event")
            event.close(recorded_by=recorded_by)
            return Decision(EventView.of(event), True, (event,))  # the closing: as a cancel

        return self._execute("close_event", EventView, idempotency, decide)

    # Participants and attendance -------------------------------------------------------

    def register_participant(
        self,
        *,
        birth_year: int | None,
        band_id: str | None,
        district_id: str,
        name: str | None = None,
        contact: str | None = None,
        birth_date: date | None = None,
        recorded_by: Provenance,
        idempotency: Idempotency | None = None,
    ) -> Outcome[ParticipantView]:
        """Register a resident; personal data is sealed with a key made for them alone."""

        def decide() -> Decision[ParticipantView]:
            self.districts.get(district_id)
            today = self.today()
            personal = PersonalData.clean(name=name, contact=contact, birth_date=birth_date)
            participant_id = uuid4()
            # The key is written in the same transaction as the first event: a refused or
            # retried registration leaves no key behind.
            sealer = self.keys.create(participant_id)
            participant = Participant.register(
                birth_year=birth_year,
                band_id=band_id,
                district_id=district_id,
                personal=personal,
                seal=sealer.seal,
                participant_id=participant_id,
                today=today,
                bands=self.bands,
                recorded_by=recorded_by,
            )
            view = ParticipantView.of(participant, self.bands, today, personal, [])
            return Decision(view, True, (participant,))

        return self._execute("register_participant", ParticipantView, idempotency, decide)

    def correct_personal_data(
        self,
        participant_id: UUID,
        *,
        changes: dict[str, str | date | None],
        recorded_by: Provenance,
        idempotency: Idempotency | None = None,
    ) -> Outcome[ParticipantView]:
        """訂正: new values for the named personal fields, a new event sealed like the first."""

        def decide() -> Decision[ParticipantView]:
            participant = self._get(Participant, participant_id, "participant")
            participant.correct_personal_data(
                changes=changes,
                today=self.today(),
                seal=self._sealer_for(participant).seal,
                recorded_by=recorded_by,
            )
            return Decision(self._participant_view(participant), False, (participant,))

        return self._execute("correct_personal_data", ParticipantView, idempotency, decide)

    def record_consent(
        self,
        participant_id: UUID,
        *,
        purpose: str,
        given: bool,
        recorded_by: Provenance,
        idempotency: Idempotency | None = None,
    ) -> Outcome[ParticipantView]:
        """Give or withdraw consent for a purpose; created when something new was recorded."""

        def decide() -> Decision[ParticipantView]:
            participant = self._get(Participant, participant_id, "participant")
            if not participant.erased:
                # A participant registered before encryption gets its key now, so that this
                # answer can be kept sealed for replays.
                self._sealer_for(participant)
            if given:
                changed = participant.give_consent(purpose=purpose, recorded_by=recorded_by)
            else:
                changed = participant.withdraw_consent(purpose=purpose, recorded_by=recorded_by)
            view = self._participant_view(participant)
            return Decision(view, changed, (participant,) if changed else ())

        return self._execute("record_consent", ParticipantView, idempotency, decide)

    def record_sensitive_data(
        self,
        participant_id: UUID,
        *,
        purpose: str,
        category: str,
        detail: str | None,
        recorded_by: Provenance,
        idempotency: Idempotency | None = None,
    ) -> Outcome[ParticipantView]:
        """要配慮個人情報, sealed, under a consent currently given for the purpose."""

        def decide() -> Decision[ParticipantView]:
            participant = self._get(Participant, participant_id, "participant")
            participant.record_sensitive_data(
                purpose=purpose,
                category=category,
                detail=detail,
                seal=self._sealer_for(participant).seal,
                recorded_by=recorded_by,
            )
            return Decision(self._participant_view(participant), True, (participant,))

        return self._execute("record_sensitive_data", ParticipantView, idempotency, decide)

    def erase_participant(
        self,
        participant_id: UUID,
        *,
        reason: str,
        recorded_by: Provenance,
        idempotency: Idempotency | None = None,
    ) -> Outcome[ParticipantView]:
        """Destroy the participant's key and record the erasure; erasing twice changes nothing.

        Band, birth year and district stay in clear, so every indicator is unchanged."""

        def decide() -> Decision[ParticipantView]:
            participant = self._get(Participant, participant_id, "participant")
            changed = participant.erase(reason=reason, recorded_by=recorded_by)
            self.keys.destroy(participant_id)
            # Answers stored before fingerprints were keyed (or before personal data was
            # sealed) hold a plain hash of the request, or the data itself: overwrite them in
            # this transaction, so that the erasure leaves nothing to confirm a guess with.
            self.storage.erase_outcomes(
                participant_id, PARTICIPANT_COMMANDS, KEY_DESTROYED, _erased_answer
            )
            view = self._participant_view(participant)
            return Decision(view, False, (participant,) if changed else ())

        outcome = self._execute("erase_participant", ParticipantView, idempotency, decide)
        self.keys.purge()
        return outcome

    def disclose_participant(self, participant_id: UUID) -> DisclosureView:
        """開示: everything held on one participant, attendance history included."""
        participant = self._get(Participant, participant_id, "participant")
        reader = PersonalDataReader(self.keys)
        sealer = reader.sealer(participant)
        opener = reader.opener(participant, sealer)
        missing = reader.missing(participant, sealer)
        attendance = []
        index = self.attendance_index
        event_ids = index.events_attended_by(participant_id) if index is not None else []
        for event_id in event_ids:
            record = self._find(Attendance, Attendance.create_id(event_id, participant_id))
            if record is None:
                continue
            event = self._find(Event, event_id)
            attendance.append(
                AttendanceDisclosure(
                    event_id=event_id,
                    title=event.title if event else None,
                    local_date=event.local_date if event else None,
                    status=AttendanceStatus.CHECKED_IN
                    if record.counted
                    else AttendanceStatus.REVERTED,
                    history=history_of(self.repository.event_store.get(record.id), opener, missing),
                )
            )
        attendance.sort(key=lambda entry: (entry.local_date or date.min, str(entry.event_id)))
        return DisclosureView(
            participant=reader.view(participant, self.bands, self.today()),
            erased=participant.erased,
            erasure_reason=participant.erasure_reason,
            sensitive_data=[
                SensitiveDisclosure(
                    purpose=record.purpose,
                    category=content["category"],
                    detail=content["detail"],
                    in_use=record.in_use,
                    version=record.version,
                )
                for record, content in reader.sensitive(participant, sealer)
            ],
            history=history_of(self.repository.event_store.get(participant_id), opener, missing),
            attendance=attendance,
        )

    def check_in(
        self,
        event_id: UUID,
        *,
        participant_id: UUID,
        recorded_by: Provenance,
        idempotency: Idempotency | None = None,
    ) -> Outcome[CheckInView]:
        """Check a participant in; checking in someone already checked in changes nothing."""
        decide, reads = self._check_in(event_id, participant_id, recorded_by)
        return self._execute(
            "check_in", CheckInView, idempotency, decide, look_first=False, reads=reads
        )

    async def check_in_async(
        self,
        event_id: UUID,
        *,
        participant_id: UUID,
        recorded_by: Provenance,
        idempotency: Idempotency | None = None,
    ) -> Outcome[CheckInView]:
        """``check_in`` for a caller on an event loop: the front desk's hot path over HTTP,
        where it spares a hop to a worker thread and back for every check-in."""
        decide, reads = self._check_in(event_id, participant_id, recorded_by)
        return await self._execute_async(
            "check_in", CheckInView, idempotency, decide, look_first=False, reads=reads
        )

    def check_in_all(self, commands: Sequence[CheckIn]) -> list[Outcome[CheckInView] | Exception]:
        """Many check-ins at once, in shared transactions (group commit): each one's outcome,
        or the error it was refused with, in their order; as ``check_in`` for each, but from
        one caller. The check-in writer process answers the server's check-ins with it.

        Each one also says it reads its event: a transaction reads its events and its
        participants in one query (``_prefetch``), so the event, which another process may
        have closed, is read from the store once a batch rather than fast-forwarded from the
        cache once a check-in."""
        checks = [
            self._check_in(command.event_id, command.participant_id, command.recorded_by)
            for command in commands
        ]
        reads = [read for _, read in checks]
        attempts = [
            self._attempt("check_in", CheckInView, command.idempotency, decide, look_first=False)
            for command, (decide, _) in zip(commands, checks, strict=True)
        ]
        answers: dict[int, Outcome[CheckInView] | Exception] = {}
        waiting = list(range(len(commands)))
        for _ in range(MAX_ATTEMPTS):
            works = [(attempts[i], reads[i]) for i in waiting]
            again = []
            for i, answer in zip(waiting, self.commits.run_all(works), strict=True):
                if isinstance(answer, IntegrityError):
                    again.append(i)  # lost a race: decided again, as in ``_execute``
                else:
                    answers[i] = answer
            waiting = again
            if not waiting:
                break
        for i in waiting:
            answers[i] = self._contention("check_in")
        return [answers[i] for i in range(len(commands))]

    def _check_in(
        self, event_id: UUID, participant_id: UUID, recorded_by: Provenance
    ) -> tuple[Callable[[], Decision[CheckInView]], tuple[UUID, UUID, UUID]]:
        """A check-in's decision, and the streams it reads (for the batch's prefetch): the
        participant, the event, the attendance."""
        attendance_id = Attendance.create_id(event_id, participant_id)
        looked = False

        def decide() -> Decision[CheckInView]:
            # Most check-ins are first check-ins: try creating without looking first. If the
            # attendance exists, the store refuses the duplicate and we look on the next try;
            # in a batch, the prefetch has said whether it exists (``_found``), and a
            # duplicate would fail the batch's commit, not this command alone.
            nonlocal looked
            event = self._get(Event, event_id, "event", read_only=True)
            participant = self._referenced(
                Participant, participant_id, "participant", read_only=True
            )
            # A closed event still answers a retried check-in with 200: look before refusing.
            must_look = looked or not event.takes_attendance or self._found.get(attendance_id)
            attendance = None
            if must_look:
                attendance = self._find(Attendance, attendance_id)
            looked = True
            if attendance is None:
                attendance = Attendance.check_in(
                    event=event, participant=participant, recorded_by=recorded_by
                )
                created = True
            else:
                created = attendance.check_in_again(event=event, recorded_by=recorded_by)
            view = CheckInView.of(attendance, event, participant, self.bands)
            return Decision(view, created, (attendance,) if created else ())

        return decide, (participant_id, event_id, attendance_id)

    def revert_check_in(
        self,
        event_id: UUID,
        participant_id: UUID,
        *,
        reason: str,
        recorded_by: Provenance,
        idempotency: Idempotency | None = None,
    ) -> Outcome[CheckInView]:
        """Correct a wrong check-in with a reason; reverting twice records nothing new."""

        def decide() -> Decision[CheckInView]:
            event = self._get(Event, event_id, "event")
            participant = self._get(Participant, participant_id, "participant")
            attendance = self._find(Attendance, Attendance.create_id(event_id, participant_id))
            if attendance is None:
                raise NotFound(
                    f"participant {participant_id} was never checked in at event {event_id}"
                )
            changed = attendance.counted
            if changed:
                attendance.revert(reason=reason, recorded_by=recorded_by)
            view = CheckInView.of(attendance, event, participant, self.bands)
            return Decision(view, False, (attendance,) if changed else ())

        return self._execute("revert_check_in", CheckInView, idempotency, decide)

    def record_walk_ins(
        self,
        event_id: UUID,
        *,
        counts: dict[str, int],
        recorded_by: Provenance,
        idempotency: Idempotency | None = None,
    ) -> Outcome[WalkInView]:
        def decide() -> Decision[WalkInView]:
            event = self._get(Event, event_id, "event")
            tally = WalkInTally.record(
                event=event, counts=counts, bands=self.bands, recorded_by=recorded_by
            )
            return Decision(WalkInView.of(tally), True, (tally,))

        return self._execute("record_walk_ins", WalkInView, idempotency, decide)

    def revert_walk_ins(
        self,
        event_id: UUID,
        tally_id: UUID,
        *,
        reason: str,
        recorded_by: Provenance,
        idempotency: Idempotency | None = None,
    ) -> Outcome[WalkInView]:
        def decide() -> Decision[WalkInView]:
            tally = self._get(WalkInTally, tally_id, "walk-in tally")
            if tally.event_id != event_id:
                raise NotFound(f"walk-in tally {tally_id} does not belong to event {event_id}")
            changed = tally.counted
            if changed:
                tally.revert(reason=reason, recorded_by=recorded_by)
            return Decision(WalkInView.of(tally), False, (tally,) if changed else ())

        return self._execute("revert_walk_ins", WalkInView, idempotency, decide)

    # Queries ---------------------------------------------------------------------------

    def get_organization(self, organization_id: UUID) -> OrganizationView:
        return OrganizationView.of(self._get(Organization, organization_id, "organisation"))

    def get_program(self, program_id: UUID) -> ProgramView:
        return ProgramView.of(self._get(Program, program_id, "programme"))

    def get_event(self, event_id: UUID) -> EventView:
        return EventView.of(self._get(Event, event_id, "event"))

    def get_participant(self, participant_id: UUID) -> ParticipantView:
        return self._participant_view(self._get(Participant, participant_id, "participant"))

    def get_check_in(self, event_id: UUID, participant_id: UUID) -> CheckInView:
        event = self._get(Event, event_id, "event")
        participant = self._get(Participant, participant_id, "participant")
        attendance = self._find(Attendance, Attendance.create_id(event_id, participant_id))
        if attendance is None:
            raise NotFound(f"participant {participant_id} was never checked in at event {event_id}")
        return CheckInView.of(attendance, event, participant, self.bands)

    def get_walk_ins(self, event_id: UUID, tally_id: UUID) -> WalkInView:
        tally = self._get(WalkInTally, tally_id, "walk-in tally")
        if tally.event_id != event_id:
            raise NotFound(f"walk-in tally {tally_id} does not belong to event {event_id}")
        return WalkInView.of(tally)

    # Machinery -------------------------------------------------------------------------

    def _participant_view(self, participant: Participant) -> ParticipantView:
        return PersonalDataReader(self.keys).view(participant, self.bands, self.today())

    def _sealer_for(self, participant: Participant) -> Sealer:
        """The participant's key. Participants registered before encryption (version-1
        events) get theirs on first need; an erased participant never gets one again, nor
        does one whose events were sealed with a key this store does not hold: a new key
        could never open them."""
        if participant.erased:
            raise ParticipantErased(
                f"participant {participant.id}'s personal data was erased: nothing personal "
                "can be recorded any more"
            )
        sealer = self.keys.find(participant.id)
        if sealer is not None:
            return sealer
        if participant.holds_sealed_data():
            raise PersonalDataUnavailable(
                f"participant {participant.id}'s personal data is sealed with a key this store "
                "does not hold (an imported copy holds the log without personal data): record "
                "personal data in the store it was registered in"
            )
        return self.keys.create(participant.id)

    def _save_outcome(self, idempotency: Idempotency, command: str, decision: Decision[V]) -> None:
        """Keep an answer for replays. A participant's answer keeps its personal parts sealed
        with the participant's key, and its request's fingerprint keyed with it (HMAC): the
        request held the personal data, and a plain hash of it would let anyone confirm a
        guessed name, even after the erasure."""
        view = decision.result
        body = view.model_dump(mode="json")
        participant_id = None
        if isinstance(view, ParticipantView):
            participant_id = view.id
            personal = {name: body.pop(name) for name in ParticipantView.SEALED}
            # Never a new key here: without one (erased meanwhile) the answer keeps nothing.
            sealer = None if view.erased else self.keys.find(view.id)
            if sealer is None:
                body.update(ParticipantView.ERASED)
                idempotency = replace(idempotency, fingerprint=KEY_DESTROYED)
            else:
                body["sealed"] = sealer.seal(personal)
                idempotency = replace(
                    idempotency, fingerprint=sealer.keyed(idempotency.fingerprint)
                )
        self.storage.save_outcome(
            idempotency, command, decision.created, body, participant_id=participant_id
        )

    def _outcome_view(self, result_type: type[V], stored: dict[str, Any]) -> V:
        """A stored answer as first given; its personal parts read as erased once the key is
        destroyed.

        Participant answers stored before personal data was sealed (name and contact in
        clear, none of the later fields) read with their personal parts unavailable: what
        they hold in clear is never shown again (erasure overwrites it)."""
        if result_type is not ParticipantView:
            return result_type.model_validate(stored)
        stored = dict(stored)
        if "sealed" in stored:
            envelope = stored.pop("sealed")
            sealer = self.keys.find(UUID(stored["id"]))
            if sealer is None:
                stored.update(ParticipantView.ERASED, erased=True)
            else:
                stored.update(sealer.open(envelope))
        elif "erased" not in stored:
            stored.update(ParticipantView.ERASED, erased=False)
            stored.setdefault("personal_data", PersonalDataState.UNAVAILABLE.value)
        stored.setdefault("consents", [])
        if stored["erased"]:
            stored["personal_data"] = PersonalDataState.ERASED.value
        # Stored before the state was named, and not erased: what it held was readable.
        stored.setdefault("personal_data", PersonalDataState.AVAILABLE.value)
        return result_type.model_validate(stored)

    def _find(self, kind: type[A], aggregate_id: UUID, *, read_only: bool = False) -> A | None:
        """An aggregate, or None. ``read_only``: the command will not change it, so the cached
        copy is lent rather than deep-copied, and lent again to the next commands of the same
        transaction (desks checking in at one event all read that event) unless one of them
        changes it."""
        aggregate: object = self._lent.get(aggregate_id) if read_only else None
        if aggregate is None:
            try:
                aggregate = self.repository.get(
                    aggregate_id, projector_func=_project, deepcopy_from_cache=not read_only
                )
            except AggregateNotFoundError:
                return None
            if read_only:
                self._lent[aggregate_id] = aggregate
        return aggregate if isinstance(aggregate, kind) else None

    def _prefetch(self, reads: list[Hashable]) -> None:
        """Group commit's ``prepare``: the aggregates a shared transaction's commands will
        read only (the check-ins' participants, each a new person at the desk, so seldom
        cached, and their event), read in one query and lent to them, as ``_find`` lends what
        it read. Their state is the store's under the log's lock (on PostgreSQL the lock goes
        in the same round trip, before the query): no other process changes them before the
        commit. One a command writes is taken back (``_attempt``), so the next command reads
        what it wrote.

        It also notes which of them are not in the store (``_found``): a check-in's
        attendance, so that it looks before it records only when there is one to find.

        On PostgreSQL this read runs before the log's lock, and the lock checks only the
        streams it found (``TsunagariRecorder._check_at_lock``). That holds while a stream
        read as absent is never lent (a command reads it again, under the lock) and its
        absence is used only to create it at once at version 1, by a plain insert the log's
        unique index refuses if another process created it first. A new use of ``_found``
        or a lent absence must check absent streams at the lock too."""
        wanted = [read for read in dict.fromkeys(reads) if read not in self._lent]
        if self._streams is None or len(wanted) < 2:
            return
        ids = [read for read in wanted if isinstance(read, UUID)]
        to_event = self.mapper.to_domain_event
        streams = self._streams.select_streams(ids, before_lock=True)
        for aggregate_id, stored in streams.items():
            self._lent[aggregate_id] = _project(None, (to_event(record) for record in stored))
        for aggregate_id in ids:
            self._found.setdefault(aggregate_id, aggregate_id in streams)

    def _get(self, kind: type[A], aggregate_id: UUID, what: str, *, read_only: bool = False) -> A:
        """An aggregate named in the request's path; NotFound when absent or of another kind."""
        aggregate = self._find(kind, aggregate_id, read_only=read_only)
        if aggregate is None:
            raise NotFound(f"no {what} with id {aggregate_id}")
        return aggregate

    def _referenced(
        self, kind: type[A], aggregate_id: UUID, what: str, *, read_only: bool = False
    ) -> A:
        """An aggregate named in the request's body: an unknown one makes the body invalid."""
        aggregate = self._find(kind, aggregate_id, read_only=read_only)
        if aggregate is None:
            raise UnknownReference(f"no {what} with id {aggregate_id}")
        return aggregate

    def _execute(
        self,
        command: str,
        result_type: type[V],
        idempotency: Idempotency | None,
        decide: Callable[[], Decision[V]],
        *,
        look_first: bool = True,
        reads: Sequence[UUID] = (),
    ) -> Outcome[V]:
        attempt = self._attempt(command, result_type, idempotency, decide, look_first)
        for _ in range(MAX_ATTEMPTS):
            try:
                return self.commits.run(attempt, reads=reads)
            except IntegrityError:
                continue  # see _attempt
        raise self._contention(command)

    async def _execute_async(
        self,
        command: str,
        result_type: type[V],
        idempotency: Idempotency | None,
        decide: Callable[[], Decision[V]],
        *,
        look_first: bool = True,
        reads: Sequence[UUID] = (),
    ) -> Outcome[V]:
        """``_execute`` for a caller on an event loop, which keeps serving meanwhile."""
        attempt = self._attempt(command, result_type, idempotency, decide, look_first)
        for _ in range(MAX_ATTEMPTS):
            try:
                return await self.commits.run_async(attempt, reads=reads)
            except IntegrityError:
                continue  # see _attempt
        raise self._contention(command)

    def _attempt(
        self,
        command: str,
        result_type: type[V],
        idempotency: Idempotency | None,
        decide: Callable[[], Decision[V]],
        look_first: bool = True,
    ) -> Callable[[], Outcome[V]]:
        """One try at a command, inside a transaction that other commands may share (group
        commit). When it refuses (group_commit.REFUSALS), what it wrote is rolled back.

        When it loses a race to another writer (the same idempotency key, the same check-in,
        or the next version of the same stream), the store raises IntegrityError, the
        transaction rolls back, and the command is decided again on the state the other
        writer left (or answered as they were).

        Not ``look_first``: the first try does not look up its idempotency key, it decides at
        once, and the key's uniqueness in the store stands in for the lookup. A key already
        answered fails the transaction (IntegrityError), and every later try looks first, so
        a retried request is still answered as first; a refusal looks before it is given.
        For the front desk's check-in, where a retried request is rare and the lookup was one
        of its few round trips."""
        tries = 0

        def attempt() -> Outcome[V]:
            nonlocal tries
            tries += 1
            looks = idempotency is not None and (look_first or tries > 1)
            if looks and idempotency is not None:
                replayed = self._replay(idempotency, result_type)
                if replayed is not None:
                    return replayed
            try:
                with recording_clock(self.clock):
                    decision = decide()
            except REFUSALS:
                replayed = None
                if idempotency is not None and not looks:
                    replayed = self._replay(idempotency, result_type)
                if replayed is None:
                    raise
                return replayed
            if decision.aggregates:
                for aggregate in decision.aggregates:
                    self._written.append(aggregate.id)
                    self._lent.pop(aggregate.id, None)
                    self._found[aggregate.id] = True
                events = self._save_aggregates(decision.aggregates)
                for projection in self.inline_projections:
                    projection.process(events)
            if idempotency is not None:
                self._save_outcome(idempotency, command, decision)
            return Outcome(decision.result, decision.created)

        return attempt

    def _save_aggregates(
        self, aggregates: tuple[Aggregate, ...]
    ) -> list[DomainEventProtocol[UUID]]:
        """``Application.save`` for a command's aggregates, step for step, without its
        ``isinstance`` checks of each object against two runtime-checkable Protocols (slow on
        Python 3.11, see ``_project``): these objects are our aggregates, never events.

        Answers the events saved. Not the library's recordings: a command transaction's
        events are inserted at commit (``TsunagariRecorder._defer``), their positions unknown
        until then, so the recorder answers none and the library records none."""
        processing: ProcessingEvent[UUID] = ProcessingEvent()
        for aggregate in aggregates:
            processing.events.extend(aggregate.collect_events())
            processing.aggregates[aggregate.id] = aggregate
        recordings = self._record(processing)
        self._take_snapshots(processing)
        self._notify(recordings)
        self.notify(processing.events)  # deprecated, and a no-op unless overridden, as in save
        return processing.events

    @staticmethod
    def _contention(command: str) -> TooMuchContention:
        return TooMuchContention(
            f"{command} kept conflicting with concurrent changes; nothing was recorded, retry"
        )

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        """One transaction of commands. When it rolls back, forget what its reads cached:
        a command later in a shared transaction may have read an aggregate an earlier one
        wrote, and the cache must never hold a state the log does not."""
        self._written, self._lent, self._found = [], {}, {}
        try:
            with self.storage.atomic():
                yield
        except BaseException:
            cache = self.repository.cache
            if cache is not None:
                for aggregate_id in self._written:
                    with suppress(KeyError):
                        cache.get(aggregate_id, evict=True)
            raise
        finally:
            self._lent, self._found = {}, {}

    def _replay(self, idempotency: Idempotency, result_type: type[V]) -> Outcome[V] | None:
        stored = self.storage.find_outcome(idempotency.scope, idempotency.key)
        if stored is None:
            return None
        if not self._same_request(stored, idempotency):
            raise IdempotencyKeyReused(
                f"Idempotency-Key {idempotency.key!r} was already used for a different "
                "request; use a new key for a new request"
            )
        result: Any = self._outcome_view(result_type, stored.result)
        return Outcome(result, stored.created, replayed=True)

    def _same_request(self, stored: StoredOutcome, idempotency: Idempotency) -> bool:
        """Whether a retry is the request first answered. A participant's answer is compared
        under its key; once the key is destroyed nothing can be compared, and any retry with
        that Idempotency-Key replays the erased answer."""
        if stored.participant_id is None:
            return stored.fingerprint == idempotency.fingerprint
        sealer = self.keys.find(stored.participant_id)
        if sealer is None:
            return True
        return hmac.compare_digest(stored.fingerprint, sealer.keyed(idempotency.fingerprint))


def _erased_answer(stored: dict[str, Any]) -> dict[str, Any]:
    """A stored participant answer with nothing personal left, as replayed after erasure."""
    kept = {k: v for k, v in stored.items() if k != "sealed" and k not in ParticipantView.SEALED}
    return {
        **kept,
        **ParticipantView.ERASED,
        "erased": True,
        "personal_data": PersonalDataState.ERASED.value,
    }
