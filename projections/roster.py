"""Who is checked in at each event, and the walk-in tallies: the front desk's read model.

Inline: updated in the same transaction as the events it reads, so a desk sees its own
check-in in the very next request. Every row is a function of the log and can be rebuilt.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import singledispatchmethod
from typing import Any
from uuid import UUID

from eventsourcing.domain import DomainEventProtocol
from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    Integer,
    String,
    Table,
    Text,
    insert,
    select,
    update,
)
from sqlalchemy.orm import Session

from domain.attendance import Attendance, WalkInTally
from projections.sql import SqlDatastore


def as_utc(moment: datetime) -> datetime:
    """SQLite hands back naive datetimes; every time this module stores is UTC."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


@dataclass(frozen=True)
class RosterEntry:
    participant_id: UUID
    counted: bool
    recorded_at: datetime
    revert_reason: str | None


@dataclass(frozen=True)
class WalkInEntry:
    id: UUID
    counts: dict[str, int]
    counted: bool
    recorded_at: datetime
    revert_reason: str | None


class Roster:
    """Inline projection of check-ins and walk-ins per event."""

    def __init__(self, datastore: SqlDatastore) -> None:
        self.datastore = datastore
        self.check_ins = Table(
            "tsunagari_roster",
            datastore.metadata,
            Column("event_id", String(36), primary_key=True),
            Column("participant_id", String(36), primary_key=True),
            Column("attendance_id", String(36), nullable=False, unique=True),
            Column("counted", Boolean, nullable=False),
            Column("recorded_at", DateTime(timezone=True), nullable=False),
            Column("revert_reason", Text),
        )
        self.walk_ins = Table(
            "tsunagari_walk_ins",
            datastore.metadata,
            Column("tally_id", String(36), primary_key=True),
            Column("event_id", String(36), nullable=False, index=True),
            Column("counts", Text, nullable=False),
            Column("total", Integer, nullable=False),
            Column("counted", Boolean, nullable=False),
            Column("recorded_at", DateTime(timezone=True), nullable=False),
            Column("revert_reason", Text),
        )

    def process(self, events: Sequence[DomainEventProtocol[Any]]) -> None:
        with self.datastore.transaction(commit=True) as session:
            for domain_event in events:
                self._apply(domain_event, session)

    @singledispatchmethod
    def _apply(self, domain_event: object, session: Session) -> None:
        """Events of other aggregates do not change the roster."""

    @_apply.register
    def _(self, domain_event: Attendance.CheckedIn, session: Session) -> None:
        session.execute(
            insert(self.check_ins).values(
                event_id=str(domain_event.event_id),
                participant_id=str(domain_event.participant_id),
                attendance_id=str(domain_event.originator_id),
                counted=True,
                recorded_at=domain_event.timestamp,
            )
        )

    @_apply.register
    def _(self, domain_event: Attendance.CheckedInAgain, session: Session) -> None:
        self._set_counted(session, domain_event, counted=True, reason=None)

    @_apply.register
    def _(self, domain_event: Attendance.CheckInReverted, session: Session) -> None:
        reason: str = domain_event.reason
        self._set_counted(session, domain_event, counted=False, reason=reason)

    @_apply.register
    def _(self, domain_event: WalkInTally.Recorded, session: Session) -> None:
        counts: dict[str, int] = domain_event.counts
        session.execute(
            insert(self.walk_ins).values(
                tally_id=str(domain_event.originator_id),
                event_id=str(domain_event.event_id),
                counts=json.dumps(counts, sort_keys=True),
                total=sum(counts.values()),
                counted=True,
                recorded_at=domain_event.timestamp,
            )
        )

    @_apply.register
    def _(self, domain_event: WalkInTally.Reverted, session: Session) -> None:
        session.execute(
            update(self.walk_ins)
            .where(self.walk_ins.c.tally_id == str(domain_event.originator_id))
            .values(
                counted=False,
                recorded_at=domain_event.timestamp,
                revert_reason=domain_event.reason,
            )
        )

    def _set_counted(
        self, session: Session, domain_event: Any, *, counted: bool, reason: str | None
    ) -> None:
        session.execute(
            update(self.check_ins)
            .where(self.check_ins.c.attendance_id == str(domain_event.originator_id))
            .values(counted=counted, recorded_at=domain_event.timestamp, revert_reason=reason)
        )

    # Queries ---------------------------------------------------------------------------

    def check_ins_at(self, event_id: UUID) -> list[RosterEntry]:
        table = self.check_ins
        query = (
            select(table)
            .where(table.c.event_id == str(event_id))
            .order_by(table.c.recorded_at, table.c.participant_id)
        )
        with self.datastore.transaction(commit=False) as session:
            rows = session.execute(query).all()
        return [
            RosterEntry(
                participant_id=UUID(row.participant_id),
                counted=bool(row.counted),
                recorded_at=as_utc(row.recorded_at),
                revert_reason=row.revert_reason,
            )
            for row in rows
        ]

    def walk_ins_at(self, event_id: UUID) -> list[WalkInEntry]:
        table = self.walk_ins
        query = (
            select(table)
            .where(table.c.event_id == str(event_id))
            .order_by(table.c.recorded_at, table.c.tally_id)
        )
        with self.datastore.transaction(commit=False) as session:
            rows = session.execute(query).all()
        return [
            WalkInEntry(
                id=UUID(row.tally_id),
                counts=json.loads(row.counts),
                counted=bool(row.counted),
                recorded_at=as_utc(row.recorded_at),
                revert_reason=row.revert_reason,
            )
            for row in rows
        ]


def walk_ins_by_band(tallies: Sequence[WalkInEntry]) -> dict[str, int]:
    """Headcount per band over the tallies that still count."""
    totals: dict[str, int] = {}
    for tally in tallies:
        if tally.counted:
            for band_id, count in tally.counts.items():
                totals[band_id] = totals.get(band_id, 0) + count
    return dict(sorted(totals.items()))
