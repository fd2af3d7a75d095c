from __future__ import annotations

from collections.abc import Sequence

from projections.indicators.definitions import Indicator, Shared
from projections.indicators.model import HeldEvent, IndicatorValue
from projections.indicators.parameters import Parameters


class LooseTies:
    """Cross-group pairs that met at ``tie_threshold`` small events or more (the scope's shared
    tally counts them as they cross the threshold)."""

    def __init__(self, parameters: Parameters, shared: Shared) -> None:
        self.threshold = parameters.tie_threshold
        self.meetings = shared.meetings()

    def add(self, event: HeldEvent, sign: int) -> None:
        self.meetings.add(event, sign)

    def add_all(self, events: Sequence[HeldEvent]) -> None:
        self.meetings.add_all(events)

    def value(self) -> IndicatorValue:
        return IndicatorValue(self.meetings.ties, extra={"threshold": self.threshold})


INDICATOR = Indicator(
    id="loose_ties",
    name_ja="ゆるやかなつながり",
    name_en="Loose ties",
    definition_ja=(
        "年度内に2つ以上の異なる小規模な回で、異なる世代区分として同席した登録参加者の組の数"
        "（顔見知りの代理指標）。"
    ),
    definition_en=(
        "Distinct unordered pairs who were in different coarse groups at two or more distinct "
        "small events in the fiscal year: the proxy for neighbours who know each other by sight."
    ),
    accumulator=LooseTies,
)
