"""Work of a rebuild in forked children, so that it runs on more than one core.

A rebuild is pure Python under one interpreter lock. Two of its parts can run elsewhere:

- ``forked_iter``: decoding the stored events (reading rows, matching and parsing JSON) in a
  child that streams the decoded pages while the rebuild applies the previous one;
- ``forked_map``: the last step, computing every fiscal year's indicators from the facts, one
  child per year: a forked child starts with the facts already in memory (copy-on-write).

The standard library's process pools would do the same with more machinery (workers, queues,
feeder threads), and their ``fork`` start method is what this does; so this stays a few lines
of ``os.fork`` and pickled answers over a pipe.

The children only compute and write to their pipe, then leave by ``os._exit``: they never
touch the parent's connections, files or locks, and run no exit handlers.
"""

from __future__ import annotations

import os
import pickle
import signal
import traceback
from collections import deque
from collections.abc import Callable, Generator, Iterable
from functools import partial
from itertools import count
from typing import Any, BinaryIO, TypeVar

T = TypeVar("T")
R = TypeVar("R")


def can_fork() -> bool:
    return hasattr(os, "fork")


def forked_map(function: Callable[[T], R], items: Iterable[T], *, workers: int) -> list[R]:
    """``[function(item) for item in items]``, each call in a forked child, at most
    ``workers`` at a time. A child's exception is raised here, with the child's traceback."""
    answers: list[R] = []
    running: deque[tuple[int, BinaryIO]] = deque()  # oldest first
    try:
        for item in items:
            if len(running) >= max(workers, 1):
                answers.append(_answer(*running.popleft()))
            running.append(_spawn(partial(_one, function, item)))
        while running:
            answers.append(_answer(*running.popleft()))
    finally:
        for pid, pipe in running:  # only after an error: leave no child behind
            _stop(pid, pipe)
    return answers


def _one(function: Callable[[T], R], item: T) -> list[R]:
    return [function(item)]


def _answer(pid: int, pipe: BinaryIO) -> Any:
    try:
        answer = _receive(pipe)[1]
        if _receive(pipe)[0] != _END:
            raise RuntimeError("a forked child said more than its answer")
    finally:
        pipe.close()
        os.waitpid(pid, 0)
    return answer


def _stop(pid: int, pipe: BinaryIO) -> None:
    os.kill(pid, signal.SIGKILL)
    pipe.close()
    os.waitpid(pid, 0)


_END = "end"
"""Sent as the first of a pair (in place of True): a child's last message."""


def forked_iter(
    produce: Callable[[int, int], Iterable[T]], *, parts: int = 1
) -> Generator[T, None, None]:
    """The items of ``produce(part, parts)`` for each part, taken in turns (the first item of
    every part, then the second of every part...), each part made in a forked child of its own
    while the caller works on the items before (a pipe holds each child back once it is an
    item ahead). The parts must take turns: once one has no item left, none of the others may
    have one. Closing the iterator early stops the children. A child that fails raises here;
    one that dies without saying it has finished is an error too, never a shorter iteration."""
    children: list[tuple[int, BinaryIO]] = []
    finished: set[int] = set()
    try:
        for part in range(parts):
            children.append(_spawn(partial(produce, part, parts)))
        for turn in count():
            pid, pipe = children[turn % parts]
            ok, item = _receive(pipe)
            if ok == _END:
                finished.add(pid)
                for other, other_pipe in children:
                    if other not in finished:
                        if _receive(other_pipe)[0] != _END:
                            raise RuntimeError("the forked children's parts were out of step")
                        finished.add(other)
                return
            yield item
    finally:
        for pid, pipe in children:
            if pid in finished:
                pipe.close()
                os.waitpid(pid, 0)
            else:
                _stop(pid, pipe)


def _spawn(produce: Callable[[], Iterable[Any]]) -> tuple[int, BinaryIO]:
    """A child sending the pickled items of ``produce()`` down a pipe, then the end."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child
        code = 0
        try:
            os.close(read)
            with os.fdopen(write, "wb") as out:
                try:
                    for item in produce():
                        pickle.dump((True, item), out, pickle.HIGHEST_PROTOCOL)
                        out.flush()
                    pickle.dump((_END, None), out)
                except BrokenPipeError:
                    code = 1  # the parent stopped listening
                except BaseException as error:  # every failure goes to the parent
                    code = 1
                    pickle.dump((False, f"{error!r}\n{traceback.format_exc()}"), out)
        finally:
            os._exit(code)
    os.close(write)
    return pid, os.fdopen(read, "rb")


def _receive(pipe: BinaryIO) -> tuple[Any, Any]:
    try:
        ok, item = pickle.load(pipe)  # noqa: S301 - our own child's answer
    except EOFError:
        raise RuntimeError("a forked child died before it had finished") from None
    if ok is False:
        raise RuntimeError(f"a forked child failed: {item}")
    return ok, item
