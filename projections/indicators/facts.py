"""The facts indicators are made of, read straight from stored events, kept in memory.

Each fact is the whole current state of one thing (an event, a check-in, a tally...) after a
change. Stored with its log position and recording time, the facts' history answers "as of"
questions; the latest fact of each thing is the present.

Stored events are read as the JSON the library's transcoder wrote, without rebuilding domain
event objects: a rebuild reads millions of them, and turning each into objects and back cost
ten times more than the indicators need. Ids stay 32-digit hex strings, as stored.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from typing import Any, NamedTuple, Protocol
from uuid import UUID

from eventsourcing.utils import get_topic

from domain.attendance import Attendance, WalkInTally
from domain.events import JST, Event
from domain.fiscal import fiscal_year_of
from domain.participants import Participant
from domain.programs import Program


@dataclass(frozen=True, slots=True)
class ProgramFact:
    program_id: str
    policy: str
    host_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class EventFact:
    event_id: str
    program_id: str
    district_id: str
    local_date: date
    cancelled: bool

    @property
    def fiscal_year(self) -> int:
        return fiscal_year_of(self.local_date)


@dataclass(frozen=True, slots=True)
class ParticipantFact:
    participant_id: str
    birth_year: int | None
    band_id: str | None


class AttendanceFact(NamedTuple):
    """A tuple, unlike the other facts: a rebuild makes one per check-in, millions, and a
    frozen dataclass takes three times as long to make."""

    attendance_id: str
    event_id: str
    participant_id: str
    counted: bool


@dataclass(frozen=True, slots=True)
class WalkInFact:
    tally_id: str
    event_id: str
    counts: tuple[tuple[str, int], ...]
    counted: bool


Fact = ProgramFact | EventFact | ParticipantFact | AttendanceFact | WalkInFact


class Recorded(NamedTuple):
    """A fact with where it stands in the log: position, and recording time (µs since epoch).

    A tuple: a rebuild makes one per stored event."""

    position: int
    recorded_us: int
    fact: Fact


@dataclass(slots=True)
class StoredRow:
    """One row of the event log, as stored (not frozen: a rebuild makes millions, and a frozen
    dataclass takes four times as long to make)."""

    position: int
    originator_id: str
    topic: str
    state: bytes


def hex_id(value: Any) -> str:
    """A stored originator id (16 bytes on SQLite, a UUID on PostgreSQL) as 32 hex digits."""
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, UUID):
        return value.hex
    return UUID(str(value)).hex


def epoch_us(moment: datetime) -> int:
    """Microseconds since the Unix epoch: exact, and comparable whatever the stored offset."""
    return round(moment.timestamp() * 1_000_000)


def _timestamp(state: dict[str, Any]) -> int:
    return epoch_us(datetime.fromisoformat(state["timestamp"]["_data_"]))


def _local_date(value: dict[str, Any]) -> date:
    return datetime.fromisoformat(value["_data_"]).astimezone(JST).date()


# A creation's fact needs only its own state: it is decoded into the fact's fields (plain
# values, cheap to send from a process that decodes to the one that keeps the facts).

Create = Callable[[str, dict[str, Any]], tuple[Any, ...]]


def _program_launched(oid: str, s: dict[str, Any]) -> tuple[Any, ...]:
    hosts = tuple(host["_data_"] for host in s["host_organization_ids"])
    return oid, s["policy"]["_data_"], hosts


def _event_scheduled(oid: str, s: dict[str, Any]) -> tuple[Any, ...]:
    return oid, s["program_id"]["_data_"], s["district_id"], _local_date(s["starts_at"]), False


def _participant_registered(oid: str, s: dict[str, Any]) -> tuple[Any, ...]:
    return oid, s["birth_year"], s["band_id"]


def _checked_in(oid: str, s: dict[str, Any]) -> tuple[Any, ...]:
    return oid, s["event_id"]["_data_"], s["participant_id"]["_data_"], True


def _walk_ins_recorded(oid: str, s: dict[str, Any]) -> tuple[Any, ...]:
    return oid, s["event_id"]["_data_"], tuple(sorted(s["counts"].items())), True


CREATIONS: dict[str, tuple[type[Fact], Create]] = {
    get_topic(Program.Launched): (ProgramFact, _program_launched),
    get_topic(Event.Scheduled): (EventFact, _event_scheduled),
    get_topic(Participant.Registered): (ParticipantFact, _participant_registered),
    get_topic(Attendance.CheckedIn): (AttendanceFact, _checked_in),
    get_topic(WalkInTally.Recorded): (WalkInFact, _walk_ins_recorded),
}

# Changes need the thing's earlier fact. It is missing only when the log is read from a cut
# (an "as of" time) that falls between the two: then the change is past the cut too.

Change = Callable[["Facts", str, dict[str, Any]], "Fact | None"]


def _event_rescheduled(facts: Facts, oid: str, s: dict[str, Any]) -> Fact | None:
    event = facts.events.get(oid)
    return event and replace(event, local_date=_local_date(s["starts_at"]))


def _event_cancelled(facts: Facts, oid: str, s: dict[str, Any]) -> Fact | None:
    event = facts.events.get(oid)
    return event and replace(event, cancelled=True)


def _checked_in_again(facts: Facts, oid: str, s: dict[str, Any]) -> Fact | None:
    attendance = facts.attendances.get(oid)
    return attendance and attendance._replace(counted=True)


def _check_in_reverted(facts: Facts, oid: str, s: dict[str, Any]) -> Fact | None:
    attendance = facts.attendances.get(oid)
    return attendance and attendance._replace(counted=False)


def _walk_ins_reverted(facts: Facts, oid: str, s: dict[str, Any]) -> Fact | None:
    tally = facts.walk_ins.get(oid)
    return tally and replace(tally, counted=False)


CHANGES: dict[str, Change] = {
    get_topic(Event.Rescheduled): _event_rescheduled,
    get_topic(Event.Cancelled): _event_cancelled,
    get_topic(Attendance.CheckedInAgain): _checked_in_again,
    get_topic(Attendance.CheckInReverted): _check_in_reverted,
    get_topic(WalkInTally.Reverted): _walk_ins_reverted,
}
FACT_TOPICS = (*CREATIONS, *CHANGES)
"""The only event types indicators read; the rest of the log is skipped unread."""

Decoded = tuple[int, int, str, str, Any]
"""A stored event read without the facts: position, recording time (µs), topic, originator id,
and a creation's fact fields or a change's decoded state."""

CHECKED_IN = get_topic(Attendance.CheckedIn)
CHECKED_IN_STATE = re.compile(
    rb'\{"timestamp":\{"_type_":"datetime_iso","_data_":"([^"\\]*)"\},'
    rb'"originator_topic":"[^"\\]*",'
    rb'"event_id":\{"_type_":"uuid_hex","_data_":"([0-9a-f]{32})"\},'
    rb'"participant_id":\{"_type_":"uuid_hex","_data_":"([0-9a-f]{32})"\},'
)
"""The start of a check-in's state as the library's JSON transcoder writes it.

Check-ins are most of the log, and a check-in's fact needs only these three values, not the
provenance that makes up the rest of the state. The match is anchored at the first byte and
spells out every key and nested object before the values, so what it captures is exactly what
``json.loads`` would give for those top-level keys (strings with escapes are not matched). A
state written any other way is decoded in full.
"""


class HeldFacts(Protocol):
    """What summarising an event reads: the facts of live indicators (``Facts``), or those of
    one fiscal year as of a day (``YearFacts``)."""

    @property
    def programs(self) -> Mapping[str, ProgramFact]: ...
    @property
    def events(self) -> Mapping[str, EventFact]: ...
    @property
    def participants(self) -> Mapping[str, ParticipantFact]: ...
    @property
    def events_by_year(self) -> Mapping[int, set[str]]: ...
    @property
    def revisions(self) -> Mapping[str, int]: ...
    @property
    def participants_replaced(self) -> int:
        """Bumped whenever a participant's fact replaces an earlier one."""

    def attendees(self, event_id: str) -> Iterable[str]:
        """The participants of an event's counted check-ins."""

    def counted_tallies(self, event_id: str) -> Iterable[WalkInFact]:
        """An event's walk-in tallies that count."""


@dataclass(slots=True)
class YearFacts:
    """One fiscal year's facts as an "as of" answer reads them: its events and their
    programmes, the participants of its counted check-ins, and per event who those are and
    which tallies count. Check-ins are most of the facts; kept as participant ids per event,
    they are never made into ``AttendanceFact``s."""

    fiscal_year: int
    programs: dict[str, ProgramFact] = field(default_factory=dict)
    events: dict[str, EventFact] = field(default_factory=dict)
    participants: dict[str, ParticipantFact] = field(default_factory=dict)
    counted: dict[str, list[str]] = field(default_factory=dict)
    """Event id: the participants of its counted check-ins."""
    tallies: dict[str, list[WalkInFact]] = field(default_factory=dict)
    """Event id: its tallies that count."""
    revisions: defaultdict[str, int] = field(default_factory=lambda: defaultdict(int))
    """Nothing changes after loading: every revision stays 0."""
    participants_replaced: int = 0

    @property
    def events_by_year(self) -> dict[int, set[str]]:
        """The events whose fact as of the cut lies in the year (rows were read for every
        event that was ever in it: a reschedule may have moved one out since)."""
        year = self.fiscal_year
        return {year: {e.event_id for e in self.events.values() if e.fiscal_year == year}}

    def attendees(self, event_id: str) -> Iterable[str]:
        return self.counted.get(event_id, ())

    def only(self, keep: Callable[[EventFact, ProgramFact], bool]) -> None:
        """Forget the events (with their check-ins and tallies) that ``keep`` refuses: an answer
        for a district or a programme summarises only its own events."""
        for event_id, event in list(self.events.items()):
            if not keep(event, self.programs[event.program_id]):
                del self.events[event_id]
                self.counted.pop(event_id, None)
                self.tallies.pop(event_id, None)

    def counted_tallies(self, event_id: str) -> Iterable[WalkInFact]:
        return self.tallies.get(event_id, ())


def decode(row: StoredRow) -> Decoded | None:
    """What a stored event says, without the facts (None: not an event indicators read)."""
    topic = row.topic
    if topic == CHECKED_IN:
        known = CHECKED_IN_STATE.match(row.state)
        if known is not None:
            recorded_us = epoch_us(datetime.fromisoformat(known[1].decode()))
            fields = (row.originator_id, known[2].decode(), known[3].decode(), True)
            return row.position, recorded_us, topic, row.originator_id, fields
    elif topic not in CREATIONS and topic not in CHANGES:
        return None
    # The library writes UTF-8; decoding it first is faster than json.loads of bytes.
    state = json.loads(row.state.decode())
    creation = CREATIONS.get(topic)
    payload = state if creation is None else creation[1](row.originator_id, state)
    return row.position, _timestamp(state), topic, row.originator_id, payload


class CheckIns(NamedTuple):
    """A page's check-ins as columns: what a rebuild sends from the process that decodes to
    the one that keeps the facts, and on to the history table, without an object a row."""

    positions: list[int]
    recorded_us: list[int]
    attendance_ids: list[str]
    event_ids: list[str]
    participant_ids: list[str]


def decode_page(rows: Iterable[StoredRow]) -> tuple[CheckIns, list[Decoded]]:
    """A page of stored events decoded: the check-ins in the transcoder's layout as columns,
    every other event indicators read as ``decode`` makes it, in log order."""
    check_ins = CheckIns([], [], [], [], [])
    positions, times, ids, events, people = check_ins
    others: list[Decoded] = []
    match = CHECKED_IN_STATE.match
    for row in rows:
        # ``decode``'s check-in branch, written out: a call and a tuple for each of a
        # million rows would cost the readers more than the lines it saves.
        if row.topic == CHECKED_IN:
            known = match(row.state)
            if known is not None:
                positions.append(row.position)
                times.append(epoch_us(datetime.fromisoformat(known[1].decode())))
                ids.append(row.originator_id)
                events.append(known[2].decode())
                people.append(known[3].decode())
                continue
        decoded = decode(row)
        if decoded is not None:
            others.append(decoded)
    return check_ins, others


class Facts:
    """The present state of every fact, with the indexes the indicators need."""

    def __init__(self) -> None:
        self.programs: dict[str, ProgramFact] = {}
        self.events: dict[str, EventFact] = {}
        self.participants: dict[str, ParticipantFact] = {}
        self.attendances: dict[str, AttendanceFact] = {}
        self.walk_ins: dict[str, WalkInFact] = {}
        self.attendances_by_event: defaultdict[str, dict[str, AttendanceFact]] = defaultdict(dict)
        """Each event's check-ins, the facts themselves (not their ids): summarising an event
        reads them all, and a lookup of each in ``attendances`` cost half of that."""
        self.walk_ins_by_event: defaultdict[str, set[str]] = defaultdict(set)
        self.events_by_year: defaultdict[int, set[str]] = defaultdict(set)
        self._year_of: dict[str, int] = {}
        """Each event's fiscal year, as of its present fact."""
        self.revisions: defaultdict[str, int] = defaultdict(int)
        """Bumped whenever anything an event's indicators depend on changes."""
        self.participants_replaced = 0
        """Bumped whenever a participant's fact replaces an earlier one."""
        self.touched: set[int] = set()
        """Fiscal years whose indicators may have changed since last taken."""
        self.changed: set[str] = set()
        """Events whose summary may have changed since last taken."""

    def read(self, row: StoredRow, *, until_us: int | None = None) -> Recorded | None:
        """Make the fact a stored event leaves behind the present one; None if it leaves none
        (or, with ``until_us``, when it was recorded after that time)."""
        decoded = decode(row)
        if decoded is None or (until_us is not None and decoded[1] > until_us):
            return None
        return self.apply(decoded)

    def apply(self, decoded: Decoded) -> Recorded | None:
        """Make a decoded stored event's fact the present one (None: it leaves none)."""
        position, recorded_us, topic, oid, payload = decoded
        creation = CREATIONS.get(topic)
        fact: Fact | None
        if creation is not None:
            fact = creation[0](*payload)
        else:
            fact = CHANGES[topic](self, oid, payload)
            if fact is None:
                return None
        self.put(fact)
        return Recorded(position, recorded_us, fact)

    def add_check_ins(self, check_ins: CheckIns) -> None:
        """Put a page's first check-ins (each the first fact of its attendance, so nothing
        else of the page comes before it), as a rebuild does before the page's other events;
        nothing is noted as changed: a rebuild computes every value at the end."""
        attendances, by_event = self.attendances, self.attendances_by_event
        for attendance_id, event_id, participant_id in zip(
            check_ins.attendance_ids, check_ins.event_ids, check_ins.participant_ids, strict=True
        ):
            attendances[attendance_id] = by_event[event_id][attendance_id] = AttendanceFact(
                attendance_id, event_id, participant_id, True
            )

    def take_touched(self) -> set[int]:
        touched, self.touched = self.touched, set()
        return touched

    def take_changed(self) -> set[str]:
        changed, self.changed = self.changed, set()
        return changed

    def load(self, facts: Iterable[Fact]) -> None:
        """Put many facts into an empty ``Facts``, in an order ``put`` accepts, without noting
        what changed: nothing was summarised before them."""
        for fact in facts:
            if isinstance(fact, AttendanceFact):
                self.attendances[fact.attendance_id] = fact
                self.attendances_by_event[fact.event_id][fact.attendance_id] = fact
            elif isinstance(fact, WalkInFact):
                self.walk_ins[fact.tally_id] = fact
                self.walk_ins_by_event[fact.event_id].add(fact.tally_id)
            elif isinstance(fact, ParticipantFact):
                # Not ``put``: it would note every event of the participant's check-ins as
                # changed, for nothing here.
                self._put_participant(fact)
            else:
                self.put(fact)
        self.take_changed()
        self.take_touched()

    def put(self, fact: Fact) -> None:
        """Make a fact the present one, noting the events and fiscal years it may change."""
        if isinstance(fact, AttendanceFact):
            self.attendances[fact.attendance_id] = fact
            self.attendances_by_event[fact.event_id][fact.attendance_id] = fact
            self._touch(fact.event_id)
        elif isinstance(fact, WalkInFact):
            self.walk_ins[fact.tally_id] = fact
            self.walk_ins_by_event[fact.event_id].add(fact.tally_id)
            self._touch(fact.event_id)
        elif isinstance(fact, EventFact):
            previous = self.events.get(fact.event_id)
            if previous is not None:
                self.touched.add(self._year_of[fact.event_id])
                self.events_by_year[self._year_of[fact.event_id]].discard(fact.event_id)
            self.events[fact.event_id] = fact
            self._year_of[fact.event_id] = year = fact.fiscal_year
            self.events_by_year[year].add(fact.event_id)
            self._touch(fact.event_id)
        elif isinstance(fact, ParticipantFact):
            if self._put_participant(fact):
                for event_id in self._events_of(fact.participant_id):
                    self._touch(event_id)
        else:
            self.programs[fact.program_id] = fact

    def _put_participant(self, fact: ParticipantFact) -> bool:
        """Whether it replaced an earlier fact of the participant."""
        replaced = fact.participant_id in self.participants
        if replaced:
            self.participants_replaced += 1
        self.participants[fact.participant_id] = fact
        return replaced

    def _events_of(self, participant_id: str) -> set[str]:
        """The events a participant checked in at, by a scan of every check-in. Only a
        participant's fact replacing an earlier one needs them, and no stored event does that
        today; an index kept for it cost a rebuild a set per participant, made at every
        check-in: about a sixth of the time a page of check-ins takes there. An event that
        changes a participant's birth year or band would need that index back: the live
        projection would scan every check-in at each one."""
        return {
            attendance.event_id
            for attendance in self.attendances.values()
            if attendance.participant_id == participant_id
        }

    def _touch(self, event_id: str) -> None:
        self.revisions[event_id] += 1
        self.changed.add(event_id)
        year = self._year_of.get(event_id)
        if year is not None:
            self.touched.add(year)

    def attendees(self, event_id: str) -> Iterable[str]:
        return [
            attendance.participant_id
            for attendance in self.attendances_by_event.get(event_id, {}).values()
            if attendance.counted
        ]

    def counted_tallies(self, event_id: str) -> Iterable[WalkInFact]:
        walk_ins = self.walk_ins
        for tally_id in self.walk_ins_by_event.get(event_id, ()):
            tally = walk_ins[tally_id]
            if tally.counted:
                yield tally

    @property
    def fiscal_years(self) -> list[int]:
        """Fiscal years with at least one event, oldest first."""
        return sorted(year for year, events in self.events_by_year.items() if events)
