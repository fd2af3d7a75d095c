"""The demo data set: deterministic, shaped like the plan, and consistent with the roster.

Each store is a real SQLite file loaded once per module through ``load_demo``; the tests read it
back only through the application's queries, the roster and the log.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from uuid import UUID

import pytest

from domain.events import JST
from domain.organizations import OrganizationKind
from domain.programs import Policy, ProgramArea
from infrastructure.settings import Settings
from interfaces.bootstrap import Services, build_services
from interfaces.demo import (
    AGE_BRACKETS,
    PROGRAM_NAMES,
    DemoPlan,
    DemoSummary,
    load_demo,
    plan_size,
    sample_age,
)

PLAN = DemoPlan(residents=200, fiscal_years=2)
TODAY = date(2026, 6, 15)  # early in 2026年度: a full year and a bit, to keep the test quick
NOW = datetime(2026, 6, 15, 3, 0, tzinfo=UTC)  # 12:00 in Tokyo
EVENT_SCHEDULED = "domain.events:Event.Scheduled"
PROGRAM_LAUNCHED = "domain.programs:Program.Launched"
ORGANIZATION_REGISTERED = "domain.organizations:Organization.Registered"
PARTICIPANT_REGISTERED = "domain.participants:Participant.Registered"

SEED_PROGRAMMES: dict[str, tuple[Policy, ProgramArea]] = {
    "子育てサロン・子育てひろば": (Policy.OPEN_ACTIVITIES, ProgramArea.CHILDREN),
    "外国人の子育てひろば": (Policy.OPEN_ACTIVITIES, ProgramArea.CHILDREN),
    "たまたま子育てまつり": (Policy.OPEN_ACTIVITIES, ProgramArea.CHILDREN),
    "身体測定・遊びの広場": (Policy.OPEN_ACTIVITIES, ProgramArea.CHILDREN),
    "多摩区子育て支援パスポート事業": (Policy.OPEN_ACTIVITIES, ProgramArea.CHILDREN),
    "子ども子育て推進事業": (Policy.OPEN_ACTIVITIES, ProgramArea.CHILDREN),
    "障がい者社会参加学習活動": (Policy.OPEN_ACTIVITIES, ProgramArea.ELDERLY_DISABLED),
    "「Anker フロントウン生田」との連携イベント・教室": (
        Policy.OPEN_ACTIVITIES,
        ProgramArea.COMMUNITY,
    ),
    "多摩区スポーツフェスタ": (Policy.OPEN_ACTIVITIES, ProgramArea.COMMUNITY),
    "川崎市多摩スポーツセンターの運営": (Policy.OPEN_ACTIVITIES, ProgramArea.COMMUNITY),
    "魅力的な公園整備事業": (Policy.OPEN_ACTIVITIES, ProgramArea.COMMUNITY),
    "地域包括ケアシステムの推進": (Policy.MUTUAL_SUPPORT, ProgramArea.COMMUNITY),
    "地区カルテ等を活用した地域ごとの情報の集約と見える化": (
        Policy.MUTUAL_SUPPORT,
        ProgramArea.COMMUNITY,
    ),
    "多摩区・3大学連携事業": (Policy.MUTUAL_SUPPORT, ProgramArea.COMMUNITY),
    "生田地区コミュニティ推進事業": (Policy.MUTUAL_SUPPORT, ProgramArea.COMMUNITY),
    "のぼりとミーティング": (Policy.MUTUAL_SUPPORT, ProgramArea.COMMUNITY),
    "地ケアつながりプロジェクト～TeamSUGE～": (Policy.MUTUAL_SUPPORT, ProgramArea.COMMUNITY),
    "中野島多世代つながり愛プロジェクト": (Policy.MUTUAL_SUPPORT, ProgramArea.COMMUNITY),
}


@dataclass
class Loaded:
    services: Services
    summary: DemoSummary
    reported: list[int]


def load(directory: Path, plan: DemoPlan) -> Loaded:
    url = f"sqlite:///{directory}/tsunagari.sqlite3"
    services = build_services(Settings(database_url=url), clock=lambda: NOW)
    reported: list[int] = []
    summary = load_demo(services.app, plan, today=TODAY, progress=reported.append)
    return Loaded(services, summary, reported)


@pytest.fixture(scope="module")
def first(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Loaded]:
    loaded = load(tmp_path_factory.mktemp("first"), PLAN)
    yield loaded
    loaded.services.close()


@pytest.fixture(scope="module")
def second(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Loaded]:
    loaded = load(tmp_path_factory.mktemp("second"), PLAN)
    yield loaded
    loaded.services.close()


def ids_of(services: Services, topic: str) -> list[UUID]:
    """Aggregates created in the log, in the order they were recorded."""
    notifications = services.app.recorder.select_notifications(
        start=1, limit=10_000_000, topics=(topic,)
    )
    return [UUID(str(notification.originator_id)) for notification in notifications]


Attendee = tuple[int | None, str, str]
EventShape = tuple[str, date, str, str, int, tuple[Attendee, ...]]


def attendance(services: Services) -> list[EventShape]:
    """Each event's title, date, place, status, reverted check-ins and who attended.

    Attendees are described by what was recorded of them (birth year, band, district), since
    their ids are random.
    """
    app, roster = services.app, services.roster
    people: dict[UUID, Attendee] = {}
    for participant_id in ids_of(services, PARTICIPANT_REGISTERED):
        person = app.get_participant(participant_id)
        people[participant_id] = (person.birth_year, person.band_id, person.district_id)
    shapes: list[EventShape] = []
    for event_id in ids_of(services, EVENT_SCHEDULED):
        event = app.get_event(event_id)
        entries = roster.check_ins_at(event_id)
        attendees = [people[entry.participant_id] for entry in entries if entry.counted]
        reverted = sum(not entry.counted for entry in entries)
        shape = (event.title, event.local_date, event.district_id, event.status, reverted)
        shapes.append((*shape, tuple(sorted(attendees, key=repr))))
    return sorted(shapes, key=repr)


def test_the_same_seed_gives_the_same_data_in_two_fresh_stores(
    first: Loaded, second: Loaded
) -> None:
    assert first.summary == second.summary
    assert attendance(first.services) == attendance(second.services)


def test_another_seed_gives_other_data(tmp_path: Path) -> None:
    shapes = []
    for seed in (1, 2):
        loaded = load(tmp_path / str(seed), DemoPlan(residents=40, fiscal_years=1, seed=seed))
        try:
            shapes.append(attendance(loaded.services))
        finally:
            loaded.services.close()
    assert shapes[0] != shapes[1]


def test_every_programme_of_the_plan_exists_with_its_policy_and_area(first: Loaded) -> None:
    app = first.services.app
    programmes = [app.get_program(i) for i in ids_of(first.services, PROGRAM_LAUNCHED)]
    found = {p.name: (Policy(p.policy), ProgramArea(p.area)) for p in programmes}
    assert found == SEED_PROGRAMMES
    assert set(PROGRAM_NAMES) == set(SEED_PROGRAMMES)
    co_hosted = [p.name for p in programmes if len(p.host_organization_ids) >= 2]
    assert len(co_hosted) >= 10
    assert {"のぼりとミーティング", "多摩区・3大学連携事業", "多摩区スポーツフェスタ"} <= set(
        co_hosted
    )


def test_organisations_of_every_kind_the_plan_names(first: Loaded) -> None:
    app = first.services.app
    organisations = [
        app.get_organization(i) for i in ids_of(first.services, ORGANIZATION_REGISTERED)
    ]
    kinds = {OrganizationKind(o.kind) for o in organisations}
    assert kinds >= set(OrganizationKind) - {OrganizationKind.OTHER}
    neighbourhood = {
        o.district_id
        for o in organisations
        if o.kind == OrganizationKind.NEIGHBOURHOOD_ASSOCIATION.value
    }
    assert neighbourhood == set(app.districts.ids)
    names = {o.name for o in organisations}
    assert {"多摩区役所", "多摩区社会福祉協議会", "専修大学", "明治大学", "日本女子大学"} <= names


def test_sampled_ages_follow_the_ward_mix() -> None:
    assert sum(share for _, _, share in AGE_BRACKETS) == pytest.approx(100)
    rng = random.Random(1)
    ages = [sample_age(rng) for _ in range(50_000)]
    under_15 = sum(age < 15 for age in ages) / len(ages)
    aged_65 = sum(age >= 65 for age in ages) / len(ages)
    assert under_15 == pytest.approx(0.11, abs=0.01)
    assert aged_65 == pytest.approx(0.20, abs=0.01)
    assert min(ages) == 0
    assert max(ages) >= 90


def test_registered_residents_have_the_ward_age_mix_and_live_in_every_district(
    first: Loaded,
) -> None:
    app = first.services.app
    people = [app.get_participant(i) for i in ids_of(first.services, PARTICIPANT_REGISTERED)]
    assert len(people) == PLAN.residents
    assert all(p.name is None and p.contact is None for p in people)
    band_only = [p for p in people if p.birth_year is None]
    assert 0.01 <= len(band_only) / len(people) <= 0.10
    ages = [TODAY.year - p.birth_year for p in people if p.birth_year is not None]
    assert sum(age < 15 for age in ages) / len(ages) == pytest.approx(0.11, abs=0.05)
    assert sum(age >= 65 for age in ages) / len(ages) == pytest.approx(0.20, abs=0.05)
    assert {p.district_id for p in people} == set(app.districts.ids)


def test_no_check_in_counts_at_a_cancelled_event(first: Loaded) -> None:
    app, roster = first.services.app, first.services.roster
    events = [app.get_event(i) for i in ids_of(first.services, EVENT_SCHEDULED)]
    cancelled = [e for e in events if e.status == "cancelled"]
    assert cancelled
    for event in cancelled:
        assert event.cancellation_reason
        assert not [entry for entry in roster.check_ins_at(event.id) if entry.counted]


def test_the_summary_is_what_the_log_and_the_roster_show(first: Loaded) -> None:
    services, summary = first.services, first.summary
    app, roster = services.app, services.roster
    event_ids = ids_of(services, EVENT_SCHEDULED)
    events = [app.get_event(i) for i in event_ids]
    entries = [entry for i in event_ids for entry in roster.check_ins_at(i)]
    tallies = [tally for i in event_ids for tally in roster.walk_ins_at(i)]
    assert summary.organizations == len(ids_of(services, ORGANIZATION_REGISTERED))
    assert summary.programs == len(ids_of(services, PROGRAM_LAUNCHED))
    assert summary.participants == len(ids_of(services, PARTICIPANT_REGISTERED))
    assert summary.events == len(events)
    assert summary.cancelled_events == sum(e.status == "cancelled" for e in events)
    assert summary.check_ins == len(entries)
    assert summary.reverted_check_ins == sum(not entry.counted for entry in entries)
    assert all(entry.revert_reason for entry in entries if not entry.counted)
    assert summary.walk_in_tallies == len(tallies)
    assert summary.stored_events == app.recorder.max_notification_id()


def test_events_span_the_fiscal_years_up_to_today_and_the_next_weeks(first: Loaded) -> None:
    app, roster = first.services.app, first.services.roster
    events = [app.get_event(i) for i in ids_of(first.services, EVENT_SCHEDULED)]
    assert {e.fiscal_year for e in events if e.local_date < TODAY} == {2025, 2026}
    assert min(e.local_date for e in events) >= date(2025, 4, 1)
    assert max(e.local_date for e in events) <= TODAY + timedelta(days=28)
    for event in events:
        assert 9 <= event.starts_at.astimezone(JST).hour <= 19
        if event.local_date < TODAY:
            assert event.status in {"closed", "cancelled"}
        else:
            assert event.status == "scheduled"
            assert roster.check_ins_at(event.id) == []
    upcoming = [e for e in events if e.local_date >= TODAY]
    assert 5 <= len(upcoming) <= 60
    held = [e for e in events if e.status == "closed"]
    assert len([e for e in events if e.status == "cancelled"]) / len(held) < 0.08


def test_festivals_are_the_biggest_events_and_record_walk_ins(first: Loaded) -> None:
    app, roster = first.services.app, first.services.roster
    sizes: Counter[str] = Counter()
    walk_ins: Counter[str] = Counter()
    for event_id in ids_of(first.services, EVENT_SCHEDULED):
        title = app.get_event(event_id).title
        counted = sum(entry.counted for entry in roster.check_ins_at(event_id))
        sizes[f"{title}/{event_id}"] = counted
        walk_ins[title] += sum(sum(t.counts.values()) for t in roster.walk_ins_at(event_id))
    biggest = {key.split("/")[0] for key, _ in sizes.most_common(2)}
    assert biggest == {"多摩区スポーツフェスタ", "たまたま子育てまつり"}
    assert walk_ins["多摩区スポーツフェスタ"] > 0
    assert walk_ins["たまたま子育てまつり"] > 0
    small = [n for key, n in sizes.items() if not key.startswith(tuple(biggest))]
    assert sum(n <= 30 for n in small) / len(small) > 0.9


def test_progress_reports_add_up_to_the_plan_size(first: Loaded) -> None:
    assert all(n > 0 for n in first.reported)
    assert sum(first.reported) == plan_size(PLAN)


def test_a_day_after_the_applications_date_is_refused(first: Loaded) -> None:
    before = first.services.app.recorder.max_notification_id()
    with pytest.raises(ValueError, match="after the application's date"):
        load_demo(first.services.app, PLAN, today=TODAY + timedelta(days=1))
    assert first.services.app.recorder.max_notification_id() == before


@pytest.mark.parametrize(
    "plan", [{"residents": 0}, {"fiscal_years": 0}, {"residents": -5, "fiscal_years": 2}]
)
def test_an_empty_plan_is_refused(plan: dict[str, int]) -> None:
    with pytest.raises(ValueError, match="must be between"):
        DemoPlan(**plan)
