"""Organisations, programmes, events and participants through the real HTTP app."""

from __future__ import annotations

from collections.abc import Callable

from domain.provenance import Role
from interfaces.bootstrap import Services
from tests.support import Api


def test_each_created_resource_answers_201_with_its_id_and_reads_back_the_same(api: Api) -> None:
    headers = api.headers(Role.COORDINATOR)
    created = api.client.post(
        "/organizations",
        json={"name": " 多摩区役所 ", "kind": "ward_office", "district_id": "noborito"},
        headers=headers,
    )
    assert created.status_code == 201
    organization = created.json()
    assert organization["name"] == "多摩区役所"
    assert organization["kind_name_ja"] == "区役所"
    assert created.headers["Location"] == f"/organizations/{organization['id']}"
    read = api.client.get(f"/organizations/{organization['id']}", headers=api.headers(Role.DESK))
    assert read.status_code == 200
    assert read.json() == organization

    program = api.client.post(
        "/programs",
        json={
            "name": "多摩区スポーツフェスタ",
            "policy": "2-1",
            "area": "community",
            "host_organization_ids": [organization["id"], organization["id"]],
        },
        headers=headers,
    )
    assert program.status_code == 201
    assert program.json()["host_organization_ids"] == [organization["id"]]
    assert program.json()["policy_name_ja"] == "誰もが気軽に参加できる活動・交流の機会づくり"
    read_program = api.client.get(f"/programs/{program.json()['id']}", headers=headers)
    assert read_program.json() == program.json()


def test_an_event_at_half_past_midnight_on_1_april_in_tokyo_is_in_the_next_fiscal_year(
    api: Api, make_ids: Callable[..., dict[str, str]]
) -> None:
    ids = make_ids(birth_years=())
    created = api.client.post(
        "/events",
        json={
            "program_id": ids["program"],
            "title": "年度初めの集い",
            "starts_at": "2027-03-31T15:30:00Z",
            "district_id": "inada",
        },
        headers=api.headers(Role.COORDINATOR),
    )
    assert created.status_code == 201
    event = created.json()
    assert event["local_date"] == "2027-04-01"
    assert event["fiscal_year"] == 2027
    assert event["fiscal_year_label"] == "2027(令和9)年度"
    assert event["status"] == "scheduled"


def test_an_event_time_without_offset_is_refused_and_nothing_is_written(
    api: Api, services: Services, make_ids: Callable[..., dict[str, str]]
) -> None:
    ids = make_ids(birth_years=())
    before = services.app.recorder.max_notification_id()
    answer = api.client.post(
        "/events",
        json={
            "program_id": ids["program"],
            "title": "時刻にオフセットなし",
            "starts_at": "2026-06-14T10:00:00",
            "district_id": "suge",
        },
        headers=api.headers(Role.COORDINATOR),
    )
    assert answer.status_code == 422
    assert answer.headers["content-type"] == "application/problem+json"
    assert "starts_at" in answer.json()["detail"]
    assert services.app.recorder.max_notification_id() == before


def test_references_to_unknown_things_are_refused_with_what_is_known(
    api: Api, services: Services, make_ids: Callable[..., dict[str, str]]
) -> None:
    ids = make_ids(birth_years=())
    before = services.app.recorder.max_notification_id()
    headers = api.headers(Role.COORDINATOR)
    unknown_program = api.client.post(
        "/events",
        json={
            "program_id": ids["organization"],
            "title": "x",
            "starts_at": "2026-06-14T10:00:00+09:00",
            "district_id": "suge",
        },
        headers=headers,
    )
    assert unknown_program.status_code == 422
    assert f"no programme with id {ids['organization']}" in unknown_program.json()["detail"]
    unknown_district = api.client.post(
        "/participants", json={"birth_year": 1980, "district_id": "shibuya"}, headers=headers
    )
    assert unknown_district.status_code == 422
    assert "unknown district 'shibuya'" in unknown_district.json()["detail"]
    assert "noborito" in unknown_district.json()["detail"]
    unknown_host = api.client.post(
        "/programs",
        json={
            "name": "x",
            "policy": "2-1",
            "area": "community",
            "host_organization_ids": [ids["program"]],
        },
        headers=headers,
    )
    assert unknown_host.status_code == 422
    assert "no organisation with id" in unknown_host.json()["detail"]
    unknown_kind = api.client.post(
        "/organizations", json={"name": "x", "kind": "guild"}, headers=headers
    )
    assert unknown_kind.status_code == 422
    assert "kind" in unknown_kind.json()["detail"]
    assert services.app.recorder.max_notification_id() == before


def test_reading_an_unknown_or_mistyped_id_answers_404_or_422(
    api: Api, make_ids: Callable[..., dict[str, str]]
) -> None:
    ids = make_ids()
    headers = api.headers(Role.ADMIN)
    wrong_kind = api.client.get(f"/events/{ids['participant0']}", headers=headers)
    assert wrong_kind.status_code == 404
    assert wrong_kind.json()["detail"] == f"no event with id {ids['participant0']}"
    not_a_uuid = api.client.get("/programs/not-a-uuid", headers=headers)
    assert not_a_uuid.status_code == 422
    assert not_a_uuid.json()["type"] == "/problems/validation"
    no_route = api.client.get("/nowhere", headers=headers)
    assert no_route.status_code == 404
    assert no_route.headers["content-type"] == "application/problem+json"


def test_a_participant_is_registered_by_birth_year_or_by_band(api: Api) -> None:
    headers = api.headers(Role.DESK)
    by_year = api.client.post(
        "/participants",
        json={"birth_year": 1951, "district_id": "nakanoshima", "name": "  多摩 花子 "},
        headers=headers,
    )
    assert by_year.status_code == 201
    assert by_year.json()["band_id"] == "old_old"  # 2026 - 1951 = 75
    assert by_year.json()["group"] == "senior"
    assert by_year.json()["name"] == "多摩 花子"
    by_band = api.client.post(
        "/participants", json={"band_id": "teen", "district_id": "ikuta"}, headers=headers
    )
    assert by_band.status_code == 201
    assert (by_band.json()["birth_year"], by_band.json()["band_id"]) == (None, "teen")
    read = api.client.get(f"/participants/{by_band.json()['id']}", headers=headers)
    assert read.json() == by_band.json()


def test_a_birth_year_in_the_future_or_an_unknown_band_is_refused(
    api: Api, services: Services
) -> None:
    headers = api.headers(Role.DESK)
    future = api.client.post(
        "/participants", json={"birth_year": 2027, "district_id": "suge"}, headers=headers
    )
    assert future.status_code == 422
    assert "birth year 2027 is in the future" in future.json()["detail"]
    unknown_band = api.client.post(
        "/participants", json={"band_id": "toddler", "district_id": "suge"}, headers=headers
    )
    assert unknown_band.status_code == 422
    assert "unknown generation band 'toddler'" in unknown_band.json()["detail"]
    neither = api.client.post("/participants", json={"district_id": "suge"}, headers=headers)
    assert neither.status_code == 422
    assert "a generation band" in neither.json()["detail"]
    assert services.app.recorder.max_notification_id() is None


def test_closing_an_event_answers_201_once_and_its_retry_replays_that_answer(
    api: Api, make_ids: Callable[..., dict[str, str]]
) -> None:
    ids = make_ids(birth_years=())
    event = ids["event"]
    retried = api.headers(Role.COORDINATOR, **{"Idempotency-Key": "close/1"})

    closed = api.client.post(f"/events/{event}/close", headers=retried)
    replayed = api.client.post(f"/events/{event}/close", headers=retried)
    again = api.client.post(f"/events/{event}/close", headers=api.headers(Role.COORDINATOR))

    assert closed.status_code == 201
    assert closed.json()["id"] == event
    assert closed.json()["status"] == "closed"
    assert (replayed.status_code, replayed.json()) == (201, closed.json())
    assert replayed.headers["Idempotent-Replayed"] == "true"
    assert again.status_code == 409
    assert "is closed: cannot close it" in again.json()["detail"]


def test_events_are_rescheduled_cancelled_and_closed_only_while_scheduled(
    api: Api, make_ids: Callable[..., dict[str, str]]
) -> None:
    ids = make_ids(birth_years=())
    headers = api.headers(Role.COORDINATOR)
    event = ids["event"]
    moved = api.client.post(
        f"/events/{event}/reschedule",
        json={"starts_at": "2026-06-21T13:00:00+09:00", "ends_at": "2026-06-21T15:00:00+09:00"},
        headers=headers,
    )
    assert moved.status_code == 200
    assert moved.json()["starts_at"] == "2026-06-21T13:00:00+09:00"
    cancelled = api.client.post(
        f"/events/{event}/cancel", json={"reason": "台風接近のため中止"}, headers=headers
    )
    assert cancelled.status_code == 201
    assert "Location" not in cancelled.headers  # nothing new to fetch: the event is at its URL
    assert cancelled.json()["id"] == event
    assert cancelled.json()["status"] == "cancelled"
    assert cancelled.json()["cancellation_reason"] == "台風接近のため中止"
    closed = api.client.post(f"/events/{event}/close", headers=headers)
    assert closed.status_code == 409
    assert closed.json()["type"] == "/problems/event-not-scheduled"
    assert "is cancelled: cannot close it" in closed.json()["detail"]
    assert api.client.get(f"/events/{event}", headers=headers).json()["status"] == "cancelled"
