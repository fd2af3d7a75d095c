from __future__ import annotations

from collections.abc import Sequence

from projections.indicators.definitions import Indicator
from projections.indicators.model import HeldEvent, IndicatorValue
from projections.indicators.parameters import Parameters


def compute(events: Sequence[HeldEvent], parameters: Parameters) -> IndicatorValue:
    people: set[int] = set()
    by_band: dict[str, set[int]] = {}
    by_group: dict[str, set[int]] = {}
    for event in events:
        for attendee in event.attendees:
            people.add(attendee.participant)
            by_band.setdefault(attendee.band, set()).add(attendee.participant)
            by_group.setdefault(attendee.group, set()).add(attendee.participant)
    return IndicatorValue(
        len(people),
        {
            "by_band": {band: len(ids) for band, ids in sorted(by_band.items())},
            "by_group": {group: len(ids) for group, ids in sorted(by_group.items())},
        },
    )


INDICATOR = Indicator(
    id="unique_participants",
    name_ja="実人数",
    name_en="Unique participants",
    definition_ja=(
        "開催された回に取消されていない受付が1回以上ある登録参加者の人数。世代別・年代別の内訳は"
        "各回の開催日時点の世代で数えるため、年度内に世代が変わった人は両方に数える。"
    ),
    definition_en=(
        "Distinct registered participants with at least one counted check-in at a held event. "
        "Breakdowns use the band at each event's date, so someone who changed band during the "
        "year appears under both; the headline counts each person once."
    ),
    compute=compute,
)
