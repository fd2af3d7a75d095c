from __future__ import annotations

from projections.indicators.definitions import Indicator, OneByOne, Shared
from projections.indicators.model import HeldEvent, IndicatorValue
from projections.indicators.parameters import Parameters


class HeldEvents(OneByOne):
    def __init__(self, parameters: Parameters, shared: Shared) -> None:
        self.held = 0

    def add(self, event: HeldEvent, sign: int) -> None:
        self.held += sign

    def value(self) -> IndicatorValue:
        return IndicatorValue(self.held)


INDICATOR = Indicator(
    id="held_events",
    name_ja="開催回数",
    name_en="Held events",
    definition_ja="中止されておらず、取消されていない参加（受付または飛び入り）が1人以上ある回の数。",
    definition_en=(
        "Events not cancelled with at least one counted attendance (check-in or walk-in)."
    ),
    accumulator=HeldEvents,
)
