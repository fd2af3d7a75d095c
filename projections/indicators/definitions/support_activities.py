from __future__ import annotations

from collections.abc import Sequence

from domain.programs import Policy
from projections.indicators.definitions import Indicator
from projections.indicators.model import HeldEvent, IndicatorValue
from projections.indicators.parameters import Parameters


def compute(events: Sequence[HeldEvent], parameters: Parameters) -> IndicatorValue:
    support = [event for event in events if event.policy == Policy.MUTUAL_SUPPORT.value]
    organizations = {host for event in support for host in event.host_ids}
    return IndicatorValue(len(support), extra={"active_organizations": len(organizations)})


INDICATOR = Indicator(
    id="support_activities",
    name_ja="支え合い活動",
    name_en="Mutual-support activities",
    definition_ja="基本方針2-2（身近な地域での支え合い活動の推進）の事業の開催された回の数。",
    definition_en="Held events of policy 2-2 programmes (neighbourhood mutual support).",
    compute=compute,
)
