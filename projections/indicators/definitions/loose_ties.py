from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from projections.indicators.definitions import Indicator
from projections.indicators.model import HeldEvent, IndicatorValue
from projections.indicators.parameters import Parameters


def compute(events: Sequence[HeldEvent], parameters: Parameters) -> IndicatorValue:
    meetings: Counter[tuple[int, int]] = Counter()
    for event in events:
        meetings.update(event.cross_pairs)
    ties = sum(1 for count in meetings.values() if count >= parameters.tie_threshold)
    return IndicatorValue(ties, extra={"threshold": parameters.tie_threshold})


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
    compute=compute,
)
