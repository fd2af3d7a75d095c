"""Group commit: commands that queue together share a transaction, and never each other's fate."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import AbstractContextManager, contextmanager, nullcontext
from datetime import UTC, datetime
from typing import Any, TypeVar
from unittest.mock import Mock
from uuid import UUID, uuid4

import pytest
from eventsourcing.application import AggregateNotFoundError
from sqlalchemy import event, func, select

import infrastructure.persistence as persistence
from application.app import Outcome, Tsunagari
from application.errors import IdempotencyKeyReused
from application.ports import Idempotency
from application.views import CheckInView
from domain.attendance import Attendance
from domain.errors import EventNotOpen, InvalidValue, UnknownReference
from domain.organizations import OrganizationKind
from domain.participants import Participant
from domain.programs import Policy, ProgramArea
from domain.provenance import Provenance, Role
from infrastructure import pg_pipeline
from interfaces.bootstrap import Services

BY = Provenance(actor_id="desk-token", actor_role=Role.DESK, desk_id="suge-1")
T = TypeVar("T")


def _event(app: Tsunagari) -> UUID:
    org = app.register_organization(
        name="菅町会",
        kind=OrganizationKind.NEIGHBOURHOOD_ASSOCIATION,
        district_id="suge",
        recorded_by=BY,
    ).result.id
    program = app.launch_program(
        name="TeamSUGE",
        policy=Policy.MUTUAL_SUPPORT,
        area=ProgramArea.COMMUNITY,
        host_organization_ids=[org],
        recorded_by=BY,
    ).result.id
    return app.schedule_event(
        program_id=program,
        title="TeamSUGE 現地ツアー",
        starts_at=datetime(2026, 6, 14, 1, tzinfo=UTC),
        ends_at=None,
        district_id="suge",
        venue=None,
        recorded_by=BY,
    ).result.id


def _participants(app: Tsunagari, count: int) -> list[UUID]:
    return [
        app.register_participant(
            birth_year=1950 + i, band_id=None, district_id="suge", recorded_by=BY
        ).result.id
        for i in range(count)
    ]


@contextmanager
def commits_counted(services: Services) -> Iterator[list[int]]:
    """Counts the commits the store sees while the block runs."""
    seen: list[int] = []

    def on_commit(_: Any) -> None:
        seen.append(1)

    engine = services.datastore.engine
    event.listen(engine, "commit", on_commit)
    try:
        yield seen
    finally:
        event.remove(engine, "commit", on_commit)


@contextmanager
def lead_held(app: Tsunagari) -> Iterator[Callable[[int], None]]:
    """Holds the lead with a command of its own, so that the next ones queue behind it.

    Yields ``release(expected)``: wait until ``expected`` commands are queued, then let go;
    they then run as one batch."""
    leading, go = threading.Event(), threading.Event()

    def hold() -> bool:
        leading.set()  # inside its transaction: whoever comes now queues behind it
        return go.wait(30)

    with ThreadPoolExecutor(1) as pool:
        holder = pool.submit(app.commits.run, hold)
        assert leading.wait(10), "the holder did not start"

        def release(expected: int) -> None:
            deadline = time.monotonic() + 10
            while app.commits.queued < expected:
                assert time.monotonic() < deadline, "the commands did not queue"
                time.sleep(0.001)
            go.set()

        yield release
        holder.result(timeout=10)


def _check_in(app: Tsunagari, event_id: UUID, participant_id: UUID) -> Outcome[CheckInView]:
    return app.check_in(event_id, participant_id=participant_id, recorded_by=BY)


def _answers(futures: list[Future[Outcome[CheckInView]]]) -> list[object]:
    answers: list[object] = []
    for future in futures:
        try:
            answers.append(future.result(timeout=30))
        except Exception as error:
            answers.append(error)
    return answers


def _checked_in_together(
    app: Tsunagari,
    event_id: UUID,
    people: list[UUID],
    around: AbstractContextManager[T] | None = None,
) -> tuple[list[object], T | None]:
    """Each person checked in from a desk of their own, all queued behind a held lead so that
    they run as one batch; ``around`` is entered once the lead is held (what it counts or
    records is the batch's, and the holder's commit). Answers each desk's outcome or error,
    in the order of ``people``, and what ``around`` yielded."""
    with (
        ThreadPoolExecutor(len(people)) as desks,
        lead_held(app) as release,
        around if around is not None else nullcontext() as held,
    ):
        futures = [desks.submit(_check_in, app, event_id, person) for person in people]
        release(len(people))
        return _answers(futures), held


def test_check_ins_queued_together_are_recorded_with_one_commit(services: Services) -> None:
    app = services.app
    event_id = _event(app)
    people = _participants(app, 10)
    answers, commits = _checked_in_together(app, event_id, people, commits_counted(services))
    assert commits is not None
    assert all(isinstance(answer, Outcome) and answer.created for answer in answers)
    # Two commits: the holder's (a command's transaction of its own, though it wrote nothing)
    # and the ten check-ins', one for all of them.
    assert len(commits) == 2
    roster = services.roster.check_ins_at(event_id)
    assert sorted(entry.participant_id for entry in roster) == sorted(people)


def test_a_refused_command_leaves_the_others_of_its_transaction_recorded(
    services: Services,
) -> None:
    app = services.app
    event_id, cancelled = _event(app), _event(app)
    app.cancel_event(cancelled, reason="台風のため中止", recorded_by=BY)
    people = _participants(app, 4)
    stranger = uuid4()
    with ThreadPoolExecutor(6) as desks, lead_held(app) as release:
        futures = [desks.submit(_check_in, app, event_id, person) for person in people[:2]]
        futures.append(desks.submit(_check_in, app, event_id, stranger))
        futures.append(desks.submit(_check_in, app, cancelled, people[2]))
        futures.append(desks.submit(_check_in, app, event_id, people[3]))
        release(5)
        answers = _answers(futures)
    assert isinstance(answers[2], UnknownReference)
    assert isinstance(answers[3], EventNotOpen)
    assert [isinstance(answer, Outcome) and answer.created for answer in answers] == [
        True,
        True,
        False,
        False,
        True,
    ]
    roster = services.roster.check_ins_at(event_id)
    assert sorted(entry.participant_id for entry in roster) == sorted(
        [people[0], people[1], people[3]]
    )
    assert services.roster.check_ins_at(cancelled) == []


def test_a_conflict_inside_a_shared_transaction_reaches_only_the_command_that_met_it(
    services: Services,
) -> None:
    app = services.app
    event_id = _event(app)
    people = _participants(app, 3)
    # Two desks check the same person in within one transaction: the store refuses the second
    # creation of the same check-in, which rolls back everyone's writes.
    twice = [people[0], people[1], people[0], people[2]]
    answers, _ = _checked_in_together(app, event_id, twice)
    outcomes = [answer for answer in answers if isinstance(answer, Outcome)]
    assert len(outcomes) == 4, answers
    assert sorted(outcome.created for outcome in outcomes) == [False, True, True, True]
    assert {outcome.result.participant_id for outcome in outcomes} == set(people)
    attendance: Attendance = app.repository.get(Attendance.create_id(event_id, people[0]))
    assert attendance.version == 1  # one check-in recorded, not two
    roster = services.roster.check_ins_at(event_id)
    assert sorted(entry.participant_id for entry in roster) == sorted(people)


def test_a_rolled_back_transaction_leaves_nothing_in_the_aggregate_cache(
    services: Services,
) -> None:
    app = services.app
    participant = Participant.register(
        birth_year=1948,
        band_id=None,
        district_id="suge",
        today=app.today(),
        bands=app.bands,
        recorded_by=BY,
    )

    def write_read_then_fail() -> None:
        app._written.append(participant.id)
        app.save(participant)
        # A later command of the same transaction reads it: now it is cached.
        assert app.repository.get(participant.id).id == participant.id
        raise RuntimeError("the commit failed")

    with pytest.raises(RuntimeError):
        app.commits.run(write_read_then_fail)
    with pytest.raises(AggregateNotFoundError):
        app.repository.get(participant.id)


def test_check_ins_from_an_event_loop_share_commits_and_all_land(services: Services) -> None:
    app = services.app
    event_id = _event(app)
    people = _participants(app, 40)

    async def desks() -> list[Outcome[CheckInView]]:
        return await asyncio.gather(
            *(
                app.check_in_async(event_id, participant_id=person, recorded_by=BY)
                for person in people + people[:5]  # five retried without a key: 200
            )
        )

    with commits_counted(services) as commits:
        outcomes = asyncio.run(desks())
    assert [outcome.created for outcome in outcomes] == [True] * 40 + [False] * 5
    assert len(commits) < len(outcomes)
    roster = services.roster.check_ins_at(event_id)
    assert sorted(entry.participant_id for entry in roster) == sorted(people)


class _RecordingCursor:
    """psycopg's cursor, with the statements it executes written down."""

    def __init__(self, cursor: Any, statements: list[str]) -> None:
        self._cursor, self._statements = cursor, statements

    def __enter__(self) -> _RecordingCursor:
        self._cursor.__enter__()
        return self

    def __exit__(self, *exc: object) -> Any:
        return self._cursor.__exit__(*exc)

    def execute(self, query: Any, *args: Any, **kwargs: Any) -> Any:
        self._statements.extend(_named(str(query)))
        return self._cursor.execute(query, *args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._cursor, name)


def _named(query: str) -> list[str]:
    """A statement's first word (INSERT with its table's own name; LOCK for the log's write
    lock, ``log_lock_sql``), for each statement."""
    named = []
    for part in query.split(";"):
        words = part.split()
        if "pg_advisory_xact_lock" in part:
            named.append("LOCK")
        elif words and words[0].upper() == "INSERT":
            named.append(f"INSERT {words[2].split('.')[-1]}")
        elif words:
            named.append(words[0].upper())
    return named


class _RecordingPipeline:
    """psycopg's pipeline, its start and end written down: what is between is one round trip."""

    def __init__(self, pipeline: Any, statements: list[str]) -> None:
        self._pipeline, self._statements = pipeline, statements

    def __enter__(self) -> Any:
        self._statements.append("(")
        return self._pipeline.__enter__()

    def __exit__(self, *exc: Any) -> Any:
        self._statements.append(")")
        return self._pipeline.__exit__(*exc)


@contextmanager
def _recording(services: Services) -> Iterator[list[str]]:
    """PostgreSQL: the statements sent meanwhile, each as its command's name, a round trip's
    between brackets: [ ] one write of pg_pipeline's, ( ) psycopg's pipeline."""
    statements: list[str] = []

    def on_execute(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        statements.append(statement.split()[0].upper())

    real_driver = persistence._postgres_driver_and_due_lock
    real_as_is = persistence.postgres_driver_as_is
    real_run = pg_pipeline.run

    def recorded(driver: Any) -> Any:
        if driver is None:
            return None
        recording = Mock(wraps=driver)
        recording.real = driver
        for name in ("pgconn", "autocommit", "isolation_level", "read_only", "deferrable"):
            setattr(recording, name, getattr(driver, name))  # as they are, not mocks
        recording.cursor = lambda *a, **k: _RecordingCursor(driver.cursor(*a, **k), statements)
        recording.pipeline = lambda: _RecordingPipeline(driver.pipeline(), statements)

        def commit() -> None:
            statements.append("COMMIT")
            driver.commit()

        recording.commit = commit
        return recording

    def recording_driver(session: Any) -> Any:
        driver, lock = real_driver(session)
        return recorded(driver), lock

    def recording_run(driver: Any, sent: Any) -> Any:
        statements.extend(["[", *(name for sql, _ in sent for name in _named(sql)), "]"])
        return real_run(driver.real, sent)

    engine = services.datastore.engine
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(persistence, "_postgres_driver_and_due_lock", recording_driver)
        patch.setattr(persistence, "postgres_driver_as_is", lambda s: recorded(real_as_is(s)))
        patch.setattr(pg_pipeline, "run", recording_run)
        event.listen(engine, "before_cursor_execute", on_execute)
        try:
            yield statements
        finally:
            event.remove(engine, "before_cursor_execute", on_execute)


def test_a_shared_transaction_still_locks_the_log_but_once(services: Services) -> None:
    """PostgreSQL: the log's table lock (commit order = position order) is still taken, once,
    with the one NOTIFY that wakes the followers; the batch's events go in one insert, and the
    whole batch waits on two round trips, each sent in one write."""
    if services.datastore.engine.dialect.name != "postgresql":
        pytest.skip("only PostgreSQL locks the log's table")
    app = services.app
    event_id = _event(app)
    people = _participants(app, 6)
    answers, statements = _checked_in_together(app, event_id, people, _recording(services))
    assert all(isinstance(answer, Outcome) and answer.created for answer in answers)
    for person in people:
        assert app.repository.get(Attendance.create_id(event_id, person)).version == 1
    # Two round trips for the six: the prefetch, before the lock; then the lock, the check
    # that what the prefetch read is unchanged, the inserts and the commit.
    assert statements == [
        *("[", "SELECT", "]"),
        *("[", "LOCK", "NOTIFY", "SELECT"),
        *("INSERT tsunagari_events", "INSERT tsunagari_roster", "COMMIT", "]"),
    ]


def test_a_lone_check_in_reads_its_three_streams_in_one_query(services: Services) -> None:
    """PostgreSQL: a check-in alone (a quiet desk) reads its participant, its event and its
    attendance in one query before the lock, as a batch does, not one statement each: two
    round trips in all."""
    if services.datastore.engine.dialect.name != "postgresql":
        pytest.skip("only PostgreSQL reads before the lock")
    app = services.app
    event_id = _event(app)
    (person,) = _participants(app, 1)
    with _recording(services) as statements:
        assert app.check_in(event_id, participant_id=person, recorded_by=BY).created
    assert statements == [
        *("[", "SELECT", "]"),
        *("[", "LOCK", "NOTIFY", "SELECT"),
        *("INSERT tsunagari_events", "INSERT tsunagari_roster", "COMMIT", "]"),
    ]


def test_a_transactions_first_read_goes_with_its_begin_and_its_lock(services: Services) -> None:
    """PostgreSQL: a read that opens a transaction goes in a pipeline with psycopg's BEGIN
    (a GET's read: two round trips, not three), and a command's first read with the log's lock
    too (a lone command: the lock costs no round trip of its own)."""
    if services.datastore.engine.dialect.name != "postgresql":
        pytest.skip("only PostgreSQL sends BEGIN as a statement of its own")
    app = services.app
    event_id = _event(app)
    recorder: Any = app.recorder
    with _recording(services) as statements:
        assert [event.originator_version for event in recorder.select_events(event_id)] == [1]
        assert statements == ["(", "SELECT", ")"]
        statements.clear()
        with app.storage.atomic():
            recorder.select_events(event_id)
            recorder.select_events(event_id)  # inside the transaction: a statement, a round trip
    assert statements == ["(", "LOCK", "NOTIFY", "SELECT", ")", "SELECT"]


def test_callers_on_threads_and_on_an_event_loop_hand_the_lead_to_each_other(
    services: Services,
) -> None:
    app = services.app
    event_id = _event(app)
    people = _participants(app, 60)

    def register(index: int) -> UUID:
        return app.register_participant(
            birth_year=1960 + index % 40, band_id=None, district_id="suge", recorded_by=BY
        ).result.id

    async def desks() -> list[Outcome[CheckInView]]:
        return await asyncio.gather(
            *(app.check_in_async(event_id, participant_id=p, recorded_by=BY) for p in people)
        )

    with ThreadPoolExecutor(8) as pool:
        registered = pool.map(register, range(80), timeout=30)
        outcomes = asyncio.run(asyncio.wait_for(desks(), 30))  # a lost lead fails, not hangs
        newcomers = list(registered)
    assert all(outcome.created for outcome in outcomes)
    assert len(set(newcomers)) == 80
    for newcomer in newcomers:
        assert app.get_participant(newcomer).district_id == "suge"
    roster = services.roster.check_ins_at(event_id)
    assert sorted(entry.participant_id for entry in roster) == sorted(people)


def test_a_refused_command_leaves_nothing_it_wrote_before_refusing(services: Services) -> None:
    """A registration makes the participant's key first, then the domain refuses the band."""
    app = services.app
    keys: Any = app.keys
    with pytest.raises(InvalidValue):
        app.register_participant(
            birth_year=1950, band_id="infant", district_id="suge", recorded_by=BY
        )
    with services.datastore.engine.connect() as connection:
        count = connection.execute(select(func.count()).select_from(keys.keys)).scalar()
    assert count == 0
    assert app.recorder.max_notification_id() in (None, 0)


def _keyed_check_in(
    app: Tsunagari, event_id: UUID, participant_id: UUID, key: str, request: str
) -> Outcome[CheckInView]:
    return app.check_in(
        event_id,
        participant_id=participant_id,
        recorded_by=BY,
        idempotency=Idempotency("desk-token", key, request),
    )


def test_an_answer_saved_earlier_in_the_same_transaction_is_replayed(services: Services) -> None:
    """Outcomes are written at commit: a retry queued behind the first request still finds it."""
    app = services.app
    key = Idempotency("desk-token", "org-1", "register 菅町会")

    def register() -> Outcome[Any]:
        return app.register_organization(
            name="菅町会",
            kind=OrganizationKind.NEIGHBOURHOOD_ASSOCIATION,
            district_id="suge",
            recorded_by=BY,
            idempotency=key,
        )

    with (
        ThreadPoolExecutor(2) as desks,
        lead_held(app) as release,
        commits_counted(services) as commits,
    ):
        futures = [desks.submit(register) for _ in range(2)]
        release(2)
        answers = [future.result(timeout=30) for future in futures]
    assert len(commits) == 2  # the holder's and the batch's
    # The two desks' threads queue in whichever order they get there: the one queued second
    # is the retry, replaying what the first saved in their shared transaction.
    first, retry = sorted(answers, key=lambda answer: answer.replayed)
    assert (first.replayed, retry.replayed) == (False, True)
    assert retry.result == first.result
    assert retry.created is True  # answered as first: 201 again


def test_a_check_in_and_its_revert_in_one_transaction_leave_it_reverted(
    services: Services,
) -> None:
    """Roster rows are written at commit: the inserts first, though an update of an earlier
    check-in was queued before them."""
    app = services.app
    event_id = _event(app)
    person, earlier = _participants(app, 2)
    _check_in(app, event_id, earlier)

    def revert(participant_id: UUID) -> object:
        return app.revert_check_in(event_id, participant_id, reason="人違い", recorded_by=BY)

    def queued(count: int) -> None:
        deadline = time.monotonic() + 10
        while app.commits.queued < count:
            assert time.monotonic() < deadline, "the commands did not queue"
            time.sleep(0.001)

    with (
        ThreadPoolExecutor(3) as desks,
        lead_held(app) as release,
        commits_counted(services) as commits,
    ):
        futures: list[Future[Any]] = [desks.submit(revert, earlier)]
        queued(1)
        futures.append(desks.submit(_check_in, app, event_id, person))
        queued(2)
        futures.append(desks.submit(revert, person))
        release(3)
        answers = _answers(futures)
    assert all(isinstance(answer, Outcome) for answer in answers), answers
    assert len(commits) == 2  # the holder's and the batch's
    roster = {entry.participant_id: entry for entry in services.roster.check_ins_at(event_id)}
    assert set(roster) == {person, earlier}
    assert not roster[person].counted
    assert not roster[earlier].counted
    assert roster[person].revert_reason == "人違い"


def test_a_retried_check_in_is_answered_as_first_even_once_the_event_is_closed(
    services: Services,
) -> None:
    """A check-in's first try skips the key lookup; a refusal still looks before it is given."""
    app = services.app
    event_id = _event(app)
    person, latecomer = _participants(app, 2)
    first = _keyed_check_in(app, event_id, person, "tablet-1/1", "check in A")
    app.cancel_event(event_id, reason="台風のため中止", recorded_by=BY)
    retry = _keyed_check_in(app, event_id, person, "tablet-1/1", "check in A")
    assert retry.replayed
    assert retry.created
    assert retry.result == first.result
    with pytest.raises(EventNotOpen):
        _keyed_check_in(app, event_id, latecomer, "tablet-1/2", "check in B")


def test_a_check_in_key_used_for_another_request_is_refused_and_records_nothing(
    services: Services,
) -> None:
    app = services.app
    event_id = _event(app)
    person, other, third = _participants(app, 3)
    _keyed_check_in(app, event_id, person, "tablet-1/1", "check in A")
    with pytest.raises(IdempotencyKeyReused):
        _keyed_check_in(app, event_id, other, "tablet-1/1", "check in B")
    # Also when it shares a transaction with a check-in that must land.
    with ThreadPoolExecutor(2) as desks, lead_held(app) as release:
        reused = desks.submit(_keyed_check_in, app, event_id, other, "tablet-1/1", "check in B")
        fine = desks.submit(_keyed_check_in, app, event_id, third, "tablet-2/1", "check in C")
        release(2)
        with pytest.raises(IdempotencyKeyReused):
            reused.result(timeout=30)
        assert fine.result(timeout=30).created
    roster = services.roster.check_ins_at(event_id)
    assert sorted(entry.participant_id for entry in roster) == sorted([person, third])
    with pytest.raises(AggregateNotFoundError):
        app.repository.get(Attendance.create_id(event_id, other))


def test_check_ins_queued_together_read_their_participants_in_one_query(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = services.app
    event_id = _event(app)
    people = _participants(app, 6)
    recorder: Any = app.recorder
    batch_reads: list[list[UUID]] = []
    own_reads: list[UUID] = []
    select_streams, select_events = recorder.select_streams, recorder.select_events

    def streams(ids: list[UUID], **kwargs: Any) -> Any:
        batch_reads.append(list(ids))
        return select_streams(ids, **kwargs)

    def events(originator_id: UUID, *args: Any, **kwargs: Any) -> Any:
        own_reads.append(originator_id)
        return select_events(originator_id, *args, **kwargs)

    monkeypatch.setattr(recorder, "select_streams", streams)
    monkeypatch.setattr(recorder, "select_events", events)
    with ThreadPoolExecutor(6) as desks, lead_held(app) as release:
        futures = [desks.submit(_check_in, app, event_id, person) for person in people]
        release(6)
        answers = _answers(futures)

    # One query for the six, their attendances (none yet) and the event, and none of these
    # streams on its own. (A batch with a refusal in it is read again in the parts it is
    # split into: the refused-command test above checks its answers.)
    [read] = batch_reads
    attendances = [Attendance.create_id(event_id, person) for person in people]
    assert sorted(read) == sorted([*people, *attendances, event_id])
    batch = [*people, *attendances, event_id]
    assert [stream for stream in own_reads if stream in batch] == []
    monkeypatch.undo()
    # Each answer is the check-in as read back on its own, band and group included.
    assert all(isinstance(answer, Outcome) and answer.created for answer in answers)
    assert [answer.result for answer in answers if isinstance(answer, Outcome)] == [
        app.get_check_in(event_id, person) for person in people
    ]


def test_streams_are_read_together_as_each_is_read_alone(services: Services) -> None:
    app = services.app
    people = _participants(app, 3)
    app.correct_personal_data(people[1], changes={"name": "多摩 花子"}, recorded_by=BY)
    recorder: Any = app.recorder
    missing = uuid4()

    streams = recorder.select_streams([people[0], missing, people[1], people[2]])

    assert set(streams) == set(people)
    for person in people:
        assert streams[person] == recorder.select_events(person)
    assert [event.originator_version for event in streams[people[1]]] == [1, 2]
