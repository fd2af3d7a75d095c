"""Property tests over generated histories: however the log is processed, the answers agree.

Each example records a history through the application on a fresh store (a new SQLite file, or
a new PostgreSQL schema): a few participants with birth years around band edges, a few events
in fiscal 2026 and 2027, in two districts and two programmes, then random check-ins, reverts,
re-check-ins, walk-in tallies and their reverts, cancellations, closings and reschedules across
the fiscal-year boundary, on days that pass on the application's clock.

The live projections follow it (the follower, in small batches, killed and restarted at random
points). Then:

(a) the live answers equal a rebuild from scratch (replay), for every fiscal year and scope;
(b) two rebuilds give identical answers;
(c) "as of" each day equals what the live read model answered at the end of that day, and as
    of the last day equals the live answer;
(d) a rebuild stopped after its first page and run again (resuming) ends equal to the live
    answers; so does every restart of the follower (a fresh projection loaded mid-way);
(e) what-if with the default parameters equals the live answer;
and every answer equals an independent model of the indicators' definitions, written here
from the specification, also under other parameters (small-event cap 2, tie threshold 1).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from itertools import combinations
from typing import Any
from uuid import UUID

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from application.errors import ApplicationError
from domain.errors import DomainError
from domain.programs import Policy
from infrastructure.settings import Settings
from interfaces.bootstrap import Services, build_services
from projections.follower import Follower
from projections.indicators.model import Scope
from projections.indicators.parameters import DEFAULT_PARAMETERS, Parameters
from projections.replay import replay
from projections.whatif import what_if
from tests.indicators.world import World, noon_jst
from tests.support import Clock, PostgresSchema, postgres_settings, settle

KINDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]

# The specification's bands, written out again: the model below must not share the code's.
BANDS = (
    (0, 5, "infant", "child"),
    (6, 12, "elementary", "child"),
    (13, 18, "teen", "child"),
    (19, 29, "young_adult", "working"),
    (30, 64, "adult", "working"),
    (65, 74, "young_old", "senior"),
    (75, 200, "old_old", "senior"),
)
GROUP_OF_BAND = {band: group for _, _, band, group in BANDS}

# Event times (Asia/Tokyo): both sides of 1 January (ages change) and of 1 April (fiscal years).
STARTS = (
    "2026-06-14T10:00",  # fiscal 2026
    "2026-12-20T10:00",  # fiscal 2026, calendar 2026
    "2027-01-17T10:00",  # fiscal 2026, calendar 2027: one year older
    "2027-03-31T23:30",  # the last half hour of fiscal 2026
    "2027-04-01T00:30",  # the first half hour of fiscal 2027
    "2027-12-12T10:00",  # fiscal 2027, calendar 2027
    "2028-02-13T10:00",  # fiscal 2027, calendar 2028
)
# Birth years whose band changes between 2026, 2027 and 2028 (and two people known by band).
PEOPLE = (2022, 2021, 2014, 2009, 2008, 1998, 1962, 1953, 1952, 1940, "teen", "young_old")
DISTRICTS = ("suge", "noborito")
FISCAL_YEARS = (2026, 2027)
FIRST_DAY = date(2026, 5, 1)


# Histories ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class CheckIn:
    event: int
    person: int


@dataclass(frozen=True)
class Revert:
    event: int
    person: int


@dataclass(frozen=True)
class WalkIns:
    event: int
    counts: tuple[tuple[str, int], ...]


@dataclass(frozen=True)
class RevertWalkIns:
    tally: int


@dataclass(frozen=True)
class Cancel:
    event: int


@dataclass(frozen=True)
class Close:
    event: int


@dataclass(frozen=True)
class Reschedule:
    event: int
    start: int


@dataclass(frozen=True)
class RescheduleAll:
    """Every event that can be moved, to one time: it may leave a fiscal year without events."""

    start: int


@dataclass(frozen=True)
class NextDay:
    days: int


@dataclass(frozen=True)
class Restart:
    """Stop the follower between batches and start another: it loads what was committed."""

    batch_size: int


Step = (
    CheckIn
    | Revert
    | WalkIns
    | RevertWalkIns
    | Cancel
    | Close
    | Reschedule
    | RescheduleAll
    | NextDay
    | Restart
)


@dataclass(frozen=True)
class Plan:
    people: tuple[int | str, ...]
    events: tuple[tuple[int, str, int], ...]
    """(programme 0 or 1, district, index into STARTS)"""
    batch_size: int
    page_size: int
    steps: tuple[Step, ...]


index = st.integers(min_value=0, max_value=11)
check_ins = st.builds(CheckIn, index, index)
reverts = st.builds(Revert, index, index)
walk_ins = st.builds(
    WalkIns,
    index,
    st.dictionaries(
        st.sampled_from(list(GROUP_OF_BAND)), st.integers(1, 3), min_size=1, max_size=2
    ).map(lambda counts: tuple(sorted(counts.items()))),
)
steps = st.one_of(
    check_ins,
    check_ins,
    check_ins,
    check_ins,
    reverts,
    reverts,
    walk_ins,
    st.builds(RevertWalkIns, index),
    st.builds(Cancel, index),
    st.builds(Close, index),
    st.builds(Reschedule, index, st.integers(0, len(STARTS) - 1)),
    st.builds(RescheduleAll, st.integers(0, len(STARTS) - 1)),
    st.builds(NextDay, st.integers(1, 45)),
    st.builds(Restart, st.integers(1, 4)),
)
plans = st.builds(
    Plan,
    people=st.lists(st.sampled_from(PEOPLE), min_size=2, max_size=6).map(tuple),
    events=st.lists(
        st.tuples(st.integers(0, 1), st.sampled_from(DISTRICTS), st.integers(0, len(STARTS) - 1)),
        min_size=2,
        max_size=4,
    ).map(tuple),
    batch_size=st.integers(1, 5),
    page_size=st.integers(1, 8),
    steps=st.lists(steps, min_size=4, max_size=30).map(tuple),
)


# The model: the specification, applied to what the application accepted ------------------------


def fiscal_year(day: date) -> int:
    return day.year if day.month >= 4 else day.year - 1


@dataclass
class ModelEvent:
    program: UUID
    district: str
    day: date
    cancelled: bool = False


@dataclass
class ModelTally:
    event: UUID
    counts: dict[str, int]
    counted: bool = True


@dataclass
class Model:
    policies: dict[UUID, str] = field(default_factory=dict)
    hosts: dict[UUID, tuple[UUID, ...]] = field(default_factory=dict)
    people: dict[UUID, int | str] = field(default_factory=dict)
    events: dict[UUID, ModelEvent] = field(default_factory=dict)
    counted: dict[tuple[UUID, UUID], bool] = field(default_factory=dict)
    tallies: list[ModelTally] = field(default_factory=list)

    def band(self, person: UUID, day: date) -> str:
        known = self.people[person]
        if isinstance(known, str):
            return known
        age = day.year - known
        return next(band for low, high, band, _ in BANDS if low <= age <= high)

    def expected(
        self, year: int, scope: Scope, *, cap: int = 30, threshold: int = 2
    ) -> dict[str, dict[str, Any]]:
        """Every indicator by the specification, without names."""
        held: list[tuple[UUID, list[tuple[UUID, str, str]], Counter[str]]] = []
        for event_id, event in self.events.items():
            policy = self.policies[event.program]
            if (
                event.cancelled
                or fiscal_year(event.day) != year
                or scope.district_id not in (None, event.district)
                or scope.program_id not in (None, event.program)
                or scope.policy not in (None, policy)
            ):
                continue
            attendees = [
                (person, self.band(person, event.day), GROUP_OF_BAND[self.band(person, event.day)])
                for (at, person), counted in self.counted.items()
                if at == event_id and counted
            ]
            walked: Counter[str] = Counter()
            for tally in self.tallies:
                if tally.event == event_id and tally.counted:
                    walked.update(tally.counts)
            if attendees or sum(walked.values()):
                held.append((event_id, attendees, walked))

        by_band: Counter[str] = Counter()
        by_group: Counter[str] = Counter()
        people: set[UUID] = set()
        people_by_band: dict[str, set[UUID]] = {}
        people_by_group: dict[str, set[UUID]] = {}
        events_attended: Counter[UUID] = Counter()
        multi = 0
        meetings: Counter[frozenset[UUID]] = Counter()
        support_events = 0
        support_hosts: set[UUID] = set()
        partnerships: set[frozenset[UUID]] = set()
        for event_id, attendees, walked in held:
            program = self.events[event_id].program
            for person, band, group in attendees:
                by_band[band] += 1
                by_group[group] += 1
                people.add(person)
                people_by_band.setdefault(band, set()).add(person)
                people_by_group.setdefault(group, set()).add(person)
                events_attended[person] += 1
            for band, count in walked.items():
                by_band[band] += count
                by_group[GROUP_OF_BAND[band]] += count
            groups = {group for _, _, group in attendees} | {GROUP_OF_BAND[b] for b in walked}
            multi += len(groups) >= 2
            if len(attendees) <= cap:
                for (first, _, g1), (second, _, g2) in combinations(attendees, 2):
                    if g1 != g2:
                        meetings[frozenset((first, second))] += 1
            if self.policies[program] == Policy.MUTUAL_SUPPORT.value:
                support_events += 1
                support_hosts.update(self.hosts[program])
            partnerships.update(frozenset(pair) for pair in combinations(self.hosts[program], 2))
        registered = sum(len(attendees) for _, attendees, _ in held)
        walked_in = sum(sum(walked.values()) for _, _, walked in held)
        return {
            "total_attendances": {
                "value": registered + walked_in,
                "registered": registered,
                "walk_ins": walked_in,
                "by_band": dict(by_band),
                "by_group": dict(by_group),
            },
            "unique_participants": {
                "value": len(people),
                "by_band": {band: len(ids) for band, ids in people_by_band.items()},
                "by_group": {group: len(ids) for group, ids in people_by_group.items()},
            },
            "returning_participants": {
                "value": sum(1 for count in events_attended.values() if count >= 2)
            },
            "held_events": {"value": len(held)},
            "multigenerational_events": {
                "value": multi,
                "share": round(multi / len(held), 4) if held else 0.0,
                "held_events": len(held),
            },
            "cross_generation_encounters": {"value": len(meetings)},
            "loose_ties": {
                "value": sum(1 for count in meetings.values() if count >= threshold),
                "threshold": threshold,
            },
            "support_activities": {
                "value": support_events,
                "active_organizations": len(support_hosts),
            },
            "organization_partnerships": {"value": len(partnerships)},
        }


# Running a history --------------------------------------------------------------------------


@contextmanager
def fresh_store(kind: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """A new, empty store for one example."""
    if kind == "sqlite":
        directory = tmp_path_factory.mktemp("history")
        yield Settings(database_url=f"sqlite:///{directory}/tsunagari.sqlite3")
        return
    with PostgresSchema() as schema:
        yield postgres_settings(schema)


class Run:
    """One history being recorded, with the follower running and the model kept alongside."""

    def __init__(self, services: Services, clock: Clock, plan: Plan) -> None:
        self.services = services
        self.clock = clock
        self.world = World(services.app)
        self.model = Model()
        self.day = FIRST_DAY
        self.follower = self._start_follower(plan.batch_size)
        organizations = [self.world.organization() for _ in range(3)]
        self.programs = [
            self._program(Policy.OPEN_ACTIVITIES, organizations[0], organizations[1]),
            self._program(Policy.MUTUAL_SUPPORT, organizations[1], organizations[2]),
        ]
        self.people = []
        for known in plan.people:
            if isinstance(known, int):
                person = self.world.participant(birth_year=known)
            else:
                person = self.world.participant(band=known)
            self.model.people[person] = known
            self.people.append(person)
        self.events = []
        for program, district, start in plan.events:
            event = self.world.event(self.programs[program], STARTS[start], district)
            self.model.events[event] = ModelEvent(
                self.programs[program], district, date.fromisoformat(STARTS[start][:10])
            )
            self.events.append(event)
        self.tally_ids: list[UUID] = []
        # Materialised scopes (all, a district, a programme, a policy) and one that is not.
        self.scopes = [
            Scope(),
            Scope(district_id="suge"),
            Scope(program_id=self.programs[1]),
            Scope(policy=Policy.OPEN_ACTIVITIES.value),
            Scope(district_id="noborito", policy=Policy.MUTUAL_SUPPORT.value),
        ]
        self.snapshots: dict[date, dict[tuple[int, str], dict[str, Any]]] = {}

    def _program(self, policy: Policy, *hosts: UUID) -> UUID:
        program = self.world.program(*hosts, policy=policy)
        self.model.policies[program] = policy.value
        self.model.hosts[program] = hosts
        return program

    def _start_follower(self, batch_size: int) -> Follower:
        follower = Follower(
            self.services.app,
            self.services.indicators,
            self.services.runner_lock(),
            batch_size=batch_size,
            min_interval=0.0,  # no gathering: batches stay as small as asked
        )
        follower.start()
        return follower

    def apply(self, step: Step) -> None:
        world, model = self.world, self.model
        if isinstance(step, NextDay):
            self.snapshots[self.day] = self.live()
            self.day = date.fromordinal(self.day.toordinal() + step.days)
            self.clock.now = noon_jst(self.day)
            return
        if isinstance(step, Restart):
            # Killed between batches, typically with events still waiting.
            self.follower.stop()
            self.follower = self._start_follower(step.batch_size)
            return
        if isinstance(step, RevertWalkIns) and not self.tally_ids:
            return
        if isinstance(step, RescheduleAll):
            for number in range(len(self.events)):
                self.apply(Reschedule(number, step.start))
            return
        try:
            if isinstance(step, CheckIn):
                event, person = self._event(step.event), self._person(step.person)
                world.check_in(event, person)
                model.counted[event, person] = True
            elif isinstance(step, Revert):
                event, person = self._event(step.event), self._person(step.person)
                world.revert(event, person)
                model.counted[event, person] = False
            elif isinstance(step, WalkIns):
                event = self._event(step.event)
                self.tally_ids.append(world.walk_ins(event, **dict(step.counts)))
                model.tallies.append(ModelTally(event, dict(step.counts)))
            elif isinstance(step, RevertWalkIns):
                number = step.tally % len(self.tally_ids)
                world.revert_walk_ins(model.tallies[number].event, self.tally_ids[number])
                model.tallies[number].counted = False
            elif isinstance(step, Cancel):
                world.cancel(self._event(step.event))
                model.events[self._event(step.event)].cancelled = True
            elif isinstance(step, Close):
                world.close(self._event(step.event))
            elif isinstance(step, Reschedule):
                world.reschedule(self._event(step.event), STARTS[step.start])
                model.events[self._event(step.event)].day = date.fromisoformat(
                    STARTS[step.start][:10]
                )
        except (DomainError, ApplicationError):
            pass  # refused (cancelled or closed event, nothing to revert...): nothing recorded

    def _event(self, number: int) -> UUID:
        return self.events[number % len(self.events)]

    def _person(self, number: int) -> UUID:
        return self.people[number % len(self.people)]

    def live(self) -> dict[tuple[int, str], dict[str, Any]]:
        """Every fiscal year and scope, as the read model answers once caught up."""
        settle(self.services, self.follower)
        return {
            (year, scope.key): self.services.indicators.indicators(year, scope)
            for year in FISCAL_YEARS
            for scope in self.scopes
        }

    def scope(self, key: str) -> Scope:
        return next(scope for scope in self.scopes if scope.key == key)


def essentials(answer: dict[str, Any]) -> dict[str, Any]:
    """An answer without where the read model stood (position) or the day asked (as_of)."""
    return {key: value for key, value in answer.items() if key not in ("position", "as_of")}


def unnamed(indicators: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {
        key: {k: v for k, v in value.items() if k not in ("name_ja", "name_en")}
        for key, value in indicators.items()
    }


@pytest.mark.parametrize("kind", KINDS)
@hypothesis_settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(plan=plans)
def test_every_way_of_processing_the_log_gives_the_same_answers(
    kind: str, plan: Plan, tmp_path_factory: pytest.TempPathFactory
) -> None:
    clock = Clock(noon_jst(FIRST_DAY))
    with fresh_store(kind, tmp_path_factory) as settings:
        services = build_services(settings, clock=clock)
        run = Run(services, clock, plan)
        try:
            for step in plan.steps:
                run.apply(step)
            live = run.live()
            run.snapshots[run.day] = live
            check(run, plan, live)
        finally:
            run.follower.stop()
            services.close()


def check(run: Run, plan: Plan, live: dict[tuple[int, str], dict[str, Any]]) -> None:
    app, read_model, targets = run.services.app, run.services.indicators, run.services.targets
    progress = read_model.progress(targets)

    # The specification, applied to the history the application accepted.
    for (year, key), answer in live.items():
        scope = run.scope(key)
        assert unnamed(answer["indicators"]) == run.model.expected(year, scope), (year, key)
        assert (answer["fiscal_year"], answer["scope"]) == (year, scope.as_dict())
    for year in FISCAL_YEARS:
        small = what_if(app, year, Parameters(small_event_cap=2)).as_dict()
        assert unnamed(small["indicators"]) == run.model.expected(year, Scope(), cap=2), year
        once = what_if(app, year, Parameters(tie_threshold=1)).as_dict()
        assert unnamed(once["indicators"]) == run.model.expected(year, Scope(), threshold=1)

    # (e) what-if with the default parameters is the live answer.
    for (year, key), answer in live.items():
        whatif = what_if(app, year, DEFAULT_PARAMETERS, scope=run.scope(key)).as_dict()
        assert whatif == essentials(answer), (year, key)

    # (c) as of each day that ended: what the live read model answered then; the last day is
    # the live answer.
    for day, snapshot in run.snapshots.items():
        for (year, key), answer in snapshot.items():
            as_of = read_model.indicators(year, run.scope(key), day)
            assert as_of["as_of"] == day.isoformat()
            assert essentials(as_of) == essentials(answer), (day, year, key)
        for year in FISCAL_YEARS:
            whatif = what_if(app, year, DEFAULT_PARAMETERS, as_of=day).as_dict()
            assert whatif == essentials(snapshot[year, Scope().key]), (day, year)

    # (d) a rebuild stopped after its first page (the log always spans several), then again
    # after two more, leaves the live answers alone...
    assert replay(app, read_model, page_size=plan.page_size, stop_after_pages=1) is None
    stopped_at = read_model.generation(2).position()
    assert stopped_at is not None
    resumed = replay(app, read_model, page_size=plan.page_size, stop_after_pages=2)
    if resumed is None:
        assert (read_model.generation(2).position() or 0) > stopped_at
        stopped_at = read_model.generation(2).position() or 0
        assert read_model.active_generation() == 1
        for year in FISCAL_YEARS:
            still = read_model.indicators(year, Scope())
            assert essentials(still) == essentials(live[year, Scope().key])
        # ...and, run again, resumes where it stopped...
        resumed = replay(app, read_model, page_size=plan.page_size)
    assert resumed is not None
    assert (resumed.generation, resumed.resumed_from) == (2, stopped_at)
    assert read_model.active_generation() == 2
    # ...and ends equal to the live answers (a), progress included.
    rebuilt = run.live()
    assert {k: essentials(v) for k, v in rebuilt.items()} == {
        k: essentials(v) for k, v in live.items()
    }
    assert read_model.progress(targets) == progress

    # (b) a second rebuild, from scratch in one go and all in this process (the first one
    # decoded and computed in forked children wherever there are cores to spare), answers
    # exactly the same...
    again = replay(app, read_model, workers=1)
    assert again is not None
    assert (again.generation, again.resumed_from) == (3, 0)
    assert run.live() == rebuilt
    assert read_model.progress(targets) == progress
    # ...and so does "as of" each day, from its history tables.
    for day, snapshot in run.snapshots.items():
        for (year, key), answer in snapshot.items():
            assert essentials(read_model.indicators(year, run.scope(key), day)) == essentials(
                answer
            ), (day, year, key)
