"""The indicators' read models in SQL: facts with their history, materialised values, tracking.

Tables come in generations (``ix<N>_...``): a replay builds generation N+1 beside the live N
and switches over in one transaction when it has caught up, so queries never see a half-built
model. ``ix_control`` names the active generation and the one being built.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import UTC, date, datetime
from itertools import repeat
from typing import Any

from eventsourcing.persistence import Tracking
from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    delete,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from projections.indicators.facts import (
    AttendanceFact,
    CheckIns,
    EventFact,
    Fact,
    Facts,
    ParticipantFact,
    ProgramFact,
    Recorded,
    WalkInFact,
    YearFacts,
)

TRACKED_APPLICATION = "tsunagari"
SQLITE_CACHE_KIB = 128 * 1024
NOT_FACT_COLUMNS = ("position", "recorded_us")
ID = String(32)  # uuid hex, as the events store them


class Generation:
    """One generation's tables."""

    def __init__(self, number: int, schema: str | None, raw_datastore: Any) -> None:
        from eventsourcing_sqlalchemy.recorders import SQLAlchemyTrackingRecorder

        self.number = number
        self.metadata = MetaData(schema=schema)
        prefix = f"ix{number}_"

        # A history table's key is (thing, position), made a unique index like the secondary
        # ones below rather than a primary key: created after a rebuild's load, not kept up to
        # date row by row at random places (ids are random) while a million rows go in.
        keys: list[tuple[str, Table, tuple[str, ...], bool]] = []

        def history(name: str, key: str, *columns: Column[Any]) -> Table:
            table = Table(
                prefix + name,
                self.metadata,
                Column(key, ID, nullable=False),
                Column("position", Integer, nullable=False, autoincrement=False),
                Column("recorded_us", BigInteger, nullable=False),
                *columns,
            )
            keys.append((f"{prefix}{name}_key", table, (key, "position"), True))
            return table

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
        # Created after a rebuild's last page rather than before its first (``create_indexes``):
        # one sort instead of an index update per row.
        self.secondary_indexes = (
            *keys,
            (f"{prefix}events_year", self.events, ("fiscal_year",), False),
            (f"{prefix}attendance_event", self.attendance, ("event_id",), False),
            (f"{prefix}walk_ins_event", self.walk_ins, ("event_id",), False),
        )
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

    def create(self, engine: Engine, *, indexes: bool = True) -> None:
        """The generation's tables; without ``indexes``, the secondary indexes wait for
        ``create_indexes`` (a rebuild loads first)."""
        self.metadata.create_all(engine, checkfirst=True)
        self.tracking.create_table()
        if indexes:
            self.create_indexes(engine)

    def create_indexes(self, engine: Engine) -> None:
        preparer = engine.dialect.identifier_preparer
        with engine.begin() as connection:
            for name, table, columns, unique in self.secondary_indexes:
                connection.execute(
                    text(
                        f"CREATE {'UNIQUE ' if unique else ''}INDEX IF NOT EXISTS "
                        f"{preparer.quote(name)} ON {preparer.format_table(table)} "
                        f"({', '.join(preparer.quote(column) for column in columns)})"
                    )
                )

    def drop(self, engine: Engine) -> None:
        self.metadata.drop_all(engine, checkfirst=True)
        self.tracking.tracking_table.drop(engine, checkfirst=True)

    # Writing ---------------------------------------------------------------------------

    def write_facts(self, session: Session, recorded: Sequence[Recorded]) -> None:
        """Append facts to their history tables, in the session's transaction.

        Rows go to the driver as tuples, by the DBAPI's ``executemany`` on SQLite and by COPY
        on PostgreSQL: through SQLAlchemy's insert(), each row was a dict processed column by
        column, a quarter of a rebuild's time.
        """
        if not recorded:
            return
        connection = session.connection()
        dialect = connection.dialect
        typed = dialect.name == "postgresql"
        rows: dict[Table, list[tuple[Any, ...]]] = {}
        for item in recorded:
            table, row = self._row(item, typed)
            rows.setdefault(table, []).append(row)
        for table, table_rows in rows.items():
            self._copy_rows(session, table, table_rows)

    def _copy_rows(self, session: Session, table: Table, rows: Iterable[tuple[Any, ...]]) -> None:
        """Rows in a table's column order, in values every driver takes as they are (SQLite
        takes True as 1), by COPY on PostgreSQL and the DBAPI's ``executemany`` on SQLite."""
        connection = session.connection()
        dialect = connection.dialect
        driver: Any = connection.connection.driver_connection
        cursor = driver.cursor()
        try:
            name = dialect.identifier_preparer.format_table(table)
            columns = ", ".join(dialect.identifier_preparer.quote(c.name) for c in table.c)
            if dialect.name == "postgresql":
                with cursor.copy(f"COPY {name} ({columns}) FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row(row)
            else:
                # History tables are keyed by random ids: every insert lands on another
                # page of the key index. SQLite's default cache (2 MB) would reread and
                # rewrite those pages from disk all the time once a table is large.
                cursor.execute(f"PRAGMA cache_size = -{SQLITE_CACHE_KIB}")
                marks = ", ".join("?" for _ in table.c)
                cursor.executemany(
                    f"INSERT INTO {name} ({columns}) VALUES ({marks})",  # noqa: S608 - our own tables
                    rows,
                )
        finally:
            cursor.close()

    def write_check_ins(self, session: Session, check_ins: CheckIns) -> None:
        """Append a page's check-ins, given as columns (a rebuild), to their history table."""
        if not check_ins.positions:
            return
        rows = zip(
            check_ins.attendance_ids,
            check_ins.positions,
            check_ins.recorded_us,
            check_ins.event_ids,
            check_ins.participant_ids,
            repeat(True),
            strict=False,  # repeat() never ends; the columns are of one length
        )
        self._copy_rows(session, self.attendance, rows)

    def _row(self, item: Recorded, typed: bool) -> tuple[Table, tuple[Any, ...]]:
        """A fact as its table's row, in column order, in values every driver takes as they
        are: SQLite has no date or boolean type, and SQLAlchemy stores them as ISO text and 0/1."""
        fact, position, recorded_us = item.fact, item.position, item.recorded_us
        if isinstance(fact, AttendanceFact):
            return self.attendance, (
                fact.attendance_id,
                position,
                recorded_us,
                fact.event_id,
                fact.participant_id,
                fact.counted if typed else int(fact.counted),
            )
        if isinstance(fact, WalkInFact):
            counts = json.dumps(dict(fact.counts), sort_keys=True)
            return self.walk_ins, (
                fact.tally_id,
                position,
                recorded_us,
                fact.event_id,
                counts,
                fact.counted if typed else int(fact.counted),
            )
        if isinstance(fact, EventFact):
            return self.events, (
                fact.event_id,
                position,
                recorded_us,
                fact.program_id,
                fact.district_id,
                fact.local_date if typed else fact.local_date.isoformat(),
                fact.fiscal_year,
                fact.cancelled if typed else int(fact.cancelled),
            )
        if isinstance(fact, ParticipantFact):
            return self.participants, (
                fact.participant_id,
                position,
                recorded_us,
                fact.birth_year,
                fact.band_id,
            )
        return self.programs, (
            fact.program_id,
            position,
            recorded_us,
            fact.policy,
            ",".join(fact.host_ids),
        )

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

    def load(self, session: Session) -> Facts:
        """Every fact as it stands now."""
        facts = Facts()
        facts.load(self.history(session))
        return facts

    def history(self, session: Session) -> Iterator[Fact]:
        """Latest fact of each thing, in an order ``Facts.put`` accepts."""
        for table in self.fact_tables:
            rows = _driver_rows(session, self._latest(table))
            latest = {row[0]: row for row in rows}  # oldest first: the last one of a key wins
            make = _FACTS[table.name.removeprefix(f"ix{self.number}_")]
            yield from map(make, latest.values())

    def year_facts(
        self, session: Session, fiscal_year: int, *, until_us: int | None = None
    ) -> YearFacts:
        """Only what a fiscal year's indicators read, as it stood at a time (µs since epoch;
        default: now): its events, their programmes, check-ins and tallies, and the
        participants checked in at them."""
        facts = YearFacts(fiscal_year)
        if session.connection().dialect.name == "postgresql":
            # The check-ins' rows (about 20 MB at 1M events) are sorted by position: in memory,
            # not in temporary files as with the default 4 MB. LOCAL: until the transaction ends.
            session.execute(text("SET LOCAL work_mem = '64MB'"))

        def latest(table: Table, *columns: str) -> Iterable[tuple[Any, ...]]:
            query = self._latest(table, *columns, until_us=until_us)
            if table is not self.participants:
                query = query.where(self._of_year(table, fiscal_year))
            rows = _driver_rows(session, query)
            return {row[0]: row for row in rows}.values()  # the last one of a key wins

        facts.programs = {row[0]: _program(row) for row in latest(self.programs)}
        facts.events = {row[0]: _event(row) for row in latest(self.events)}
        tallies: defaultdict[str, list[WalkInFact]] = defaultdict(list)
        for row in latest(self.walk_ins):
            tally = _walk_ins(row)
            if tally.counted:
                tallies[tally.event_id].append(tally)
        facts.tallies = dict(tallies)
        # Check-ins are most of the rows: each is only a participant id added to its event's.
        counted: defaultdict[str, list[str]] = defaultdict(list)
        for _, event_id, participant_id, is_counted in latest(
            self.attendance, "attendance_id", "event_id", "participant_id", "counted"
        ):
            if is_counted:
                counted[event_id].append(participant_id)
        facts.counted = dict(counted)
        # The participants to keep are picked in Python from one scan of the participants'
        # rows; as a subquery (participants IN check-ins IN events) it took five times as long.
        attended = {p for participant_ids in counted.values() for p in participant_ids}
        facts.participants = {
            row[0]: ParticipantFact(row[0], row[1], row[2])
            for row in latest(self.participants)
            if row[0] in attended
        }
        return facts

    def _latest(self, table: Table, *names: str, until_us: int | None = None) -> Any:
        """A history table's rows as plain tuples (recorded by ``until_us``), the key first and
        oldest first: by default every column but position and recording time."""
        columns = [
            c for c in table.c if (c.name in names if names else c.name not in NOT_FACT_COLUMNS)
        ]
        query = select(*columns).order_by(table.c.position)
        if until_us is not None:
            query = query.where(table.c.recorded_us <= until_us)
        return query

    def _of_year(self, table: Table, fiscal_year: int) -> Any:
        """The rows of a fact table (not participants: see ``year_facts``) that a fiscal year's
        indicators can read."""
        events = self.events.c
        # Every event that was ever in that year: a reschedule may have moved it since.
        event_ids = select(events.event_id).where(events.fiscal_year == fiscal_year)
        if "event_id" in table.c:
            return table.c.event_id.in_(event_ids)
        programs = select(events.program_id).where(events.fiscal_year == fiscal_year)
        return table.c.program_id.in_(programs)


def _driver_rows(session: Session, query: Any) -> list[tuple[Any, ...]]:
    """A query's rows as the driver returns them, without SQLAlchemy's per-row processing:
    an "as of" answer reads a fiscal year's check-ins, hundreds of thousands of rows."""
    connection = session.connection()
    compiled = query.compile(dialect=connection.dialect)
    params = compiled.construct_params()
    if compiled.positiontup is not None:  # SQLite's "?" marks
        params = tuple(params[name] for name in compiled.positiontup)
    driver: Any = connection.connection.driver_connection
    cursor = driver.cursor()
    try:
        cursor.execute(str(compiled), params)
        rows: list[tuple[Any, ...]] = cursor.fetchall()
    finally:
        cursor.close()
    return rows


def _date(value: Any) -> date:
    """SQLite keeps dates as ISO text; PostgreSQL returns them as dates."""
    return date.fromisoformat(value) if isinstance(value, str) else value


def _program(row: Any) -> ProgramFact:
    return ProgramFact(row[0], row[1], tuple(host for host in row[2].split(",") if host))


def _event(row: Any) -> EventFact:
    return EventFact(row[0], row[1], row[2], _date(row[3]), bool(row[5]))


def _walk_ins(row: Any) -> WalkInFact:
    counts: dict[str, int] = json.loads(row[2])
    return WalkInFact(row[0], row[1], tuple(sorted(counts.items())), bool(row[3]))


_FACTS: dict[str, Callable[[Any], Fact]] = {
    "attendance": lambda row: AttendanceFact(row[0], row[1], row[2], bool(row[3])),
    "walk_ins": _walk_ins,
    "events": _event,
    "participants": lambda row: ParticipantFact(row[0], row[1], row[2]),
    "programs": _program,
}
"""Each history table's rows (without position and recording time) back into facts."""


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
