from __future__ import annotations

from collections import Counter

from projections.indicators.definitions import Indicator, OneByOne, Shared, release
from projections.indicators.model import HeldEvent, IndicatorValue
from projections.indicators.parameters import Parameters


class OrganizationPartnerships(OneByOne):
    """Pairs of co-hosts, each with the number of held events of their programmes."""

    def __init__(self, parameters: Parameters, shared: Shared) -> None:
        self.events_of_pair: Counter[tuple[str, str]] = Counter()

    def add(self, event: HeldEvent, sign: int) -> None:
        if sign > 0:
            self.events_of_pair.update(event.host_pairs)
        else:
            release(self.events_of_pair, event.host_pairs)

    def value(self) -> IndicatorValue:
        return IndicatorValue(len(self.events_of_pair))


INDICATOR = Indicator(
    id="organization_partnerships",
    name_ja="団体間の連携",
    name_en="Organisation partnerships",
    definition_ja="年度内に開催された回が1つ以上ある事業を共催する団体の組（順序なし）の数。",
    definition_en=(
        "Distinct unordered pairs of organisations that co-host a programme with at least one "
        "held event in the fiscal year."
    ),
    accumulator=OrganizationPartnerships,
)
