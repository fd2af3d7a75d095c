"""From facts to indicator values: summarise each held event once, then add it to the
definitions' accumulators of every scope it belongs to."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from itertools import combinations, compress
from operator import itemgetter
from typing import Any
from uuid import UUID

from domain.errors import InvalidValue
from domain.fiscal import fiscal_year_label
from domain.generations import DEFAULT_BANDS, Band, CoarseGroup
from domain.programs import Policy
from projections.indicators.definitions import Shared, all_indicators
from projections.indicators.facts import HeldFacts
from projections.indicators.model import KEY_WIDTH, HeldEvent, IndicatorValue, Scope
from projections.indicators.parameters import Parameters


@dataclass(frozen=True)
class IndicatorSet:
    fiscal_year: int
    scope: Scope
    definitions: str
    values: dict[str, IndicatorValue]

    def as_dict(self) -> dict[str, Any]:
        names = {indicator.id: indicator for indicator in all_indicators()}
        return {
            "fiscal_year": self.fiscal_year,
            "label": fiscal_year_label(self.fiscal_year),
            "scope": self.scope.as_dict(),
            "definitions": self.definitions,
            "indicators": {
                key: {
                    **value.as_dict(),
                    "name_ja": names[key].name_ja,
                    "name_en": names[key].name_en,
                }
                for key, value in self.values.items()
            },
        }


Placing = tuple[str, str, int, int]
"""Where a band puts an attendee: band id, coarse group, and their indexes for packed keys."""

Seat = tuple[int, str, str, int, int]
"""An attendee at events of one calendar year: their number, band and group that year, and the
two packed as ``HeldEvent.band_keys``/``group_keys`` are. One tuple, so that an event's
attendees turn into the summary's columns in one ``zip``."""


class Summarizer:
    """Held-event summaries under one set of parameters, cached per event revision."""

    def __init__(self, facts: HeldFacts, parameters: Parameters) -> None:
        self.facts = facts
        self.parameters = parameters
        self._cache: dict[str, tuple[int, HeldEvent | None]] = {}
        self._ids: dict[str, int] = {}
        self._seats: dict[int, dict[str, Seat]] = {}
        """Calendar year: each participant's seat, worked out once rather than at every check-in
        (a participant attends many events of a year); forgotten when a participant's fact is
        replaced (``_seats_of``)."""
        self._seats_as_of = facts.participants_replaced
        self._bands: dict[str, Band] = {}
        self._by_age: dict[int, Placing] = {}
        self._placings: dict[str, Placing] = {}
        self._host_pairs: dict[tuple[str, ...], tuple[tuple[str, str], ...]] = {}
        # Small numbers for band ids and group names, to pack with a participant into one key.
        self._band_index = {band.id: n for n, band in enumerate(parameters.bands.bands)}
        self._group_index = {group.value: n for n, group in enumerate(CoarseGroup)}
        if len(self._band_index) >= KEY_WIDTH:
            raise InvalidValue(f"a band scheme has at most {KEY_WIDTH - 1} bands")

    def held_events(self, fiscal_year: int) -> list[HeldEvent]:
        """Every held event of the fiscal year, in a stable order."""
        held = []
        for event_id in sorted(self.facts.events_by_year.get(fiscal_year, ())):
            summary = self.summary(event_id)
            if summary is not None:
                held.append(summary)
        return held

    def summary(self, event_id: str) -> HeldEvent | None:
        revision = self.facts.revisions[event_id]
        cached = self._cache.get(event_id)
        if cached is not None and cached[0] == revision:
            return cached[1]
        summary = self._summarise(event_id)
        self._cache[event_id] = (revision, summary)
        return summary

    def resolve_band(self, band_id: str) -> Band:
        """A band id of the default scheme (walk-ins, bands given directly) in these parameters.

        Alternative schemes that lack the id take the band holding its youngest age.
        """
        band = self._bands.get(band_id)
        if band is None:
            scheme = self.parameters.bands
            if band_id in scheme.ids:
                band = scheme.get(band_id)
            else:
                band = scheme.band_for_age(DEFAULT_BANDS.get(band_id).min_age)
            self._bands[band_id] = band
        return band

    def _placing(self, band: Band) -> Placing:
        placing = self._placings.get(band.id)
        if placing is None:
            group = band.group.value
            placing = (band.id, group, self._band_index[band.id], self._group_index[group])
            self._placings[band.id] = placing
        return placing

    def _seats_of(self, year: int) -> dict[str, Seat]:
        """The seats of a calendar year, all forgotten once a participant's fact has changed."""
        if self._seats_as_of != self.facts.participants_replaced:
            self._seats_as_of = self.facts.participants_replaced
            self._seats.clear()
        seats = self._seats.get(year)
        if seats is None:
            seats = self._seats[year] = {}
        return seats

    def _seat(self, participant_id: str, year: int) -> Seat:
        """A participant's seat at events dated in a calendar year, worked out and kept."""
        person = self.facts.participants[participant_id]
        if person.birth_year is not None:
            # A check-in at an event dated before the birth year counts as age 0.
            age = max(year - person.birth_year, 0)
            placing = self._by_age.get(age)
            if placing is None:
                band = self.parameters.bands.band_for_age(age)
                placing = self._by_age[age] = self._placing(band)
        else:
            placing = self._placing(self.resolve_band(person.band_id or ""))
        number = self._ids.get(participant_id)
        if number is None:
            number = self._ids[participant_id] = len(self._ids)
        band_id, group, band_index, group_index = placing
        key = number * KEY_WIDTH
        seat = self._seats[year][participant_id] = (
            number,
            band_id,
            group,
            key + band_index,
            key + group_index,
        )
        return seat

    def _summarise(self, event_id: str) -> HeldEvent | None:
        facts = self.facts
        event = facts.events[event_id]
        if event.cancelled:
            return None
        year = event.local_date.year
        seats = self._seats_of(year)
        seat = seats.get
        attendees = [
            seat(participant) or self._seat(participant, year)
            for participant in facts.attendees(event_id)
        ]
        walk_ins: dict[str, int] = {}
        for tally in facts.counted_tallies(event_id):
            for band_id, count in tally.counts:
                resolved = self.resolve_band(band_id).id
                walk_ins[resolved] = walk_ins.get(resolved, 0) + count
        walk_in_total = sum(walk_ins.values())
        if not attendees and not walk_in_total:
            return None
        attendees.sort(key=itemgetter(0))  # by number
        numbers: tuple[int, ...] = ()
        bands: tuple[str, ...] = ()
        groups_of: tuple[str, ...] = ()
        band_keys: tuple[int, ...] = ()
        group_keys: tuple[int, ...] = ()
        if attendees:
            numbers, bands, groups_of, band_keys, group_keys = zip(*attendees, strict=True)
        by_band = Counter(zip(bands, groups_of, strict=True))
        groups = set(groups_of)
        groups.update(self.resolve_band(b).group.value for b, n in walk_ins.items() if n)
        small = len(attendees) <= self.parameters.small_event_cap
        pairs: list[int] = []
        if small and len(groups) > 1:
            members: dict[str, list[int]] = {group: [] for group in groups}
            for number, group in zip(numbers, groups_of, strict=True):
                members[group].append(number)
            lists = list(members.values())
            for i, first in enumerate(lists):
                for second in lists[i + 1 :]:
                    pairs += [a << 32 | b if a < b else b << 32 | a for a in first for b in second]
        program = facts.programs[event.program_id]
        host_pairs = self._host_pairs.get(program.host_ids)
        if host_pairs is None:
            host_pairs = tuple(combinations(sorted(program.host_ids), 2))
            self._host_pairs[program.host_ids] = host_pairs
        return HeldEvent(
            event_id=event_id,
            fiscal_year=event.fiscal_year,
            program_id=event.program_id,
            policy=program.policy,
            district_id=event.district_id,
            host_ids=program.host_ids,
            host_pairs=host_pairs,
            participants=numbers,
            bands=bands,
            groups_of=groups_of,
            band_keys=band_keys,
            group_keys=group_keys,
            registered_by_band=tuple(
                (band, group, count) for (band, group), count in sorted(by_band.items())
            ),
            walk_ins=dict(sorted(walk_ins.items())),
            walk_in_total=walk_in_total,
            groups=frozenset(groups),
            small=small,
            cross_pairs=tuple(pairs),
        )


def _attendee_changes(previous: HeldEvent, summary: HeldEvent) -> tuple[HeldEvent, HeldEvent]:
    """The attendees of ``previous`` not in ``summary`` and those of ``summary`` not in
    ``previous``, each as a summary of only those attendees. An attendee is their band key
    (participant and band together), so one whose band changed both leaves and comes."""
    return _only(previous, set(summary.band_keys)), _only(summary, set(previous.band_keys))


def _only(event: HeldEvent, others: set[int]) -> HeldEvent:
    """``event`` with only the attendees whose band key is not among ``others``."""
    keep = [key not in others for key in event.band_keys]
    return replace(
        event,
        participants=tuple(compress(event.participants, keep)),
        bands=tuple(compress(event.bands, keep)),
        groups_of=tuple(compress(event.groups_of, keep)),
        band_keys=tuple(compress(event.band_keys, keep)),
        group_keys=tuple(compress(event.group_keys, keep)),
    )


BASE_SCOPES = (Scope(), *(Scope(policy=policy.value) for policy in Policy))
"""Materialised for every fiscal year with events, held or not; district and programme scopes
only while they have held events."""


class ScopeTally:
    """Every indicator's accumulator for one fiscal year and scope."""

    __slots__ = ("accumulators", "held")

    def __init__(self, parameters: Parameters) -> None:
        self.held = 0
        shared = Shared(parameters)
        self.accumulators = [
            (indicator.id, indicator.accumulator(parameters, shared))
            for indicator in all_indicators()
        ]

    def add(self, event: HeldEvent, sign: int) -> None:
        self.held += sign
        for _, accumulator in self.accumulators:
            accumulator.add(event, sign)

    def change(
        self, previous: HeldEvent, summary: HeldEvent, left: HeldEvent, came: HeldEvent
    ) -> None:
        """A held event that stays held (and in this scope) changed from ``previous`` to
        ``summary``; ``left`` and ``came`` hold only its attendees who are in one and not the
        other. Each per-attendee accumulator takes only those; the others take the old
        summary out and the new one in, as ``add`` would. Every accumulator hears of the
        removal before any hears of the addition: the tallies two definitions share count
        what both pass on in a row once (``definitions._FedOnce``)."""
        for _, accumulator in self.accumulators:
            per_attendee = getattr(accumulator, "PER_ATTENDEE", False)
            accumulator.add(left if per_attendee else previous, -1)
        for _, accumulator in self.accumulators:
            per_attendee = getattr(accumulator, "PER_ATTENDEE", False)
            accumulator.add(came if per_attendee else summary, 1)

    def add_all(self, events: Sequence[HeldEvent]) -> None:
        self.held += len(events)
        for _, accumulator in self.accumulators:
            accumulator.add_all(events)

    def values(self) -> dict[str, IndicatorValue]:
        return {key: accumulator.value() for key, accumulator in self.accumulators}


class Ledger:
    """Every fiscal year's indicators in every standard scope, kept event by event.

    Each held event's summary is added to the accumulators of its fiscal year in the four
    scopes it belongs to (all, its district, its programme, its policy). When an event changes,
    its old summary is taken out and the new one put in: a batch costs what its events changed,
    not a recomputation of their fiscal years.
    """

    def __init__(self, parameters: Parameters) -> None:
        self.parameters = parameters
        self.tallies: dict[int, dict[Scope, ScopeTally]] = {}
        self.contributions: dict[str, HeldEvent] = {}
        """The summary each event contributes now, to take out exactly when it changes."""
        self._scopes: dict[tuple[str, str, str], tuple[Scope, ...]] = {}

    def build(self, summaries: Iterable[tuple[str, HeldEvent | None]]) -> None:
        """Add many events' summaries to an empty ledger at once (a rebuild): each scope's
        accumulators count its events in bulk."""
        by_scope: dict[tuple[int, Scope], list[HeldEvent]] = {}
        for event_id, summary in summaries:
            if summary is None:
                continue
            self.contributions[event_id] = summary
            for scope in self.scopes_of(summary):
                key = (summary.fiscal_year, scope)
                events = by_scope.get(key)
                if events is None:
                    events = by_scope[key] = []
                events.append(summary)
        for (year, scope), events in by_scope.items():
            tally = ScopeTally(self.parameters)
            tally.add_all(events)
            self.tallies.setdefault(year, {})[scope] = tally

    def apply(self, event_id: str, summary: HeldEvent | None) -> set[tuple[int, Scope]]:
        """Make an event's contribution its current summary (None: not held, or gone);
        answers the (fiscal year, scope) pairs whose values changed."""
        previous = self.contributions.get(event_id)
        if previous is summary:
            return set()
        if (
            previous is not None
            and summary is not None
            and previous.fiscal_year == summary.fiscal_year
            and self.scopes_of(previous) == self.scopes_of(summary)
        ):
            # The usual change: check-ins at an event already held. Its per-attendee
            # accumulators take only who came and who left, not every attendee twice (out with
            # the old summary, in with the new): at a festival with thousands of attendees
            # that was most of each batch's time.
            self.contributions[event_id] = summary
            left, came = _attendee_changes(previous, summary)
            tallies = self.tallies[summary.fiscal_year]
            for scope in self.scopes_of(summary):
                tallies[scope].change(previous, summary, left, came)
            return {(summary.fiscal_year, scope) for scope in self.scopes_of(summary)}
        changed: set[tuple[int, Scope]] = set()
        if previous is not None:
            del self.contributions[event_id]
            changed.update(self._add(previous, -1))
        if summary is not None:
            self.contributions[event_id] = summary
            changed.update(self._add(summary, 1))
        return changed

    def _add(self, event: HeldEvent, sign: int) -> list[tuple[int, Scope]]:
        year = event.fiscal_year
        tallies = self.tallies.get(year)
        if tallies is None:
            tallies = self.tallies[year] = {}
        scopes = self.scopes_of(event)
        for scope in scopes:
            tally = tallies.get(scope)
            if tally is None:
                tally = tallies[scope] = ScopeTally(self.parameters)
            tally.add(event, sign)
            if not tally.held and scope not in BASE_SCOPES:
                del tallies[scope]  # every count is back to zero: nothing left to keep
        return [(year, scope) for scope in scopes]

    def scopes_of(self, event: HeldEvent) -> tuple[Scope, ...]:
        """The standard scopes a held event counts in."""
        key = (event.district_id, event.program_id, event.policy)
        scopes = self._scopes.get(key)
        if scopes is None:
            scopes = self._scopes[key] = (
                Scope(),
                Scope(district_id=event.district_id),
                Scope(program_id=UUID(event.program_id)),
                Scope(policy=event.policy),
            )
        return scopes

    def standard_scopes(self, fiscal_year: int) -> list[Scope]:
        """The scopes materialised for a fiscal year (that has events)."""
        tallies = self.tallies.get(fiscal_year, {})
        others = (scope for scope in tallies if scope not in BASE_SCOPES)
        return [*BASE_SCOPES, *sorted(others, key=lambda scope: scope.key)]

    def indicator_set(self, fiscal_year: int, scope: Scope) -> IndicatorSet:
        """The values of a standard scope."""
        tally = self.tallies.get(fiscal_year, {}).get(scope) or ScopeTally(self.parameters)
        return IndicatorSet(fiscal_year, scope, self.parameters.version, tally.values())


def compute_indicators(
    held: Iterable[HeldEvent], fiscal_year: int, scope: Scope, parameters: Parameters
) -> IndicatorSet:
    """Every indicator over the held events of one fiscal year that the scope admits."""
    tally = ScopeTally(parameters)
    tally.add_all([event for event in held if scope.admits(event)])
    return IndicatorSet(fiscal_year, scope, parameters.version, tally.values())
