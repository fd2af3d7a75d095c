"""The auditors' view of the log: every stored record, who recorded it, when and from where.

Read-only. Records are decoded with the application's own mapper parts (cipher, compressor,
transcoder) but not upcast, so a payload shows what the log holds rather than what the current
class would make of it. Attributes an event class names in its ``personal_fields`` are shown
only as ``"[encrypted]"``, or as ``"[erased]"`` once the participant's stream holds its
erasure (its key is destroyed: nothing can open them any more).

Filtering stays bounded in cost on a big log: position range and event type are pushed into
the store's query; recorded-at and actor are checked here, over at most ``PYTHON_SCAN``
positions a page, and the page's cursor says where the scan stopped, so a client can always
go on from there.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from enum import Enum
from typing import Any, Protocol
from uuid import UUID

from eventsourcing.domain import CommandMethodDecorator
from eventsourcing.persistence import Mapper, Notification
from eventsourcing.utils import TopicError, get_topic, resolve_topic

from application.errors import NotFound
from application.personal_data import ERASED as ERASED
from domain.attendance import Attendance, WalkInTally
from domain.errors import InvalidValue
from domain.events import JST, Event
from domain.participants import Participant
from domain.provenance import Provenance
from domain.recording import RecordedAggregate

ENCRYPTED = "[encrypted]"
ERASURE_TOPIC = get_topic(Participant.Erased)
DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
WINDOW = 2000
"""Positions read from the store at a time."""
SQL_SCAN = 100_000
"""Positions one page may cover when every filter runs in the store's query."""
PYTHON_SCAN = 10_000
"""Positions one page may cover when recorded-at or actor has to be checked on decoded records."""

# What each correction corrects: the latest earlier version of one of these types in the same
# stream. The one place this rule lives; stream histories show it both ways.
CORRECTIONS: dict[type[Any], tuple[type[Any], ...]] = {
    Attendance.CheckInReverted: (Attendance.CheckedIn, Attendance.CheckedInAgain),
    Attendance.CheckedInAgain: (Attendance.CheckInReverted,),
    WalkInTally.Reverted: (WalkInTally.Recorded,),
    Event.Rescheduled: (Event.Scheduled, Event.Rescheduled),
    Event.Cancelled: (Event.Scheduled, Event.Rescheduled),
    Participant.PersonalDataCorrected: (Participant.Registered, Participant.PersonalDataCorrected),
    Participant.ConsentWithdrawn: (Participant.ConsentGiven,),
}
_CORRECTED_TOPICS: dict[str, tuple[str, ...]] = {
    get_topic(correction): tuple(get_topic(target) for target in targets)
    for correction, targets in CORRECTIONS.items()
}


class LogRecords(Protocol):
    """The stored records, read in log order: what the audit trail needs from the store."""

    def head(self) -> int:
        """The last position recorded so far (0 for an empty log)."""

    def page(self, after: int, upto: int, topics: Sequence[str], limit: int) -> list[Notification]:
        """Records at positions in (after, upto], of the given topics (all when empty), in
        position order, at most ``limit``."""

    def stream(self, stream_id: UUID) -> list[Notification]:
        """Every record of one aggregate, in version order, with its log position."""

    def streams_holding(self, topic: str, stream_ids: Collection[UUID]) -> set[UUID]:
        """Those of the given streams that hold a record of this topic."""


@dataclass(frozen=True)
class AuditEntry:
    """One stored record as an auditor reads it."""

    position: int
    stream_id: UUID
    version: int
    type: str
    topic: str
    recorded_at: datetime | None
    actor_id: str | None
    actor_role: str | None
    desk_id: str | None
    request_id: str | None
    payload: dict[str, Any]

    def as_json(self) -> dict[str, Any]:
        """The entry as JSON-ready data, as the HTTP API answers it."""
        data: dict[str, Any] = plain(dataclasses.asdict(self))
        return data


@dataclass(frozen=True)
class StreamEntry(AuditEntry):
    """A version of one aggregate, with the corrections that point at it and that it makes."""

    corrects: int | None = None
    """The version this one corrects (a revert points at the check-in it reverts)."""
    corrected_by: tuple[int, ...] = ()
    """Later versions that correct this one."""


@dataclass(frozen=True)
class AuditPage:
    entries: list[AuditEntry]
    next_after: int | None
    """Where to go on from (``after=``); None when the scan reached the head of the log."""
    head: int
    """The last position of the log when the page was read."""


@dataclass(frozen=True)
class LogQuery:
    """A validated audit-log query: build it with ``LogQuery.parse``."""

    after: int = 0
    limit: int = DEFAULT_LIMIT
    type: str | None = None
    topics: tuple[str, ...] = ()
    actor: str | None = None
    recorded_from: datetime | None = None
    recorded_until: datetime | None = None
    """Inclusive upper bound."""

    @classmethod
    def parse(
        cls,
        *,
        after: int = 0,
        limit: int = DEFAULT_LIMIT,
        type: str | None = None,
        actor: str | None = None,
        recorded_from: str | None = None,
        recorded_to: str | None = None,
    ) -> LogQuery:
        """Check every parameter; raises InvalidValue saying what is wrong.

        An empty text parameter (``actor=``) is refused rather than read as "no filter": a
        client that sends one has lost a value, and should hear so.
        """
        for name, text in (
            ("type", type),
            ("actor", actor),
            ("from", recorded_from),
            ("to", recorded_to),
        ):
            if text is not None and not text.strip():
                raise InvalidValue(f"{name} is empty: give a value, or leave {name} out")
        if after < 0:
            raise InvalidValue(f"after must be a log position ≥ 0, not {after}")
        if not 1 <= limit <= MAX_LIMIT:
            raise InvalidValue(f"limit must be between 1 and {MAX_LIMIT}, not {limit}")
        topics: tuple[str, ...] = ()
        if type is not None:
            known = event_types()
            if type not in known:
                raise InvalidValue(
                    f"unknown event type {type!r}; known types: {', '.join(sorted(known))}"
                )
            topics = known[type]
        start = parse_moment(recorded_from, "from", end_of_day=False) if recorded_from else None
        until = parse_moment(recorded_to, "to", end_of_day=True) if recorded_to else None
        if start is not None and until is not None and start > until:
            raise InvalidValue(f"from ({recorded_from}) is after to ({recorded_to})")
        return cls(after, limit, type, topics, actor, start, until)

    @property
    def checks_decoded(self) -> bool:
        """Whether a filter must be checked on decoded records, not in the store's query."""
        return (
            self.actor is not None
            or self.recorded_from is not None
            or self.recorded_until is not None
        )

    def admits(self, entry: AuditEntry) -> bool:
        if self.actor is not None and entry.actor_id != self.actor:
            return False
        if self.recorded_from is not None and (
            entry.recorded_at is None or entry.recorded_at < self.recorded_from
        ):
            return False
        return self.recorded_until is None or (
            entry.recorded_at is not None and entry.recorded_at <= self.recorded_until
        )


def parse_moment(text: str, what: str, *, end_of_day: bool) -> datetime:
    """An ISO 8601 date or datetime; dates and datetimes without an offset are in JST.

    A bare date, in any form ISO 8601 has (2026-06-14, basic 20260614, week 2026-W24-7), as an
    upper bound means the end of that day.
    """
    try:
        day = date.fromisoformat(text)
    except ValueError:
        day = None  # not a date alone: a datetime, or nothing readable
    if day is not None:
        moment = datetime.combine(day, time.min, JST)
        return moment + timedelta(days=1, microseconds=-1) if end_of_day else moment
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidValue(
            f"{what} must be an ISO 8601 date or datetime (2026-06-14, 20260614 or "
            f"2026-06-14T10:00:00+09:00), not {text!r}"
        ) from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=JST)


def event_types() -> dict[str, tuple[str, ...]]:
    """Readable event types (``Participant.Registered``) and the stored topics of each.

    Only types that can be stored: the event classes our aggregates' ``@event`` methods record
    (every event of the domain is recorded that way). Found from the aggregates rather than
    listed, so new events appear by themselves; the classes the library defines by itself for
    every aggregate (``Participant.Created``) are never recorded and so not listed.
    """
    found: dict[str, set[str]] = {}
    for aggregate in _subclasses(RecordedAggregate):
        for attribute in vars(aggregate).values():
            if not isinstance(attribute, CommandMethodDecorator):
                continue
            given = attribute.given_event_cls
            # By name: the library redefines each nested event class on its aggregate, and the
            # redefined class is the one recorded.
            cls = getattr(aggregate, given.__name__ if given else str(attribute.event_cls_name))
            found.setdefault(cls.__qualname__, set()).add(f"{cls.__module__}:{cls.__qualname__}")
    return {name: tuple(sorted(topics)) for name, topics in found.items()}


def stored_topics() -> frozenset[str]:
    """Every topic a record of this application can have."""
    return frozenset(topic for topics in event_types().values() for topic in topics)


def _subclasses(cls: type[Any]) -> Iterator[type[Any]]:
    for subclass in cls.__subclasses__():
        yield subclass
        yield from _subclasses(subclass)


def decode_state(mapper: Mapper[Any], state: bytes) -> dict[str, Any]:
    """A stored state as the transcoder reads it, without upcasting (what the log holds)."""
    if mapper.cipher is not None:
        state = mapper.cipher.decrypt(state)
    if mapper.compressor is not None:
        state = mapper.compressor.decompress(state)
    decoded: dict[str, Any] = mapper.transcoder.decode(state)
    return decoded


def personal_fields(topic: str) -> frozenset[str] | None:
    """The attributes an event class declares personal; None when the topic names no class."""
    try:
        cls = resolve_topic(topic)
    except TopicError:
        return None
    fields: frozenset[str] = getattr(cls, "personal_fields", frozenset())
    return fields


def plain(value: Any) -> Any:
    """A decoded value as JSON-ready data: ids and times as strings, enums as their values."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, UUID | Decimal):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Enum):
        return plain(value.value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(key): plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [plain(item) for item in value]
    if isinstance(value, set | frozenset):
        return sorted(plain(item) for item in value)
    if isinstance(value, bytes):
        return value.hex()
    return str(value)


class AuditTrail:
    """Pages of the whole log and the history of one stream, for auditors."""

    def __init__(self, mapper: Mapper[Any], records: LogRecords) -> None:
        self.mapper = mapper
        self.records = records

    def entry(self, record: Notification, *, erased: bool = False) -> AuditEntry:
        """One stored record, decoded, with its personal fields masked: ``"[erased]"`` when
        its stream is a participant's that was erased, else ``"[encrypted]"``."""
        state = decode_state(self.mapper, record.state)
        recorded_at = state.pop("timestamp", None)
        recorded_by = state.pop("recorded_by", None)
        by = recorded_by if isinstance(recorded_by, Provenance) else None
        masked = personal_fields(record.topic)
        hidden = ERASED if erased else ENCRYPTED
        payload: dict[str, Any] = {}
        for key, value in state.items():
            if value is None:
                payload[key] = None
            elif masked is None:
                payload[key] = ENCRYPTED  # an unknown class could hold anything: withhold all
            else:
                payload[key] = hidden if key in masked else plain(value)
        return AuditEntry(
            position=record.id,
            stream_id=_uuid(record.originator_id),
            version=record.originator_version,
            type=record.topic.rpartition(":")[2],
            topic=record.topic,
            recorded_at=recorded_at if isinstance(recorded_at, datetime) else None,
            actor_id=by.actor_id if by else None,
            actor_role=by.actor_role.value if by else None,
            desk_id=by.desk_id if by else None,
            request_id=by.request_id if by else None,
            payload=payload,
        )

    def entries(self, records: Sequence[Notification]) -> list[AuditEntry]:
        """Records as entries, with one look-up for the erasures among their streams.

        The one place that decides whether personal fields read as erased: for the log's pages
        and for a stream's history alike.
        """
        personal = {
            _uuid(record.originator_id) for record in records if personal_fields(record.topic)
        }
        erased = self.records.streams_holding(ERASURE_TOPIC, personal) if personal else set()
        return [
            self.entry(record, erased=_uuid(record.originator_id) in erased) for record in records
        ]

    def log(self, query: LogQuery) -> AuditPage:
        """One page of the log after ``query.after``, in position order, filtered."""
        head = self.records.head()
        budget = PYTHON_SCAN if query.checks_decoded else SQL_SCAN
        stop = min(head, query.after + budget)
        position = query.after
        entries: list[AuditEntry] = []
        while position < stop and len(entries) < query.limit:
            upto = min(position + WINDOW, stop)
            # Checked here: the whole window is read. Checked by the store: just what is needed.
            wanted = upto - position if query.checks_decoded else query.limit - len(entries)
            rows = self.records.page(position, upto, query.topics, wanted)
            position = upto if len(rows) < wanted else rows[-1].id
            for entry in self.entries(rows):
                if query.admits(entry):
                    entries.append(entry)
                    if len(entries) == query.limit:
                        position = entry.position
                        break
        return AuditPage(entries, position if position < head else None, head)

    def stream(self, stream_id: UUID) -> list[StreamEntry]:
        """Every version of one aggregate, corrections linked both ways."""
        records = self.records.stream(stream_id)
        if not records:
            raise NotFound(f"the log holds no stream with id {stream_id}")
        latest: dict[str, int] = {}
        corrects: dict[int, int] = {}
        for record in records:
            targets = _CORRECTED_TOPICS.get(record.topic, ())
            candidates = [latest[topic] for topic in targets if topic in latest]
            if candidates:
                corrects[record.originator_version] = max(candidates)
            latest[record.topic] = record.originator_version
        corrected_by: dict[int, list[int]] = {}
        for version, target in corrects.items():
            corrected_by.setdefault(target, []).append(version)
        return [
            StreamEntry(
                **{f.name: getattr(entry, f.name) for f in dataclasses.fields(AuditEntry)},
                corrects=corrects.get(entry.version),
                corrected_by=tuple(corrected_by.get(entry.version, ())),
            )
            for entry in self.entries(records)
        ]


def _uuid(value: UUID | str) -> UUID:
    return value if isinstance(value, UUID) else UUID(value)
