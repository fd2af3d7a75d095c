"""A store imported from an audit export holds the log without keys: an auditor's copy whose
personal data reads as unavailable and can never be written to."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any
from uuid import UUID

from fastapi.testclient import TestClient

from domain.provenance import Role
from interfaces.bootstrap import Services
from interfaces.http.app import create_app
from tests.support import Api

NAME = "輸入 確認三郎"
PURPOSE = "合理的配慮の提供"


def _problem(answer: Any, status: int, problem_type: str) -> str:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["type"] == problem_type
    detail: str = answer.json()["detail"]
    return detail


def test_an_imported_store_shows_personal_data_as_unavailable_and_refuses_to_write_it(
    api: Api,
    services: Services,
    fresh: Services,
    tmp_path: Path,
    make_ids: Callable[..., dict[str, str]],
) -> None:
    ids = make_ids(birth_years=())
    desk = api.headers(Role.DESK)
    person = api.client.post(
        "/participants",
        json={"district_id": "suge", "birth_year": 1990, "name": NAME, "contact": "a@b.jp"},
        headers=desk,
    ).json()
    base = f"/participants/{person['id']}"
    assert api.client.post(
        f"{base}/consents", json={"purpose": PURPOSE, "given": True}, headers=desk
    ).is_success
    assert api.client.post(
        f"{base}/sensitive-data",
        json={"purpose": PURPOSE, "category": "disability", "detail": "車いす"},
        headers=desk,
    ).is_success
    services.archive.export(2026, tmp_path / "export")
    fresh.archive.import_export(tmp_path / "export")
    assert fresh.app.keys.find(UUID(person["id"])) is None  # keys are never exported
    tokens = {
        role: fresh.tokens.create(name=f"auditor copy {role.value}", role=role)[1] for role in Role
    }
    with TestClient(create_app(services=fresh), raise_server_exceptions=False) as client:
        copy = Api(client, tokens)
        admin, desk = copy.headers(Role.ADMIN), copy.headers(Role.DESK)

        shown = client.get(base, headers=desk)
        assert shown.status_code == 200
        body = shown.json()
        assert (body["personal_data"], body["erased"]) == ("unavailable", False)
        assert (body["name"], body["contact"], body["sensitive_data"]) == (None, None, [])
        assert (body["birth_year"], body["district_id"]) == (1990, "suge")
        assert body["consents"] == [PURPOSE]
        disclosure = client.get(f"{base}/disclosure", headers=admin).json()
        assert disclosure["participant"] == body
        assert (disclosure["erased"], disclosure["sensitive_data"]) == (False, [])
        assert disclosure["history"][0]["details"]["personal"] == "[unavailable]"
        assert disclosure["history"][2]["details"]["personal"] == "[unavailable]"

        head = fresh.app.recorder.max_notification_id()
        for path, request in (
            ("corrections", {"name": "新しい名前"}),
            ("consents", {"purpose": "写真撮影", "given": True}),
            ("sensitive-data", {"purpose": PURPOSE, "category": "disability"}),
        ):
            refused = client.post(f"{base}/{path}", json=request, headers=desk)
            detail = _problem(refused, 409, "/problems/personal-data-unavailable")
            assert "key this store does not hold" in detail
        assert fresh.app.recorder.max_notification_id() == head
        assert fresh.app.keys.find(UUID(person["id"])) is None  # no key made for it
        # What needs no key still works: a check-in, and the erasure itself.
        checked = client.post(
            f"/events/{ids['event']}/check-ins", json={"participant_id": person["id"]}, headers=desk
        )
        assert checked.status_code == 201, checked.text
        erased = client.post(f"{base}/erasure", json={"reason": "本人請求"}, headers=admin)
        assert erased.status_code == 200, erased.text
        assert (erased.json()["personal_data"], erased.json()["erased"]) == ("erased", True)
        after = client.get(f"{base}/disclosure", headers=admin).json()
        assert after["history"][0]["details"]["personal"] == "[erased]"


def test_a_participant_whose_key_row_is_gone_is_refused_rather_than_given_a_new_key(
    api: Api, services: Services
) -> None:
    desk = api.headers(Role.DESK)
    person = api.client.post(
        "/participants",
        json={"district_id": "suge", "birth_year": 1980, "name": NAME},
        headers=desk,
    ).json()
    keys: Any = services.app.keys
    with services.datastore.transaction(commit=True) as session:
        session.execute(keys.keys.delete().where(keys.keys.c.participant_id == person["id"]))

    refused = api.client.post(
        f"/participants/{person['id']}/corrections", json={"contact": "x@y.jp"}, headers=desk
    )

    _problem(refused, 409, "/problems/personal-data-unavailable")
    assert services.app.keys.find(UUID(person["id"])) is None
    shown = api.client.get(f"/participants/{person['id']}", headers=desk).json()
    assert (shown["personal_data"], shown["name"]) == ("unavailable", None)
