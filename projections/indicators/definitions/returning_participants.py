from __future__ import annotations

from collections.abc import Sequence

from projections.indicators.definitions import Indicator, Shared
from projections.indicators.model import HeldEvent, IndicatorValue
from projections.indicators.parameters import Parameters


class ReturningParticipants:
    """People at two or more held events (the scope's shared tally of people counts them as
    they cross from one event to two)."""

    PER_ATTENDEE = True  # see definitions.Accumulator

    def __init__(self, parameters: Parameters, shared: Shared) -> None:
        self.people = shared.people()

    def add(self, event: HeldEvent, sign: int) -> None:
        self.people.add(event, sign)

    def add_all(self, events: Sequence[HeldEvent]) -> None:
        self.people.add_all(events)

    def value(self) -> IndicatorValue:
        return IndicatorValue(self.people.returning)


INDICATOR = Indicator(
    id="returning_participants",
    name_ja="継続参加者",
    name_en="Returning participants",
    definition_ja="開催された2つ以上の異なる回に、取消されていない受付がある登録参加者の人数。",
    definition_en="Unique participants with counted check-ins at two or more distinct held events.",
    accumulator=ReturningParticipants,
)
