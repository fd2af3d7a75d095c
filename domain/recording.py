"""When a fact was recorded: every domain event takes its timestamp from the recording clock.

The application sets the clock around each command (the wall clock in production; a fixed or
simulated one in tests and demo data), so "as of" questions about the log are answerable and
repeatable.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime

from eventsourcing.domain import Aggregate


def _wall_clock() -> datetime:
    return datetime.now(UTC)


_clock: ContextVar[Callable[[], datetime]] = ContextVar("recording_clock", default=_wall_clock)


def recording_time() -> datetime:
    """Now, by the recording clock in effect."""
    return _clock.get()()


@contextmanager
def recording_clock(clock: Callable[[], datetime]) -> Iterator[None]:
    """Record the events triggered inside this block at the times this clock gives."""
    token = _clock.set(clock)
    try:
        yield
    finally:
        _clock.reset(token)


class RecordedAggregate(Aggregate):
    """Base of Tsunagari's aggregates: their events are stamped by the recording clock."""

    class Event(Aggregate.Event):
        @staticmethod
        def create_timestamp() -> datetime:
            return recording_time()

    class Created(Event, Aggregate.Created):
        pass
