"""One module per indicator definition (v1). Each has a SPEC and a compute()."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from projections.indicators.model import HeldEvent, IndicatorValue
from projections.indicators.parameters import Parameters


@dataclass(frozen=True)
class Indicator:
    id: str
    name_ja: str
    name_en: str
    definition_ja: str
    definition_en: str
    compute: Callable[[Sequence[HeldEvent], Parameters], IndicatorValue]


def all_indicators() -> tuple[Indicator, ...]:
    """Every indicator, in the order reports show them."""
    from projections.indicators.definitions import (
        cross_generation_encounters,
        held_events,
        loose_ties,
        multigenerational_events,
        organization_partnerships,
        returning_participants,
        support_activities,
        total_attendances,
        unique_participants,
    )

    return (
        total_attendances.INDICATOR,
        unique_participants.INDICATOR,
        returning_participants.INDICATOR,
        held_events.INDICATOR,
        multigenerational_events.INDICATOR,
        cross_generation_encounters.INDICATOR,
        loose_ties.INDICATOR,
        support_activities.INDICATOR,
        organization_partnerships.INDICATOR,
    )
