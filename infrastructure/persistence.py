"""The event store and its side tables on eventsourcing-sqlalchemy: SQLite file or PostgreSQL."""

from __future__ import annotations

import functools
import json
import sqlite3
import threading
import time
import weakref
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from datetime import datetime
from typing import Any, TypeVar
from uuid import UUID

import psycopg
from eventsourcing.persistence import (
    ApplicationRecorder,
    DatabaseError,
    DataError,
    IntegrityError,
    ListenNotifySubscription,
    Notification,
    OperationalError,
    StoredEvent,
    Subscription,
)
from eventsourcing_sqlalchemy.datastore import SQLAlchemyDatastore, transactions
from eventsourcing_sqlalchemy.factory import SQLAlchemyFactory
from eventsourcing_sqlalchemy.recorders import (
    SQLAlchemyApplicationRecorder,
    SQLAlchemySubscription,
)
from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    Executable,
    MetaData,
    String,
    Table,
    Text,
    bindparam,
    event,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session
from sqlalchemy.sql import Insert, Select

from application.app import Tsunagari, utc_now
from application.ports import Idempotency, ParticipantKeys, StoredOutcome
from infrastructure import pg_pipeline
from infrastructure.keys import KeyTable
from infrastructure.settings import Settings


class WokenByTimer(ListenNotifySubscription[Any]):
    """The library's pull loop, also woken every ``wake_interval`` seconds until stopped."""

    wake_interval = 1.0

    def __init__(self, recorder: Any, gt: int | None = None, topics: Sequence[str] = ()) -> None:
        self._stopped = threading.Event()  # before the library's threads can call stop()
        super().__init__(recorder=recorder, gt=gt, topics=topics)
        self._timer = threading.Thread(target=self._wake, daemon=True)
        self._timer.start()

    def _wake(self) -> None:
        while not self._stopped.wait(self.wake_interval):
            self._has_been_notified.set()

    def stop(self) -> None:
        super().stop()
        self._stopped.set()

    def __exit__(self, *args: object, **kwargs: Any) -> None:
        try:
            super().__exit__(*args, **kwargs)
        finally:
            self._timer.join()


class PollingSubscription(WokenByTimer):
    """The library's pull loop, woken by a timer: SQLite has no LISTEN/NOTIFY.

    Neither eventsourcing's SQLite module nor eventsourcing-sqlalchemy can subscribe on SQLite;
    this is the smallest addition that lets the library's subscriptions follow it.
    """

    wake_interval = 0.05


class ListenAndPollSubscription(WokenByTimer, SQLAlchemySubscription):
    """LISTEN/NOTIFY, with a wake-up every second as well.

    The library pulls what is recorded, then starts LISTENing in another thread: an event
    recorded in between sends its NOTIFY to nobody and would wait for the next event.

    After a pull it lets ``pull_interval`` pass before the next: under load every commit
    NOTIFYs (hundreds a second at the front desks, a few check-ins each), and a query for each
    cost the projection worker and PostgreSQL more than the indicators did. The commits heard
    meanwhile are pulled together; the follower batches a quarter of a second anyway. At
    0.1 s rather than 0.02, 16 desks' check-ins cost the projection worker 97-100 µs of CPU
    each rather than 153-180, and PostgreSQL 213-227 rather than 240-253 (bench/README.md);
    an event recorded after a quiet spell is still pulled at once.
    """

    pull_interval = 0.1

    def _pull(self) -> None:
        super()._pull()
        self._stopped.wait(self.pull_interval)


class TsunagariRecorder(SQLAlchemyApplicationRecorder):
    """eventsourcing-sqlalchemy's recorder, able to subscribe on SQLite, reading streams faster."""

    def select_events(
        self,
        originator_id: UUID | str,
        gt: int | None = None,
        lte: int | None = None,
        desc: bool = False,
        limit: int | None = None,
    ) -> list[StoredEvent]:
        # The same query as the library's, in SQLAlchemy Core rather than the ORM, and built
        # once: every command reads two or three streams, and building the ORM query per read
        # cost more than running it.
        table = self.events_record_cls.__table__
        version = table.c.originator_version
        if lte is None and not desc and limit is None:
            # Reconstructing or fast-forwarding an aggregate: by far the commonest reads.
            query = self._select_all if gt is None else self._select_after
            params: dict[str, Any] = {"oid": originator_id, "gt": gt}
            prebuilt = True
        else:
            prebuilt = False
            query = select(table.c.originator_version, table.c.topic, table.c.state).where(
                table.c.originator_id == bindparam("oid")
            )
            params = {"oid": originator_id}
            if gt is not None:
                query = query.where(version > gt)
            if lte is not None:
                query = query.where(version <= lte)
            query = query.order_by(version.desc() if desc else version)
            if limit is not None:
                query = query.limit(limit)
        with self.transaction(commit=False) as session:
            self._written_before_reading(session, (originator_id,))
            connection = sqlite_driver(session) if prebuilt else None
            if connection is not None:
                return self._select_on_sqlite(connection, query, originator_id, gt)
            driver, lock = _postgres_driver_and_due_lock(session) if prebuilt else (None, None)
            if driver is not None:
                return self._select_on_driver(driver, lock, query, originator_id, params)
            rows = session.execute(query, params).all()
        return [
            StoredEvent(
                originator_id=originator_id,
                originator_version=row.originator_version,
                topic=row.topic,
                state=bytes(row.state),
            )
            for row in rows
        ]

    def _select_on_driver(
        self,
        driver: Any,
        lock: tuple[LockStatement, ...] | None,
        query: Select[Any],
        originator_id: UUID | str,
        params: dict[str, Any],
    ) -> list[StoredEvent]:
        # PostgreSQL: the compiled query on psycopg's cursor. A command reads a stream or two,
        # and SQLAlchemy's work around each execution cost more than psycopg's. The first
        # statement of a transaction goes with its BEGIN (and a due lock) in one round trip.
        sql = self._compiled(query)
        with driver_errors(), _pipeline(driver, lock), driver.cursor() as cursor:
            cursor.execute(sql, params)
            rows = cursor.fetchall()
        return _stream(originator_id, rows)

    def select_streams(
        self, originator_ids: Sequence[UUID], *, before_lock: bool = False
    ) -> dict[UUID, list[StoredEvent]]:
        """Every stored event of each of these streams, in version order, in one query: the
        streams a batch of commands will read (group commit's ``prepare``), where each
        command's own read was a statement, and on PostgreSQL a round trip, of its own.

        ``before_lock`` (PostgreSQL, while the transaction's lock is still due): the read
        runs without the lock, and the lock's round trip checks, right after LOCK, that the
        streams are as read (``_unchanged_sql``); if one is not, the transaction fails there,
        before any write, with ``StaleRead``. The batch's commands then decide with the lock
        not yet held, and it is held only for the commit's round trip: other processes'
        commands (the server's own closes and registrations beside the check-in writer) no
        longer wait for it through a batch's decisions."""
        streams: dict[UUID, list[StoredEvent]] = {}
        if not originator_ids:
            return streams
        columns = f"SELECT originator_id, originator_version, topic, state FROM {self._table_name}"  # noqa: S608 - our own table
        order = "ORDER BY originator_id, originator_version"
        with self.transaction(commit=False) as session:
            self._written_before_reading(session, originator_ids)
            connection = sqlite_driver(session)
            if connection is not None:
                marks = ", ".join("?" for _ in originator_ids)
                with driver_errors():
                    rows = connection.execute(
                        f"{columns} WHERE originator_id IN ({marks}) {order}",
                        [_uuid_bytes(originator_id) for originator_id in originator_ids],
                    ).fetchall()
                found = [(UUID(bytes=bytes(row[0])), *row[1:]) for row in rows]
            else:
                unlocked = before_lock and _lock_is_due(session)
                if unlocked:
                    driver, lock = postgres_driver_as_is(session), None
                else:
                    driver, lock = _postgres_driver_and_due_lock(session)
                if driver is None:
                    raise NotImplementedError("select_streams reads SQLite and PostgreSQL")
                read = (f"{columns} WHERE originator_id = ANY(%s) {order}", [list(originator_ids)])
                if pg_pipeline.usable(driver):
                    with driver_errors():
                        statements = [*(lock or ()), read]
                        found = pg_pipeline.run(driver, statements)[-1]
                else:
                    with driver_errors(), _pipeline(driver, lock), driver.cursor() as cursor:
                        cursor.execute(*read)
                        found = cursor.fetchall()
                if unlocked:
                    self._check_at_lock(session, found)
        for originator_id, version, topic, state in found:
            streams.setdefault(originator_id, []).append(
                StoredEvent(
                    originator_id=originator_id,
                    originator_version=version,
                    topic=topic,
                    state=bytes(state),
                )
            )
        return streams

    def select_notifications(
        self,
        start: int | None,
        limit: int,
        stop: int | None = None,
        topics: Sequence[str] = (),
        *,
        inclusive_of_start: bool = True,
    ) -> list[Notification]:
        # The library's ORM query made an object per row, and its subscriptions run it after
        # every commit they hear of: on PostgreSQL the projection worker's reads of the log
        # cost it about as much as the indicators. The same query on the driver, as SQL built
        # once; with topics (a rebuild's page), the library's.
        self._log_written_before_reading()
        if topics:
            return super().select_notifications(
                start, limit, stop, topics, inclusive_of_start=inclusive_of_start
            )
        after = -1 if start is None else start - 1 if inclusive_of_start else start
        upto = (1 << 62) if stop is None else stop
        sql = (
            "SELECT id, originator_id, originator_version, topic, state "  # noqa: S608 - our own table
            f"FROM {self._table_name} WHERE id > %s AND id <= %s ORDER BY id LIMIT %s"
        )
        with self.transaction(commit=False) as session:
            connection = sqlite_driver(session)
            if connection is not None:
                with driver_errors():
                    rows = connection.execute(sql.replace("%s", "?"), (after, upto, limit))
                    found = rows.fetchall()
                ids = [UUID(bytes=bytes(row[1])) for row in found]
            else:
                driver, lock = _postgres_driver_and_due_lock(session)
                if driver is None:
                    return super().select_notifications(
                        start, limit, stop, topics, inclusive_of_start=inclusive_of_start
                    )
                with driver_errors(), _pipeline(driver, lock), driver.cursor() as cursor:
                    cursor.execute(sql, (after, upto, limit))
                    found = cursor.fetchall()
                ids = [row[1] for row in found]
        return [
            Notification(
                id=position,
                originator_id=originator_id,
                originator_version=version,
                topic=topic,
                state=bytes(state),
            )
            for (position, _, version, topic, state), originator_id in zip(found, ids, strict=True)
        ]

    def _select_on_sqlite(
        self, connection: Any, query: Select[Any], originator_id: UUID | str, gt: int | None
    ) -> list[StoredEvent]:
        # SQLite: the same query on sqlite3's own connection under the session. In-process,
        # SQLAlchemy's work around an execution (context, parameter and result processing)
        # was most of a stream read's time: 2 of the 3 reads of a check-in's writer thread.
        # The id is bound as the column's type stores it, 16 bytes (sqlalchemy-utils'
        # UUIDType on a database without a UUID type).
        # The prebuilt query compiled for SQLite, its parameters in order: the id, then gt.
        params = (_uuid_bytes(originator_id),) if gt is None else (_uuid_bytes(originator_id), gt)
        with driver_errors():
            rows = connection.execute(self._compiled(query), params).fetchall()
        return _stream(originator_id, rows)

    @functools.cached_property
    def _table_name(self) -> str:
        engine: Any = self.datastore.engine
        table = self.events_record_cls.__table__
        name: str = engine.dialect.identifier_preparer.format_table(table)
        return name

    def _compiled(self, query: Select[Any]) -> str:
        compiled: dict[int, str] = self.__dict__.setdefault("_tsunagari_compiled", {})
        sql = compiled.get(id(query))  # the two queries are built once: their ids stay
        if sql is None:
            engine: Any = self.datastore.engine
            sql = compiled[id(query)] = str(query.compile(dialect=engine.dialect))
        return sql

    @functools.cached_property
    def _select_all(self) -> Select[Any]:
        table = self.events_record_cls.__table__
        return (
            select(table.c.originator_version, table.c.topic, table.c.state)
            .where(table.c.originator_id == bindparam("oid"))
            .order_by(table.c.originator_version)
        )

    @functools.cached_property
    def _select_after(self) -> Select[Any]:
        table = self.events_record_cls.__table__
        return (
            select(table.c.originator_version, table.c.topic, table.c.state)
            .where(
                table.c.originator_id == bindparam("oid"),
                table.c.originator_version > bindparam("gt"),
            )
            .order_by(table.c.originator_version)
        )

    def _insert_stored_events(
        self, session: Session, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int]:
        # The library adds one ORM object per event and flushes; one Core INSERT ... RETURNING
        # over all rows does the same in a fraction of the time. Same lock, same notify.
        if not stored_events:
            return []
        self._lock_table(session)
        if defers_events(session):
            self._defer(session, stored_events)
            return []  # positions are known at commit; the library then records none
        driver = postgres_driver(session)
        if driver is not None:
            ids = self._insert_on_driver(driver, stored_events)
            self._notify_channel(session)
            return ids
        connection = sqlite_driver(session)
        if connection is not None:
            return self._insert_on_sqlite(connection, stored_events)
        result = session.execute(
            self._insert_returning,
            [
                {
                    "originator_id": event.originator_id,
                    "originator_version": event.originator_version,
                    "topic": event.topic,
                    "state": event.state,
                }
                for event in stored_events
            ],
        )
        ids = [row[0] for row in result]
        self._notify_channel(session)
        return ids

    def _defer(self, session: Session, stored_events: Sequence[StoredEvent]) -> None:
        """A command transaction's events, inserted when it commits with its side rows
        (``write_deferred``): all the events of a group commit's batch in one statement, in
        the order they were saved, where each command's insert was a round trip of its own.

        Until then the store does not hold them: a read of one of their streams in this
        transaction first writes what was deferred (``_written_before_reading``), so a
        command later in the batch reads what an earlier one recorded. A duplicate (a lost
        race) fails the commit, and the group commit runs each command again alone; the
        check-in looks first where the batch's prefetch found its attendance, so that this
        stays rare.
        """
        _deferred(session).setdefault(self._insert_all, []).extend(
            {
                "originator_id": event.originator_id,
                "originator_version": event.originator_version,
                "topic": event.topic,
                "state": event.state,
            }
            for event in stored_events
        )
        _pending_streams(session).update(event.originator_id for event in stored_events)

    def _written_before_reading(
        self, session: Session, originator_ids: Collection[UUID | str] | None
    ) -> None:
        """Write this transaction's deferred events before a read of their streams (None:
        of the whole log), which must see them."""
        pending = _pending_streams(session, create=False)
        if not pending:
            return
        if originator_ids is not None:  # the library's ids are UUIDs; a caller may give text
            wanted = {UUID(i) if isinstance(i, str) else i for i in originator_ids}
            if pending.isdisjoint(wanted):
                return
        write_deferred(session)

    def _log_written_before_reading(self) -> None:
        """``_written_before_reading`` for a read of the whole log, inside a transaction."""
        try:
            session = transactions.get().session  # the library's open transaction, if any
        except LookupError:
            return
        self._written_before_reading(session, None)

    def max_notification_id(self) -> int | None:
        self._log_written_before_reading()
        return super().max_notification_id()

    @functools.cached_property
    def _insert_all(self) -> Insert:
        return insert(self.events_record_cls.__table__)

    def _insert_on_driver(self, driver: Any, stored_events: Sequence[StoredEvent]) -> list[int]:
        """PostgreSQL: the same INSERT ... RETURNING id on psycopg's cursor; several rows by its
        executemany, which pipelines them and answers each row's id in order."""
        rows = [
            (event.originator_id, event.originator_version, event.topic, event.state)
            for event in stored_events
        ]
        with driver_errors(), driver.cursor() as cursor:
            if len(rows) == 1:
                cursor.execute(self._insert_sql, rows[0])
                return [cursor.fetchone()[0]]
            cursor.executemany(self._insert_sql, rows, returning=True)
            ids = []
            while True:
                ids.append(cursor.fetchone()[0])
                if not cursor.nextset():
                    return ids

    def _insert_on_sqlite(self, connection: Any, stored_events: Sequence[StoredEvent]) -> list[int]:
        """SQLite: the same INSERT ... RETURNING id on sqlite3's connection, a row at a time
        (in-process; its executemany answers no RETURNING), as for the stream reads."""
        ids = []
        with driver_errors():
            for event in stored_events:
                cursor = connection.execute(
                    self._sqlite_insert,
                    (
                        _uuid_bytes(event.originator_id),
                        event.originator_version,
                        event.topic,
                        event.state,
                    ),
                )
                ids.append(cursor.fetchone()[0])
                cursor.close()
        return ids

    @functools.cached_property
    def _sqlite_insert(self) -> str:
        return self._insert_sql.replace("%s", "?")  # the same statement, sqlite3's marks

    @functools.cached_property
    def _insert_sql(self) -> str:
        return (
            f"INSERT INTO {self._table_name} (originator_id, originator_version, topic, state) "  # noqa: S608 - our own table
            "VALUES (%s, %s, %s, %s) RETURNING id"
        )

    def lock_log(self, session: Session) -> None:
        """Take the store's write lock for the rest of the transaction, at once (``atomic``).

        PostgreSQL: the log's write lock that inserts take anyway (``_lock_table``, an
        advisory lock: ``log_lock_sql``), taken first. SQLite: ``BEGIN IMMEDIATE``, its write
        lock; sqlite3 would otherwise begin the transaction at the first insert, after the
        command's reads, which SQLite answers outside any transaction. Waiting for the lock
        is bounded by sqlite3's busy timeout, which fails the command here rather than at
        commit, where the library's transaction would swallow a SQLite OperationalError.
        """
        connection = sqlite_driver(session)
        if connection is not None:
            if not connection.in_transaction:
                with driver_errors():
                    _begin_immediate(connection)
        elif _on_psycopg(session):
            self._lock_before_first_statement(session)
        else:
            self._lock_table(session)

    def _lock_before_first_statement(self, session: Session) -> None:
        """PostgreSQL: the lock and the NOTIFY go with the transaction's first statement, in
        one round trip: a batch's first statement is its prefetch (``select_streams``), whose
        answer the batch waits for anyway; where the lock went first, in a round trip of its
        own, the writer waited twice. Whichever statement comes first takes it: the prefetch
        and the commit's writes put it in their pipeline, any other statement on the
        driver (``postgres_driver``) or through SQLAlchemy (``_lock_before_statement``) sends
        it first. So no statement of the transaction runs before the lock, as before."""
        if not _first_in_transaction(session, "tsunagari_events_locked"):
            return
        _first_in_transaction(session, "tsunagari_listeners_notified")
        connection = session.connection()
        connection.info[_LOCK_DUE] = (connection.get_transaction(), self._lock_statements)
        _watch_statements(connection.engine)

    def _check_at_lock(self, session: Session, found: Sequence[Any]) -> None:
        """Have the transaction's due lock check that the streams ``found`` has events of are
        still at the last version read.

        Only those are checked. One read as absent needs no check, because of three rules of
        the batch's prefetch (``Tsunagari._prefetch``): a stream read as absent is never lent
        to a command, so one that reads it reads it again, under the lock; the only use of
        its absence (``_found``) is a check-in creating its attendance at once, at version 1;
        and that create is a plain insert, which the log's unique (stream, version) index
        refuses if another process created the stream meanwhile: the transaction fails at its
        commit and its commands are decided again, as after a failed check. Half a batch's
        streams are the check-ins' new attendances; leaving them out halves the check's index
        probes, in the round trip every desk of the batch waits for."""
        versions: dict[UUID, int] = {}
        for originator_id, version, *_ in found:
            versions[originator_id] = max(versions.get(originator_id, 0), version)
        if not versions:
            return
        check = (self._unchanged_sql, [list(versions), list(versions.values())])
        connection = session.connection()
        transaction, statements = connection.info[_LOCK_DUE]
        connection.info[_LOCK_DUE] = (transaction, (*statements, check))

    @functools.cached_property
    def _unchanged_sql(self) -> str:
        """Fails (``StaleRead``) when any of the streams has a last version other than the one
        given. SQL has no statement that raises an error of its own, and a function for it
        would be a schema object to create and upgrade in every store: the text cast to int
        fails, and only when the HAVING lets the count through, at run time (an aggregate is
        never folded at planning). Each stream's last version is one index probe."""
        return (
            f"SELECT ('{STALE_READ} ' || count(*))::int "  # noqa: S608 - our own table
            "FROM unnest(%s::uuid[], %s::bigint[]) AS r(id, v) "
            "WHERE coalesce((SELECT max(originator_version) "
            f"FROM {self._table_name} WHERE originator_id = r.id), 0) <> r.v "
            "HAVING count(*) > 0"
        )

    @functools.cached_property
    def _lock_statements(self) -> tuple[LockStatement, ...]:
        return ((log_lock_sql(self._table_name), ()), (f"NOTIFY {self.channel_name}", ()))

    def _lock_table(self, session: Session) -> None:
        """The log's write lock, in place of the library's table lock (``log_lock_sql``).
        Once a transaction: a group-commit transaction inserts for several commands, and
        PostgreSQL holds the lock until commit anyway; each lock was a round trip."""
        if not _first_in_transaction(session, "tsunagari_events_locked"):
            return
        driver = postgres_driver(session)
        if driver is None:
            engine: Any = self.datastore.engine
            if engine.dialect.name == "postgresql":  # not on psycopg
                session.execute(text(log_lock_sql(self._table_name)))
            return
        _first_in_transaction(session, "tsunagari_listeners_notified")
        _send_lock(driver, self._lock_statements)

    def _notify_channel(self, session: Session) -> None:
        # Once a transaction too: listeners hear of it at commit, once is enough.
        if _first_in_transaction(session, "tsunagari_listeners_notified"):
            super()._notify_channel(session)

    @functools.cached_property
    def _insert_returning(self) -> Any:
        table = self.events_record_cls.__table__
        return insert(table).returning(table.c.id, sort_by_parameter_order=True)

    def subscribe(
        self, gt: int | None = None, topics: Sequence[str] = ()
    ) -> Subscription[ApplicationRecorder]:
        engine = self.datastore.engine
        if engine is not None and engine.dialect.name == "sqlite":
            return PollingSubscription(self, gt=gt, topics=topics)
        return ListenAndPollSubscription(self, gt=gt, topics=topics)


def postgres_driver(session: Session) -> Any | None:
    """psycopg's connection under the session's transaction, on PostgreSQL; None elsewhere.

    The hot statements of a check-in (stream reads, the event insert, the side rows written at
    commit) run on it directly: on PostgreSQL, SQLAlchemy's work around each execution (the
    result's and the context's set-up, parameter processing) took more of the server's one
    interpreter than psycopg and the round trip together. SQLite keeps SQLAlchemy: its
    statements run in-process, and its types (UUIDs as text) need SQLAlchemy's processing.
    A transaction's due lock (``TsunagariRecorder._lock_before_first_statement``) is sent
    first.
    """
    driver, lock = _postgres_driver_and_due_lock(session)
    if lock is not None:
        _send_lock(driver, lock)
    return driver


def _on_psycopg(session: Session) -> bool:
    # Asked of the session's engine (the library binds its sessions to one): on SQLite,
    # taking the session's connection, or even get_bind(), made every stream read slower.
    bind = session.bind
    return bind is not None and bind.dialect.driver == "psycopg"  # no other PG driver


def postgres_driver_as_is(session: Session) -> Any | None:
    """``postgres_driver`` without sending a due lock: for a read that may go before it."""
    return session.connection().connection.driver_connection if _on_psycopg(session) else None


def _lock_is_due(session: Session) -> bool:
    """Whether the transaction has yet to send its lock (PostgreSQL)."""
    if not _on_psycopg(session):
        return False
    connection = session.connection()
    due = connection.info.get(_LOCK_DUE)
    return due is not None and due[0] is connection.get_transaction()


LockStatement = pg_pipeline.Statement
"""A statement of a transaction's lock, with its parameters: the LOCK, the NOTIFY, and the
check of what was read before it (``TsunagariRecorder._check_at_lock``)."""

STALE_READ = "tsunagari: a stream read before the lock changed before it was taken:"
"""In the error of ``TsunagariRecorder._unchanged_sql``: how ``driver_errors`` knows it."""


LOG_LOCK_CLASS = 0x7473  # "ts": the first key of the log's lock, apart from other advisory locks


def log_lock_sql(table_name: str) -> str:
    """PostgreSQL: the statement that takes a log's write lock until its transaction ends.

    The library keeps positions in commit order by locking the events table (``LOCK TABLE
    ... IN EXCLUSIVE MODE``) before every insert, so no two writers' inserts interleave. That
    lock also conflicts with the SHARE UPDATE EXCLUSIVE lock VACUUM takes: every check-in
    would wait while an autovacuum of the log held it, until the deadlock timeout cancels it
    (one second), and for the whole of an anti-wraparound vacuum, which is not cancelled.
    Every writer of the log takes this transaction-level advisory lock instead, one key per
    events table (two int4 keys, so never one of the single-key advisory locks of
    ``infrastructure.locks``): the same order of inserts and commits, and vacuum runs beside
    it. Taken by the recorder before any insert (``TsunagariRecorder._lock_table``), by every
    command first (``lock_log``), and by an archive's import; always in a transaction (the
    lock of an autocommit statement would end with it).

    The second key is the table's own oid (its low 31 bits), not a hash of its name as
    configured: two processes naming one table differently (``public.tsunagari_events`` and
    ``tsunagari_events`` through the search path) still take one lock."""
    literal = table_name.replace("'", "''")
    key = f"('{literal}'::regclass::oid::bigint & 2147483647)::int"
    return f"SELECT pg_advisory_xact_lock({LOG_LOCK_CLASS}, {key})"


class StaleRead(IntegrityError):
    """A stream read before the transaction took the log's lock changed before it did: a
    lost race, as a duplicate key is. Nothing was written; the commands are decided again."""


def _postgres_driver_and_due_lock(
    session: Session,
) -> tuple[Any | None, tuple[LockStatement, ...] | None]:
    """psycopg's connection, and the log's lock if the transaction has yet to send it (the
    caller must send it before its own statement, or in the same pipeline)."""
    if not _on_psycopg(session):
        return None, None
    connection = session.connection()
    return connection.connection.driver_connection, _due_lock(connection)


_LOCK_DUE = "tsunagari_lock_due"
"""In a connection's info: (its transaction, the lock's statements) until they are sent."""


def _due_lock(connection: Any) -> tuple[LockStatement, ...] | None:
    """The lock statements the connection's transaction has yet to send, now taken: a due
    lock of an earlier transaction (one that ran no statement) is dropped."""
    due = connection.info.pop(_LOCK_DUE, None)
    if due is None or due[0] is not connection.get_transaction():
        return None
    statements: tuple[LockStatement, ...] = due[1]
    return statements


def _send_lock(driver: Any, statements: tuple[LockStatement, ...]) -> None:
    """The lock and the NOTIFY (heard at commit, whenever it is sent) in one round trip with
    the transaction's BEGIN, which psycopg sends before the first statement: one pipeline."""
    with driver_errors():
        if pg_pipeline.usable(driver):
            pg_pipeline.run(driver, statements)
            return
        with driver.pipeline():
            _queue_lock(driver, statements)


def _queue_lock(driver: Any, statements: tuple[LockStatement, ...]) -> None:
    with driver.cursor() as cursor:
        for sql, params in statements:
            # The LOCK and the NOTIFY are never worth preparing; the check is.
            cursor.execute(sql, params or None, prepare=None if params else False)


@contextmanager
def _pipeline(driver: Any, lock: tuple[LockStatement, ...] | None) -> Iterator[None]:
    """For a read that may be its transaction's first statement: a pipeline, so that the
    BEGIN psycopg sends before it, and a due lock, go in the same round trip as the read
    (outside a pipeline psycopg waited for the BEGIN's answer on its own: a GET's read of
    one aggregate was three round trips, BEGIN, SELECT, ROLLBACK, and is now two). Inside a
    transaction with nothing due, nothing: one statement is one round trip anyway."""
    if lock is None and driver.pgconn.transaction_status != _IDLE:
        yield
        return
    with driver.pipeline():
        if lock is not None:
            _queue_lock(driver, lock)
        yield


_IDLE = psycopg.pq.TransactionStatus.IDLE


_WATCHED: weakref.WeakSet[Any] = weakref.WeakSet()
"""The engines ``_lock_before_statement`` watches (weakly, as ``_LISTENED``)."""


def _watch_statements(engine: Engine) -> None:
    if engine not in _WATCHED:
        event.listen(engine, "before_cursor_execute", _lock_before_statement)
        _WATCHED.add(engine)


def _lock_before_statement(
    connection: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool
) -> None:
    """SQLAlchemy's before_cursor_execute: a statement through SQLAlchemy in a transaction
    whose lock is due sends the lock first."""
    if _LOCK_DUE in connection.info:
        lock = _due_lock(connection)
        if lock is not None:
            _send_lock(cursor.connection, lock)


def sqlite_driver(session: Session) -> Any | None:
    """sqlite3's connection under the session's transaction, on SQLite; None elsewhere. The
    hot statements run on it as PostgreSQL's run on psycopg's (``postgres_driver``):
    in-process, SQLAlchemy's work around an execution was most of a statement's time."""
    bind = session.bind
    if bind is None or bind.dialect.name != "sqlite":
        return None
    return session.connection().connection.driver_connection


@contextmanager
def driver_errors() -> Iterator[None]:
    """psycopg's and sqlite3's errors as eventsourcing's, as the library's transaction turns
    SQLAlchemy's: a duplicate key must reach the retry loops as IntegrityError, a lost server
    or a locked file the 503."""
    try:
        yield
    except (psycopg.IntegrityError, sqlite3.IntegrityError) as error:
        raise IntegrityError(error) from error
    except (psycopg.DataError, sqlite3.DataError) as error:
        if STALE_READ in str(error):
            raise StaleRead(error) from error
        raise DataError(error) from error
    except (psycopg.OperationalError, sqlite3.OperationalError) as error:
        raise OperationalError(error) from error
    except (psycopg.Error, sqlite3.Error) as error:
        raise DatabaseError(error) from error


BEGIN_POLL = 0.0002
"""Seconds between a command's tries at SQLite's write lock while another process holds it."""


def _begin_immediate(connection: sqlite3.Connection) -> None:
    """``BEGIN IMMEDIATE``, waiting for the write lock as long as the connection's busy
    timeout, but trying again every ``BEGIN_POLL``. SQLite's own wait sleeps longer and longer
    between tries (1, 2, 5, 10... up to 100 ms): with the check-in writer holding the lock
    batch after batch, the server's own commands (a registration, a close) waited out those
    sleeps, up to 100-200 ms, where a batch takes a few."""
    timeout_ms = int(connection.execute("PRAGMA busy_timeout").fetchone()[0])
    connection.execute("PRAGMA busy_timeout = 0")
    deadline = time.monotonic() + timeout_ms / 1000
    try:
        while True:
            try:
                connection.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as error:
                busy = getattr(error, "sqlite_errorcode", None) == sqlite3.SQLITE_BUSY
                if not busy or time.monotonic() >= deadline:
                    raise
            time.sleep(BEGIN_POLL)
    finally:
        connection.execute(f"PRAGMA busy_timeout = {timeout_ms}")


def _stream(originator_id: UUID | str, rows: Sequence[Any]) -> list[StoredEvent]:
    """A stream's rows (version, topic, state) as the driver read them, as stored events."""
    return [
        StoredEvent(
            originator_id=originator_id,
            originator_version=version,
            topic=topic,
            state=bytes(state),  # bytes, whatever buffer type the driver gave
        )
        for version, topic, state in rows
    ]


def _uuid_bytes(value: UUID | str) -> bytes:
    """An originator id as SQLite stores it (sqlalchemy-utils' UUIDType, binary)."""
    return value.bytes if isinstance(value, UUID) else UUID(str(value)).bytes


def _first_in_transaction(session: Session, what: str) -> bool:
    """True the first time ``what`` is asked of the session's current transaction."""
    transaction = session.get_transaction()
    if session.info.get(what) is transaction:
        return False
    session.info[what] = transaction
    return True


def own_statements(datastore: Any) -> None:
    """PostgreSQL: this process's connections prepare its hot statements themselves
    (``pg_pipeline.own_statements``), psycopg none; for the check-in writer, whose every
    statement but a rare one goes through ``pg_pipeline``. Connections already made go."""
    engine = datastore.engine
    if engine is not None and engine.dialect.driver == "psycopg":
        event.listen(engine, "connect", pg_pipeline.own_statements)
        engine.dispose()


class QuietDatastore(SQLAlchemyDatastore):
    """The library's datastore, with an engine that keeps statement parameters out of its
    errors: they hold participant keys and sealed personal data, and errors are logged."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(hide_parameters=True, **kwargs)


class TsunagariFactory(SQLAlchemyFactory):
    datastore_class = QuietDatastore
    application_recorder_class = TsunagariRecorder


def application_env(settings: Settings) -> dict[str, str]:
    """The eventsourcing environment for these settings."""
    env = {
        "PERSISTENCE_MODULE": "infrastructure.persistence:TsunagariFactory",
        "SQLALCHEMY_URL": settings.database_url,
        "AGGREGATE_CACHE_MAXSIZE": str(settings.aggregate_cache_size),
    }
    if settings.database_schema:
        env["SQLALCHEMY_SCHEMA"] = settings.database_schema
    return env


T = TypeVar("T")

_LISTENED: weakref.WeakSet[Any] = weakref.WeakSet()
"""The session makers ``write_deferred`` listens on. Not ``event.contains``: SQLAlchemy's
registry keys a listener by the id() of its target and keeps the key after the target is gone,
so a new maker at a freed one's address looked listened already, and every row deferred in
that store was silently never written (answered 201, missing from the roster). A weak set
forgets a maker when it goes, before its address can be reused."""


class Datastore:
    """Typed face of eventsourcing-sqlalchemy's datastore, shared by every side table.

    Side rows go through the same datastore as the events so that one transaction (and, on
    SQLite, the same in-process write lock) covers both.
    """

    def __init__(self, recorder: ApplicationRecorder, schema: str | None) -> None:
        datastore = getattr(recorder, "datastore", None)
        if datastore is None or datastore.engine is None:
            raise TypeError("Tsunagari needs eventsourcing-sqlalchemy's application recorder")
        self.raw: Any = datastore
        self.engine: Engine = datastore.engine
        self.schema = schema
        self.metadata = MetaData(schema=schema)
        maker = getattr(datastore, "session_maker", None)
        self._deferring = maker is not None
        if maker is not None and maker not in _LISTENED:
            event.listen(maker, "before_commit", _write_and_commit)
            _LISTENED.add(maker)

    def transaction(self, *, commit: bool) -> AbstractContextManager[Any]:
        """A transaction; inside another one it joins it."""
        transaction: AbstractContextManager[Any] = self.raw.transaction(commit=commit)
        return transaction

    def create_tables(self) -> None:
        self.metadata.create_all(self.engine, checkfirst=True)

    def defer(self, session: Session, statement: Executable, rows: list[dict[str, Any]]) -> None:
        """Write ``rows`` with ``statement`` when the session's transaction commits: all the
        rows of one statement as one executemany, the inserts first, each statement in the
        order it was first deferred, its rows in the order deferred.

        A group-commit transaction holds the side rows (idempotency records, roster rows) of
        many commands: one statement for all of them rather than one round trip each, which on
        PostgreSQL cost more than the rest of a check-in's writes. A uniqueness conflict among
        them then fails the commit, and the group commit runs each command again alone. Inserts
        go first because a deferred update may touch a row inserted in the same transaction
        (a check-in and its revert), and no insert depends on an update. Rows deferred are not
        read back by SQL before the commit: ``deferred`` shows them.
        """
        if not self._deferring:  # a session that no before_commit listener watches
            session.execute(statement, rows)
            return
        _deferred(session).setdefault(statement, []).extend(rows)

    @property
    def defers(self) -> bool:
        """Whether ``defer`` holds rows until commit (else it writes them at once)."""
        return self._deferring

    def deferred(self, session: Session, statement: Executable) -> list[dict[str, Any]]:
        """The rows deferred with ``statement`` in the session's current transaction."""
        return _deferred(session).get(statement, [])


Deferred = dict[Executable, list[dict[str, Any]]]


def _deferred(session: Session) -> Deferred:
    """The writes deferred in the session's current transaction (a new one: none)."""
    deferred: Deferred = _of_transaction(session, "tsunagari_deferred", dict)
    return deferred


def _pending_streams(session: Session, *, create: bool = True) -> set[Any]:
    """The streams of the events deferred in the session's current transaction."""
    if not create and "tsunagari_pending_streams" not in session.info:
        return set()
    pending: set[Any] = _of_transaction(session, "tsunagari_pending_streams", set)
    return pending


def _of_transaction(session: Session, key: str, new: Callable[[], Any]) -> Any:
    """A value kept in ``session.info`` for the session's current transaction only: a later
    transaction of the same session starts with a ``new()`` one."""
    transaction = session.get_transaction()
    held: tuple[object, Any] | None = session.info.get(key)
    if held is None or held[0] is not transaction:
        held = (transaction, new())
        session.info[key] = held
    return held[1]


def defer_events(session: Session) -> None:
    """Let the events of the session's current transaction, a command's, be inserted when
    it commits (``TsunagariRecorder._defer``)."""
    session.info["tsunagari_defers_events"] = session.get_transaction()


def defers_events(session: Session) -> bool:
    return session.info.get("tsunagari_defers_events") is session.get_transaction()


def _write_and_commit(session: Session) -> None:
    """SQLAlchemy's before_commit: ``write_deferred``, and on PostgreSQL the COMMIT too.

    SQLAlchemy calls it when a savepoint is released as well: the rows wait for the
    transaction they belong to (a COMMIT there would commit half a command)."""
    if not session.in_nested_transaction():
        write_deferred(session, commit=True)


def write_deferred(session: Session, *, commit: bool = False) -> None:
    """Write what ``Datastore.defer`` kept, before the transaction commits (also called
    before a statement that must read those rows).

    On PostgreSQL the inserts go in one pipeline: one round trip for a batch's events and
    every side table's rows, where each statement waited for its own answer. ``commit``
    (from before_commit): when inserts are all there is to write, the COMMIT goes in that
    pipeline too, and SQLAlchemy's own commit, which follows, finds psycopg's connection
    with no transaction open and sends nothing (psycopg's commit() skips an idle one): a
    check-in batch's writes and commit cost one round trip rather than two. SQLAlchemy
    writes pending ORM objects after before_commit, so only a session with none commits
    here; a failed COMMIT raises here, and SQLAlchemy rolls back as for any failed commit.
    """
    held = session.info.pop("tsunagari_deferred", None)
    session.info.pop("tsunagari_pending_streams", None)
    if held is None or held[0] is not session.get_transaction():
        return
    inserts = [(s, rows) for s, rows in held[1].items() if isinstance(s, Insert) and rows]
    updates = [(s, rows) for s, rows in held[1].items() if not isinstance(s, Insert) and rows]
    driver, lock = _postgres_driver_and_due_lock(session)
    sqlite = sqlite_driver(session) if driver is None else None
    commit = commit and not updates and not (session.new or session.dirty or session.deleted)
    if driver is not None and pg_pipeline.usable(driver):
        statements = [*(lock or ())]
        statements += [_insert_statement(session, statement, rows) for statement, rows in inserts]
        if commit:
            statements.append(("COMMIT", ()))
        if statements:  # updates only: they go below, through SQLAlchemy
            with driver_errors():
                pg_pipeline.run(driver, statements)
        inserts = []
    elif driver is not None and (len(inserts) > 1 or commit or lock is not None):
        with driver_errors(), driver.pipeline():
            if lock is not None:
                _queue_lock(driver, lock)
            for statement, rows in inserts:
                _insert_on_driver(session, driver, statement, rows)
            if commit:
                driver.commit()
        inserts = []
    for statement, rows in inserts:
        if driver is not None:
            _insert_on_driver(session, driver, statement, rows)
        elif sqlite is not None:
            _insert_on_sqlite(session, sqlite, statement, rows)
        else:
            session.execute(statement, rows)
    for statement, rows in updates:  # after the inserts: an update may touch a row they add
        session.execute(statement, rows)


def _insert_on_sqlite(
    session: Session, connection: Any, statement: Insert, rows: list[dict[str, Any]]
) -> None:
    """SQLite: rows of a plain ``insert(table)`` by sqlite3's executemany, each value turned
    by the bind processor of its column type's SQLite form, as SQLAlchemy's executemany turns
    it (datetimes to its text, booleans to integers), without SQLAlchemy's work around the
    execution. The same stored bytes: tests/application/test_side_rows.py."""
    dialect = session.get_bind().dialect
    columns = tuple(rows[0])

    def prepare() -> tuple[str, list[Any]]:
        preparer, table = dialect.identifier_preparer, statement.table
        names = ", ".join(preparer.quote(column) for column in columns)
        marks = ", ".join("?" for _ in columns)
        return (
            f"INSERT INTO {preparer.format_table(table)} ({names}) VALUES ({marks})",  # noqa: S608 - our own tables
            [table.c[c].type.dialect_impl(dialect).bind_processor(dialect) for c in columns],
        )

    sql, processors = _prepared(statement, columns, dialect, prepare)
    values = [
        tuple(
            row[column] if process is None else process(row[column])
            for column, process in zip(columns, processors, strict=True)
        )
        for row in rows
    ]
    with driver_errors():
        connection.executemany(sql, values)


def _insert_on_driver(
    session: Session, driver: Any, statement: Insert, rows: list[dict[str, Any]]
) -> None:
    """PostgreSQL: rows of a plain ``insert(table)`` on psycopg's cursor (``_insert_statement``)."""
    with driver_errors(), driver.cursor() as cursor:
        cursor.execute(*_insert_statement(session, statement, rows))


def _insert_statement(
    session: Session, statement: Insert, rows: list[dict[str, Any]]
) -> tuple[str, list[list[Any]]]:
    """PostgreSQL: rows of a plain ``insert(table)`` as one INSERT ... SELECT FROM unnest() of
    one array per column. The statement's text is the same whatever the number of rows, so
    it is converted once and PostgreSQL prepares it; a multi-row VALUES list (a new text for
    every count of rows) cost psycopg ~190 µs of parsing per batch. The arrays go in binary
    (``%b``): in text, psycopg escaped every string with a regex, slower than the VALUES
    list. Values go as they are: str, bool, int, aware datetimes, None."""
    dialect = session.get_bind().dialect
    columns = tuple(rows[0])

    def prepare() -> str:
        preparer, table = dialect.identifier_preparer, statement.table
        names = ", ".join(preparer.quote(column) for column in columns)
        arrays = ", ".join(f"%b::{_array_type(table.c[c].type, dialect)}[]" for c in columns)
        return (
            f"INSERT INTO {preparer.format_table(table)} ({names}) SELECT * FROM unnest({arrays})"  # noqa: S608 - our own tables
        )

    sql: str = _prepared(statement, columns, dialect, prepare)
    return sql, [[row[column] for row in rows] for column in columns]


_PREPARED: dict[tuple[int, tuple[str, ...], str], tuple[Insert, Any]] = {}
"""The SQL (and SQLite's value conversions) of each insert of side rows, by statement, columns
and dialect: worked out from SQLAlchemy's types once, not at every commit, where it cost as
much as the insert. Each entry holds its statement, so its id is not reused while cached."""


def _prepared(
    statement: Insert, columns: tuple[str, ...], dialect: Any, make: Callable[[], T]
) -> T:
    key = (id(statement), columns, dialect.name)
    held = _PREPARED.get(key)
    if held is None:
        if len(_PREPARED) >= 256:  # many stores in one process (tests): start again
            _PREPARED.clear()
        held = _PREPARED[key] = (statement, make())
    made: T = held[1]
    return made


def _array_type(column_type: Any, dialect: Any) -> str:
    """The element type of a column's unnest() array: the column's own, but a string without
    its length. An explicit cast to ``varchar(n)`` cuts a longer value short without a word;
    cast to unlimited ``varchar``, the insert checks the length and refuses it, as SQLAlchemy's
    own insert does."""
    if isinstance(column_type, String):
        return "VARCHAR"
    compiled: str = column_type.compile(dialect=dialect)
    return compiled


class SqlStorage:
    """Idempotency records, in the same transaction as the events they answer for."""

    def __init__(self, datastore: Datastore, lock_log: Callable[[Session], None]) -> None:
        self.datastore = datastore
        self.lock_log = lock_log
        self.outcomes = Table(
            "tsunagari_idempotency",
            datastore.metadata,
            Column("scope", String(64), primary_key=True),
            Column("key", String(255), primary_key=True),
            Column("fingerprint", String(64), nullable=False),
            Column("command", String(64), nullable=False),
            Column("created", Boolean, nullable=False),
            Column("result", Text, nullable=False),
            Column("recorded_at", DateTime(timezone=True), nullable=False),
        )

        # Which answers are about a participant (their fingerprint keyed with its key): a
        # table of its own, so that stores made before it need no migration.
        self.about = Table(
            "tsunagari_idempotency_participants",
            datastore.metadata,
            Column("scope", String(64), primary_key=True),
            Column("key", String(255), primary_key=True),
            Column("participant_id", String(36), nullable=False, index=True),
        )

        # Built once: building a statement per command cost more than running it.
        outcomes, about = self.outcomes.c, self.about.c
        self._find = (
            select(outcomes.fingerprint, outcomes.created, outcomes.result, about.participant_id)
            .select_from(
                self.outcomes.outerjoin(
                    self.about, (about.scope == outcomes.scope) & (about.key == outcomes.key)
                )
            )
            .where(outcomes.scope == bindparam("scope"), outcomes.key == bindparam("key"))
        )
        self._save = insert(self.outcomes)
        self._save_about = insert(self.about)

    @contextmanager
    def atomic(self) -> Iterator[object]:
        """A command's transaction, which takes the log's write lock before anything else.

        Commands read (an event's state, a check-in's), decide, then write. Without the lock
        first, a command of another process could change what was read between the read and
        the commit: a check-in read an event as open while a coordinator's close was being
        committed elsewhere, and was recorded after it. In one process the group commit runs
        one transaction at a time; the lock does the same across processes (the check-in
        writer beside the server, a command line beside both): each command reads a state no
        other command can change before it commits.
        """
        with self.datastore.transaction(commit=True) as session:
            if _first_in_transaction(session, "tsunagari_log_locked"):
                self.lock_log(session)
                if self.datastore.defers:
                    defer_events(session)
            yield session

    def find_outcome(self, scope: str, key: str) -> StoredOutcome | None:
        with self.datastore.transaction(commit=False) as session:
            held = self._held(session, scope, key)
            if held is not None:
                return held
            row = session.execute(self._find, {"scope": scope, "key": key}).first()
        if row is None:
            return None
        participant_id = UUID(row.participant_id) if row.participant_id is not None else None
        return StoredOutcome(
            row.fingerprint, bool(row.created), json.loads(row.result), participant_id
        )

    def _held(self, session: Session, scope: str, key: str) -> StoredOutcome | None:
        """An outcome saved earlier in this transaction, not written yet (see ``defer``)."""
        for row in self.datastore.deferred(session, self._save):
            if row["scope"] == scope and row["key"] == key:
                about = [
                    UUID(held["participant_id"])
                    for held in self.datastore.deferred(session, self._save_about)
                    if held["scope"] == scope and held["key"] == key
                ]
                return StoredOutcome(
                    row["fingerprint"],
                    bool(row["created"]),
                    json.loads(row["result"]),
                    about[0] if about else None,
                )
        return None

    def save_outcome(
        self,
        idempotency: Idempotency,
        command: str,
        created: bool,
        result: dict[str, Any],
        *,
        participant_id: UUID | None = None,
    ) -> None:
        # Written at commit with the other commands' outcomes of a shared transaction: a key
        # already taken fails the commit (IntegrityError), not this call.
        with self.datastore.transaction(commit=True) as session:
            self.datastore.defer(
                session,
                self._save,
                [
                    {
                        "scope": idempotency.scope,
                        "key": idempotency.key,
                        "fingerprint": idempotency.fingerprint,
                        "command": command,
                        "created": created,
                        "result": _dumps(result),
                        "recorded_at": utc_now(),
                    }
                ],
            )
            if participant_id is not None:
                self.datastore.defer(
                    session,
                    self._save_about,
                    [
                        {
                            "scope": idempotency.scope,
                            "key": idempotency.key,
                            "participant_id": str(participant_id),
                        }
                    ],
                )

    def erase_outcomes(
        self,
        participant_id: UUID,
        commands: Collection[str],
        fingerprint: str,
        rewrite: Callable[[dict[str, Any]], dict[str, Any]],
    ) -> None:
        outcomes, about = self.outcomes.c, self.about.c
        pid = str(participant_id)
        known = select(about.scope, about.key).where(about.participant_id == pid)
        # Answers saved before they were marked: found by the id in their text, then checked
        # on the parsed answer. A scan of those commands' answers, once an erasure.
        unmarked = (
            select(outcomes.scope, outcomes.key, outcomes.result)
            .select_from(
                self.outcomes.outerjoin(
                    self.about, (about.scope == outcomes.scope) & (about.key == outcomes.key)
                )
            )
            .where(
                about.participant_id.is_(None),
                outcomes.command.in_(list(commands)),
                outcomes.result.contains(pid, autoescape=True),
            )
        )
        with self.datastore.transaction(commit=True) as session:
            write_deferred(session)  # answers saved earlier in this transaction are read too
            rows = [(row.scope, row.key) for row in session.execute(known)]
            for row in session.execute(unmarked).all():
                if json.loads(row.result).get("id") == pid:
                    rows.append((row.scope, row.key))
                    session.execute(
                        self._save_about,
                        {"scope": row.scope, "key": row.key, "participant_id": pid},
                    )
            for scope, key in rows:
                where = (outcomes.scope == scope) & (outcomes.key == key)
                stored = session.execute(select(outcomes.result).where(where)).scalar_one()
                session.execute(
                    update(self.outcomes)
                    .where(where)
                    .values(fingerprint=fingerprint, result=_dumps(rewrite(json.loads(stored))))
                )


def _dumps(result: dict[str, Any]) -> str:
    return json.dumps(result, ensure_ascii=False, sort_keys=True)


def prepare_database(settings: Settings) -> None:
    """Create what the store needs before the first connection: the SQLite file's folder."""
    path = settings.sqlite_path()
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)


def open_application(
    settings: Settings, *, clock: Callable[[], datetime] = utc_now
) -> tuple[Tsunagari, Datastore]:
    """The application on the configured store. Define side tables, then ``create_tables()``."""
    prepare_database(settings)
    holder: list[Datastore] = []

    def storage_factory(recorder: ApplicationRecorder) -> SqlStorage:
        datastore = Datastore(recorder, settings.database_schema)
        holder.append(datastore)
        if not isinstance(recorder, TsunagariRecorder):
            raise TypeError("Tsunagari needs its own application recorder")
        return SqlStorage(datastore, recorder.lock_log)

    def keys_factory() -> ParticipantKeys:
        return KeyTable(holder[0])

    app = Tsunagari(
        application_env(settings),
        storage_factory=storage_factory,
        keys_factory=keys_factory,
        clock=clock,
    )
    return app, holder[0]
