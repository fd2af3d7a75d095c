"""The check-in writer process (interfaces.check_in_writer), as `serve` runs it: the real app
with its own services, a real writer process on the same store, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import gc
import os
import pickle
import signal
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from uuid import UUID, uuid4

import pytest
from fastapi.testclient import TestClient

from application.app import CheckIn, Outcome
from application.errors import NotFound
from application.views import AttendanceStatus, CheckInView
from domain.errors import UnknownReference
from domain.events import JST
from domain.provenance import Role
from infrastructure.settings import ProjectionsMode, Settings, WriterMode
from interfaces import check_in_writer
from interfaces.bootstrap import build_services
from interfaces.check_in_writer import (
    CheckInWriter,
    _answers,
    _Link,
    _unpickled,
    frame,
    unframe,
)
from interfaces.http.app import create_app
from tests.application.test_group_commit import BY, _event, _participants


@dataclass
class Served:
    client: TestClient
    writer: CheckInWriter
    event_id: UUID
    people: list[UUID]
    desk: dict[str, str]
    admin: dict[str, str]

    def check_in(self, person: UUID | str, **headers: str) -> Any:
        return self.client.post(
            f"/events/{self.event_id}/check-ins",
            json={"participant_id": str(person)},
            headers={**self.desk, **headers},
        )


def _quiet(settings: Settings) -> Settings:
    return settings.model_copy(update={"run_projections": ProjectionsMode.OFF})


@pytest.fixture
def served(settings: Settings) -> Iterator[Served]:
    settings = _quiet(settings)
    assert settings.check_in_writer is WriterMode.PROCESS  # serve's default
    services = build_services(settings)
    try:
        event_id = _event(services.app)
        people = _participants(services.app, 8)
        desk = services.tokens.create(name="desk", role=Role.DESK)[1]
        admin = services.tokens.create(name="admin", role=Role.ADMIN)[1]
    finally:
        services.close()
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        writer = client.app.state.writer  # type: ignore[attr-defined]
        yield Served(
            client,
            writer,
            event_id,
            people,
            {"Authorization": f"Bearer {desk}", "X-Desk-Id": "suge-1"},
            {"Authorization": f"Bearer {admin}"},
        )


def _command_line(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")


def test_check_ins_are_written_by_a_process_of_their_own(served: Served) -> None:
    pid = served.writer.pid
    assert pid is not None
    assert pid != os.getpid()
    if Path("/proc").is_dir():
        assert "writer" in _command_line(pid)
    answers = [
        served.check_in(person, **{"Idempotency-Key": f"k-{person}"}) for person in served.people
    ]
    assert [answer.status_code for answer in answers] == [201] * len(served.people)
    assert [answer.json()["participant_id"] for answer in answers] == list(map(str, served.people))
    assert served.writer.answered == len(served.people)
    again = served.check_in(served.people[0], **{"Idempotency-Key": f"k-{served.people[0]}"})
    assert again.status_code == 201  # replayed: the first answer, status and body
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json() == answers[0].json()
    listed = served.client.get(f"/events/{served.event_id}/check-ins", headers=served.admin)
    assert listed.json()["checked_in"] == len(served.people)


def test_the_server_and_the_writer_each_see_what_the_other_wrote(served: Served) -> None:
    """Neither process answers from a copy older than the store: the server reverts a check-in
    the writer made, the writer checks the person in again, the server reads it back, and a
    close by the server refuses the writer's next check-in."""
    person, other = served.people[:2]
    assert served.check_in(person).status_code == 201
    path = f"/events/{served.event_id}/check-ins/{person}"
    reverted = served.client.post(f"{path}/revert", json={"reason": "人違い"}, headers=served.desk)
    assert reverted.status_code == 200
    assert reverted.json()["status"] == "reverted"
    again = served.check_in(person)
    assert again.status_code in (200, 201)
    assert again.json()["status"] == "checked_in"
    read = served.client.get(path, headers=served.admin)
    assert read.json()["status"] == "checked_in"
    closed = served.client.post(f"/events/{served.event_id}/close", headers=served.admin)
    assert closed.status_code == 201
    assert closed.json()["status"] == "closed"
    refused = served.check_in(other)
    assert refused.status_code == 409
    assert refused.headers["content-type"] == "application/problem+json"
    assert "closed" in refused.json()["detail"]
    listed = served.client.get(f"/events/{served.event_id}/check-ins", headers=served.admin)
    assert [entry["participant_id"] for entry in listed.json()["check_ins"]] == [str(person)]


def test_the_writers_refusals_are_the_servers(served: Served) -> None:
    unknown = uuid4()
    answer = served.check_in(unknown)
    assert answer.status_code == 422
    assert str(unknown) in answer.json()["detail"]
    missing = served.client.post(
        f"/events/{uuid4()}/check-ins",
        json={"participant_id": str(served.people[0])},
        headers=served.desk,
    )
    assert missing.status_code == 404
    assert "no event" in missing.json()["detail"]
    assert served.writer.answered == 2  # both refused by the writer, not by the server


def test_a_writer_that_dies_is_started_again_and_nothing_it_was_given_is_lost(
    settings: Settings,
) -> None:
    settings = _quiet(settings)
    services = build_services(settings)
    try:
        event_id = _event(services.app)
        people = _participants(services.app, 40)

        async def scene() -> tuple[list[Any], CheckInWriter]:
            writer = CheckInWriter(settings, services.app)
            await writer.start()
            try:
                first = writer.pid
                assert first is not None
                sent = [
                    asyncio.ensure_future(
                        writer.check_in(event_id, participant_id=person, recorded_by=BY)
                    )
                    for person in people
                ]
                await asyncio.sleep(0)  # sent: the writer is starting, or has some done
                os.kill(first, signal.SIGKILL)
                answers = await asyncio.wait_for(asyncio.gather(*sent), 60)
                for _ in range(600):  # started again
                    if writer.started == 2 and writer.pid != first:
                        break
                    await asyncio.sleep(0.05)
                later = await asyncio.wait_for(
                    writer.check_in(event_id, participant_id=people[0], recorded_by=BY), 60
                )
                assert later.created is False  # already checked in
                with pytest.raises(UnknownReference):
                    await writer.check_in(event_id, participant_id=uuid4(), recorded_by=BY)
                with pytest.raises(NotFound):
                    await writer.check_in(uuid4(), participant_id=people[0], recorded_by=BY)
                return answers, writer
            finally:
                await writer.stop()

        answers, writer = asyncio.run(scene())
        assert writer.started == 2
        assert writer.answered >= 3  # the last three, by the new writer
        assert all(
            answer.result.participant_id == person
            for answer, person in zip(answers, people, strict=True)
        )
        roster = services.roster.check_ins_at(event_id)
        assert sorted(entry.participant_id for entry in roster) == sorted(people)
        assert all(entry.counted for entry in roster)
    finally:
        services.close()


class _Unpicklable(Exception):
    def __reduce__(self) -> Any:
        raise TypeError("not this one")


class _Unreadable(Exception):
    """Pickles (its args are one message) but does not unpickle (its __init__ takes two)."""

    def __init__(self, what: str, why: str) -> None:
        super().__init__(f"{what}: {why}")


def _read(message: bytes) -> list[tuple[int, Any]]:
    ((answers),) = list(unframe(bytearray(message)))
    return [(number, _unpickled(pickled)) for number, pickled in answers]


def test_an_answer_that_does_not_pickle_still_reaches_the_server_as_an_error() -> None:
    """The writer's answers go back in one message: one that cannot be sent, or could not be
    read, spoils none of the others, and its caller still hears that it failed, and how."""
    fine = RuntimeError("fine")
    sent = _answers([1, 2, 3], [fine, _Unpicklable("a database said no"), _Unreadable("a", "b")])
    (first, second, third) = _read(sent)
    assert first[0] == 1
    assert repr(first[1]) == repr(fine)
    assert second[0] == 2
    assert isinstance(second[1], RuntimeError)
    assert "a database said no" in str(second[1])
    assert third[0] == 3
    assert isinstance(third[1], RuntimeError)
    assert "a: b" in str(third[1])


class _Transport:
    def __init__(self) -> None:
        self.written: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.written.append(data)

    def close(self) -> None:
        pass


OUTCOME = Outcome(
    CheckInView(
        event_id=uuid4(),
        participant_id=uuid4(),
        status=AttendanceStatus.CHECKED_IN,
        band_id="adult",
        group="working",
        recorded_at=datetime(2026, 10, 11, tzinfo=UTC),
        revert_reason=None,
    ),
    True,
)


def test_the_server_settles_every_answer_even_one_it_cannot_read() -> None:
    """An answer that does not unpickle, or an error a Future refuses (StopIteration), fails
    only its own caller, with a RuntimeError; the others get their answers."""
    writer: Any = SimpleNamespace(answered=0)
    link = _Link(writer)
    link.connection_made(_Transport())  # type: ignore[arg-type]

    async def scene() -> list[Any]:
        sent = [asyncio.ensure_future(link.send(CheckIn(uuid4(), uuid4(), BY))) for _ in range(3)]
        await asyncio.sleep(0)
        answers = [
            (1, pickle.dumps(OUTCOME)),
            (2, b"not a pickle"),
            (3, pickle.dumps(StopIteration())),
        ]
        link.data_received(frame(answers))
        return list(await asyncio.wait_for(asyncio.gather(*sent, return_exceptions=True), 5))

    first, second, third = asyncio.run(scene())
    assert first == OUTCOME
    assert isinstance(second, RuntimeError)
    assert "did not read" in str(second)
    assert isinstance(third, RuntimeError)
    assert "StopIteration" in str(third)
    assert writer.answered == 3


def test_check_ins_sent_in_one_turn_of_the_loop_go_to_the_writer_as_one_message() -> None:
    """Desks whose requests the server read together: one write to the writer, holding each
    check-in with its number, in the order sent; the next turn's go in a message of their own."""
    transport = _Transport()
    link = _Link(SimpleNamespace(answered=0))  # type: ignore[arg-type]
    link.connection_made(transport)  # type: ignore[arg-type]
    commands = [CheckIn(uuid4(), uuid4(), BY) for _ in range(4)]

    async def scene() -> None:
        sent = [asyncio.ensure_future(link.send(command)) for command in commands[:3]]
        await asyncio.sleep(0)  # the three send, then the flush runs
        await asyncio.sleep(0)
        sent.append(asyncio.ensure_future(link.send(commands[3])))
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        link.data_received(frame([(n, pickle.dumps(OUTCOME)) for n in range(1, 5)]))
        assert await asyncio.wait_for(asyncio.gather(*sent), 5) == [OUTCOME] * 4

    asyncio.run(scene())
    messages = [list(unframe(bytearray(written))) for written in transport.written]
    assert messages == [[list(zip([1, 2, 3], commands[:3], strict=True))], [[(4, commands[3])]]]


def test_a_check_in_view_travels_back_exactly_as_the_writer_made_it() -> None:
    """Views go back as JSON, not pickled: every field arrives as it was, a reverted one's
    reason and a replayed answer's flags included."""
    reverted = OUTCOME.result.model_copy(
        update={
            "status": AttendanceStatus.REVERTED,
            "revert_reason": "別の方と取り違え",
            "recorded_at": datetime(2026, 10, 11, 9, 30, 15, 123456, tzinfo=JST),
        }
    )
    sent = [OUTCOME, Outcome(reverted, False, replayed=True)]
    link = _Link(SimpleNamespace(answered=0))  # type: ignore[arg-type]
    link.connection_made(_Transport())  # type: ignore[arg-type]

    async def scene() -> list[Any]:
        waiting = [asyncio.ensure_future(link.send(CheckIn(uuid4(), uuid4(), BY))) for _ in sent]
        await asyncio.sleep(0)
        link.data_received(_answers([1, 2], list(sent)))
        return list(await asyncio.wait_for(asyncio.gather(*waiting), 5))

    answers = asyncio.run(scene())
    assert answers == sent
    assert answers[1].result.recorded_at.utcoffset() == JST.utcoffset(None)


def test_with_the_writer_as_a_thread_the_server_writes_its_check_ins_itself(
    settings: Settings,
) -> None:
    settings = _quiet(settings).model_copy(update={"check_in_writer": WriterMode.THREAD})
    services = build_services(settings)
    try:
        event_id = _event(services.app)
        (person,) = _participants(services.app, 1)
        desk = services.tokens.create(name="desk", role=Role.DESK)[1]
    finally:
        services.close()
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        assert client.app.state.writer is None  # type: ignore[attr-defined]
        answer = client.post(
            f"/events/{event_id}/check-ins",
            json={"participant_id": str(person)},
            headers={"Authorization": f"Bearer {desk}"},
        )
    assert answer.status_code == 201
    assert answer.json()["participant_id"] == str(person)


def test_a_writer_that_cannot_be_started_again_is_tried_again_and_check_ins_go_on(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(check_in_writer, "RESTART_AFTER", 0.05)
    settings = _quiet(settings)
    services = build_services(settings)
    try:
        event_id = _event(services.app)
        people = _participants(services.app, 3)

        async def scene() -> CheckInWriter:
            writer = CheckInWriter(settings, services.app)
            await writer.start()
            try:
                command, first = writer.command, writer.pid
                assert first is not None
                writer.command = ["/nonexistent/tsunagari"]  # the next start fails
                os.kill(first, signal.SIGKILL)
                await asyncio.sleep(0.5)  # several failed starts meanwhile
                assert writer.started == 1
                # Meanwhile the server answers check-ins itself.
                alone = await writer.check_in(event_id, participant_id=people[0], recorded_by=BY)
                assert alone.created
                writer.command = command
                for _ in range(600):
                    if writer.started == 2:
                        break
                    await asyncio.sleep(0.05)
                answered = writer.answered
                for person in people[1:]:
                    outcome = await asyncio.wait_for(
                        writer.check_in(event_id, participant_id=person, recorded_by=BY), 60
                    )
                    assert outcome.created
                assert writer.answered == answered + 2  # by the writer started again
                return writer
            finally:
                await writer.stop()

        writer = asyncio.run(scene())
        assert writer.started == 2
        roster = services.roster.check_ins_at(event_id)
        assert sorted(entry.participant_id for entry in roster) == sorted(people)
    finally:
        services.close()


def test_the_writer_settles_its_garbage_collector_before_it_serves(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The writer is where every desk waits: a collection of the whole heap it imported
    (the framework, the ORM) paused a batch, and its desks' p99 with it (bench/README.md).
    It serves with the start-up heap frozen and the server's thresholds, as the server does."""
    seen: dict[str, Any] = {}

    def serve(app: Any, connection: Any) -> None:
        seen.update(threshold=gc.get_threshold(), frozen=gc.get_freeze_count())

    monkeypatch.setattr(check_in_writer, "serve_writer", serve)
    ours, theirs = socket.socketpair()
    threshold = gc.get_threshold()
    handlers = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    try:
        check_in_writer.run_writer(_quiet(settings), theirs.detach())
    finally:
        signal.signal(signal.SIGINT, handlers[0])
        signal.signal(signal.SIGTERM, handlers[1])
        gc.set_threshold(*threshold)
        gc.unfreeze()
        ours.close()
    assert seen["threshold"] == (20_000, 50, 100)
    assert seen["frozen"] > 1000
