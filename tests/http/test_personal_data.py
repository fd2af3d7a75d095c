"""Personal data per participant: sealed in the log, corrected, consented, erased, disclosed."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from domain.provenance import Role
from infrastructure.logging import configure_logging
from infrastructure.settings import LogFormat, Settings
from interfaces.bootstrap import Services
from projections.follower import Follower
from tests.support import Api, settle

NAME = "消去 確認太郎"
CONTACT = "zq7-erasure-probe@example.org"
CORRECTED = "訂正 後次郎"
DISABILITY = "視覚障害 Zq7"


def _register(api: Api, **extra: Any) -> dict[str, Any]:
    body = {"district_id": "suge", "name": NAME, "contact": CONTACT, **extra}
    answer = api.client.post("/participants", json=body, headers=api.headers(Role.DESK))
    assert answer.status_code == 201, answer.text
    registered: dict[str, Any] = answer.json()
    return registered


def _stored_states(services: Services) -> bytes:
    notifications = services.app.recorder.select_notifications(start=1, limit=10_000)
    return b"\n".join(notification.state for notification in notifications)


def _key_of(services: Services, participant_id: str) -> str | None:
    keys = services.app.keys.keys  # type: ignore[attr-defined]
    with services.datastore.transaction(commit=False) as session:
        key: str | None = session.execute(
            select(keys.c.key).where(keys.c.participant_id == participant_id)
        ).scalar()
    return key


def test_personal_data_is_sealed_in_the_log_and_read_back_decrypted(
    api: Api, services: Services
) -> None:
    registered = _register(api, birth_date="1948-03-09")

    assert registered["name"] == NAME
    assert registered["contact"] == CONTACT
    assert registered["birth_date"] == "1948-03-09"
    assert registered["birth_year"] == 1948  # follows from the birth date, in clear
    shown = api.client.get(f"/participants/{registered['id']}", headers=api.headers(Role.DESK))
    assert shown.json() == registered
    stored = _stored_states(services)
    assert b'"sealed":"aesgcm1:' in stored
    for secret in (NAME, CONTACT, "1948-03-09"):
        assert secret.encode() not in stored
        assert json.dumps(secret).encode() not in stored
    assert _key_of(services, registered["id"]) is not None


def test_a_birth_date_that_contradicts_the_birth_year_is_refused_and_writes_nothing(
    api: Api, services: Services
) -> None:
    before = services.app.recorder.max_notification_id()
    refused = api.client.post(
        "/participants",
        json={"district_id": "suge", "birth_year": 1950, "birth_date": "1948-03-09"},
        headers=api.headers(Role.DESK),
    )
    assert refused.status_code == 422
    assert "does not match birth date 1948-03-09" in refused.json()["detail"]
    assert services.app.recorder.max_notification_id() == before


def test_erasure_reads_as_erased_everywhere_and_leaves_every_indicator_unchanged(
    api: Api,
    services: Services,
    follower: Follower,
    make_ids: Callable[..., dict[str, str]],
) -> None:
    ids = make_ids(birth_years=(1950, 2018))
    person = _register(api, birth_year=1990)
    admin = api.headers(Role.ADMIN)
    for participant in (ids["participant0"], ids["participant1"], person["id"]):
        checked = api.client.post(
            f"/events/{ids['event']}/check-ins", json={"participant_id": participant}, headers=admin
        )
        assert checked.status_code == 201
    settle(services, follower)
    before = api.client.get("/indicators", params={"fiscal_year": 2026}, headers=admin).json()
    csv_before = api.client.get("/indicators.csv?fiscal_year=2026", headers=admin).text
    check_in_before = api.client.get(
        f"/events/{ids['event']}/check-ins/{person['id']}", headers=admin
    ).json()
    assert before["indicators"]["unique_participants"]["value"] == 3

    erased = api.client.post(
        f"/participants/{person['id']}/erasure",
        json={"reason": "本人からの削除請求"},
        headers=api.headers(Role.ADMIN, **{"Idempotency-Key": "erase-1"}),
    )

    assert erased.status_code == 200, erased.text
    body = erased.json()
    assert body["erased"] is True
    assert (body["name"], body["contact"], body["birth_date"]) == (None, None, None)
    assert (body["birth_year"], body["band_id"], body["district_id"]) == (1990, "adult", "suge")
    assert api.client.get(f"/participants/{person['id']}", headers=admin).json() == body
    settle(services, follower)
    after = api.client.get("/indicators", params={"fiscal_year": 2026}, headers=admin).json()
    assert after["indicators"] == before["indicators"]
    assert api.client.get("/indicators.csv?fiscal_year=2026", headers=admin).text == csv_before
    assert after["indicators"]["total_attendances"]["by_band"]["adult"] == 1
    assert (
        api.client.get(f"/events/{ids['event']}/check-ins/{person['id']}", headers=admin).json()
        == check_in_before
    )
    disclosure = api.client.get(f"/participants/{person['id']}/disclosure", headers=admin).json()
    assert disclosure["erased"] is True
    assert disclosure["erasure_reason"] == "本人からの削除請求"
    registered_entry = disclosure["history"][0]
    assert registered_entry["details"]["personal"] == "[erased]"
    assert disclosure["history"][-1]["type"] == "Participant.Erased"
    assert NAME not in json.dumps(disclosure, ensure_ascii=False)
    # Erasing twice is harmless and records nothing more; the replay answers as the first time.
    head = services.app.recorder.max_notification_id()
    again = api.client.post(
        f"/participants/{person['id']}/erasure", json={"reason": "再"}, headers=admin
    )
    assert again.status_code == 200
    assert again.json() == body
    replayed = api.client.post(
        f"/participants/{person['id']}/erasure",
        json={"reason": "本人からの削除請求"},
        headers=api.headers(Role.ADMIN, **{"Idempotency-Key": "erase-1"}),
    )
    assert replayed.headers["Idempotent-Replayed"] == "true"
    assert replayed.json() == body
    assert services.app.recorder.max_notification_id() == head
    # Checking in still works: the check-in path never needs the participant's key.
    other_event = make_ids(birth_years=())["event"]
    checked = api.client.post(
        f"/events/{other_event}/check-ins", json={"participant_id": person["id"]}, headers=admin
    )
    assert checked.status_code == 201
    assert checked.json()["band_id"] == "adult"


def test_erasing_an_unknown_participant_is_404_and_only_admins_may_erase(api: Api) -> None:
    missing = api.client.post(
        "/participants/00000000-0000-0000-0000-000000000000/erasure",
        json={"reason": "x"},
        headers=api.headers(Role.ADMIN),
    )
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"
    person = _register(api, birth_year=1990)
    refused = api.client.post(
        f"/participants/{person['id']}/erasure",
        json={"reason": "x"},
        headers=api.headers(Role.COORDINATOR),
    )
    assert refused.status_code == 403
    still = api.client.get(f"/participants/{person['id']}", headers=api.headers(Role.DESK))
    assert still.json()["name"] == NAME


def test_a_replayed_registration_shows_the_personal_data_until_the_erasure_then_erased(
    api: Api,
) -> None:
    headers = api.headers(Role.DESK, **{"Idempotency-Key": "tablet-1/0001"})
    body = {"district_id": "suge", "birth_year": 1990, "name": NAME, "contact": CONTACT}
    first = api.client.post("/participants", json=body, headers=headers)
    replay = api.client.post("/participants", json=body, headers=headers)
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert replay.json() == first.json()
    assert replay.json()["name"] == NAME

    api.client.post(
        f"/participants/{first.json()['id']}/erasure",
        json={"reason": "x"},
        headers=api.headers(Role.ADMIN),
    )

    after = api.client.post("/participants", json=body, headers=headers)
    assert after.status_code == 201
    assert after.headers["Idempotent-Replayed"] == "true"
    assert after.json()["id"] == first.json()["id"]
    assert (after.json()["name"], after.json()["contact"]) == (None, None)
    assert after.json()["erased"] is True


def _everything_personal(api: Api, ids: dict[str, str], person: dict[str, Any]) -> None:
    """Corrections, consent, sensitive data, a check-in, each under an idempotency key."""
    desk = api.headers(Role.DESK, **{"Idempotency-Key": "k-correct"})
    corrected = api.client.post(
        f"/participants/{person['id']}/corrections", json={"name": CORRECTED}, headers=desk
    )
    assert corrected.status_code == 200, corrected.text
    purpose = {"purpose": "合理的配慮の提供", "given": True}
    consent = api.client.post(
        f"/participants/{person['id']}/consents",
        json=purpose,
        headers=api.headers(Role.DESK, **{"Idempotency-Key": "k-consent"}),
    )
    assert consent.status_code == 201
    sensitive = api.client.post(
        f"/participants/{person['id']}/sensitive-data",
        json={"purpose": "合理的配慮の提供", "category": "disability", "detail": DISABILITY},
        headers=api.headers(Role.DESK, **{"Idempotency-Key": "k-sensitive"}),
    )
    assert sensitive.status_code == 201, sensitive.text
    checked = api.client.post(
        f"/events/{ids['event']}/check-ins",
        json={"participant_id": person["id"]},
        headers=api.headers(Role.DESK, **{"Idempotency-Key": "k-check-in"}),
    )
    assert checked.status_code == 201


def _scan_sqlite(path: Path) -> bytes:
    files = [path, Path(f"{path}-wal"), Path(f"{path}-journal")]
    return b"".join(file.read_bytes() for file in files if file.exists())


def _scan_postgres(schema: str) -> bytes:
    from tests.support import POSTGRES_URL

    pg_dump = shutil.which("pg_dump")
    if pg_dump is None:
        pytest.skip("pg_dump is not installed here (CI has it)")
    url = POSTGRES_URL.replace("postgresql+psycopg://", "postgresql://", 1)
    dumped = subprocess.run(
        [pg_dump, "--schema", schema, url], check=True, capture_output=True, timeout=60
    )
    return dumped.stdout


def _raw_database(settings: Settings) -> bytes:
    path = settings.sqlite_path()
    if path is not None:
        return _scan_sqlite(path)
    assert settings.database_schema is not None
    return _scan_postgres(settings.database_schema)


def _forms(text: str) -> list[bytes]:
    """The ways a text can stand in stored bytes: UTF-8, and JSON-escaped ASCII."""
    return [text.encode(), json.dumps(text).encode()[1:-1]]


def test_the_raw_database_holds_nothing_of_an_erased_participant_in_clear(
    api: Api,
    services: Services,
    settings: Settings,
    make_ids: Callable[..., dict[str, str]],
    capfd: pytest.CaptureFixture[str],
) -> None:
    configure_logging(Settings(log_format=LogFormat.JSON))
    ids = make_ids(birth_years=())
    person = _register(api, birth_year=1990)
    _everything_personal(api, ids, person)
    key = _key_of(services, person["id"])
    assert key is not None
    before = _raw_database(settings)
    # Nothing personal ever stands in clear, not even before the erasure; the key does.
    for secret in (NAME, CONTACT, CORRECTED, DISABILITY):
        for form in _forms(secret):
            assert form not in before, f"{secret!r} found in clear"
    assert key.encode() in before

    erased = api.client.post(
        f"/participants/{person['id']}/erasure",
        json={"reason": "本人からの削除請求"},
        headers=api.headers(Role.ADMIN),
    )
    assert erased.status_code == 200

    after = _raw_database(settings)
    assert key.encode() not in after, "the destroyed key is still in the database files"
    for secret in (NAME, CONTACT, CORRECTED, DISABILITY):
        for form in _forms(secret):
            assert form not in after
    assert _key_of(services, person["id"]) is None
    logs = capfd.readouterr()
    assert '"event": "request"' in logs.err  # the logs were captured: the scan means something
    for secret in (NAME, CONTACT, CORRECTED, DISABILITY):
        assert secret not in logs.out + logs.err


def test_corrections_consents_and_sensitive_data_show_in_the_disclosure(
    api: Api, make_ids: Callable[..., dict[str, str]]
) -> None:
    ids = make_ids(birth_years=())
    person = _register(api, birth_year=1990)
    desk = api.headers(Role.DESK)
    no_consent = api.client.post(
        f"/participants/{person['id']}/sensitive-data",
        json={"purpose": "合理的配慮の提供", "category": "disability"},
        headers=desk,
    )
    assert no_consent.status_code == 409
    assert no_consent.json()["type"] == "/problems/no-consent"
    assert "record the consent first" in no_consent.json()["detail"]

    _everything_personal(api, ids, person)

    shown = api.client.get(f"/participants/{person['id']}", headers=desk).json()
    assert shown["name"] == CORRECTED
    assert shown["contact"] == CONTACT  # not named in the correction: unchanged
    assert shown["consents"] == ["合理的配慮の提供"]
    assert shown["sensitive_data"] == [
        {"purpose": "合理的配慮の提供", "category": "disability", "detail": DISABILITY}
    ]
    revert = api.client.post(
        f"/events/{ids['event']}/check-ins/{person['id']}/revert",
        json={"reason": "取り違え"},
        headers=desk,
    )
    assert revert.status_code == 200
    withdrawn = api.client.post(
        f"/participants/{person['id']}/consents",
        json={"purpose": "合理的配慮の提供", "given": False},
        headers=desk,
    )
    assert withdrawn.status_code == 201
    # Withdrawn: out of use for everyone; only the disclosure still shows what is held.
    assert withdrawn.json()["sensitive_data"] == []
    assert withdrawn.json()["consents"] == []

    disclosure = api.client.get(
        f"/participants/{person['id']}/disclosure", headers=api.headers(Role.ADMIN)
    ).json()

    assert disclosure["participant"]["name"] == CORRECTED
    assert disclosure["sensitive_data"] == [
        {
            "purpose": "合理的配慮の提供",
            "category": "disability",
            "detail": DISABILITY,
            "in_use": False,
            "version": 4,
        }
    ]
    history = disclosure["history"]
    assert [entry["type"] for entry in history] == [
        "Participant.Registered",
        "Participant.PersonalDataCorrected",
        "Participant.ConsentGiven",
        "Participant.SensitiveDataRecorded",
        "Participant.ConsentWithdrawn",
    ]
    assert history[0]["details"]["personal"] == {
        "name": NAME,
        "contact": CONTACT,
        "birth_date": None,
    }
    assert history[1]["details"] == {"fields": ["name"], "personal": {"name": CORRECTED}}
    assert history[1]["recorded_by"]["actor_role"] == "desk"
    assert history[1]["recorded_by"]["request_id"]
    [attended] = disclosure["attendance"]
    assert attended["event_id"] == ids["event"]
    assert attended["title"] == "TeamSUGE 現地ツアー"
    assert attended["status"] == "reverted"
    assert [entry["type"] for entry in attended["history"]] == [
        "Attendance.CheckedIn",
        "Attendance.CheckInReverted",
    ]
    assert attended["history"][1]["details"] == {"reason": "取り違え"}


def test_nothing_personal_can_be_added_after_an_erasure(api: Api) -> None:
    person = _register(api, birth_year=1990)
    api.client.post(
        f"/participants/{person['id']}/erasure", json={"reason": "x"}, headers=api.headers()
    )
    refused = api.client.post(
        f"/participants/{person['id']}/corrections",
        json={"name": "新しい名前"},
        headers=api.headers(Role.DESK),
    )
    assert refused.status_code == 409
    assert refused.json()["type"] == "/problems/participant-erased"


def test_a_correction_names_at_least_one_field_and_keeps_the_birth_year(api: Api) -> None:
    person = _register(api, birth_year=1990)
    desk = api.headers(Role.DESK)
    empty = api.client.post(f"/participants/{person['id']}/corrections", json={}, headers=desk)
    assert empty.status_code == 422
    assert "at least one field" in empty.json()["detail"]
    wrong_year = api.client.post(
        f"/participants/{person['id']}/corrections",
        json={"birth_date": "1991-01-01"},
        headers=desk,
    )
    assert wrong_year.status_code == 422
    assert "recorded birth year 1990" in wrong_year.json()["detail"]
    cleared = api.client.post(
        f"/participants/{person['id']}/corrections", json={"contact": None}, headers=desk
    )
    assert cleared.status_code == 200
    assert (cleared.json()["name"], cleared.json()["contact"]) == (NAME, None)
