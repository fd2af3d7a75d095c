"""The server's check-ins written by a process of its own: the check-in writer.

Why a process: a check-in costs the server's event loop about as much as a bare ``/health``
(HTTP parsing, the token, the answer), and costs the group-commit writer as much again (the
participant read, the Attendance and its event, the inserts, the commit). As threads of one
process both ran under one interpreter lock, so a check-in cost the sum, and the second core
sat mostly idle (bench/README.md). In a process of its own the writer runs on the other core:
the server's loop only parses, checks and answers.

What runs where:

- The writer (``tsunagari writer``, started by ``serve``) is the same application on the same
  store. It reads check-ins from its end of a socket pair, as many as have arrived, runs them
  with ``Tsunagari.check_in_all`` (shared transactions, one commit for all), and writes their
  answers back in one message.
- The server sends each check-in of its desks there (``CheckInWriter.check_in``, what both
  the route and the direct path call) and answers the desk when the writer has.
- Each writes aggregates the other reads (the server closes events and reverts check-ins,
  the writer checks in). The library's aggregate cache brings a cached aggregate up to date
  from the store on every read (its fast-forward), and every command takes the store's write
  lock before it reads (``SqlStorage.atomic``), but a check-in on PostgreSQL, which reads
  before the lock and has its commit check, under the lock, that what it read is unchanged
  (``select_streams``' ``before_lock``): a check-in and a close in the two processes are
  ordered as they would be in one, and neither commits on a state older than the store.
- If the writer dies, the check-ins it had not answered, and any that come until it is back,
  run in the server's own process, as without a writer: the store decides, as for any retry
  (a check-in it had committed is answered 200, "already checked in", or replayed under its
  Idempotency-Key). ``serve`` starts it again.

The messages are pickles: both ends are this program, parent and child over a private socket
pair, and nothing else can write to it. The standard library's multiprocessing would do the
same with a manager or a pool and their threads; these are a few lines over asyncio, which the
server's loop serves without a thread.
"""

from __future__ import annotations

import asyncio
import os
import pickle
import signal
import socket
import struct
import sys
import time
from collections.abc import Iterator
from contextlib import suppress
from typing import Any
from uuid import UUID

import structlog

from application.app import CheckIn, Outcome, Tsunagari
from application.group_commit import REFUSALS
from application.ports import Idempotency
from application.views import CheckInView
from domain.provenance import Provenance
from infrastructure.persistence import own_statements
from infrastructure.settings import Settings
from interfaces.bootstrap import build_services
from interfaces.collector import settle_collector

logger = structlog.get_logger("tsunagari.writer")

_LENGTH = struct.Struct("!I")
RESTART_AFTER = 1.0
"""Seconds before a writer that died is started again."""
STOP_TIMEOUT = 15.0
"""Seconds a writer gets to finish its batch once the server stops, before it is killed."""


def frame(message: object) -> bytes:
    payload = pickle.dumps(message, pickle.HIGHEST_PROTOCOL)
    return _LENGTH.pack(len(payload)) + payload


def unframe(buffer: bytearray) -> Iterator[Any]:
    """The whole messages at the start of the buffer, taken out of it; a partial one stays."""
    start = 0
    while len(buffer) - start >= _LENGTH.size:
        (size,) = _LENGTH.unpack_from(buffer, start)
        end = start + _LENGTH.size + size
        if len(buffer) < end:
            break
        yield pickle.loads(buffer[start + _LENGTH.size : end])  # noqa: S301 - see the module
        start = end
    del buffer[:start]


# The writer's side ---------------------------------------------------------------------


GATHER = 8
"""Fewer check-ins than this, while desks are busy, wait ``GATHER_WAIT`` once for more."""
GATHER_WAIT = 0.0003
"""Seconds. A batch's commit (an fsync on SQLite; a round trip and a WAL flush on PostgreSQL)
and its other fixed costs are those of several check-ins: under load the writer is the busy
part, and with 16 desks it found 6 to 8 check-ins each time. Waiting 0.3 ms lets the desks'
next ones join the batch: the writer then spent 15-20 % less per check-in and the server
answered 10-20 % more of them (bench/README.md). A lone check-in, at a quiet desk, never
waits: only one after a batch of more than one."""


def serve_writer(app: Tsunagari, connection: socket.socket) -> None:
    """Answer check-ins from the server until it closes its end: each time, every check-in
    that has arrived, at once."""
    buffer = bytearray()
    busy = False  # the last batch had more than one check-in: desks are queueing
    try:
        while True:
            data = connection.recv(1 << 16)
            if not data:
                return
            buffer += data
            _take_arrived(connection, buffer)
            requests: list[tuple[int, CheckIn]] = _requests(buffer)
            if busy and len(requests) < GATHER:
                time.sleep(GATHER_WAIT)
                _take_arrived(connection, buffer)
                requests += _requests(buffer)
            if not requests:
                continue
            busy = len(requests) > 1
            answers = app.check_in_all([command for _, command in requests])
            for answer in answers:
                if isinstance(answer, Exception) and not isinstance(answer, REFUSALS):
                    # Its traceback does not travel with it: told here, where it happened.
                    logger.error("check-in failed in the writer", exc_info=answer)
            connection.sendall(_answers([number for number, _ in requests], answers))
    except ConnectionError:
        return  # the server has gone, and runs what it did not hear answered itself


def _requests(buffer: bytearray) -> list[tuple[int, CheckIn]]:
    """The check-ins of the whole messages in the buffer: each message holds several."""
    return [request for message in unframe(buffer) for request in message]


def _take_arrived(connection: socket.socket, buffer: bytearray) -> None:
    """Whatever has arrived on the socket, without waiting."""
    with suppress(BlockingIOError):
        while more := connection.recv(1 << 16, socket.MSG_DONTWAIT):
            buffer += more


def _answers(numbers: list[int], answers: list[Outcome[CheckInView] | Exception]) -> bytes:
    """One message of answers: each pickled on its own, so that one the server cannot read
    spoils none of the others (``_Link.data_received``); one that does not pickle, or would
    not unpickle, goes as a plain error saying what it was."""
    return frame(
        [(number, _pickled(answer)) for number, answer in zip(numbers, answers, strict=True)]
    )


_VIEW = "check-in view as JSON"
"""Tags an answer sent as (tag, created, replayed, the view's JSON): a check-in's view as
pydantic pickles it cost the writer 14 µs to pickle and the server 10 to unpickle, as JSON
4 and 5. JSON holds every field of the view exactly (UUIDs, the status, an aware datetime)."""


def _pickled(answer: object) -> bytes:
    if isinstance(answer, Outcome) and type(answer.result) is CheckInView:
        compact = (_VIEW, answer.created, answer.replayed, answer.result.model_dump_json())
        return pickle.dumps(compact, pickle.HIGHEST_PROTOCOL)
    try:
        data = pickle.dumps(answer, pickle.HIGHEST_PROTOCOL)
        if isinstance(answer, BaseException):  # errors are rare: make sure they come back
            pickle.loads(data)  # noqa: S301 - just made here
        return data
    except Exception:
        return pickle.dumps(RuntimeError(f"the check-in writer answered {answer!r}"))


def _unpickled(pickled: bytes) -> object:
    answer = pickle.loads(pickled)  # noqa: S301 - see the module
    if type(answer) is tuple and len(answer) == 4 and answer[0] == _VIEW:
        _, created, replayed, view = answer
        return Outcome(CheckInView.model_validate_json(view), created, replayed)
    return answer


def _settle(future: asyncio.Future[Any], answer: object) -> None:
    """Give a waiting caller its answer, whatever it is: an error a Future refuses (one that
    is not an Exception, or StopIteration) becomes a RuntimeError saying what it was."""
    if future.done():
        return
    if not isinstance(answer, BaseException):
        future.set_result(answer)
    elif isinstance(answer, Exception) and not isinstance(answer, StopIteration):
        future.set_exception(answer)
    else:
        future.set_exception(RuntimeError(f"the check-in failed with {answer!r}"))


# The server's side ---------------------------------------------------------------------


class CheckInWriter:
    """The server's way to the writer process: ``check_in`` as ``Tsunagari.check_in_async``.

    ``local`` is the server's own application, which answers when the writer cannot.
    """

    def __init__(self, settings: Settings, local: Tsunagari) -> None:
        self.settings = settings
        self.local = local
        self.command = [sys.executable, "-m", "interfaces.cli", "writer"]
        self._link: _Link | None = None
        self._process: asyncio.subprocess.Process | None = None
        self._watcher: asyncio.Task[None] | None = None
        self._stopping = False
        self.started = 0
        """How many writer processes were started (the first, and each restart)."""
        self.answered = 0
        """How many check-ins a writer process answered."""

    @property
    def pid(self) -> int | None:
        """The running writer's process id."""
        return None if self._process is None else self._process.pid

    async def start(self) -> None:
        await self._spawn()
        self._watcher = asyncio.get_running_loop().create_task(self._watch())

    async def stop(self) -> None:
        """Close the writer's socket: it answers what it has, then leaves."""
        self._stopping = True
        if self._watcher is not None:
            self._watcher.cancel()
            try:
                await self._watcher
            except asyncio.CancelledError:
                pass
            except Exception:  # the server still stops, and closes its store
                logger.exception("check-in writer's watcher failed")
        if self._link is not None:
            self._link.close()
        process = self._process
        if process is not None and process.returncode is None:
            try:
                await asyncio.wait_for(process.wait(), STOP_TIMEOUT)
            except TimeoutError:
                logger.warning("check-in writer did not stop in time; killing it")
                process.kill()
                await process.wait()

    async def check_in(
        self,
        event_id: UUID,
        *,
        participant_id: UUID,
        recorded_by: Provenance,
        idempotency: Idempotency | None = None,
    ) -> Outcome[CheckInView]:
        command = CheckIn(event_id, participant_id, recorded_by, idempotency)
        link = self._link
        if link is None or not link.up:
            return await self._locally(command)
        return await link.send(command)

    async def _locally(self, command: CheckIn) -> Outcome[CheckInView]:
        return await self.local.check_in_async(
            command.event_id,
            participant_id=command.participant_id,
            recorded_by=command.recorded_by,
            idempotency=command.idempotency,
        )

    async def _spawn(self) -> None:
        ours, theirs = socket.socketpair()
        env = {**os.environ, **self.settings.as_environment()}
        try:
            self._process = await asyncio.create_subprocess_exec(
                *self.command,
                "--fd",
                str(theirs.fileno()),
                env=env,
                pass_fds=(theirs.fileno(),),
            )
            loop = asyncio.get_running_loop()
            _, self._link = await loop.create_connection(lambda: _Link(self), sock=ours)
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        self.started += 1
        logger.info("check-in writer started", pid=self._process.pid)

    async def _watch(self) -> None:
        while not self._stopping:
            process = self._process
            if process is not None:
                code = await process.wait()
                if self._stopping:
                    return
                logger.error("check-in writer exited; starting it again", code=code)
                self._process = None
            if self._link is not None:
                self._link.close()
            await asyncio.sleep(RESTART_AFTER)
            if self._stopping:
                return
            try:
                await self._spawn()
            except Exception:  # no process, no socket (out of memory, files...): again later
                logger.exception("check-in writer could not be started; trying again")


class _Link(asyncio.Protocol):
    """The server's end of the socket to one writer process."""

    def __init__(self, writer: CheckInWriter) -> None:
        self.writer = writer
        self.up = False
        self.transport: Any = None  # an asyncio transport, once connected
        self.buffer = bytearray()
        self.numbers = iter(range(1, sys.maxsize))
        self.waiting: dict[int, tuple[CheckIn, asyncio.Future[Outcome[CheckInView]]]] = {}
        self.instead: set[asyncio.Task[None]] = set()  # kept: the loop holds tasks weakly
        self.outgoing: list[tuple[int, CheckIn]] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        self.up = True

    async def send(self, command: CheckIn) -> Outcome[CheckInView]:
        number = next(self.numbers)
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Outcome[CheckInView]] = loop.create_future()
        self.waiting[number] = (command, future)
        if not self.outgoing:
            loop.call_soon(self._flush)
        self.outgoing.append((number, command))
        return await future

    def _flush(self) -> None:
        """The check-ins sent since the last turn of the loop, in one message: the desks'
        requests that one turn read go to the writer in one pickle and one write, where each
        had its own (a system call, about a tenth of the loop's time for a check-in)."""
        outgoing, self.outgoing = self.outgoing, []
        if self.up:
            self.transport.write(frame(outgoing))
        # Down: connection_lost ran, or runs next, each waiting check-in in the server.

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        for answers in unframe(self.buffer):
            for number, pickled in answers:
                waiting = self.waiting.pop(number, None)
                if waiting is None:
                    continue
                try:
                    answer = _unpickled(pickled)
                except Exception as error:
                    answer = RuntimeError(
                        f"an answer of the check-in writer did not read: {error!r}"
                    )
                self.writer.answered += 1
                _settle(waiting[1], answer)

    def connection_lost(self, exc: Exception | None) -> None:
        """The writer is gone: what it had not answered runs in the server's process."""
        self.up = False
        waiting, self.waiting = self.waiting, {}
        for command, future in waiting.values():
            if not future.done():
                task = asyncio.ensure_future(self._instead(command, future))
                self.instead.add(task)
                task.add_done_callback(self.instead.discard)

    async def _instead(
        self, command: CheckIn, future: asyncio.Future[Outcome[CheckInView]]
    ) -> None:
        try:
            answer: object = await self.writer._locally(command)
        except asyncio.CancelledError:
            future.cancel()
            raise
        except BaseException as error:  # the caller hears it, whatever it is
            answer = error
        _settle(future, answer)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


def run_writer(settings: Settings, fd: int) -> None:
    """The writer process: the application on the store, answering over the inherited socket
    until the server closes it. SIGTERM and SIGINT are the server's to handle: the writer
    stops when its socket closes, once what it has is answered."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    connection = socket.socket(fileno=fd)
    services = build_services(settings)
    own_statements(services.datastore)
    settle_collector()
    try:
        serve_writer(services.app, connection)
    finally:
        connection.close()
        services.close()
