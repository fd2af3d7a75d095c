"""From facts to indicator values: summarise each held event once, then apply definitions."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from domain.fiscal import fiscal_year_label
from domain.generations import DEFAULT_BANDS, Band
from projections.indicators.definitions import all_indicators
from projections.indicators.facts import Facts
from projections.indicators.model import Attendee, HeldEvent, IndicatorValue, Scope
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


class Summarizer:
    """Held-event summaries under one set of parameters, cached per event revision."""

    def __init__(self, facts: Facts, parameters: Parameters) -> None:
        self.facts = facts
        self.parameters = parameters
        self._cache: dict[str, tuple[int, HeldEvent | None]] = {}
        self._ids: dict[str, int] = {}
        self._bands: dict[str, Band] = {}
        self._by_age: dict[int, Band] = {}

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

    def _summarise(self, event_id: str) -> HeldEvent | None:
        facts = self.facts
        event = facts.events[event_id]
        if event.cancelled:
            return None
        attendees = []
        for attendance_id in facts.attendances_by_event.get(event_id, ()):
            attendance = facts.attendances[attendance_id]
            if not attendance.counted:
                continue
            person = facts.participants[attendance.participant_id]
            if person.birth_year is not None:
                # A check-in at an event dated before the birth year counts as age 0.
                age = max(event.local_date.year - person.birth_year, 0)
                band = self._by_age.get(age) or self._by_age.setdefault(
                    age, self.parameters.bands.band_for_age(age)
                )
            else:
                band = self.resolve_band(person.band_id or "")
            number = self._ids.setdefault(attendance.participant_id, len(self._ids))
            attendees.append(Attendee(number, band.id, band.group.value))
        walk_ins: dict[str, int] = {}
        for tally_id in facts.walk_ins_by_event.get(event_id, ()):
            tally = facts.walk_ins[tally_id]
            if tally.counted:
                for band_id, count in tally.counts:
                    resolved = self.resolve_band(band_id).id
                    walk_ins[resolved] = walk_ins.get(resolved, 0) + count
        if not attendees and not any(walk_ins.values()):
            return None
        attendees.sort(key=lambda attendee: attendee.participant)
        groups = {attendee.group for attendee in attendees}
        groups.update(self.resolve_band(b).group.value for b, n in walk_ins.items() if n)
        small = len(attendees) <= self.parameters.small_event_cap
        pairs: list[tuple[int, int]] = []
        if small:
            for i, first in enumerate(attendees):
                for second in attendees[i + 1 :]:
                    if first.group != second.group:
                        pairs.append((first.participant, second.participant))
        program = facts.programs[event.program_id]
        return HeldEvent(
            event_id=event_id,
            program_id=event.program_id,
            policy=program.policy,
            district_id=event.district_id,
            host_ids=program.host_ids,
            attendees=tuple(attendees),
            walk_ins=dict(sorted(walk_ins.items())),
            groups=frozenset(groups),
            small=small,
            cross_pairs=tuple(pairs),
        )


def compute_indicators(
    held: Iterable[HeldEvent], fiscal_year: int, scope: Scope, parameters: Parameters
) -> IndicatorSet:
    """Every indicator over the held events of one fiscal year that the scope admits."""
    events = [event for event in held if scope.admits(event)]
    return _indicator_set(events, fiscal_year, scope, parameters)


def compute_scopes(
    held: Sequence[HeldEvent], fiscal_year: int, scopes: Sequence[Scope], parameters: Parameters
) -> dict[str, IndicatorSet]:
    """Indicators for many single-filter scopes, each event list built in one pass."""
    by_key: dict[str, list[HeldEvent]] = {Scope().key: list(held)}
    for event in held:
        for scope in (
            Scope(district_id=event.district_id),
            Scope(program_id=UUID(event.program_id)),
            Scope(policy=event.policy),
        ):
            by_key.setdefault(scope.key, []).append(event)
    answers = {}
    for scope in scopes:
        events = by_key.get(scope.key)
        if events is None:
            events = [event for event in held if scope.admits(event)]
        answers[scope.key] = _indicator_set(events, fiscal_year, scope, parameters)
    return answers


def _indicator_set(
    events: Sequence[HeldEvent], fiscal_year: int, scope: Scope, parameters: Parameters
) -> IndicatorSet:
    values = {indicator.id: indicator.compute(events, parameters) for indicator in all_indicators()}
    return IndicatorSet(fiscal_year, scope, parameters.version, values)
