from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from itertools import chain, compress

from domain.generations import CoarseGroup
from projections.indicators.definitions import Indicator, Shared, release
from projections.indicators.model import KEY_WIDTH, HeldEvent, IndicatorValue
from projections.indicators.parameters import Parameters

_ONE = (1).__eq__


class UniqueParticipants:
    """Distinct people: the scope's shared tally of people, and the number of held events each
    attended in each band and each group (keys from ``HeldEvent.band_keys``/``group_keys``)."""

    PER_ATTENDEE = True  # see definitions.Accumulator

    def __init__(self, parameters: Parameters, shared: Shared) -> None:
        self.people = shared.people()
        self.band_ids = tuple(band.id for band in parameters.bands.bands)
        self.group_ids = tuple(group.value for group in CoarseGroup)
        self.events_in_band: Counter[int] = Counter()
        self.events_in_group: Counter[int] = Counter()
        self.by_band: Counter[str] = Counter()
        self.by_group: Counter[str] = Counter()

    def add(self, event: HeldEvent, sign: int) -> None:
        self.people.add(event, sign)
        # A person enters a band's (or group's) count with their first event in it, and leaves
        # it with their last: the events whose count is 1 after adding, or before removing.
        in_band, in_group = self.events_in_band, self.events_in_group
        if sign > 0:
            in_band.update(event.band_keys)
            in_group.update(event.group_keys)
        entering_band = compress(event.bands, map(_ONE, map(in_band.__getitem__, event.band_keys)))
        entering_group = compress(
            event.groups_of, map(_ONE, map(in_group.__getitem__, event.group_keys))
        )
        if sign > 0:
            self.by_band.update(entering_band)
            self.by_group.update(entering_group)
            return
        release(self.by_band, list(entering_band))
        release(self.by_group, list(entering_group))
        release(in_band, event.band_keys)
        release(in_group, event.group_keys)

    def add_all(self, events: Sequence[HeldEvent]) -> None:
        self.people.add_all(events)
        in_band, in_group = self.events_in_band, self.events_in_group
        in_band.update(chain.from_iterable(event.band_keys for event in events))
        in_group.update(chain.from_iterable(event.group_keys for event in events))
        # Recounted from the keys: one per (person, band) that has events.
        width = KEY_WIDTH.__rmod__
        self.by_band = Counter(map(self.band_ids.__getitem__, map(width, in_band)))
        self.by_group = Counter(map(self.group_ids.__getitem__, map(width, in_group)))

    def value(self) -> IndicatorValue:
        return IndicatorValue(
            len(self.people.events_of),
            {
                "by_band": dict(sorted(self.by_band.items())),
                "by_group": dict(sorted(self.by_group.items())),
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
    accumulator=UniqueParticipants,
)
