from __future__ import annotations

from collections.abc import Sequence

from projections.indicators.definitions import Indicator, Shared
from projections.indicators.model import HeldEvent, IndicatorValue
from projections.indicators.parameters import Parameters


class CrossGenerationEncounters:
    """Cross-group pairs that met at one small event or more (the scope's shared tally)."""

    def __init__(self, parameters: Parameters, shared: Shared) -> None:
        self.meetings = shared.meetings()

    def add(self, event: HeldEvent, sign: int) -> None:
        self.meetings.add(event, sign)

    def add_all(self, events: Sequence[HeldEvent]) -> None:
        self.meetings.add_all(events)

    def value(self) -> IndicatorValue:
        return IndicatorValue(len(self.meetings.counts))


INDICATOR = Indicator(
    id="cross_generation_encounters",
    name_ja="世代を超えた出会い",
    name_en="Cross-generation encounters",
    definition_ja=(
        "同じ小規模な回（取消されていない登録参加者が上限以下、既定30人）に参加し、その回で異なる"
        "世代区分だった登録参加者の組（順序なし）の数。同じ組は年度内で1回だけ数える。"
    ),
    definition_en=(
        "Distinct unordered pairs of registered participants who, at the same small event "
        "(at most 30 counted registered attendees by default), were in different coarse groups."
    ),
    accumulator=CrossGenerationEncounters,
)
