"""A command transaction's events are inserted at its commit, a batch's in one statement.

What a desk would notice if that went wrong: a check-in accepted at an event closed by a
command just before it in the same batch, a person counted twice, a revert the log holds
before the check-in it reverts, or a batch of check-ins made to wait for one another.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from uuid import UUID

import pytest
from eventsourcing.application import AggregateNotFoundError
from eventsourcing.persistence import IntegrityError

from application.app import CheckIn, Outcome
from application.ports import Idempotency
from domain.attendance import Attendance
from domain.errors import EventNotOpen
from domain.participants import Participant
from infrastructure import pg_pipeline
from infrastructure.persistence import STALE_READ
from interfaces.bootstrap import Services, build_services
from tests.application.test_group_commit import (
    BY,
    _answers,
    _event,
    _participants,
    commits_counted,
    lead_held,
)


def _queued(services: Services, count: int) -> None:
    deadline = time.monotonic() + 10
    while services.app.commits.queued < count:
        assert time.monotonic() < deadline, "the command did not queue"
        time.sleep(0.001)


def _positions(services: Services, stream: UUID) -> list[int]:
    return [record.id for record in services.audit.records.stream(stream)]


def test_a_check_in_after_a_close_in_the_same_batch_reads_the_close(
    services: Services,
) -> None:
    """The close's event is not in the store until commit: the check-in's read of the event
    writes it first, so the check-in sees the event closed and is refused."""
    app = services.app
    event_id = _event(app)
    [person] = _participants(app, 1)
    app.get_event(event_id)  # the event in the aggregate cache, as at a busy desk
    with ThreadPoolExecutor(2) as desks, lead_held(app) as release:
        closing = desks.submit(app.close_event, event_id, recorded_by=BY)
        _queued(services, 1)  # the close first, then the check-in behind it
        checking = desks.submit(app.check_in, event_id, participant_id=person, recorded_by=BY)
        release(2)
        closed = closing.result(timeout=30)
        with pytest.raises(EventNotOpen):
            checking.result(timeout=30)
    assert closed.result.status == "closed"
    assert services.roster.check_ins_at(event_id) == []


def test_check_ins_of_one_batch_take_positions_in_their_order(services: Services) -> None:
    app = services.app
    event_id = _event(app)
    people = _participants(app, 8)
    commands = [CheckIn(event_id, person, BY) for person in people]
    with commits_counted(services) as commits:
        answers = app.check_in_all(commands)
    assert all(isinstance(answer, Outcome) and answer.created for answer in answers)
    assert len(commits) == 1  # one batch, one commit: nothing was run again alone
    positions = [_positions(services, Attendance.create_id(event_id, person)) for person in people]
    assert all(len(stream) == 1 for stream in positions)
    assert [stream[0] for stream in positions] == sorted(stream[0] for stream in positions)
    assert services.audit.records.head() == positions[-1][0]


def test_the_same_person_twice_in_one_batch_is_one_attendance_without_a_rerun(
    services: Services,
) -> None:
    """The second check-in finds the first's attendance, not yet in the store; the store is
    never asked to insert the same attendance twice (which would fail the batch's commit and
    run each check-in again on its own)."""
    app = services.app
    event_id = _event(app)
    first, second = _participants(app, 2)
    commands = [CheckIn(event_id, person, BY) for person in (first, second, first, first)]
    with commits_counted(services) as commits:
        answers = app.check_in_all(commands)
    created = [answer.created for answer in answers if isinstance(answer, Outcome)]
    assert created == [True, True, False, False]
    assert len(commits) == 1
    assert len(_positions(services, Attendance.create_id(event_id, first))) == 1
    roster = services.roster.check_ins_at(event_id)
    assert sorted(entry.participant_id for entry in roster) == sorted([first, second])


def test_a_batch_with_people_already_checked_in_looks_them_up_and_still_commits_once(
    services: Services,
) -> None:
    """The batch's prefetch finds who is checked in already: they are answered 200 from the
    store, the others recorded, in one transaction."""
    app = services.app
    event_id = _event(app)
    people = _participants(app, 4)
    app.check_in(event_id, participant_id=people[1], recorded_by=BY)
    with commits_counted(services) as commits:
        answers = app.check_in_all([CheckIn(event_id, person, BY) for person in people])
    assert [a.created for a in answers if isinstance(a, Outcome)] == [True, False, True, True]
    assert len(commits) == 1
    roster = services.roster.check_ins_at(event_id)
    assert sorted(entry.participant_id for entry in roster) == sorted(people)


def test_a_revert_in_the_same_batch_as_its_check_in_comes_after_it_in_the_log(
    services: Services,
) -> None:
    app = services.app
    event_id = _event(app)
    [person] = _participants(app, 1)
    with ThreadPoolExecutor(2) as desks, lead_held(app) as release:
        checking = desks.submit(app.check_in, event_id, participant_id=person, recorded_by=BY)
        _queued(services, 1)
        reverting: Any = desks.submit(
            app.revert_check_in, event_id, person, reason="wrong person", recorded_by=BY
        )
        release(2)
        answers = _answers([checking, reverting])
    assert all(isinstance(answer, Outcome) for answer in answers)
    stream = services.audit.records.stream(Attendance.create_id(event_id, person))
    assert [record.originator_version for record in stream] == [1, 2]
    assert stream[0].id < stream[1].id
    assert services.roster.check_ins_at(event_id)[0].counted is False


def test_a_commit_with_an_object_still_to_flush_is_still_all_or_nothing(
    services: Services,
) -> None:
    """On PostgreSQL the deferred rows' pipeline carries the COMMIT, but not when SQLAlchemy
    has objects still to write after it: here that write fails (a duplicate event), and the
    idempotency record deferred before it must not have been committed on its own."""
    app = services.app
    event_id = _event(app)  # its stream holds version 1
    record = app.recorder.events_record_cls  # type: ignore[attr-defined]

    def both() -> None:
        with app.storage.atomic() as session:
            app.storage.save_outcome(Idempotency("desk", "k-1", "f"), "test", True, {"id": "x"})
            duplicate = record(originator_id=event_id, originator_version=1, topic="t", state=b"")
            session.add(duplicate)  # type: ignore[attr-defined]

    with pytest.raises(IntegrityError):
        both()
    assert app.storage.find_outcome("desk", "k-1") is None
    assert len(_positions(services, event_id)) == 1


def test_releasing_a_savepoint_neither_writes_nor_commits_the_command(
    services: Services,
) -> None:
    """SQLAlchemy calls before_commit for a savepoint too: what the command deferred waits for
    the command's own commit, and a command rolled back after a savepoint leaves nothing."""
    app = services.app
    event_id = _event(app)
    recorder: Any = app.recorder

    def command() -> None:
        with app.storage.atomic() as session:
            recorder.select_events(event_id)
            app.storage.save_outcome(Idempotency("desk", "sp", "f"), "test", True, {"id": "x"})
            with session.begin_nested():  # type: ignore[attr-defined]
                pass
            raise RuntimeError("the command is rolled back")

    with pytest.raises(RuntimeError, match="rolled back"):
        command()
    assert app.storage.find_outcome("desk", "sp") is None


def test_a_stream_read_by_its_id_as_text_still_sees_its_deferred_events(
    services: Services,
) -> None:
    app = services.app
    recorder: Any = app.recorder
    with app.storage.atomic():
        person = Participant.register(
            birth_year=1948,
            band_id=None,
            district_id="suge",
            today=app.today(),
            bands=app.bands,
            recorded_by=BY,
        )
        app.save(person)
        stored = recorder.select_events(str(person.id))
    assert [event.originator_version for event in stored] == [1]


def _after_the_read(
    app: Any, monkeypatch: pytest.MonkeyPatch, action: Callable[[], Any], *, when: bool = True
) -> list[Any]:
    """Once, right after a batch's prefetch has read (before its lock), ``action`` runs in
    another thread, with its own session as in another process; what it answered is put in
    the list this returns."""
    real_prefetch = app._prefetch
    done: list[Any] = []

    def prefetch_then_act(reads: list[Any]) -> None:
        real_prefetch(reads)
        if when and not done:
            with ThreadPoolExecutor(1) as elsewhere:
                done.append(elsewhere.submit(action).result(timeout=30))

    monkeypatch.setattr(app, "_prefetch", prefetch_then_act)
    app.commits._prepare = prefetch_then_act
    return done


def test_a_batch_read_before_the_lock_is_decided_again_when_another_process_changed_it(
    services: Services, settings: Any, clock: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PostgreSQL reads a batch's streams before the log's lock (``before_lock``). Another
    process closes the event after that read and before the lock: the check at the lock
    fails the batch, nothing of it is written, and each check-in is decided again on the
    closed event and refused. On SQLite the batch holds the write lock from its start, and
    the close waits for it: the check-ins count, the close comes after them."""
    app = services.app
    event_id = _event(app)
    people = _participants(app, 3)
    other = build_services(settings, clock=clock)
    closed = _after_the_read(
        app,
        monkeypatch,
        lambda: other.app.close_event(event_id, recorded_by=BY),
        when=services.datastore.engine.dialect.name == "postgresql",
    )
    try:
        answers = app.check_in_all([CheckIn(event_id, person, BY, None) for person in people])
    finally:
        other.close()
    if services.datastore.engine.dialect.name != "postgresql":
        assert all(isinstance(answer, Outcome) and answer.created for answer in answers)
        return
    assert closed
    assert closed[0].result.status == "closed"
    assert all(isinstance(answer, EventNotOpen) for answer in answers), answers
    assert services.roster.check_ins_at(event_id) == []
    for person in people:
        with pytest.raises(AggregateNotFoundError):
            app.repository.get(Attendance.create_id(event_id, person))


def _postgres_only(services: Services) -> None:
    if services.datastore.engine.dialect.name != "postgresql":
        pytest.skip("SQLite's batch holds the write lock from its start: nothing is read before")


def test_the_check_at_the_lock_reads_back_only_the_streams_that_had_events(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The check at the lock probes the streams read with events (the participants, the
    event), not the new attendances, which the log's unique index guards (test below)."""
    _postgres_only(services)
    app = services.app
    event_id = _event(app)
    people = _participants(app, 3)
    checked: list[set[UUID]] = []
    real_run = pg_pipeline.run

    def run(driver: Any, statements: Any) -> Any:
        for sql, params in statements:
            if STALE_READ in sql:
                checked.append(set(params[0]))
        return real_run(driver, statements)

    monkeypatch.setattr(pg_pipeline, "run", run)
    answers = app.check_in_all([CheckIn(event_id, person, BY, None) for person in people])
    assert all(isinstance(answer, Outcome) and answer.created for answer in answers), answers
    assert checked == [{event_id, *people}]


def test_an_attendance_another_process_creates_after_the_batch_read_it_counts_once(
    services: Services, settings: Any, clock: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PostgreSQL: another process checks one of the batch's people in after the batch read
    their attendance as absent and before its lock. The batch's insert of that attendance
    meets the log's unique index, nothing of the batch is written, and each check-in is
    decided again: that person is answered as already checked in, the others are checked
    in; everyone counts once, in the log and on the roster."""
    _postgres_only(services)
    app = services.app
    event_id = _event(app)
    people = _participants(app, 3)
    other = build_services(settings, clock=clock)
    elsewhere = _after_the_read(
        app,
        monkeypatch,
        lambda: other.app.check_in(event_id, participant_id=people[1], recorded_by=BY),
    )
    try:
        answers = app.check_in_all([CheckIn(event_id, person, BY, None) for person in people])
    finally:
        other.close()
    assert elsewhere
    assert elsewhere[0].created
    created = [isinstance(answer, Outcome) and answer.created for answer in answers]
    assert created == [True, False, True], answers
    assert all(isinstance(answer, Outcome) for answer in answers)
    for person in people:
        stored = app.recorder.select_events(Attendance.create_id(event_id, person))
        assert [event.originator_version for event in stored] == [1]
    roster = services.roster.check_ins_at(event_id)
    assert sorted(entry.participant_id for entry in roster) == sorted(people)
    assert all(entry.counted for entry in roster)
