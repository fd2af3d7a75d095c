from __future__ import annotations

from collections.abc import Sequence

from projections.indicators.definitions import Indicator
from projections.indicators.model import HeldEvent, IndicatorValue
from projections.indicators.parameters import Parameters


def compute(events: Sequence[HeldEvent], parameters: Parameters) -> IndicatorValue:
    pairs: set[tuple[int, int]] = set()
    for event in events:
        pairs.update(event.cross_pairs)
    return IndicatorValue(len(pairs))


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
    compute=compute,
)
