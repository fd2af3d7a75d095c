"""Commands of two processes on one store: each command reads a state the other cannot change
before it commits (``SqlStorage.atomic`` takes the log's write lock first).

Two applications opened on the same database stand for two processes (the server and the
check-in writer, or a command line beside them): each has its own engine, connections and
in-process locks, and shares nothing with the other but the store.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import psycopg
import pytest

from application.app import CheckIn, Outcome
from domain.errors import EventNotOpen
from infrastructure.persistence import LOG_LOCK_CLASS, log_lock_sql
from infrastructure.settings import Settings
from interfaces.bootstrap import Services, build_services
from tests.application.test_group_commit import BY, _event, _participants
from tests.support import Clock


class Holding:
    """An inline projection that, once armed, holds its command's transaction open (after the
    command's events are saved, before the commit) until released."""

    def __init__(self) -> None:
        self.armed = False
        self.holding = threading.Event()
        self.release = threading.Event()

    def process(self, events: Sequence[Any]) -> None:
        if self.armed:
            self.armed = False
            self.holding.set()
            assert self.release.wait(30), "never released"


@pytest.fixture
def other(settings: Settings, clock: Clock) -> Iterator[Services]:
    """A second process's services on the same store, with its own aggregate cache."""
    built = build_services(settings, clock=clock)
    try:
        yield built
    finally:
        built.close()


def test_a_check_in_waits_for_another_processs_close_and_is_refused(
    services: Services, other: Services
) -> None:
    app = services.app
    event_id = _event(app)
    (person,) = _participants(app, 1)
    assert other.app.get_event(event_id).status == "scheduled"  # cached there, as open
    holding = Holding()
    app.add_inline_projection(holding)
    holding.armed = True
    with ThreadPoolExecutor(2) as pool:
        closing = pool.submit(app.close_event, event_id, recorded_by=BY)
        assert holding.holding.wait(10), "the close did not start"
        # The close is saved, not committed. Without the lock first, the other process read
        # the event as open, waited at its insert, and recorded the check-in after the close.
        checking_in = pool.submit(
            other.app.check_in, event_id, participant_id=person, recorded_by=BY
        )
        with pytest.raises(TimeoutError):
            checking_in.result(timeout=0.5)  # it waits for the store's lock
        holding.release.set()
        closing.result(timeout=10)
        with pytest.raises(EventNotOpen):
            checking_in.result(timeout=10)
    assert services.roster.check_ins_at(event_id) == []
    assert app.get_event(event_id).status == "closed"


def test_a_close_beside_another_processs_check_in_is_ordered_with_it(
    services: Services, other: Services
) -> None:
    """SQLite: the check-in holds the write lock from its start; the close waits, and the
    check-in counts, before the close in the log. PostgreSQL: a check-in reads before the
    log's lock (``before_lock``) and takes it only to commit; the close, first to the lock,
    commits, and the check-in's commit finds the event changed since it read it: it is
    decided again on the closed event and refused. Either way the log and the desk agree."""
    app = services.app
    event_id = _event(app)
    (person,) = _participants(app, 1)
    holding = Holding()
    other.app.add_inline_projection(holding)
    holding.armed = True
    locks_first = services.datastore.engine.dialect.name == "sqlite"
    with ThreadPoolExecutor(2) as pool:
        checking_in = pool.submit(
            other.app.check_in, event_id, participant_id=person, recorded_by=BY
        )
        assert holding.holding.wait(10), "the check-in did not start"
        closing = pool.submit(app.close_event, event_id, recorded_by=BY)
        if locks_first:
            with pytest.raises(TimeoutError):
                closing.result(timeout=0.5)
        else:
            assert closing.result(timeout=10).result.status == "closed"
        holding.release.set()
        if locks_first:
            assert checking_in.result(timeout=10).created
        else:
            with pytest.raises(EventNotOpen):
                checking_in.result(timeout=10)
        closing.result(timeout=10)
    log = app.recorder.select_notifications(start=1, limit=1000)
    topics = [notification.topic.rsplit(".", 1)[-1] for notification in log]
    if locks_first:  # the check-in before the close, in the log as at the desk
        assert topics[-2:] == ["CheckedIn", "Closed"]
        (entry,) = services.roster.check_ins_at(event_id)
        assert entry.participant_id == person
        assert entry.counted
    else:
        assert topics[-1] == "Closed"
        assert "CheckedIn" not in topics
        assert services.roster.check_ins_at(event_id) == []


def _libpq_url(settings: Settings) -> str:
    return settings.database_url.replace("postgresql+psycopg://", "postgresql://", 1)


def _holds_the_log_lock(services: Services) -> bool:
    """Whether some transaction holds the log's write lock (``log_lock_sql``: an advisory
    lock of two keys), seen from another connection."""
    table = f"{services.settings.database_schema}.tsunagari_events"
    with psycopg.connect(_libpq_url(services.settings), autocommit=True) as connection:
        row = connection.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND classid = %s"
            " AND objid = (%s::regclass::oid::bigint & 2147483647) AND objsubid = 2"
            " AND granted AND database = (SELECT oid FROM pg_database"
            " WHERE datname = current_database())",
            (LOG_LOCK_CLASS, table),
        ).fetchone()
    return bool(row and row[0])


@pytest.mark.parametrize("first", ["a stream read", "a batch's prefetch", "a SQLAlchemy query"])
def test_a_command_transaction_holds_the_lock_from_its_first_statement_on(
    services: Services, first: str
) -> None:
    """PostgreSQL sends the lock with the transaction's first statement, whichever it is
    (not in a round trip of its own): once that statement has run, the lock is held."""
    if services.datastore.engine.dialect.name != "postgresql":
        pytest.skip("SQLite takes its write lock at BEGIN IMMEDIATE, before any statement")
    app = services.app
    event_id = _event(app)
    recorder: Any = app.recorder
    with app.storage.atomic():
        assert not _holds_the_log_lock(services)  # nothing sent yet
        if first == "a stream read":
            recorder.select_events(event_id)
        elif first == "a batch's prefetch":
            assert event_id in recorder.select_streams([event_id])
        else:
            assert app.storage.find_outcome("nobody", "no-such-key") is None
        assert _holds_the_log_lock(services)
    assert not _holds_the_log_lock(services)


@pytest.mark.parametrize("command", ["a lone check-in", "a batch of check-ins", "a close"])
def test_commands_go_on_while_a_vacuum_of_the_log_runs(
    services: Services, settings: Settings, command: str
) -> None:
    """VACUUM (autovacuum's; an anti-wraparound one is never cancelled) holds SHARE UPDATE
    EXCLUSIVE on the table it works on for as long as it runs. Here another connection holds
    that lock on the log, and commands still commit: the library's LOCK TABLE ... IN
    EXCLUSIVE MODE before every insert waited for it."""
    if services.datastore.engine.dialect.name != "postgresql":
        pytest.skip("SQLite has no VACUUM beside its writers")
    app = services.app
    event_id = _event(app)
    people = _participants(app, 3)
    with psycopg.connect(_libpq_url(settings)) as vacuum:
        vacuum.execute(
            f'LOCK TABLE "{settings.database_schema}".tsunagari_events'
            " IN SHARE UPDATE EXCLUSIVE MODE"
        )
        pool = ThreadPoolExecutor(1)
        try:
            if command == "a lone check-in":
                done: Any = pool.submit(
                    app.check_in, event_id, participant_id=people[0], recorded_by=BY
                )
            elif command == "a batch of check-ins":
                checks = [CheckIn(event_id, person, BY, None) for person in people]
                done = pool.submit(app.check_in_all, checks)
            else:
                done = pool.submit(app.close_event, event_id, recorded_by=BY)
            answer = done.result(timeout=10)  # the table lock waited here for the vacuum
        finally:
            vacuum.rollback()  # the vacuum ends, then what waited for it
            pool.shutdown()
    checked_in = {entry.participant_id for entry in services.roster.check_ins_at(event_id)}
    if command == "a close":
        assert answer.result.status == "closed"
        assert app.get_event(event_id).status == "closed"
        assert checked_in == set()
    else:
        outcomes = answer if isinstance(answer, list) else [answer]
        assert all(isinstance(outcome, Outcome) and outcome.created for outcome in outcomes)
        assert checked_in == set(people[: len(outcomes)])


def test_the_log_lock_is_one_whatever_the_table_is_called(
    services: Services, settings: Settings
) -> None:
    """Two processes may name the log differently (with its schema, quoted or not, or through
    the search path): the lock is the table's, so one holding it keeps the other out."""
    if services.datastore.engine.dialect.name != "postgresql":
        pytest.skip("SQLite's write lock is the database file's")
    schema = settings.database_schema
    names = [f"{schema}.tsunagari_events", f'"{schema}"."tsunagari_events"', "tsunagari_events"]
    with (
        psycopg.connect(_libpq_url(settings)) as holder,
        psycopg.connect(_libpq_url(settings)) as other,
    ):
        for connection in (holder, other):
            connection.execute(f'SET search_path TO "{schema}"')
            connection.commit()
        holder.execute(log_lock_sql(names[0]))
        for name in names:
            trying = log_lock_sql(name).replace(
                "pg_advisory_xact_lock", "pg_try_advisory_xact_lock"
            )
            row = other.execute(trying).fetchone()
            assert row == (False,), name
            other.rollback()
        holder.rollback()
        row = other.execute(
            log_lock_sql(names[2]).replace("pg_advisory", "pg_try_advisory")
        ).fetchone()
        assert row == (True,)
