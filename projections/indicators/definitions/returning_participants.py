from __future__ import annotations

from collections import Counter

from projections.indicators.definitions import Indicator, Shared, release
from projections.indicators.model import HeldEvent, IndicatorValue
from projections.indicators.parameters import Parameters


class ReturningParticipants:
    """People by how many held events they attended; those at two or more, counted."""

    def __init__(self, parameters: Parameters, shared: Shared) -> None:
        self.events_of: Counter[int] = Counter()
        self.returning = 0

    def add(self, event: HeldEvent, sign: int) -> None:
        # Crossing between one event and two, either way, is the only change that counts: the
        # people at 2 after adding this event, or before removing it.
        events_of, people = self.events_of, event.participants
        if sign > 0:
            events_of.update(people)
            self.returning += list(map(events_of.__getitem__, people)).count(2)
        else:
            self.returning -= list(map(events_of.__getitem__, people)).count(2)
            release(events_of, people)

    def value(self) -> IndicatorValue:
        return IndicatorValue(self.returning)


INDICATOR = Indicator(
    id="returning_participants",
    name_ja="継続参加者",
    name_en="Returning participants",
    definition_ja="開催された2つ以上の異なる回に、取消されていない受付がある登録参加者の人数。",
    definition_en="Unique participants with counted check-ins at two or more distinct held events.",
    accumulator=ReturningParticipants,
)
