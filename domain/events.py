"""Events (開催回): one occurrence of a programme, scheduled, then held, cancelled or closed."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from enum import Enum
from uuid import UUID

from eventsourcing.domain import event

from domain.errors import EventNotOpen, EventNotScheduled, InvalidValue
from domain.organizations import clean_name
from domain.provenance import Provenance
from domain.recording import RecordedAggregate

JST = timezone(timedelta(hours=9), "Asia/Tokyo")
"""Japan has kept UTC+9 without daylight saving since 1951: a fixed offset is exact here."""

MAX_EVENT_LENGTH = timedelta(days=14)


class EventStatus(Enum):
    SCHEDULED = "scheduled"
    CANCELLED = "cancelled"
    CLOSED = "closed"


def local_date(moment: datetime) -> date:
    """The calendar date of a moment in Asia/Tokyo: the date that decides fiscal year and age."""
    return moment.astimezone(JST).date()


EARLIEST = datetime(1900, 1, 1, tzinfo=JST)
LATEST = datetime(3000, 1, 1, tzinfo=JST)
"""An event's times fall in [EARLIEST, LATEST): a year mistyped (0202 for 2026) is refused
rather than recorded, and every time has a date in Asia/Tokyo and in UTC (Python's datetime
ends at year 9999: 9999-12-31T23:59-12:00 has no date in Tokyo)."""


def _check_moment(moment: datetime, name: str, example: str) -> None:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise InvalidValue(f"{name} needs a UTC offset, e.g. {example}")
    if not EARLIEST <= moment < LATEST:
        raise InvalidValue(
            f"{name} {moment.isoformat()} is out of range: an event's times fall between "
            f"{EARLIEST.year} and {LATEST.year - 1} (Asia/Tokyo)"
        )


def _check_times(starts_at: datetime, ends_at: datetime | None) -> None:
    _check_moment(starts_at, "starts_at", "2026-05-10T10:00:00+09:00")
    if ends_at is not None:
        _check_moment(ends_at, "ends_at", "2026-05-10T12:00:00+09:00")
        if ends_at <= starts_at:
            raise InvalidValue("ends_at must be after starts_at")
        if ends_at - starts_at > MAX_EVENT_LENGTH:
            raise InvalidValue("an event lasts at most 14 days")


class Event(RecordedAggregate):
    """One occurrence of a programme, at a time and in a district."""

    class Scheduled(RecordedAggregate.Created):
        program_id: UUID
        title: str
        starts_at: datetime
        ends_at: datetime | None
        district_id: str
        venue: str | None
        recorded_by: Provenance

    class Rescheduled(RecordedAggregate.Event):
        starts_at: datetime
        ends_at: datetime | None
        recorded_by: Provenance

    class Cancelled(RecordedAggregate.Event):
        reason: str
        recorded_by: Provenance

    class Closed(RecordedAggregate.Event):
        recorded_by: Provenance

    @classmethod
    def schedule(
        cls,
        *,
        program_id: UUID,
        title: str,
        starts_at: datetime,
        ends_at: datetime | None,
        district_id: str,
        venue: str | None,
        recorded_by: Provenance,
    ) -> Event:
        _check_times(starts_at, ends_at)
        return cls(
            program_id=program_id,
            title=clean_name(title, "event title"),
            starts_at=starts_at,
            ends_at=ends_at,
            district_id=district_id,
            venue=clean_name(venue, "venue") if venue else None,
            recorded_by=recorded_by,
        )

    @event(Scheduled)
    def __init__(
        self,
        *,
        program_id: UUID,
        title: str,
        starts_at: datetime,
        ends_at: datetime | None,
        district_id: str,
        venue: str | None,
        recorded_by: Provenance,
    ) -> None:
        self.program_id = program_id
        self.title = title
        self.starts_at = starts_at
        self.ends_at = ends_at
        self.district_id = district_id
        self.venue = venue
        self.status = EventStatus.SCHEDULED
        self.cancellation_reason: str | None = None

    @property
    def local_date(self) -> date:
        """The event's date in Asia/Tokyo."""
        return local_date(self.starts_at)

    @property
    def takes_attendance(self) -> bool:
        return self.status is EventStatus.SCHEDULED

    def ensure_takes_attendance(self) -> None:
        if self.status is EventStatus.CANCELLED:
            raise EventNotOpen(f"event {self.id} was cancelled: it takes no attendance")
        if self.status is EventStatus.CLOSED:
            raise EventNotOpen(f"event {self.id} is closed: it takes no more attendance")

    def _ensure_scheduled(self, verb: str) -> None:
        if self.status is not EventStatus.SCHEDULED:
            raise EventNotScheduled(f"event {self.id} is {self.status.value}: cannot {verb} it")

    def reschedule(
        self, *, starts_at: datetime, ends_at: datetime | None, recorded_by: Provenance
    ) -> None:
        self._ensure_scheduled("reschedule")
        _check_times(starts_at, ends_at)
        self._reschedule(starts_at=starts_at, ends_at=ends_at, recorded_by=recorded_by)

    @event(Rescheduled)
    def _reschedule(
        self, *, starts_at: datetime, ends_at: datetime | None, recorded_by: Provenance
    ) -> None:
        self.starts_at = starts_at
        self.ends_at = ends_at

    def cancel(self, *, reason: str, recorded_by: Provenance) -> None:
        self._ensure_scheduled("cancel")
        self._cancel(reason=clean_name(reason, "reason"), recorded_by=recorded_by)

    @event(Cancelled)
    def _cancel(self, *, reason: str, recorded_by: Provenance) -> None:
        self.status = EventStatus.CANCELLED
        self.cancellation_reason = reason

    def close(self, *, recorded_by: Provenance) -> None:
        self._ensure_scheduled("close")
        self._close(recorded_by=recorded_by)

    @event(Closed)
    def _close(self, *, recorded_by: Provenance) -> None:
        self.status = EventStatus.CLOSED
