"""Event schema evolution: events stored by an earlier version of a class still load.

``Participant.Registered`` version 1 (main before personal data was sealed) held name and
contact in clear; version 2 holds a sealed envelope instead. The bytes below are exactly what
version 1 stored (made with that code), inserted through the recorder as an old database holds
them, then read through the application, the HTTP API and the indicator projections.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from uuid import UUID, uuid4

from eventsourcing.persistence import StoredEvent

from domain.participants import LEGACY_PREFIX, Participant
from domain.provenance import Role
from interfaces.bootstrap import Services
from projections.follower import Follower
from tests.support import Api, settle

TOPIC = "domain.participants:Participant.Registered"
V1_STATE = (
    b'{"timestamp":{"_type_":"datetime_iso","_data_":"2026-05-01T01:00:00+00:00"},'
    b'"originator_topic":"domain.participants:Participant","birth_year":1948,"band_id":null,'
    b'"district_id":"suge","name":"\xe5\xa4\x9a\xe6\x91\xa9 \xe8\x8a\xb1\xe5\xad\x90",'
    b'"contact":"044-000-0000","registered_on":{"_type_":"date_iso","_data_":"2026-05-01"},'
    b'"recorded_by":{"_type_":"provenance","_data_":{"actor_id":"tok-1","actor_role":'
    b'{"_type_":"Role","_data_":"desk"},"desk_id":"suge-tablet-1","request_id":"req-1"}}}'
)
NAME = "多摩 花子"


def _insert_v1(services: Services) -> UUID:
    participant_id = uuid4()
    services.app.recorder.insert_events(
        [
            StoredEvent(
                originator_id=participant_id,
                originator_version=1,
                topic=TOPIC,
                state=V1_STATE,
            )
        ]
    )
    return participant_id


def test_a_version_1_registration_loads_as_version_2_with_its_plaintext_masked(
    services: Services,
) -> None:
    participant_id = _insert_v1(services)
    [stored] = services.app.recorder.select_events(participant_id)

    upcast = services.app.mapper.to_domain_event(stored)

    assert isinstance(upcast, Participant.Registered)
    assert Participant.Registered.class_version == 2
    assert upcast.birth_year == 1948
    assert upcast.district_id == "suge"
    assert upcast.sealed is not None
    assert upcast.sealed.startswith(LEGACY_PREFIX)
    assert not hasattr(upcast, "name")
    # The audit trail masks personal_fields: they cover the version-1 JSON and the upcast.
    personal_in_v1 = {"name", "contact"} & set(json.loads(V1_STATE))
    assert personal_in_v1 <= Participant.Registered.personal_fields
    assert "sealed" in Participant.Registered.personal_fields


def test_a_version_1_participant_is_read_checked_in_counted_corrected_and_erased(
    services: Services,
    follower: Follower,
    api: Api,
    make_ids: Callable[..., dict[str, str]],
) -> None:
    participant_id = _insert_v1(services)
    desk = api.headers(Role.DESK)
    admin = api.headers(Role.ADMIN)

    shown = api.client.get(f"/participants/{participant_id}", headers=desk).json()
    assert (shown["name"], shown["contact"], shown["birth_year"]) == (NAME, "044-000-0000", 1948)
    assert shown["band_id"] == "old_old"
    assert shown["erased"] is False
    event = make_ids(birth_years=())["event"]
    checked = api.client.post(
        f"/events/{event}/check-ins", json={"participant_id": str(participant_id)}, headers=desk
    )
    assert checked.status_code == 201
    assert checked.json()["band_id"] == "old_old"
    settle(services, follower)
    indicators = api.client.get("/indicators", params={"fiscal_year": 2026}, headers=admin).json()
    attendances = indicators["indicators"]["total_attendances"]
    assert attendances["by_band"] == {"old_old": 1}

    corrected = api.client.post(
        f"/participants/{participant_id}/corrections",
        json={"contact": "044-111-1111"},
        headers=desk,
    )
    assert corrected.status_code == 200, corrected.text
    assert (corrected.json()["name"], corrected.json()["contact"]) == (NAME, "044-111-1111")
    states = [stored.state for stored in services.app.recorder.select_events(participant_id)]
    assert b'"class_version":2' not in states[0]  # the old event stays as it was stored
    assert b"044-111-1111" not in states[1]  # the correction is sealed with a new key

    erased = api.client.post(
        f"/participants/{participant_id}/erasure", json={"reason": "本人の申出"}, headers=admin
    )

    assert (erased.json()["name"], erased.json()["contact"]) == (None, None)
    disclosure = api.client.get(f"/participants/{participant_id}/disclosure", headers=admin)
    assert NAME not in disclosure.text
    assert disclosure.json()["history"][0]["details"]["personal"] == "[erased]"
    settle(services, follower)
    after = api.client.get("/indicators", params={"fiscal_year": 2026}, headers=admin).json()
    assert after["indicators"] == indicators["indicators"]
    # The limit, documented in README: version-1 plaintext stays in the append-only log.
    assert NAME.encode() in services.app.recorder.select_events(participant_id)[0].state


def test_new_registrations_are_stored_as_version_2(api: Api, services: Services) -> None:
    answer = api.client.post(
        "/participants",
        json={"birth_year": 1990, "district_id": "suge", "name": NAME},
        headers=api.headers(Role.DESK),
    )
    [stored] = services.app.recorder.select_events(UUID(answer.json()["id"]))
    state = json.loads(stored.state)
    assert state["class_version"] == 2
    assert "name" not in state
    assert state["sealed"].startswith("aesgcm1:")
