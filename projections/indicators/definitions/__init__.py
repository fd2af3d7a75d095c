"""One module per indicator definition (v1). Each has a SPEC and an accumulator.

Every indicator is a sum of reference counts over held events, so each definition is written
as an accumulator that adds (``sign=1``) or removes (``sign=-1``) one held event's
contribution. The live projection keeps one per fiscal year and scope and applies only the
events a batch changed; a rebuild, an "as of" answer or a what-if adds every event once. Both
go through the same ``add``: there is one definition, not an incremental copy of it.

Removing exactly what was added is the accumulators' contract: a count reaching zero is
forgotten, so an accumulator that has had every event added and removed again is empty.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from itertools import chain
from typing import Protocol, TypeVar

from projections.indicators.model import HeldEvent, IndicatorValue
from projections.indicators.parameters import Parameters

_K = TypeVar("_K")


class Accumulator(Protocol):
    """One indicator's running value over the held events added so far.

    An accumulator whose ``PER_ATTENDEE`` is true counts each registered attendee of an event
    on their own (by ``participants``, ``bands``, ``groups_of``, ``band_keys``,
    ``group_keys``), and nothing else of the event: a change to a held event can then be
    given to it as the attendees who left and those who came (``ScopeTally.change``).
    """

    def add(self, event: HeldEvent, sign: int) -> None:
        """Add (sign 1) or remove (sign -1) the contribution of one held event."""

    def add_all(self, events: Sequence[HeldEvent]) -> None:
        """Add many events at once, exactly as ``add(event, 1)`` for each would (a rebuild:
        counted in bulk, in C where it can)."""

    def value(self) -> IndicatorValue:
        """The indicator over the events currently added."""


def release(counts: Counter[_K], keys: Iterable[_K]) -> None:
    """Take one off the count of each key (as often as it appears); zero counts are forgotten.

    Adding is ``Counter.update``, which counts in C; removals are rare (a revert, a change to
    an event already counted), so this plain loop is enough.
    """
    for key in keys:
        count = counts[key] - 1
        if count:
            counts[key] = count
        else:
            del counts[key]


def bump(counts: dict[_K, int], key: _K, delta: int) -> None:
    """Add ``delta`` to a count; zero counts are forgotten."""
    if delta:
        count = counts.get(key, 0) + delta
        if count:
            counts[key] = count
        else:
            del counts[key]


class _FedOnce:
    """A tally two definitions of a scope share: each passes every event on, and the tally
    counts it once (the same event, or list of events, and sign twice in a row is the second
    definition passing it on)."""

    def __init__(self) -> None:
        self._last: tuple[object, int] | None = None

    def _fresh(self, item: object, sign: int) -> bool:
        last = self._last
        if last is not None and last[0] is item and last[1] == sign:
            return False
        self._last = (item, sign)
        return True


class Meetings(_FedOnce):
    """Cross-group pairs with the number of small events at which they met, and how many
    pairs met at ``tie_threshold`` events or more: what encounters and loose ties both read
    (there are millions of pairs: one tally per scope, not two)."""

    def __init__(self, parameters: Parameters) -> None:
        super().__init__()
        self.threshold = parameters.tie_threshold
        self.counts: Counter[int] = Counter()
        self.ties = 0

    def add(self, event: HeldEvent, sign: int) -> None:
        if not self._fresh(event, sign):
            return
        # A pair becomes (or stops being) a tie when its count crosses the threshold: the pairs
        # at the threshold after adding this event, or before removing it.
        counts, pairs = self.counts, event.cross_pairs
        if sign > 0:
            counts.update(pairs)
            self.ties += list(map(counts.__getitem__, pairs)).count(self.threshold)
        else:
            self.ties -= list(map(counts.__getitem__, pairs)).count(self.threshold)
            release(counts, pairs)

    def add_all(self, events: Sequence[HeldEvent]) -> None:
        if not self._fresh(events, 2):
            return
        self.counts.update(chain.from_iterable(event.cross_pairs for event in events))
        self.ties = sum(map(self.threshold.__le__, self.counts.values()))


class People(_FedOnce):
    """Participants with the number of held events each attended, and how many attended two
    or more: what unique and returning participants both read."""

    def __init__(self) -> None:
        super().__init__()
        self.events_of: Counter[int] = Counter()
        self.returning = 0

    def add(self, event: HeldEvent, sign: int) -> None:
        if not self._fresh(event, sign):
            return
        # Crossing between one event and two, either way, is the only change that counts: the
        # people at 2 after adding this event, or before removing it.
        events_of, people = self.events_of, event.participants
        if sign > 0:
            events_of.update(people)
            self.returning += list(map(events_of.__getitem__, people)).count(2)
        else:
            self.returning -= list(map(events_of.__getitem__, people)).count(2)
            release(events_of, people)

    def add_all(self, events: Sequence[HeldEvent]) -> None:
        if not self._fresh(events, 2):
            return
        self.events_of.update(chain.from_iterable(event.participants for event in events))
        self.returning = sum(map((2).__le__, self.events_of.values()))


class Shared:
    """Tallies that several definitions of one scope read, made on first use."""

    def __init__(self, parameters: Parameters) -> None:
        self.parameters = parameters
        self._meetings: Meetings | None = None
        self._people: People | None = None

    def meetings(self) -> Meetings:
        if self._meetings is None:
            self._meetings = Meetings(self.parameters)
        return self._meetings

    def people(self) -> People:
        if self._people is None:
            self._people = People()
        return self._people


class OneByOne(ABC):
    """``add_all`` as one ``add`` per event: for definitions whose work per event is small."""

    @abstractmethod
    def add(self, event: HeldEvent, sign: int) -> None:
        """Add (sign 1) or remove (sign -1) the contribution of one held event."""

    def add_all(self, events: Sequence[HeldEvent]) -> None:
        for event in events:
            self.add(event, 1)


@dataclass(frozen=True)
class Indicator:
    id: str
    name_ja: str
    name_en: str
    definition_ja: str
    definition_en: str
    accumulator: Callable[[Parameters, Shared], Accumulator]

    def compute(self, events: Iterable[HeldEvent], parameters: Parameters) -> IndicatorValue:
        """The indicator over these held events."""
        accumulator = self.accumulator(parameters, Shared(parameters))
        accumulator.add_all(list(events))
        return accumulator.value()


def all_indicators() -> tuple[Indicator, ...]:
    """Every indicator, in the order reports show them."""
    from projections.indicators.definitions import (
        cross_generation_encounters,
        held_events,
        loose_ties,
        multigenerational_events,
        organization_partnerships,
        returning_participants,
        support_activities,
        total_attendances,
        unique_participants,
    )

    return (
        total_attendances.INDICATOR,
        unique_participants.INDICATOR,
        returning_participants.INDICATOR,
        held_events.INDICATOR,
        multigenerational_events.INDICATOR,
        cross_generation_encounters.INDICATOR,
        loose_ties.INDICATOR,
        support_activities.INDICATOR,
        organization_partnerships.INDICATOR,
    )
