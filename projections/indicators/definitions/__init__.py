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

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol, TypeVar

from projections.indicators.model import HeldEvent, IndicatorValue
from projections.indicators.parameters import Parameters

_K = TypeVar("_K")


class Accumulator(Protocol):
    """One indicator's running value over the held events added so far."""

    def add(self, event: HeldEvent, sign: int) -> None:
        """Add (sign 1) or remove (sign -1) the contribution of one held event."""

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


class Meetings:
    """Cross-group pairs with the number of small events at which they met, and how many
    pairs met at ``tie_threshold`` events or more: what encounters and loose ties both read.

    There are millions of pairs, so the two definitions of a scope share one tally. Each of
    them passes every event on; the tally counts it once (the same event and sign twice in a
    row is the second definition passing it on).
    """

    def __init__(self, parameters: Parameters) -> None:
        self.threshold = parameters.tie_threshold
        self.counts: Counter[int] = Counter()
        self.ties = 0
        self._last: tuple[HeldEvent, int] | None = None

    def add(self, event: HeldEvent, sign: int) -> None:
        last = self._last
        if last is not None and last[0] is event and last[1] == sign:
            return
        self._last = (event, sign)
        # A pair becomes (or stops being) a tie when its count crosses the threshold: the pairs
        # at the threshold after adding this event, or before removing it.
        counts, pairs = self.counts, event.cross_pairs
        if sign > 0:
            counts.update(pairs)
            self.ties += list(map(counts.__getitem__, pairs)).count(self.threshold)
        else:
            self.ties -= list(map(counts.__getitem__, pairs)).count(self.threshold)
            release(counts, pairs)


class Shared:
    """Tallies that several definitions of one scope read, made on first use."""

    def __init__(self, parameters: Parameters) -> None:
        self.parameters = parameters
        self._meetings: Meetings | None = None

    def meetings(self) -> Meetings:
        if self._meetings is None:
            self._meetings = Meetings(self.parameters)
        return self._meetings


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
        for event in events:
            accumulator.add(event, 1)
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
