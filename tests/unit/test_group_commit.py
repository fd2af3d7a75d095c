"""GroupCommit on its own, against a toy transactional store: under many concurrent callers, on
threads and on an event loop, every unit is answered once with its own outcome, and exactly the
units that succeeded are committed, once each."""

from __future__ import annotations

import asyncio
import random
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from functools import partial

import pytest

from application.errors import NotFound
from application.group_commit import GroupCommit


class ToyStore:
    """Writes go to the open transaction and reach ``committed`` only when it commits."""

    def __init__(self) -> None:
        self.committed: list[int] = []
        self.pending: list[int] | None = None
        self.sizes: list[int] = []  # units written by each committed transaction
        self._open = threading.Lock()

    @contextmanager
    def atomic(self) -> Iterator[None]:
        if not self._open.acquire(blocking=False):
            raise AssertionError("two transactions at once")
        self.pending = []
        try:
            yield
            self.committed.extend(self.pending)
            self.sizes.append(len(self.pending))
        finally:
            self.pending = None
            self._open.release()

    def work(self, unit: int) -> int:
        """Refuses every 7th unit before writing and every 13th after writing; every 11th
        fails after writing."""
        if unit % 7 == 0:
            raise NotFound(f"unit {unit} refused")
        assert self.pending is not None
        self.pending.append(unit)
        if unit % 13 == 0:
            raise NotFound(f"unit {unit} refused after writing")
        if unit % 11 == 0:
            raise RuntimeError(f"unit {unit} failed")
        return unit * 10


def expected(unit: int) -> object:
    if unit % 7 == 0 or unit % 13 == 0:
        return NotFound
    if unit % 11 == 0:
        return RuntimeError
    return unit * 10


@pytest.mark.parametrize("seed", range(5))
def test_every_unit_gets_its_own_outcome_and_only_successes_commit(seed: int) -> None:
    store = ToyStore()
    commits = GroupCommit(store.atomic, max_batch=16)
    units = list(range(1, 401))
    random.Random(seed).shuffle(units)
    on_threads, on_loop = units[:200], units[200:]
    answers: dict[int, object] = {}

    def call(unit: int) -> None:
        try:
            answers[unit] = commits.run(lambda: store.work(unit))
        except Exception as error:
            answers[unit] = type(error)

    async def call_async(unit: int) -> None:
        await asyncio.sleep(random.random() / 1000)
        try:
            answers[unit] = await commits.run_async(lambda: store.work(unit))
        except Exception as error:
            answers[unit] = type(error)

    async def loop_callers() -> None:
        await asyncio.wait_for(asyncio.gather(*map(call_async, on_loop)), 60)

    leading = threading.Event()

    def gate() -> int:
        """Holds the first transaction until eight callers have queued behind it."""
        leading.set()
        deadline = time.monotonic() + 30
        while commits.queued < 8 and time.monotonic() < deadline:
            time.sleep(0.001)
        return 0

    # Eight units that neither refuse nor fail queue behind the gate, so that they share one
    # transaction however the threads are scheduled; then everyone else comes at once.
    clean = [unit for unit in on_threads if unit % 7 and unit % 11 and unit % 13][:8]
    with ThreadPoolExecutor(9) as pool:
        held = pool.submit(commits.run, gate)
        assert leading.wait(30)
        first = [pool.submit(call, unit) for unit in clean]
        held.result(timeout=60)
        for future in first:
            future.result(timeout=60)
        threads = [pool.submit(call, unit) for unit in on_threads if unit not in clean]
        asyncio.run(loop_callers())
        for future in threads:
            future.result(timeout=60)
    commits.close()

    assert answers == {unit: expected(unit) for unit in units}
    succeeded = [unit for unit in units if isinstance(expected(unit), int)]
    assert sorted(store.committed) == sorted(succeeded)  # each once: no loss, no double
    assert 8 in store.sizes  # the eight that queued together shared one commit


def held_leader() -> tuple[Callable[[], int], threading.Event, threading.Event]:
    """A unit that holds its transaction open: ``leading`` is set once it leads (others queue
    behind it), and it answers 0 once ``go`` is set."""
    leading, go = threading.Event(), threading.Event()

    def slow() -> int:
        leading.set()
        go.wait(10)
        return 0

    return slow, leading, go


def test_a_unit_queued_from_an_event_loop_that_closed_stops_nobody() -> None:
    store = ToyStore()
    commits = GroupCommit(store.atomic)
    slow, leading, go = held_leader()

    async def given_up() -> None:
        task = asyncio.ensure_future(commits.run_async(lambda: store.work(1)))
        await asyncio.sleep(0.05)  # queued behind the thread leader
        task.cancel()

    with ThreadPoolExecutor(2) as pool:
        leader = pool.submit(commits.run, slow)
        assert leading.wait(10)
        asyncio.run(given_up())  # its loop is closed when its unit is answered
        go.set()
        assert leader.result(timeout=10) == 0

        async def later() -> int:
            return await asyncio.wait_for(commits.run_async(lambda: store.work(2)), 10)

        assert asyncio.run(later()) == 20
        assert pool.submit(commits.run, lambda: store.work(3)).result(timeout=10) == 30
    commits.close()
    assert sorted(store.committed) == [1, 2, 3]


def test_close_waits_for_the_units_in_flight_and_answers_them() -> None:
    store = ToyStore()
    commits = GroupCommit(store.atomic)
    slow, leading, go = held_leader()

    loop = asyncio.new_event_loop()
    serving = threading.Thread(target=loop.run_forever, daemon=True)
    serving.start()
    with ThreadPoolExecutor(2) as pool:
        leader = pool.submit(commits.run, slow)
        assert leading.wait(10)
        queued = asyncio.run_coroutine_threadsafe(commits.run_async(lambda: store.work(4)), loop)
        while commits.queued < 1:
            time.sleep(0.001)
        closing = pool.submit(commits.close)  # while a thread leads and a unit waits
        time.sleep(0.05)
        go.set()
        assert leader.result(timeout=10) == 0
        assert queued.result(timeout=10) == 40
        closing.result(timeout=10)
    loop.call_soon_threadsafe(loop.stop)
    serving.join(10)
    assert store.committed == [4]
    with pytest.raises(RuntimeError, match="closed"):
        asyncio.run(commits.run_async(lambda: store.work(5)))


def _queue_behind(
    commits: GroupCommit,
    units: list[tuple[int, tuple[str, ...]]],
    work: Callable[[int], int] = lambda number: number * 10,
) -> list[int]:
    """Runs ``work`` for each unit (a number, and what it says it reads) queued behind a held
    leader, so that they share one transaction; their answers in order."""
    slow, leading, go = held_leader()
    with ThreadPoolExecutor(len(units) + 1) as pool:
        held = pool.submit(commits.run, slow)
        assert leading.wait(10)
        futures = [
            pool.submit(commits.run, lambda number=number: work(number), reads=reads)
            for number, reads in units
        ]
        deadline = time.monotonic() + 10
        while commits.queued < len(units):
            assert time.monotonic() < deadline, "the units did not queue"
            time.sleep(0.001)
        go.set()
        assert held.result(timeout=10) == 0
        return [future.result(timeout=10) for future in futures]


def test_prepare_gets_a_shared_transaction_s_reads_inside_it_before_any_unit_runs() -> None:
    store = ToyStore()
    prepared: list[tuple[list[object], list[int] | None]] = []

    def prepare(reads: list[object]) -> None:
        prepared.append((reads, None if store.pending is None else list(store.pending)))

    commits = GroupCommit(store.atomic, prepare=prepare)
    answers = _queue_behind(commits, [(1, ("a",)), (2, ()), (3, ("b", "c"))], store.work)
    commits.close()

    assert answers == [10, 20, 30]
    # Once, for the shared transaction only (the held leader ran alone), with every unit's
    # reads, inside the transaction and before any unit wrote.
    [(reads, written)] = prepared
    assert written == []
    assert sorted(map(str, reads)) == ["a", "b", "c"]
    assert store.sizes[-1] == 3


def test_a_prepare_that_fails_leaves_each_unit_to_run_alone_with_its_own_answer() -> None:
    store = ToyStore()

    def failing(reads: list[object]) -> None:
        raise RuntimeError("the batch read failed")

    commits = GroupCommit(store.atomic, prepare=failing)
    answers = _queue_behind(commits, [(1, ("a",)), (2, ("b",)), (3, ())], store.work)
    commits.close()

    assert answers == [10, 20, 30]
    # The leader, then each unit alone: had the three shared a commit, sizes would end in 3.
    assert store.sizes == [0, 1, 1, 1]


def test_run_all_answers_each_work_in_order_in_shared_transactions() -> None:
    """One caller's many works (the check-in writer's): each gets its own outcome, in order;
    a refusal or a failure costs no other its commit; they share transactions of max_batch."""
    store = ToyStore()
    commits = GroupCommit(store.atomic, max_batch=16)
    units = list(range(1, 101))
    answers = commits.run_all([(partial(store.work, unit), (f"unit {unit}",)) for unit in units])
    commits.close()
    assert [a if isinstance(a, int) else type(a) for a in answers] == list(map(expected, units))
    succeeded = [unit for unit in units if isinstance(expected(unit), int)]
    assert sorted(store.committed) == succeeded
    assert max(store.sizes) <= 16
    assert len(store.sizes) - 25 < 16  # mostly shared: not a transaction a unit


def test_run_all_queues_behind_a_leader_and_takes_the_lead_when_handed_it() -> None:
    store = ToyStore()
    commits = GroupCommit(store.atomic, max_batch=4)
    slow, leading, go = held_leader()
    units = [1, 2, 3, 4, 5, 6, 8, 9, 10, 12]  # none that refuses or fails
    with ThreadPoolExecutor(2) as pool:
        held = pool.submit(commits.run, slow)
        assert leading.wait(10)
        many = pool.submit(commits.run_all, [(partial(store.work, unit), ()) for unit in units])
        while commits.queued < len(units):
            time.sleep(0.001)
        go.set()
        assert held.result(timeout=10) == 0
        assert many.result(timeout=10) == [unit * 10 for unit in units]
    commits.close()
    # The leader's transaction, then the ten in transactions of at most four, in order.
    assert store.sizes == [0, 4, 4, 2]
    assert store.committed == units
