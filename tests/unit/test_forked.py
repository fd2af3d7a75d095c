"""Work in forked children: answers in order, failures raised here, no child left behind."""

from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import pytest

from projections.forked import can_fork, forked_iter, forked_map, forks_directly

pytestmark = pytest.mark.skipif(
    not can_fork() or not Path("/proc/self/task").exists(), reason="needs fork and Linux's /proc"
)


def square(n: int) -> tuple[int, int]:
    return n * n, os.getpid()


def test_forked_map_answers_in_order_from_children_and_from_here() -> None:
    answers = forked_map(square, range(7), workers=3)
    assert [value for value, _ in answers] == [n * n for n in range(7)]
    pids = [pid for _, pid in answers]
    # The first two go to the two children's places, free at the start; the third finds
    # them busy, unless a child was already done, and is done here.
    assert os.getpid() not in pids[:2]
    assert len(set(pids[:2])) == 2
    assert multiprocessing.active_children() == []


def wait_for(marker: Path) -> None:
    deadline = time.monotonic() + 20
    while not marker.exists():
        assert time.monotonic() < deadline, f"{marker.name} never came"
        time.sleep(0.01)


def test_forked_map_works_here_while_every_child_is_busy(tmp_path: Path) -> None:
    marker = tmp_path / "item 2 was done"

    def item(n: int) -> tuple[int, int]:
        if n == 0:
            wait_for(marker)  # busy until item 2 is done: it can only be done here
        if n == 2:
            marker.touch()
        return n * n, os.getpid()

    answers = forked_map(item, range(3), workers=2)
    assert [value for value, _ in answers] == [0, 1, 4]
    child, here, again = (pid for _, pid in answers)
    assert child != os.getpid()
    assert here == again == os.getpid()


def test_a_child_that_has_finished_makes_room_for_the_next_item(tmp_path: Path) -> None:
    started_here = tmp_path / "item 1 started here"
    child_pid = tmp_path / "item 0 is done, by this pid"

    def item(n: int) -> tuple[int, int]:
        if n == 0:
            wait_for(started_here)  # busy until item 1 is under way here
            child_pid.write_text(str(os.getpid()))
        if n == 1:
            started_here.touch()
            wait_for(child_pid)
            wait_for_exit(int(child_pid.read_text()))  # its answer is in the pipe
        return n * n, os.getpid()

    answers = forked_map(item, range(3), workers=2)
    assert [value for value, _ in answers] == [0, 1, 4]
    first, here, then = (pid for _, pid in answers)
    assert here == os.getpid()
    assert len({first, here, then}) == 3  # item 2 went to a child of its own


def wait_for_exit(pid: int) -> None:
    """Until a child of this process has exited (it stays a zombie until joined)."""
    deadline = time.monotonic() + 20
    while Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z":
        assert time.monotonic() < deadline, f"child {pid} never exited"
        time.sleep(0.01)


def test_one_worker_is_this_process_alone() -> None:
    answers = forked_map(square, range(3), workers=1)
    assert answers == [(0, os.getpid()), (1, os.getpid()), (4, os.getpid())]


def test_forked_map_sees_what_the_parent_held_when_it_forked() -> None:
    held = {"facts": [1, 2, 3]}
    assert forked_map(lambda key: sum(held[key]), ["facts"], workers=2) == [6]


def fail(n: int) -> int:
    if n == 2:
        raise ValueError("year 2 has no events")
    return n


def test_a_failing_child_is_raised_here_with_its_reason() -> None:
    before = _children()
    with pytest.raises(RuntimeError, match="year 2 has no events"):
        forked_map(fail, [2, 1, 0, 3], workers=2)  # the child's place is free for the first
    _no_children_left(before)


def test_a_failure_here_stops_the_children() -> None:
    before = _children()
    with pytest.raises(ValueError, match="year 2 has no events"):
        forked_map(slow_fail, [1, 2, 3], workers=2)  # 1 in the child (slow), 2 here
    _no_children_left(before)


def slow_fail(n: int) -> int:
    if n == 1:
        time.sleep(5)
    return fail(n)


def test_a_child_that_dies_without_an_answer_is_an_error() -> None:
    def die(n: int) -> int:
        os._exit(3)

    with pytest.raises(RuntimeError, match="died before it had finished"):
        forked_map(die, [1], workers=2)


def pages(count: int, part: int = 0, parts: int = 1) -> Iterator[list[int]]:
    for page in range(part, count, parts):
        yield list(range(page * 10, page * 10 + 10))


# What readers run must pickle (they may start from the fork server): module-level.


def uneven(part: int, parts: int) -> Iterator[int]:
    yield from range(3 if part == 0 else 5)


def broken(part: int, parts: int) -> Iterator[int]:
    yield 1
    raise OSError("the log's file went away")


def killed(part: int, parts: int) -> Iterator[int]:
    yield 1
    os.kill(os.getpid(), signal.SIGKILL)
    yield 2  # never reached


def pid_of_reader(part: int, parts: int) -> Iterator[tuple[int, int, int]]:
    yield os.getpid(), os.getppid(), threading.active_count()


def test_forked_iter_streams_every_item_in_order() -> None:
    assert list(forked_iter(partial(pages, 50))) == list(pages(50))
    assert multiprocessing.active_children() == []


def test_parts_made_by_readers_of_their_own_come_back_in_turns() -> None:
    taken = forked_iter(partial(pages, 49), parts=3)
    assert next(taken) == list(range(10))
    assert [next(taken) for _ in range(47)] + list(taken) == list(pages(49))[1:]


def test_readers_start_clean_even_from_a_process_with_other_threads() -> None:
    stop = threading.Event()
    busy = threading.Thread(target=stop.wait)
    busy.start()
    try:
        assert not forks_directly()
        (pid, parent, threads), (other, _, _) = forked_iter(pid_of_reader, parts=2)
    finally:
        stop.set()
        busy.join()
    assert len({pid, other, os.getpid()}) == 3
    assert threads == 1  # none of this process's threads came along
    assert parent != os.getpid()  # the fork server's child, not ours


DIRECT = """
import os
from projections.forked import forked_iter, forks_directly
from tests.unit.test_forked import pid_of_reader

assert forks_directly()
for pid, parent, threads in forked_iter(pid_of_reader, parts=2):
    print(pid, parent, threads, os.getpid())
"""


def test_readers_of_a_process_without_other_threads_are_its_own_forks() -> None:
    # Under pytest a timeout thread is always there: a process of its own has none.
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run(
        [sys.executable, "-c", DIRECT], cwd=root, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    lines = [tuple(map(int, line.split())) for line in done.stdout.splitlines()]
    assert len(lines) == 2
    (pid, parent, threads, main), (other, other_parent, _, _) = lines
    assert len({pid, other, main}) == 3
    assert parent == other_parent == main
    assert threads == 1


def test_parts_out_of_step_are_an_error() -> None:
    with pytest.raises(RuntimeError, match="out of step"):
        list(forked_iter(uneven, parts=2))


def test_forked_iter_stopped_early_stops_its_readers() -> None:
    items = forked_iter(partial(pages, 10_000), parts=2)
    assert next(items) == list(range(10))
    readers = multiprocessing.active_children()
    assert len(readers) == 2
    items.close()
    assert not any(reader.is_alive() for reader in readers)


def test_forked_iter_raises_what_the_child_raised() -> None:
    items = forked_iter(broken)
    assert next(items) == 1
    with pytest.raises(RuntimeError, match="the log's file went away"):
        next(items)


def test_a_reader_killed_midway_is_an_error_not_a_shorter_log() -> None:
    with pytest.raises(RuntimeError, match="died before it had finished"):
        list(forked_iter(killed))


def _children() -> set[int]:
    """This process's children, live or not yet reaped (Linux)."""
    tasks = Path(f"/proc/{os.getpid()}/task")
    return {int(pid) for task in tasks.iterdir() for pid in (task / "children").read_text().split()}


def _no_children_left(before: set[int]) -> None:
    assert _children() <= before
