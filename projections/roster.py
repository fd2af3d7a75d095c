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
    bindparam,
    insert,
    select,
    update,
)

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
            # Indexed for the disclosure (開示): a participant's attendances across events.
            Column("participant_id", String(36), primary_key=True, index=True),
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

        # Statements built once and run with many rows: building one per row cost more than
        # the rest of a bulk import together.
        self._statements = {
            "check_in": insert(self.check_ins),
            "set_counted": update(self.check_ins)
            .where(self.check_ins.c.attendance_id == bindparam("key"))
            .values(
                counted=bindparam("counted"),
                recorded_at=bindparam("recorded_at"),
                revert_reason=bindparam("revert_reason"),
            ),
            "walk_ins": insert(self.walk_ins),
            "revert_walk_ins": update(self.walk_ins)
            .where(self.walk_ins.c.tally_id == bindparam("key"))
            .values(
                counted=False,
                recorded_at=bindparam("recorded_at"),
                revert_reason=bindparam("revert_reason"),
            ),
        }

    def process(self, events: Sequence[DomainEventProtocol[Any]]) -> None:
        rows: dict[str, list[dict[str, Any]]] = {}
        for domain_event in events:
            change = self._change(domain_event)
            if change is not None:
                rows.setdefault(change[0], []).append(change[1])
        if not rows:
            return
        with self.datastore.transaction(commit=True) as session:
            # Inserts before updates: a batch may check someone in and revert it.
            for name in ("check_in", "walk_ins", "set_counted", "revert_walk_ins"):
                if name in rows:  # at commit, with the other commands' rows (see defer)
                    self.datastore.defer(session, self._statements[name], rows[name])

    @singledispatchmethod
    def _change(self, domain_event: object) -> tuple[str, dict[str, Any]] | None:
        """Events of other aggregates do not change the roster."""
        return None

    @_change.register
    def _(self, e: Attendance.CheckedIn) -> tuple[str, dict[str, Any]] | None:
        return "check_in", {
            "event_id": str(e.event_id),
            "participant_id": str(e.participant_id),
            "attendance_id": str(e.originator_id),
            "counted": True,
            "recorded_at": e.timestamp,
            "revert_reason": None,
        }

    @_change.register
    def _(self, e: Attendance.CheckedInAgain) -> tuple[str, dict[str, Any]] | None:
        return "set_counted", {
            "key": str(e.originator_id),
            "counted": True,
            "recorded_at": e.timestamp,
            "revert_reason": None,
        }

    @_change.register
    def _(self, e: Attendance.CheckInReverted) -> tuple[str, dict[str, Any]] | None:
        return "set_counted", {
            "key": str(e.originator_id),
            "counted": False,
            "recorded_at": e.timestamp,
            "revert_reason": e.reason,
        }

    @_change.register
    def _(self, e: WalkInTally.Recorded) -> tuple[str, dict[str, Any]] | None:
        return "walk_ins", {
            "tally_id": str(e.originator_id),
            "event_id": str(e.event_id),
            "counts": json.dumps(e.counts, sort_keys=True),
            "total": sum(e.counts.values()),
            "counted": True,
            "recorded_at": e.timestamp,
            "revert_reason": None,
        }

    @_change.register
    def _(self, e: WalkInTally.Reverted) -> tuple[str, dict[str, Any]] | None:
        return "revert_walk_ins", {
            "key": str(e.originator_id),
            "recorded_at": e.timestamp,
            "revert_reason": e.reason,
        }

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

    def events_attended_by(self, participant_id: UUID) -> list[UUID]:
        """Events with a check-in of this participant, reverted ones included."""
        table = self.check_ins
        query = select(table.c.event_id).where(table.c.participant_id == str(participant_id))
        with self.datastore.transaction(commit=False) as session:
            return [UUID(event_id) for event_id in session.execute(query).scalars()]

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
