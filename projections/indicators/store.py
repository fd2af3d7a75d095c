"""The indicators' read models in SQL: facts with their history, materialised values, tracking.

Tables come in generations (``ix<N>_...``): a replay builds generation N+1 beside the live N
and switches over in one transaction when it has caught up, so queries never see a half-built
model. ``ix_control`` names the active generation and the one being built.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

from eventsourcing.persistence import Tracking
from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    delete,
    insert,
    select,
    update,
)
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from projections.indicators.facts import (
    AttendanceFact,
    EventFact,
    Fact,
    Facts,
    ParticipantFact,
    ProgramFact,
    Recorded,
    WalkInFact,
)

TRACKED_APPLICATION = "tsunagari"
ID = String(32)  # uuid hex, as the events store them


class Generation:
    """One generation's tables."""

    def __init__(self, number: int, schema: str | None, raw_datastore: Any) -> None:
        from eventsourcing_sqlalchemy.recorders import SQLAlchemyTrackingRecorder

        self.number = number
        self.metadata = MetaData(schema=schema)
        prefix = f"ix{number}_"

        def history(name: str, key: str, *columns: Column[Any]) -> Table:
            return Table(
                prefix + name,
                self.metadata,
                Column(key, ID, primary_key=True),
                Column("position", Integer, primary_key=True, autoincrement=False),
                Column("recorded_us", BigInteger, nullable=False),
                *columns,
            )

        self.programs = history(
            "programs",
            "program_id",
            Column("policy", String(8), nullable=False),
            Column("host_ids", Text, nullable=False),
        )
        self.events = history(
            "events",
            "event_id",
            Column("program_id", ID, nullable=False),
            Column("district_id", String(50), nullable=False),
            Column("local_date", Date, nullable=False),
            Column("fiscal_year", Integer, nullable=False),
            Column("cancelled", Boolean, nullable=False),
        )
        self.participants = history(
            "participants",
            "participant_id",
            Column("birth_year", Integer),
            Column("band_id", String(50)),
        )
        self.attendance = history(
            "attendance",
            "attendance_id",
            Column("event_id", ID, nullable=False),
            Column("participant_id", ID, nullable=False),
            Column("counted", Boolean, nullable=False),
        )
        self.walk_ins = history(
            "walk_ins",
            "tally_id",
            Column("event_id", ID, nullable=False),
            Column("counts", Text, nullable=False),
            Column("counted", Boolean, nullable=False),
        )
        Index(f"{prefix}events_year", self.events.c.fiscal_year)
        Index(f"{prefix}attendance_event", self.attendance.c.event_id)
        Index(f"{prefix}walk_ins_event", self.walk_ins.c.event_id)
        self.values = Table(
            prefix + "values",
            self.metadata,
            Column("fiscal_year", Integer, primary_key=True, autoincrement=False),
            Column("scope", String(200), primary_key=True),
            Column("position", Integer, nullable=False),
            Column("computed_at", DateTime(timezone=True), nullable=False),
            Column("payload", Text, nullable=False),
        )
        self.tracking = SQLAlchemyTrackingRecorder(
            datastore=raw_datastore, tracking_table_name=prefix + "tracking", schema_name=schema
        )

    @property
    def fact_tables(self) -> tuple[Table, ...]:
        return (self.programs, self.events, self.participants, self.attendance, self.walk_ins)

    def create(self, engine: Engine) -> None:
        self.metadata.create_all(engine, checkfirst=True)
        self.tracking.create_table()

    def drop(self, engine: Engine) -> None:
        self.metadata.drop_all(engine, checkfirst=True)
        self.tracking.tracking_table.drop(engine, checkfirst=True)

    # Writing ---------------------------------------------------------------------------

    def write_facts(self, session: Session, recorded: Sequence[Recorded]) -> None:
        rows: dict[Table, list[dict[str, Any]]] = {}
        for item in recorded:
            table, row = self._row(item.fact)
            row["position"] = item.position
            row["recorded_us"] = item.recorded_us
            rows.setdefault(table, []).append(row)
        for table, table_rows in rows.items():
            session.execute(insert(table), table_rows)

    def _row(self, fact: Fact) -> tuple[Table, dict[str, Any]]:
        if isinstance(fact, AttendanceFact):
            return self.attendance, {
                "attendance_id": fact.attendance_id,
                "event_id": fact.event_id,
                "participant_id": fact.participant_id,
                "counted": fact.counted,
            }
        if isinstance(fact, WalkInFact):
            return self.walk_ins, {
                "tally_id": fact.tally_id,
                "event_id": fact.event_id,
                "counts": json.dumps(dict(fact.counts), sort_keys=True),
                "counted": fact.counted,
            }
        if isinstance(fact, EventFact):
            return self.events, {
                "event_id": fact.event_id,
                "program_id": fact.program_id,
                "district_id": fact.district_id,
                "local_date": fact.local_date,
                "fiscal_year": fact.fiscal_year,
                "cancelled": fact.cancelled,
            }
        if isinstance(fact, ParticipantFact):
            return self.participants, {
                "participant_id": fact.participant_id,
                "birth_year": fact.birth_year,
                "band_id": fact.band_id,
            }
        return self.programs, {
            "program_id": fact.program_id,
            "policy": fact.policy,
            "host_ids": ",".join(fact.host_ids),
        }

    def write_values(
        self, session: Session, fiscal_year: int, payloads: dict[str, dict[str, Any]], position: int
    ) -> None:
        """Replace a fiscal year's materialised values."""
        session.execute(delete(self.values).where(self.values.c.fiscal_year == fiscal_year))
        now = datetime.now(UTC)
        if payloads:
            session.execute(
                insert(self.values), self._value_rows(fiscal_year, payloads, position, now)
            )

    def write_scopes(
        self,
        session: Session,
        fiscal_year: int,
        payloads: dict[str, dict[str, Any]],
        gone: set[str] | None,
        position: int,
    ) -> None:
        """Replace some scopes' values of a fiscal year and delete others (``gone``; None: every
        scope of the year); every scope of the year is then current as of ``position``."""
        if gone is None:
            self.write_values(session, fiscal_year, {}, position)
            return
        values = self.values.c
        stale = [*payloads, *gone]
        for start in range(0, len(stale), 500):  # bound the IN list
            session.execute(
                delete(self.values).where(
                    values.fiscal_year == fiscal_year, values.scope.in_(stale[start : start + 500])
                )
            )
        now = datetime.now(UTC)
        if payloads:
            session.execute(
                insert(self.values), self._value_rows(fiscal_year, payloads, position, now)
            )
        # Scopes the batch did not change are as current as those it did.
        session.execute(
            update(self.values)
            .where(values.fiscal_year == fiscal_year)
            .values(position=position, computed_at=now)
        )

    def _value_rows(
        self, fiscal_year: int, payloads: dict[str, dict[str, Any]], position: int, now: datetime
    ) -> list[dict[str, Any]]:
        return [
            {
                "fiscal_year": fiscal_year,
                "scope": scope,
                "position": position,
                "computed_at": now,
                "payload": json.dumps(payload, ensure_ascii=False, sort_keys=True),
            }
            for scope, payload in payloads.items()
        ]

    def write_tracking(self, session: Session, position: int) -> None:
        # The library's own tracking write, inside our transaction (its public insert_tracking
        # would open a transaction of its own).
        self.tracking._insert_tracking(session, Tracking(TRACKED_APPLICATION, position))

    def position(self) -> int | None:
        position: int | None = self.tracking.max_tracking_id(TRACKED_APPLICATION)
        return position

    # Reading ---------------------------------------------------------------------------

    def read_values(
        self, session: Session, fiscal_year: int, scope: str
    ) -> tuple[int, dict[str, Any]] | None:
        row = session.execute(
            select(self.values.c.position, self.values.c.payload).where(
                self.values.c.fiscal_year == fiscal_year, self.values.c.scope == scope
            )
        ).first()
        return None if row is None else (row.position, json.loads(row.payload))

    def materialised_years(self, session: Session) -> list[int]:
        rows = session.execute(select(self.values.c.fiscal_year).distinct())
        return sorted(row.fiscal_year for row in rows)

    def load(
        self,
        session: Session,
        *,
        until_us: int | None = None,
        fiscal_year: int | None = None,
    ) -> Facts:
        """Facts as they stood at a time (µs since epoch; default: now), optionally only one
        fiscal year's."""
        facts = Facts()
        for recorded in self.history(session, until_us=until_us, fiscal_year=fiscal_year):
            facts.put(recorded)
        return facts

    def history(
        self,
        session: Session,
        *,
        until_us: int | None = None,
        fiscal_year: int | None = None,
    ) -> Iterator[Fact]:
        """Latest fact of each thing (recorded by ``until_us``), in an order ``Facts.put``
        accepts."""
        event_ids = None
        if fiscal_year is not None:
            # Every event that was ever in that year: a reschedule may have moved it since.
            event_ids = select(self.events.c.event_id).where(
                self.events.c.fiscal_year == fiscal_year
            )
        for table in self.fact_tables:
            query = select(table).order_by(table.c.position)
            if until_us is not None:
                query = query.where(table.c.recorded_us <= until_us)
            if event_ids is not None and "event_id" in table.c:
                query = query.where(table.c.event_id.in_(event_ids))
            latest: dict[str, Fact] = {}
            key = table.primary_key.columns.values()[0].name
            for row in session.execute(query):
                latest[getattr(row, key)] = _fact(table, row, self)
            yield from latest.values()


def _fact(table: Table, row: Any, generation: Generation) -> Fact:
    if table is generation.attendance:
        return AttendanceFact(
            row.attendance_id, row.event_id, row.participant_id, bool(row.counted)
        )
    if table is generation.walk_ins:
        counts: dict[str, int] = json.loads(row.counts)
        return WalkInFact(
            row.tally_id, row.event_id, tuple(sorted(counts.items())), bool(row.counted)
        )
    if table is generation.events:
        return EventFact(
            row.event_id,
            row.program_id,
            row.district_id,
            row.local_date,
            bool(row.cancelled),
        )
    if table is generation.participants:
        return ParticipantFact(row.participant_id, row.birth_year, row.band_id)
    return ProgramFact(
        row.program_id,
        row.policy,
        tuple(host for host in row.host_ids.split(",") if host),
    )


class Control:
    """Which generation answers queries, and which one a replay is building."""

    NAME = "indicators"

    def __init__(self, schema: str | None) -> None:
        self.metadata = MetaData(schema=schema)
        self.table = Table(
            "ix_control",
            self.metadata,
            Column("name", String(32), primary_key=True),
            Column("active", Integer, nullable=False),
            Column("building", Integer),
        )

    def create(self, engine: Engine) -> None:
        self.metadata.create_all(engine, checkfirst=True)

    def ensure(self, session: Session) -> None:
        """Start a new store at generation 1."""
        if self.read(session) is None:
            session.execute(insert(self.table).values(name=self.NAME, active=1, building=None))

    def read(self, session: Session) -> tuple[int, int | None] | None:
        """(active generation, generation being built)."""
        row = session.execute(
            select(self.table.c.active, self.table.c.building).where(self.table.c.name == self.NAME)
        ).first()
        return None if row is None else (row.active, row.building)

    def write(self, session: Session, *, active: int, building: int | None) -> None:
        session.execute(
            update(self.table)
            .where(self.table.c.name == self.NAME)
            .values(active=active, building=building)
        )
