from __future__ import annotations

from projections.indicators.definitions import Indicator, OneByOne, Shared
from projections.indicators.model import HeldEvent, IndicatorValue
from projections.indicators.parameters import Parameters


class MultigenerationalEvents(OneByOne):
    def __init__(self, parameters: Parameters, shared: Shared) -> None:
        self.held = 0
        self.multigenerational = 0

    def add(self, event: HeldEvent, sign: int) -> None:
        self.held += sign
        if len(event.groups) >= 2:
            self.multigenerational += sign

    def value(self) -> IndicatorValue:
        count, held = self.multigenerational, self.held
        share = round(count / held, 4) if held else 0.0
        return IndicatorValue(count, extra={"share": share, "held_events": held})


INDICATOR = Indicator(
    id="multigenerational_events",
    name_ja="多世代交流の機会",
    name_en="Multi-generational events",
    definition_ja=(
        "開催された回のうち、参加者（登録・飛び入り）が2つ以上の世代区分（こども・現役・高齢者）に"
        "またがる回の数と、開催回数に占める割合。"
    ),
    definition_en=(
        "Held events whose attendees (registered and walk-in) include two or more coarse groups "
        "(child, working, senior); also as a share of held events."
    ),
    accumulator=MultigenerationalEvents,
)
