"""Property tests of the incremental accumulators behind the live indicators.

The live projection adds and removes single events' contributions (``Ledger``); these tests
drive it through every kind of change, straight on the in-memory facts, and after each one
compare every standard scope with the same indicators computed from scratch. A small-event cap
of 2 makes events cross the cap both ways (the third attendee makes an event not small, a
revert makes it small again), and tie thresholds of 1 to 3 make pairs cross them both ways.
At the end every event is taken out again, which must leave nothing behind.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, replace
from datetime import date
from typing import Any

from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from domain.programs import Policy
from projections.indicators.compute import Ledger, Summarizer, compute_indicators
from projections.indicators.facts import (
    AttendanceFact,
    EventFact,
    Facts,
    ParticipantFact,
    ProgramFact,
    WalkInFact,
)
from projections.indicators.parameters import Parameters

PROGRAMS = (  # ids as stored: 32 hex digits
    ProgramFact("0" * 32, Policy.OPEN_ACTIVITIES.value, ("o1", "o2")),
    ProgramFact("1" * 32, Policy.MUTUAL_SUPPORT.value, ("o2", "o3", "o4")),
    ProgramFact("2" * 32, Policy.MUTUAL_SUPPORT.value, ("o1",)),
)
# Dates on both sides of 1 January (ages change) and of 1 April (fiscal years change).
DAYS = (date(2026, 6, 1), date(2026, 12, 20), date(2027, 1, 10), date(2027, 4, 1))
BIRTHS: tuple[int | str, ...] = (2020, 2008, 1962, 1952, 1940, "teen", "young_old")
DISTRICTS = ("suge", "noborito")


@dataclass(frozen=True)
class CheckIn:
    event: int
    person: int
    counted: bool


@dataclass(frozen=True)
class Tally:
    event: int
    counts: tuple[tuple[str, int], ...]


@dataclass(frozen=True)
class RevertTally:
    tally: int


@dataclass(frozen=True)
class Cancel:
    event: int


@dataclass(frozen=True)
class Move:
    event: int
    day: int
    district: int


@dataclass(frozen=True)
class Rebirth:
    """A participant's fact replaced by one with another birth year or band."""

    person: int
    birth: int | str


Change = CheckIn | Tally | RevertTally | Cancel | Move | Rebirth

people = st.integers(0, 7)
events = st.integers(0, 4)
changes = st.lists(
    st.one_of(
        st.builds(CheckIn, events, people, st.just(True)),
        st.builds(CheckIn, events, people, st.just(True)),
        st.builds(CheckIn, events, people, st.booleans()),
        st.builds(
            Tally,
            events,
            st.dictionaries(
                st.sampled_from(["infant", "teen", "adult", "old_old"]),
                st.integers(1, 3),
                min_size=1,
                max_size=2,
            ).map(lambda counts: tuple(sorted(counts.items()))),
        ),
        st.builds(RevertTally, st.integers(0, 5)),
        st.builds(Cancel, events),
        st.builds(Move, events, st.integers(0, len(DAYS) - 1), st.integers(0, 1)),
        st.builds(Rebirth, people, st.sampled_from(BIRTHS)),
    ),
    min_size=1,
    max_size=40,
)


class History:
    """Facts changed one at a time, with a ledger kept up to date the way the projection does."""

    def __init__(self, parameters: Parameters, births: tuple[int | str, ...]) -> None:
        self.parameters = parameters
        self.facts = Facts()
        for program in PROGRAMS:
            self.facts.put(program)
        self.people = [f"person{n}" for n in range(len(births))]
        for person, birth in zip(self.people, births, strict=True):
            if isinstance(birth, int):
                self.facts.put(ParticipantFact(person, birth, None))
            else:
                self.facts.put(ParticipantFact(person, None, birth))
        self.events = [f"event{n}" for n in range(5)]
        for number, event in enumerate(self.events):
            program_id = PROGRAMS[number % len(PROGRAMS)].program_id
            day, district = DAYS[number % len(DAYS)], DISTRICTS[number % 2]
            self.facts.put(EventFact(event, program_id, district, day, False))
        self.tallies: list[str] = []
        self.summarizer = Summarizer(self.facts, parameters)
        self.ledger = Ledger(parameters)
        self.sync()

    def sync(self) -> None:
        for event_id in self.facts.take_changed():
            self.ledger.apply(event_id, self.summarizer.summary(event_id))

    def change(self, change: Change) -> None:
        facts = self.facts
        if isinstance(change, CheckIn):
            event = self.events[change.event]
            person = self.people[change.person % len(self.people)]
            facts.put(AttendanceFact(f"{event}/{person}", event, person, change.counted))
        elif isinstance(change, Tally):
            tally_id = f"tally{len(self.tallies)}"
            self.tallies.append(tally_id)
            facts.put(WalkInFact(tally_id, self.events[change.event], change.counts, True))
        elif isinstance(change, RevertTally):
            if self.tallies:
                tally = facts.walk_ins[self.tallies[change.tally % len(self.tallies)]]
                facts.put(replace(tally, counted=False))
        elif isinstance(change, Cancel):
            facts.put(replace(facts.events[self.events[change.event]], cancelled=True))
        elif isinstance(change, Rebirth):
            person = self.people[change.person % len(self.people)]
            birth = change.birth
            year, band = (birth, None) if isinstance(birth, int) else (None, birth)
            facts.put(ParticipantFact(person, year, band))
        else:
            moved = facts.events[self.events[change.event]]
            facts.put(
                replace(moved, local_date=DAYS[change.day], district_id=DISTRICTS[change.district])
            )
        self.sync()

    def incremental(self) -> dict[tuple[int, str], dict[str, Any]]:
        return {
            (year, scope.key): self.ledger.indicator_set(year, scope).as_dict()
            for year in self.ledger.tallies
            for scope in self.ledger.standard_scopes(year)
        }

    def from_scratch(self) -> dict[tuple[int, str], dict[str, Any]]:
        """Every scope, computed again from a fresh summarizer, one scope at a time; a fresh
        ledger built from every event at once must hold the same scopes and values."""
        fresh = Summarizer(self.facts, self.parameters)
        rebuilt = Ledger(self.parameters)
        rebuilt.build((event_id, fresh.summary(event_id)) for event_id in self.facts.events)
        answers = {}
        for year in set(self.ledger.tallies) | set(rebuilt.tallies):
            held = fresh.held_events(year)
            assert self.ledger.standard_scopes(year) == rebuilt.standard_scopes(year)
            for scope in rebuilt.standard_scopes(year):
                answer = compute_indicators(held, year, scope, self.parameters).as_dict()
                assert rebuilt.indicator_set(year, scope).as_dict() == answer
                answers[year, scope.key] = answer
        return answers


@hypothesis_settings(max_examples=150, deadline=None)
@given(
    cap=st.integers(2, 3),
    threshold=st.integers(1, 3),
    births=st.lists(st.sampled_from(BIRTHS), min_size=3, max_size=8).map(tuple),
    steps=changes,
)
def test_adding_and_removing_single_events_equals_computing_from_scratch(
    cap: int, threshold: int, births: tuple[int | str, ...], steps: list[Change]
) -> None:
    history = History(Parameters(small_event_cap=cap, tie_threshold=threshold), births)
    for step in steps:
        history.change(step)
        assert history.incremental() == history.from_scratch(), step

    # Taking every event out leaves every tally empty: nothing was added that is not removed.
    for event_id in list(history.ledger.contributions):
        history.ledger.apply(event_id, None)
    for tallies in history.ledger.tallies.values():
        for tally in tallies.values():
            assert tally.held == 0
            for key, accumulator in tally.accumulators:
                assert leftovers(accumulator) == {}, key
                if hasattr(accumulator, "meetings"):
                    assert leftovers(accumulator.meetings) == {}, key


def leftovers(accumulator: object) -> dict[str, Any]:
    """What an accumulator still counts: non-empty counters, non-zero counts."""
    parameters = ("group_of", "threshold", "_last")
    return {
        name: value
        for name, value in vars(accumulator).items()
        if name not in parameters and (isinstance(value, Counter | dict | int) and value)
    }
