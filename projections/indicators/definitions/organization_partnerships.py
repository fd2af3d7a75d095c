from __future__ import annotations

from collections.abc import Sequence
from itertools import combinations

from projections.indicators.definitions import Indicator
from projections.indicators.model import HeldEvent, IndicatorValue
from projections.indicators.parameters import Parameters


def compute(events: Sequence[HeldEvent], parameters: Parameters) -> IndicatorValue:
    pairs: set[tuple[str, str]] = set()
    for hosts in {event.host_ids for event in events}:
        pairs.update(combinations(sorted(hosts), 2))
    return IndicatorValue(len(pairs))


INDICATOR = Indicator(
    id="organization_partnerships",
    name_ja="団体間の連携",
    name_en="Organisation partnerships",
    definition_ja="年度内に開催された回が1つ以上ある事業を共催する団体の組（順序なし）の数。",
    definition_en=(
        "Distinct unordered pairs of organisations that co-host a programme with at least one "
        "held event in the fiscal year."
    ),
    compute=compute,
)
