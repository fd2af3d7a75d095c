"""Rebuilds the indicators' read models from the whole log, beside the live ones.

A replay builds the next generation of tables from scratch, committing facts and tracking
every page, so a killed replay resumes where it stopped. When it has caught up with the log it
computes every fiscal year's values and makes its generation the active one in a single
transaction; until then queries keep answering from the old generation, and afterwards the
live follower carries on from where the replay stopped.
"""

from __future__ import annotations

import gc
import os
from collections.abc import Callable, Generator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from typing import Any

from eventsourcing.application import Application

from projections.forked import can_fork, forked_iter, forks_directly
from projections.indicators.facts import CheckIns, Decoded, decode_page
from projections.indicators.projection import IndicatorProjection
from projections.indicators.read_model import IndicatorReadModel
from projections.indicators.store import Generation
from projections.log_reader import LogReader, LogSource

PAGE_SIZE = 20_000
MAX_WORKERS = 4
"""Beyond a few readers, the database, not decoding, sets the pace; and each holds a
connection."""
READERS_FROM = 2
"""Pages left to read from which a rebuild starts reader processes (forked from itself)."""
READERS_FROM_SERVER = 8
"""The same when they come from a fork server (see ``forks_directly``), slower to start."""


@dataclass(frozen=True)
class ReplayResult:
    generation: int
    resumed_from: int
    position: int
    events: int
    """Stored events that carried facts (the others were skipped unread)."""


def replay(
    app: Application[Any],
    read_model: IndicatorReadModel,
    *,
    progress: Callable[[int], None] = lambda n: None,
    total: Callable[[int], None] = lambda n: None,
    page_size: int = PAGE_SIZE,
    stop_after_pages: int | None = None,
    workers: int | None = None,
) -> ReplayResult | None:
    """Rebuild into a fresh generation and switch to it; None when stopped early (tests).

    ``workers``: forked processes that read and decode the log, and processes (this one and
    forked children) that compute the fiscal years' values at the end (default: one per core,
    at most ``MAX_WORKERS``; 1: everything in this process)."""
    datastore = read_model.datastore
    with datastore.transaction(commit=True) as session:
        state = read_model.control.read(session)
        if state is None:
            raise RuntimeError("ix_control lost its row")  # created with the read model
        active, building = state
        fresh = building is None
        if building is None:
            building = active + 1
            read_model.control.write(session, active=active, building=building)
    if fresh:
        # The generation before the active one is no longer read by anyone: retire it. The
        # active one stays until the next replay, for queries that were already under way.
        _drop(read_model, active - 1)
        _drop(read_model, building)  # leftovers of an abandoned generation must not leak in
    generation = read_model.generation(building, indexes=False)
    projection = IndicatorProjection(datastore, generation, read_model.parameters)
    projection.load(values=False)
    start = projection.position or 0
    reader = LogReader(app)
    head = reader.head()
    total(max(head - start, 0))
    # Millions of small long-lived objects: the cyclic collector would walk them over and over
    # (a fifth of a rebuild's time) and find nothing, since facts hold no cycles.
    gc.disable()
    try:
        return _rebuild(
            read_model,
            projection,
            reader,
            building,
            start,
            page_size,
            progress,
            stop_after_pages,
            min(os.cpu_count() or 1, MAX_WORKERS) if workers is None else workers,
        )
    finally:
        gc.enable()


def _rebuild(
    read_model: IndicatorReadModel,
    projection: IndicatorProjection,
    reader: LogReader,
    building: int,
    start: int,
    page_size: int,
    progress: Callable[[int], None],
    stop_after_pages: int | None,
    workers: int,
) -> ReplayResult | None:
    datastore = read_model.datastore
    done = 0
    events = 0
    position = start
    # One page is written (in a thread: the driver writes without holding the GIL) while the
    # next one is read and decoded. Each page commits its facts with its tracking position,
    # so a replay killed at any point resumes from the last page committed.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="replay-writer") as writer:
        writing: Future[None] | None = None
        # The log grows while we read it: go round until a pass finds nothing new.
        while True:
            caught_up = True
            # Decoding in a child process when there are cores to spare: see projections.forked.
            # Starting reader processes costs more than it saves for the shortest logs.
            head = reader.head()
            # Forked from here only while the facts in memory are few (not when resuming):
            # the readers live as long as the pass, and every page of facts this process
            # changed meanwhile would be copied, up to twice their size.
            direct = forks_directly() and len(projection.facts.attendances) < page_size
            least = READERS_FROM if direct else READERS_FROM_SERVER
            forked = workers > 1 and can_fork() and head - position >= least * page_size
            # One head for every reader, so that their pages take turns exactly.
            if forked:
                source = reader.source()
                produce = partial(_decoded_part, source, position, head, page_size)
                pages = forked_iter(produce, parts=workers, direct=direct)
            else:
                pages = _decoded_pages(reader, position, head, page_size, 0, 1)
            for (check_ins, others), through in pages:
                caught_up = False
                recorded = projection.apply(check_ins, others)
                if writing is not None:
                    writing.result()
                writing = writer.submit(projection.write, recorded, check_ins, through)
                events += len(check_ins.positions) + len(others)
                progress(through - position)
                position = through
                done += 1
                if stop_after_pages is not None and done >= stop_after_pages:
                    writing.result()
                    pages.close()
                    return None
            if caught_up:
                break
        if writing is not None:
            writing.result()
    # The indexes are built by SQLite or PostgreSQL (no interpreter lock held) while the
    # values are computed; the values are written once both are done.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="replay-indexes") as indexer:
        indexing = indexer.submit(projection.generation.create_indexes, datastore.engine)
        values = projection.compute_all(workers=workers)
        indexing.result()
    projection.write_all(values)
    with datastore.transaction(commit=True) as session:
        read_model.control.write(session, active=building, building=None)
    return ReplayResult(building, start, position, events)


def _decoded_pages(
    reader: LogReader, position: int, head: int, page_size: int, part: int, parts: int
) -> Generator[tuple[tuple[CheckIns, list[Decoded]], int], None, None]:
    """The log's fact-bearing events after a position, decoded, a page at a time: of ``parts``
    readers taking turns, the pages of reader ``part``."""
    ranges = reader.ranges(position, page_size=page_size, until=head)
    for number, (after, upto) in enumerate(ranges):
        if number % parts == part:
            rows = next(reader.pages(after, page_size=page_size, until=upto))[0]
            yield decode_page(rows), upto


def _decoded_part(
    source: LogSource, position: int, head: int, page_size: int, part: int, parts: int
) -> Generator[tuple[tuple[CheckIns, list[Decoded]], int], None, None]:
    """``_decoded_pages`` in a reader process of its own, with an engine of its own."""
    reader = LogReader.at(source)
    try:
        yield from _decoded_pages(reader, position, head, page_size, part, parts)
    finally:
        reader.engine.dispose()


def _drop(read_model: IndicatorReadModel, number: int) -> None:
    if number >= 1:
        generation: Generation = read_model.generation(number)
        generation.drop(read_model.datastore.engine)
        read_model.forget(number)
