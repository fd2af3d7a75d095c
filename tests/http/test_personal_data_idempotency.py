"""Idempotency records of participant commands keep nothing that outlives an erasure."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import insert, select

from domain.provenance import Role
from infrastructure.persistence import SqlStorage
from infrastructure.settings import Settings
from interfaces.bootstrap import Services
from tests.http.test_personal_data import _forms, _raw_database
from tests.support import Api

NAME = "冪等 確認花子"
CONTACT = "zq7-idempotency-probe@example.org"
CORRECTED = "冪等 訂正後"
DISABILITY = "聴覚障害 Zq7"
PURPOSE = "合理的配慮の提供"


def _plain_fingerprint(method: str, path: str, body: dict[str, Any]) -> str:
    """What a plain SHA-256 of the request would be: anyone could recompute it from a guess."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(f"{method} {path}\n".encode() + canonical).hexdigest()


def _storage(services: Services) -> SqlStorage:
    storage = services.app.storage
    assert isinstance(storage, SqlStorage)
    return storage


def _stored_rows(services: Services) -> dict[str, tuple[str, str]]:
    """Each Idempotency-Key's stored fingerprint and answer."""
    outcomes = _storage(services).outcomes
    query = select(outcomes.c.key, outcomes.c.fingerprint, outcomes.c.result)
    with services.datastore.transaction(commit=False) as session:
        return {row.key: (row.fingerprint, row.result) for row in session.execute(query)}


def _scope(api: Api, services: Services, role: Role) -> str:
    principal = services.tokens.authenticate(api.tokens[role])
    assert principal is not None
    return str(principal.token_id)


def test_stored_fingerprints_cannot_confirm_a_guess_and_replays_answer_before_and_after_erasure(
    api: Api, services: Services
) -> None:
    sent: list[tuple[str, str, dict[str, Any], dict[str, Any]]] = []

    def post(path: str, body: dict[str, Any], key: str, role: Role = Role.DESK) -> Any:
        answer = api.client.post(
            path, json=body, headers=api.headers(role, **{"Idempotency-Key": key})
        )
        assert answer.status_code in (200, 201), answer.text
        sent.append((key, path, body, answer.json()))
        return answer.json()

    registration = {
        "district_id": "suge",
        "name": NAME,
        "contact": CONTACT,
        "birth_date": "1961-05-02",
    }
    person = post("/participants", registration, "k-register")
    base = f"/participants/{person['id']}"
    post(f"{base}/corrections", {"name": CORRECTED}, "k-correct")
    post(f"{base}/consents", {"purpose": PURPOSE, "given": True}, "k-consent")
    post(
        f"{base}/sensitive-data",
        {"purpose": PURPOSE, "category": "disability", "detail": DISABILITY},
        "k-sensitive",
    )
    plain = {_plain_fingerprint("POST", path, body) for _, path, body, _ in sent}
    stored = _stored_rows(services)
    assert {fingerprint for fingerprint, _ in stored.values()}.isdisjoint(plain)
    # Still compared while the key exists: the same key with another body is refused.
    for key, path, body, first in sent:
        replay = api.client.post(
            path, json=body, headers=api.headers(Role.DESK, **{"Idempotency-Key": key})
        )
        assert replay.headers["Idempotent-Replayed"] == "true"
        assert replay.json() == first
    guessed = api.client.post(
        "/participants",
        json={**registration, "name": "別人 推測"},
        headers=api.headers(Role.DESK, **{"Idempotency-Key": "k-register"}),
    )
    assert guessed.status_code == 422
    assert guessed.json()["type"] == "/problems/idempotency-key-reused"

    erasure = post(f"{base}/erasure", {"reason": "本人からの削除請求"}, "k-erase", Role.ADMIN)

    plain = {_plain_fingerprint("POST", path, body) for _, path, body, _ in sent}
    stored = _stored_rows(services)
    assert set(stored) == {key for key, *_ in sent}
    assert {fingerprint for fingerprint, _ in stored.values()}.isdisjoint(plain)
    for _, result in stored.values():
        for secret in (NAME, CONTACT, CORRECTED, DISABILITY, "1961-05-02"):
            assert secret not in result
    # Nothing can be compared any more: every retry replays the erased answer.
    for key, path, body, first in sent:
        role = Role.ADMIN if key == "k-erase" else Role.DESK
        replay = api.client.post(
            path, json=body, headers=api.headers(role, **{"Idempotency-Key": key})
        )
        assert replay.status_code == (
            201 if key in ("k-register", "k-consent", "k-sensitive") else 200
        )
        assert replay.headers["Idempotent-Replayed"] == "true"
        answer = replay.json()
        assert answer["id"] == person["id"]
        assert (answer["name"], answer["contact"], answer["birth_date"]) == (None, None, None)
        assert answer["sensitive_data"] == []
        assert (answer["erased"], answer["personal_data"]) == (True, "erased")
        assert (answer["birth_year"], answer["district_id"]) == (1961, "suge")
        if key == "k-erase":
            assert answer == first == erasure


def _old_answer(person: dict[str, Any]) -> dict[str, Any]:
    """A ParticipantView as answered before personal data was sealed: name and contact in
    clear, no birth date, erasure, consents or sensitive data."""
    return {
        "id": person["id"],
        "birth_year": person["birth_year"],
        "band_id": person["band_id"],
        "group": person["group"],
        "district_id": person["district_id"],
        "name": NAME,
        "contact": CONTACT,
        "registered_on": person["registered_on"],
    }


def test_an_answer_stored_before_sealing_replays_without_its_personal_data_and_erasure_clears_it(
    api: Api, services: Services, settings: Settings
) -> None:
    body = {"district_id": "suge", "birth_year": 1950, "name": NAME, "contact": CONTACT}
    person = api.client.post("/participants", json=body, headers=api.headers(Role.DESK)).json()
    outcomes = _storage(services).outcomes
    old_fingerprint = _plain_fingerprint("POST", "/participants", body)
    # As the code before the personal-data change wrote it.
    with services.datastore.transaction(commit=True) as session:
        session.execute(
            insert(outcomes).values(
                scope=_scope(api, services, Role.DESK),
                key="tablet-old/0001",
                fingerprint=old_fingerprint,
                command="register_participant",
                created=True,
                result=json.dumps(_old_answer(person), ensure_ascii=False, sort_keys=True),
                recorded_at=datetime.now(UTC),
            )
        )
    headers = api.headers(Role.DESK, **{"Idempotency-Key": "tablet-old/0001"})

    replay = api.client.post("/participants", json=body, headers=headers)

    assert replay.status_code == 201, replay.text
    assert replay.headers["Idempotent-Replayed"] == "true"
    answer = replay.json()
    assert answer["id"] == person["id"]
    assert (answer["name"], answer["contact"], answer["birth_date"]) == (None, None, None)
    assert (answer["erased"], answer["personal_data"]) == (False, "unavailable")
    assert (answer["consents"], answer["sensitive_data"]) == ([], [])
    # Its fingerprint is the old plain one, and it is still compared as such.
    other = api.client.post("/participants", json={**body, "name": "別人"}, headers=headers)
    assert other.status_code == 422

    assert old_fingerprint.encode() in _raw_database(settings)  # the scan below can see it

    erased = api.client.post(
        f"/participants/{person['id']}/erasure",
        json={"reason": "本人からの削除請求"},
        headers=api.headers(Role.ADMIN),
    )
    assert erased.status_code == 200

    fingerprint, result = _stored_rows(services)["tablet-old/0001"]
    assert fingerprint != old_fingerprint
    assert NAME not in result
    assert CONTACT not in result
    # Nor left in the database's files (SQLite's freed pages and WAL; pg_dump).
    raw = _raw_database(settings)
    for secret in (NAME, CONTACT, old_fingerprint):
        for form in _forms(secret):
            assert form not in raw, f"{secret!r} is still in the database"
    after = api.client.post("/participants", json=body, headers=headers)
    assert after.headers["Idempotent-Replayed"] == "true"
    assert after.json()["id"] == person["id"]
    assert (after.json()["name"], after.json()["contact"]) == (None, None)
    assert (after.json()["erased"], after.json()["personal_data"]) == (True, "erased")


def test_an_answer_stored_with_a_plain_fingerprint_is_overwritten_by_the_erasure(
    api: Api, services: Services
) -> None:
    body = {"district_id": "suge", "birth_year": 1972, "name": NAME, "contact": CONTACT}
    headers = api.headers(Role.DESK, **{"Idempotency-Key": "tablet-9/0001"})
    person = api.client.post("/participants", json=body, headers=headers).json()
    storage = _storage(services)
    plain = _plain_fingerprint("POST", "/participants", body)
    # As the first sealing version wrote it: answer sealed, fingerprint a plain hash, unmarked.
    with services.datastore.transaction(commit=True) as session:
        session.execute(storage.about.delete())
        session.execute(storage.outcomes.update().values(fingerprint=plain))
    replay = api.client.post("/participants", json=body, headers=headers)
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert replay.json() == person

    api.client.post(
        f"/participants/{person['id']}/erasure", json={"reason": "x"}, headers=api.headers()
    )

    fingerprint, result = _stored_rows(services)["tablet-9/0001"]
    assert fingerprint != plain
    assert "sealed" not in json.loads(result)
    after = api.client.post("/participants", json=body, headers=headers)
    assert after.headers["Idempotent-Replayed"] == "true"
    assert (after.json()["id"], after.json()["name"]) == (person["id"], None)
    assert after.json()["personal_data"] == "erased"


def test_erasing_again_scrubs_old_answers_of_a_participant_erased_before_this_fix(
    api: Api, services: Services
) -> None:
    body = {"district_id": "suge", "birth_year": 1950, "name": NAME, "contact": CONTACT}
    person = api.client.post("/participants", json=body, headers=api.headers(Role.DESK)).json()
    erase = f"/participants/{person['id']}/erasure"
    assert api.client.post(erase, json={"reason": "x"}, headers=api.headers()).status_code == 200
    plain = _plain_fingerprint("POST", "/participants", body)
    # Left behind by the code before the personal-data change, which erasure then missed.
    with services.datastore.transaction(commit=True) as session:
        session.execute(
            insert(_storage(services).outcomes).values(
                scope=_scope(api, services, Role.DESK),
                key="tablet-old/0002",
                fingerprint=plain,
                command="register_participant",
                created=True,
                result=json.dumps(_old_answer(person), ensure_ascii=False, sort_keys=True),
                recorded_at=datetime.now(UTC),
            )
        )
    head = services.app.recorder.max_notification_id()

    again = api.client.post(erase, json={"reason": "再"}, headers=api.headers())

    assert again.status_code == 200
    assert services.app.recorder.max_notification_id() == head  # nothing new in the log
    fingerprint, result = _stored_rows(services)["tablet-old/0002"]
    assert fingerprint != plain
    assert NAME not in result
    assert CONTACT not in result
