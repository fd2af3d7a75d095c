"""Group commit: commands arriving together share one transaction, so they share one commit.

A check-in is a few small inserts and one commit, and the commit (an fsync on SQLite, a
round trip and a WAL flush on PostgreSQL) costs more than the rest. Writes are serialised
anyway (SQLite's write lock; PostgreSQL's lock on the event log), so while one
transaction commits the next desks' commands queue up. Group commit lets the first caller
lead: it runs every command queued at that moment in one transaction, commits once, answers
them all, then hands the lead to the next waiting caller. A lone caller runs its own command
at once, with no thread hand-off.

Neither eventsourcing nor SQLAlchemy batch independent commands into one transaction, hence
this small module. It knows nothing of commands: a unit of work is a function that reads and
writes inside the current transaction and returns an answer.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Hashable, Sequence
from contextlib import AbstractContextManager, suppress
from typing import Any, Generic, TypeVar

from application.errors import ApplicationError
from domain.errors import DomainError

T = TypeVar("T")

REFUSALS: tuple[type[Exception], ...] = (DomainError, ApplicationError)
"""Errors a unit raises when it refuses a command: its caller gets the refusal, and whatever
the unit wrote before refusing is rolled back, the other units' writes committed."""


class _Refused(Exception):
    """Rolls back the transaction of a unit that refused."""


class _PrepareFailed(Exception):
    """Rolls back the transaction of a unit whose ``prepare`` failed, to run it without."""


_NEVER_WAITED = threading.Event()


class _Unit(Generic[T]):
    __slots__ = ("answered", "error", "future", "reads", "result", "wake", "work")

    def __init__(
        self,
        work: Callable[[], T],
        future: asyncio.Future[None] | None = None,
        reads: Sequence[Hashable] = (),
    ) -> None:
        self.work = work
        self.reads = reads  # what the work will read: the batch's ``prepare`` may fetch it
        self.future = future  # set for callers on an event loop, who wait there
        # A thread caller waits on its own event; one on an event loop on its future (an
        # Event and its Condition cost a check-in's event loop a few µs for nothing).
        self.wake = threading.Event() if future is None else _NEVER_WAITED
        self.answered = False
        self.result: T | None = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.result = self.work()
        except REFUSALS as refusal:
            self.error = refusal

    def answer(self) -> T:
        if self.error is not None:
            raise self.error
        return self.result  # type: ignore[return-value]


def _settle(futures: list[asyncio.Future[None]]) -> None:
    for future in futures:
        if not future.done():
            future.set_result(None)


class GroupCommit:
    """Runs units of work in shared transactions, one commit for all that queued together.

    ``atomic`` opens a transaction and rolls it back on an exception, undoing anything kept in
    memory about its writes (the aggregate cache), for a shared transaction as for a lone one.
    One leader at a time: the transactions of one GroupCommit never overlap. A thread caller
    leads in its own thread; for callers on an event loop, which must not block, a writer
    thread of this GroupCommit leads.
    """

    def __init__(
        self,
        atomic: Callable[[], AbstractContextManager[object]],
        *,
        max_batch: int = 64,
        prepare: Callable[[list[Hashable]], None] | None = None,
    ) -> None:
        self._atomic = atomic
        self._max_batch = max_batch
        # Called in a shared transaction, before its units run, with what they said they will
        # read: a chance to fetch it all at once (one query rather than one a unit).
        self._prepare = prepare
        self._mutex = threading.Lock()
        self._queue: list[_Unit[Any]] = []
        self._leading = False
        self._writer: threading.Thread | None = None
        self._writer_wake = threading.Event()
        self._writer_turn = False  # the lead was handed to the writer thread
        self._closed = False

    @property
    def queued(self) -> int:
        """Units waiting for a transaction (not counting those in the running one)."""
        with self._mutex:
            return len(self._queue)

    def run(self, work: Callable[[], T], *, reads: Sequence[Hashable] = ()) -> T:
        """Run ``work`` in a transaction, maybe shared with other callers', and answer it.

        Raises what ``work`` raised. When a shared transaction fails, each of its units runs
        again in a transaction of its own, so one unit's conflict never fails another's.
        ``reads``: what ``work`` will read, for ``prepare`` to fetch with the batch's.
        """
        unit = _Unit(work, reads=reads)
        if self._enqueue(unit):
            self._lead()
        else:
            unit.wake.wait()
            if not unit.answered:  # woken to take the lead, not with its answer
                self._lead()
        return unit.answer()

    def run_all(
        self, works: Sequence[tuple[Callable[[], T], Sequence[Hashable]]]
    ) -> list[T | Exception]:
        """``run`` for many works of one caller at once, each with what it will read: they
        queue together, so they share transactions (``max_batch`` at a time). Answers each
        one's result, or the exception it raised, in their order; one's failure fails no other.
        For a caller that receives commands in batches (the check-in writer process).
        """
        units = [_Unit(work, reads=reads) for work, reads in works]
        with self._mutex:
            self._queue.extend(units)
            lead = not self._leading
            self._leading = True
        if lead:
            self._lead()
        for unit in units:
            while not unit.answered:
                unit.wake.wait()
                unit.wake.clear()
                if not unit.answered:  # woken to take the lead, not with its answer
                    self._lead()
        answers: list[T | Exception] = []
        for unit in units:
            error = unit.error
            if error is not None and not isinstance(error, Exception):
                raise error  # not an Exception (KeyboardInterrupt...): stop, as ``run`` does
            answers.append(unit.answer() if error is None else error)
        return answers

    async def run_async(self, work: Callable[[], T], *, reads: Sequence[Hashable] = ()) -> T:
        """``run`` for a caller on an event loop: the loop keeps serving while it waits."""
        if self._closed:
            raise RuntimeError("this GroupCommit is closed: the application was closed")
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        unit = _Unit(work, future, reads)
        if self._writer is None:  # before queueing: a thread leader may hand it the lead
            self._start_writer()
        if self._enqueue(unit):
            with self._mutex:
                self._writer_turn = True
            self._writer_wake.set()
        await future
        return unit.answer()

    def close(self) -> None:
        """Stop the writer thread, if one was started, once every queued unit is answered."""
        self._closed = True
        self._writer_wake.set()
        if self._writer is not None:
            self._writer.join()

    def _enqueue(self, unit: _Unit[Any]) -> bool:
        """Queue a unit; True when its caller must see that someone leads."""
        with self._mutex:
            self._queue.append(unit)
            lead = not self._leading
            self._leading = True
        return lead

    def _start_writer(self) -> None:
        with self._mutex:
            if self._writer is None:
                self._writer = threading.Thread(
                    target=self._write, name="tsunagari-group-commit", daemon=True
                )
                self._writer.start()

    def _write(self) -> None:
        # The turn is checked before every wait, so neither a hand-off nor close() that
        # happened while this thread led is ever missed; after close() it stays until no one
        # leads and nothing is queued, so a lead handed to it is never lost.
        while True:
            with self._mutex:
                mine, self._writer_turn = self._writer_turn, False
                done = self._closed and not self._leading and not self._queue
            if mine:
                self._lead()
            elif done:
                return
            else:
                self._writer_wake.wait()
                self._writer_wake.clear()

    def _lead(self) -> None:
        with self._mutex:
            batch = self._queue[: self._max_batch]
            del self._queue[: len(batch)]
        try:
            self._commit(batch)
        except BaseException as error:  # not an Exception: stop every caller of this batch
            for unit in batch:
                unit.error = error
            raise
        finally:
            with self._mutex:
                if not self._queue:
                    self._leading = False
                    if self._closed:
                        self._writer_wake.set()  # it may be waiting to stop
                elif self._queue[0].future is None:
                    self._queue[0].wake.set()  # the next thread caller leads
                else:
                    self._writer_turn = True  # the writer thread leads for the next ones
                    self._writer_wake.set()
            loops: dict[asyncio.AbstractEventLoop, list[asyncio.Future[None]]] = {}
            for unit in batch:
                unit.answered = True
                if unit.future is None:
                    unit.wake.set()
                else:
                    loops.setdefault(unit.future.get_loop(), []).append(unit.future)
            for loop, futures in loops.items():  # one wake-up of each loop per batch
                with suppress(RuntimeError):  # a loop closed meanwhile: nobody waits there
                    loop.call_soon_threadsafe(_settle, futures)

    def _commit(self, batch: list[_Unit[Any]]) -> None:
        if len(batch) <= 1:
            for unit in batch:
                self._alone(unit)
            return
        current: _Unit[Any] | None = None
        try:
            with self._atomic():
                if self._prepare is not None:  # a failure here names no unit: each runs alone
                    self._prepare([read for unit in batch for read in unit.reads])
                for current in batch:
                    current.error = None
                    current.run()
                    if current.error is not None:
                        raise _Refused
                current = None  # from here on, a failure is the commit's, not a unit's
            return
        except Exception:  # noqa: S110 - the units are run again just below
            # A refusal, a conflict or a failure rolled back every unit's writes. In their
            # order: the units before the one that met it share a transaction again, that one
            # runs alone to get its own answer, and the units after it share another. A
            # failed commit names no unit: then each runs alone.
            pass
        if current is None:
            for unit in batch:
                self._alone(unit)
            return
        index = batch.index(current)
        self._commit(batch[:index])
        self._alone(current)
        self._commit(batch[index + 1 :])

    def _alone(self, unit: _Unit[Any], *, prepared: bool = True) -> None:
        """Run a unit in a transaction of its own, ``prepare``d with its reads (even alone,
        a check-in's three reads go in one query rather than one each); when the prepare
        fails, the unit runs once more without it, as a batch's units do."""
        unit.error = None
        try:
            with self._atomic():
                if prepared and self._prepare is not None and unit.reads:
                    try:
                        self._prepare(list(unit.reads))
                    except Exception as error:
                        raise _PrepareFailed from error
                unit.run()
                if unit.error is not None:
                    raise _Refused
        except _PrepareFailed:
            self._alone(unit, prepared=False)
        except _Refused:
            pass  # rolled back; the caller gets the refusal
        except Exception as error:  # the unit's own failure, raised in its caller's thread
            unit.error = error
