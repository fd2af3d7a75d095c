from __future__ import annotations

from collections.abc import Sequence

from projections.indicators.definitions import Indicator
from projections.indicators.model import HeldEvent, IndicatorValue
from projections.indicators.parameters import Parameters


def compute(events: Sequence[HeldEvent], parameters: Parameters) -> IndicatorValue:
    return IndicatorValue(len(events))


INDICATOR = Indicator(
    id="held_events",
    name_ja="開催回数",
    name_en="Held events",
    definition_ja="中止されておらず、取消されていない参加（受付または飛び入り）が1人以上ある回の数。",
    definition_en=(
        "Events not cancelled with at least one counted attendance (check-in or walk-in)."
    ),
    compute=compute,
)
