"""Work of a rebuild in forked children, so that it runs on more than one core.

A rebuild is pure Python under one interpreter lock. Two of its parts can run elsewhere:

- ``forked_iter``: decoding the stored events (reading rows, matching and parsing JSON) in
  processes that stream the decoded pages while the rebuild applies the previous one;
- ``forked_map``: the last step, computing every fiscal year's indicators from the facts, a
  year per child while this process takes others: a forked child starts with the facts
  already in memory (copy-on-write).

The standard library's process pools would do the same with more machinery (workers, queues,
feeder threads), and their ``fork`` start method is what this does; so this stays a few lines
of multiprocessing's ``Process`` and pickled answers over its pipes.

The children only compute and write to their pipe, then leave by ``os._exit``: they never
touch the parent's connections, files or locks, and run no exit handlers.
"""

from __future__ import annotations

import multiprocessing
import os
import pickle
import threading
import traceback
from collections.abc import Callable, Generator, Iterable
from functools import partial
from itertools import count
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")
R = TypeVar("R")


def can_fork() -> bool:
    return hasattr(os, "fork")


def forks_directly() -> bool:
    """Whether ``forked_iter`` may fork its readers from this process, which takes
    milliseconds, rather than from a fork server, which first starts an interpreter and imports
    (a second or more). Only without other threads: none can hold a lock the child needs.
    Linux lists every thread, those that C extensions start too; elsewhere Python's only."""
    tasks = Path("/proc/self/task")
    return (len(os.listdir(tasks)) if tasks.is_dir() else threading.active_count()) == 1


def forked_map(function: Callable[[T], R], items: Iterable[T], *, workers: int) -> list[R]:
    """``[function(item) for item in items]`` on ``workers`` processes: this one and at most
    ``workers - 1`` forked children at a time. An item goes to a child when one is free; when
    none is, this process takes it itself (a child costs more than the same work here: what
    it reads of the parent's memory, it copies). A child's exception is raised here, with the
    child's traceback."""
    context = multiprocessing.get_context("fork")
    answers: dict[int, R] = {}
    running: dict[int, tuple[Any, Any]] = {}  # item number: (process, receiving end)
    try:
        for number, item in enumerate(items):
            for done in [n for n, (_, receive) in running.items() if receive.poll()]:
                answers[done] = _answer(*running.pop(done))
            if len(running) < workers - 1:
                running[number] = _start(context, partial(_single, function, item), 0, 1)
            else:
                answers[number] = function(item)
        for number in list(running):
            answers[number] = _answer(*running.pop(number))
    finally:
        for process, receive in running.values():  # only after an error: leave no child behind
            _stop(process, receive)
    return [answers[number] for number in sorted(answers)]


def _single(function: Callable[[T], R], item: T, part: int, parts: int) -> list[R]:
    return [function(item)]


def _answer(process: Any, receive: Any) -> Any:
    try:
        answer = _received(receive)[1]
        if _received(receive)[0] != _END:
            raise RuntimeError("a forked child said more than its answer")
    finally:
        receive.close()
        process.join()
    return answer


def _start(
    context: Any, produce: Callable[[int, int], Iterable[Any]], part: int, parts: int
) -> tuple[Any, Any]:
    """A process sending the items of ``produce(part, parts)`` down a pipe (see ``_serve``)."""
    receive, send = context.Pipe(duplex=False)
    process = context.Process(target=_serve, args=(produce, part, parts, send))
    process.start()
    send.close()
    return process, receive


def _stop(process: Any, receive: Any) -> None:
    process.kill()
    receive.close()
    process.join()


_END = "end"
"""Sent as the first of a pair (in place of True): a child's last message."""


def forked_iter(
    produce: Callable[[int, int], Iterable[T]], *, parts: int = 1, direct: bool = True
) -> Generator[T, None, None]:
    """The items of ``produce(part, parts)`` for each part, taken in turns (the first item of
    every part, then the second of every part...), each part made in a process of its own
    while the caller works on the items before (a pipe holds each one back once it is an item
    ahead). The parts must take turns: once one has no item left, none of the others may have
    one. Closing the iterator early stops the processes. One that fails raises here; one that
    dies without saying it has finished is an error too, never a shorter iteration.

    Unlike ``forked_map``'s children, these start clean. They open database connections, and a
    plain fork of a process whose other threads were inside the driver or SQLite (a follower,
    a subscription) can leave the child waiting forever on a lock held by a thread it does not
    have. So they are forked from this process only while it has no other thread (the command
    line's replay; ``direct=False`` refuses even then), and otherwise from multiprocessing's
    fork server, a fresh interpreter with no other thread. For that, ``produce`` must pickle: a
    module-level function, or a ``partial`` of one, with plain arguments; its module is loaded
    once, in the fork server. As everywhere with multiprocessing, a main script must keep its
    work under ``if __name__ == "__main__"``.
    """
    if direct and forks_directly():
        context: Any = multiprocessing.get_context("fork")
    else:
        context = multiprocessing.get_context("forkserver")
        function = getattr(produce, "func", produce)
        # Loaded once, in the fork server (no effect once it runs); the main module too,
        # which multiprocessing would otherwise import again in every process it starts.
        context.set_forkserver_preload(["__main__", function.__module__])
    children: list[tuple[Any, Any]] = []  # (process, receiving end of its pipe)
    finished: set[int] = set()
    try:
        for part in range(parts):
            children.append(_start(context, produce, part, parts))
        for turn in count():
            process, receive = children[turn % parts]
            ok, item = _received(receive)
            if ok == _END:
                finished.add(turn % parts)
                for number, (_, other) in enumerate(children):
                    if number not in finished:
                        if _received(other)[0] != _END:
                            raise RuntimeError("the forked children's parts were out of step")
                        finished.add(number)
                return
            yield item
    finally:
        for number, (process, receive) in enumerate(children):
            if number in finished:
                receive.close()
                process.join()
            else:
                _stop(process, receive)


def _serve(produce: Callable[[int, int], Iterable[Any]], part: int, parts: int, send: Any) -> None:
    """In the process of a part: its items down the pipe, then the end (or the failure)."""
    try:
        for item in produce(part, parts):
            send.send_bytes(pickle.dumps((True, item), pickle.HIGHEST_PROTOCOL))
        send.send_bytes(pickle.dumps((_END, None)))
    except BrokenPipeError:
        pass  # the parent stopped listening
    except BaseException as error:  # every failure goes to the parent
        send.send_bytes(pickle.dumps((False, f"{error!r}\n{traceback.format_exc()}")))
    finally:
        send.close()


def _received(receive: Any) -> tuple[Any, Any]:
    try:
        data = receive.recv_bytes()
    except EOFError:
        raise RuntimeError("a forked child died before it had finished") from None
    ok, item = pickle.loads(data)  # noqa: S301 - our own child's answer
    if ok is False:
        raise RuntimeError(f"a forked child failed: {item}")
    return ok, item
