from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from projections.indicators.definitions import Indicator
from projections.indicators.model import HeldEvent, IndicatorValue
from projections.indicators.parameters import Parameters


def compute(events: Sequence[HeldEvent], parameters: Parameters) -> IndicatorValue:
    events_attended: Counter[int] = Counter()
    for event in events:
        for attendee in event.attendees:
            events_attended[attendee.participant] += 1
    return IndicatorValue(sum(1 for count in events_attended.values() if count >= 2))


INDICATOR = Indicator(
    id="returning_participants",
    name_ja="継続参加者",
    name_en="Returning participants",
    definition_ja="開催された2つ以上の異なる回に、取消されていない受付がある登録参加者の人数。",
    definition_en="Unique participants with counted check-ins at two or more distinct held events.",
    compute=compute,
)
