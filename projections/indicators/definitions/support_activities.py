from __future__ import annotations

from collections import Counter

from domain.programs import Policy
from projections.indicators.definitions import Indicator, OneByOne, Shared, release
from projections.indicators.model import HeldEvent, IndicatorValue
from projections.indicators.parameters import Parameters

SUPPORT = Policy.MUTUAL_SUPPORT.value


class SupportActivities(OneByOne):
    """Held policy 2-2 events, and their hosts with how many of those events each hosted."""

    def __init__(self, parameters: Parameters, shared: Shared) -> None:
        self.events = 0
        self.events_of_host: Counter[str] = Counter()

    def add(self, event: HeldEvent, sign: int) -> None:
        if event.policy != SUPPORT:
            return
        self.events += sign
        if sign > 0:
            self.events_of_host.update(event.host_ids)
        else:
            release(self.events_of_host, event.host_ids)

    def value(self) -> IndicatorValue:
        return IndicatorValue(self.events, extra={"active_organizations": len(self.events_of_host)})


INDICATOR = Indicator(
    id="support_activities",
    name_ja="支え合い活動",
    name_en="Mutual-support activities",
    definition_ja="基本方針2-2（身近な地域での支え合い活動の推進）の事業の開催された回の数。",
    definition_en="Held events of policy 2-2 programmes (neighbourhood mutual support).",
    accumulator=SupportActivities,
)
