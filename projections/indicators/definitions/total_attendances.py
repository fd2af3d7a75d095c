from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from projections.indicators.definitions import Indicator
from projections.indicators.model import HeldEvent, IndicatorValue
from projections.indicators.parameters import Parameters


def compute(events: Sequence[HeldEvent], parameters: Parameters) -> IndicatorValue:
    by_band: Counter[str] = Counter()
    by_group: Counter[str] = Counter()
    for event in events:
        for attendee in event.attendees:
            by_band[attendee.band] += 1
            by_group[attendee.group] += 1
        for band_id, count in event.walk_ins.items():
            by_band[band_id] += count
            by_group[parameters.bands.get(band_id).group.value] += count
    registered = sum(len(event.attendees) for event in events)
    walk_ins = sum(sum(event.walk_ins.values()) for event in events)
    return IndicatorValue(
        registered + walk_ins,
        {"by_band": dict(sorted(by_band.items())), "by_group": dict(sorted(by_group.items()))},
        {"registered": registered, "walk_ins": walk_ins},
    )


INDICATOR = Indicator(
    id="total_attendances",
    name_ja="延べ人数",
    name_en="Total attendances",
    definition_ja="開催された回の登録参加者の受付数（取消を除く）と飛び入り参加者数の合計。",
    definition_en="Counted check-ins of registered participants plus walk-ins at held events.",
    compute=compute,
)
