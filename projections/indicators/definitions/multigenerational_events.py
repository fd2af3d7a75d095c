from __future__ import annotations

from collections.abc import Sequence

from projections.indicators.definitions import Indicator
from projections.indicators.model import HeldEvent, IndicatorValue
from projections.indicators.parameters import Parameters


def compute(events: Sequence[HeldEvent], parameters: Parameters) -> IndicatorValue:
    count = sum(1 for event in events if len(event.groups) >= 2)
    share = round(count / len(events), 4) if events else 0.0
    return IndicatorValue(count, extra={"share": share, "held_events": len(events)})


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
    compute=compute,
)
