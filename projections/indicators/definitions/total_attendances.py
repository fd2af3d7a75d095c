from __future__ import annotations

from projections.indicators.definitions import Indicator, OneByOne, Shared, bump
from projections.indicators.model import HeldEvent, IndicatorValue
from projections.indicators.parameters import Parameters


class TotalAttendances(OneByOne):
    """Check-ins and walk-ins, summed, by band and by coarse group."""

    def __init__(self, parameters: Parameters, shared: Shared) -> None:
        self.group_of = {band.id: band.group.value for band in parameters.bands.bands}
        self.registered = 0
        self.walk_ins = 0
        self.by_band: dict[str, int] = {}
        self.by_group: dict[str, int] = {}

    def add(self, event: HeldEvent, sign: int) -> None:
        by_band, by_group = self.by_band, self.by_group
        for band, group, count in event.registered_by_band:
            bump(by_band, band, sign * count)
            bump(by_group, group, sign * count)
        for band, count in event.walk_ins.items():
            bump(by_band, band, sign * count)
            bump(by_group, self.group_of[band], sign * count)
        self.registered += sign * len(event.participants)
        self.walk_ins += sign * event.walk_in_total

    def value(self) -> IndicatorValue:
        return IndicatorValue(
            self.registered + self.walk_ins,
            {
                "by_band": dict(sorted(self.by_band.items())),
                "by_group": dict(sorted(self.by_group.items())),
            },
            {"registered": self.registered, "walk_ins": self.walk_ins},
        )


INDICATOR = Indicator(
    id="total_attendances",
    name_ja="延べ人数",
    name_en="Total attendances",
    definition_ja="開催された回の登録参加者の受付数（取消を除く）と飛び入り参加者数の合計。",
    definition_en="Counted check-ins of registered participants plus walk-ins at held events.",
    accumulator=TotalAttendances,
)
