"""Check-ins, corrections and walk-ins at the front desk."""

from __future__ import annotations

from collections.abc import Callable

from domain.provenance import Role
from interfaces.bootstrap import Services
from tests.support import Api

IdMaker = Callable[..., dict[str, str]]


def test_checking_in_twice_answers_201_then_200_with_the_same_body(
    api: Api, services: Services, make_ids: IdMaker
) -> None:
    ids = make_ids()
    url = f"/events/{ids['event']}/check-ins"
    body = {"participant_id": ids["participant0"]}
    first = api.client.post(url, json=body, headers=api.headers(Role.DESK))
    stored = services.app.recorder.max_notification_id()
    again = api.client.post(url, json=body, headers=api.headers(Role.DESK))
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json() == first.json()
    assert first.json()["status"] == "checked_in"
    # Born 1950, at an event in 2026: 76, a 後期高齢者.
    assert (first.json()["band_id"], first.json()["group"]) == ("old_old", "senior")
    assert services.app.recorder.max_notification_id() == stored
    listed = api.client.get(url, headers=api.headers(Role.EVALUATOR)).json()
    assert listed["checked_in"] == 1
    assert [entry["participant_id"] for entry in listed["check_ins"]] == [ids["participant0"]]


def test_the_same_idempotency_key_replays_the_first_answer_with_one_effect(
    api: Api, services: Services, make_ids: IdMaker
) -> None:
    ids = make_ids()
    url = f"/events/{ids['event']}/check-ins"
    headers = api.headers(Role.DESK, **{"Idempotency-Key": "tablet-3/0001"})
    first = api.client.post(url, json={"participant_id": ids["participant1"]}, headers=headers)
    stored = services.app.recorder.max_notification_id()
    # Same JSON, other key order and spacing: the same request.
    replay = api.client.post(
        url,
        content=f'{{ "participant_id" : "{ids["participant1"]}" }}'.encode(),
        headers={**headers, "Content-Type": "application/json"},
    )
    assert (first.status_code, replay.status_code) == (201, 201)
    assert replay.json() == first.json()
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert services.app.recorder.max_notification_id() == stored

    other_body = api.client.post(url, json={"participant_id": ids["participant2"]}, headers=headers)
    assert other_body.status_code == 422
    assert other_body.json()["type"] == "/problems/idempotency-key-reused"
    assert services.app.recorder.max_notification_id() == stored
    listed = api.client.get(url, headers=headers).json()
    assert [entry["participant_id"] for entry in listed["check_ins"]] == [ids["participant1"]]


def test_idempotency_keys_of_different_clients_do_not_collide(api: Api, make_ids: IdMaker) -> None:
    ids = make_ids()
    url = f"/events/{ids['event']}/check-ins"
    key = {"Idempotency-Key": "1"}
    desk = api.client.post(
        url, json={"participant_id": ids["participant0"]}, headers=api.headers(Role.DESK, **key)
    )
    coordinator = api.client.post(
        url,
        json={"participant_id": ids["participant1"]},
        headers=api.headers(Role.COORDINATOR, **key),
    )
    assert (desk.status_code, coordinator.status_code) == (201, 201)
    assert coordinator.json()["participant_id"] == ids["participant1"]


def test_a_cancelled_or_closed_event_takes_no_check_in_and_nothing_is_written(
    api: Api, services: Services, make_ids: IdMaker
) -> None:
    ids = make_ids()
    cancelled = make_ids(birth_years=())["event"]
    coordinator = api.headers(Role.COORDINATOR)
    api.client.post(f"/events/{cancelled}/cancel", json={"reason": "雨天中止"}, headers=coordinator)
    api.client.post(f"/events/{ids['event']}/close", headers=coordinator)
    before = services.app.recorder.max_notification_id()
    for event, word in ((cancelled, "cancelled"), (ids["event"], "closed")):
        refused = api.client.post(
            f"/events/{event}/check-ins",
            json={"participant_id": ids["participant0"]},
            headers=api.headers(Role.DESK),
        )
        assert refused.status_code == 409
        assert refused.json()["type"] == "/problems/event-not-open"
        assert word in refused.json()["detail"]
        walk_in = api.client.post(
            f"/events/{event}/walk-ins", json={"counts": {"adult": 2}}, headers=api.headers()
        )
        assert walk_in.status_code == 409
    assert services.app.recorder.max_notification_id() == before


def test_a_wrong_check_in_is_reverted_with_a_reason_and_can_be_made_again(
    api: Api, make_ids: IdMaker
) -> None:
    ids = make_ids()
    event, person = ids["event"], ids["participant2"]
    desk = api.headers(Role.DESK)
    api.client.post(f"/events/{event}/check-ins", json={"participant_id": person}, headers=desk)
    reverted = api.client.post(
        f"/events/{event}/check-ins/{person}/revert",
        json={"reason": "別の方と取り違え"},
        headers=desk,
    )
    assert reverted.status_code == 200
    assert reverted.json()["status"] == "reverted"
    assert reverted.json()["revert_reason"] == "別の方と取り違え"
    listed = api.client.get(f"/events/{event}/check-ins", headers=desk).json()
    assert listed["checked_in"] == 0
    assert listed["check_ins"][0]["status"] == "reverted"
    again = api.client.post(
        f"/events/{event}/check-ins", json={"participant_id": person}, headers=desk
    )
    assert again.status_code == 201
    assert again.json()["status"] == "checked_in"
    assert api.client.get(f"/events/{event}/check-ins", headers=desk).json()["checked_in"] == 1
    single = api.client.get(f"/events/{event}/check-ins/{person}", headers=desk)
    assert single.json() == again.json()


def test_reverting_what_was_never_checked_in_answers_404(api: Api, make_ids: IdMaker) -> None:
    ids = make_ids()
    answer = api.client.post(
        f"/events/{ids['event']}/check-ins/{ids['participant0']}/revert",
        json={"reason": "x"},
        headers=api.headers(Role.DESK),
    )
    assert answer.status_code == 404
    assert "was never checked in" in answer.json()["detail"]


def test_checking_in_an_unknown_participant_is_refused(api: Api, make_ids: IdMaker) -> None:
    ids = make_ids(birth_years=())
    answer = api.client.post(
        f"/events/{ids['event']}/check-ins",
        json={"participant_id": ids["organization"]},
        headers=api.headers(Role.DESK),
    )
    assert answer.status_code == 422
    assert f"no participant with id {ids['organization']}" in answer.json()["detail"]


def test_walk_ins_are_counted_by_band_and_a_wrong_tally_can_be_reverted(
    api: Api, make_ids: IdMaker
) -> None:
    ids = make_ids(birth_years=())
    url = f"/events/{ids['event']}/walk-ins"
    desk = api.headers(Role.DESK)
    first = api.client.post(
        url, json={"counts": {"infant": 4, "adult": 3, "teen": 0}}, headers=desk
    )
    assert first.status_code == 201
    assert first.json()["counts"] == {"infant": 4, "adult": 3}
    assert first.json()["total"] == 7
    second = api.client.post(url, json={"counts": {"adult": 2, "old_old": 1}}, headers=desk)
    listed = api.client.get(url, headers=desk).json()
    assert listed["by_band"] == {"adult": 5, "infant": 4, "old_old": 1}
    assert listed["total"] == 10
    reverted = api.client.post(
        f"{url}/{second.json()['id']}/revert", json={"reason": "二重に記録"}, headers=desk
    )
    assert reverted.status_code == 200
    assert reverted.json()["counted"] is False
    listed = api.client.get(url, headers=desk).json()
    assert (listed["total"], listed["by_band"]) == (7, {"adult": 3, "infant": 4})


def test_walk_ins_with_an_unknown_band_or_a_negative_count_are_refused(
    api: Api, services: Services, make_ids: IdMaker
) -> None:
    ids = make_ids(birth_years=())
    url = f"/events/{ids['event']}/walk-ins"
    before = services.app.recorder.max_notification_id()
    unknown = api.client.post(url, json={"counts": {"toddler": 2}}, headers=api.headers())
    assert unknown.status_code == 422
    assert "unknown generation band 'toddler'" in unknown.json()["detail"]
    negative = api.client.post(url, json={"counts": {"adult": -1}}, headers=api.headers())
    assert negative.status_code == 422
    empty = api.client.post(url, json={"counts": {"adult": 0}}, headers=api.headers())
    assert empty.status_code == 422
    assert services.app.recorder.max_notification_id() == before


def test_a_check_in_retried_after_the_event_closed_still_answers_200(
    api: Api, make_ids: IdMaker
) -> None:
    ids = make_ids()
    url = f"/events/{ids['event']}/check-ins"
    body = {"participant_id": ids["participant0"]}
    first = api.client.post(url, json=body, headers=api.headers(Role.DESK))
    api.client.post(f"/events/{ids['event']}/close", headers=api.headers(Role.COORDINATOR))
    retried = api.client.post(url, json=body, headers=api.headers(Role.DESK))
    assert (first.status_code, retried.status_code) == (201, 200)
    assert retried.json() == first.json()
    newcomer = api.client.post(
        url, json={"participant_id": ids["participant1"]}, headers=api.headers(Role.DESK)
    )
    assert newcomer.status_code == 409
