"""The real server on a loopback port, eight desks checking people in at one event at once."""

from __future__ import annotations

from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from eventsourcing.utils import get_topic

from domain.attendance import Attendance
from interfaces.bootstrap import build_services
from tests.e2e.conftest import Server

pytestmark = pytest.mark.e2e

DESKS = 8
CHECK_INS_PER_DESK = 100
PARTICIPANTS = 300
STRIDE = 40  # desk d starts at participant d*STRIDE: neighbouring desks overlap by 60


def test_eight_desks_in_parallel_lose_nothing_and_double_nothing(server: Server) -> None:
    headers = {"Authorization": f"Bearer {server.token}"}
    with httpx.Client(base_url=server.base_url, headers=headers, timeout=30) as client:
        org = client.post("/organizations", json={"name": "多摩区役所", "kind": "ward_office"})
        program = client.post(
            "/programs",
            json={
                "name": "多摩区スポーツフェスタ",
                "policy": "2-1",
                "area": "community",
                "host_organization_ids": [org.json()["id"]],
            },
        )
        event_id = client.post(
            "/events",
            json={
                "program_id": program.json()["id"],
                "title": "多摩区スポーツフェスタ2026",
                "starts_at": "2026-10-11T09:00:00+09:00",
                "district_id": "ikuta",
            },
        ).json()["id"]
        people = [
            client.post(
                "/participants", json={"birth_year": 1940 + i % 80, "district_id": "ikuta"}
            ).json()["id"]
            for i in range(PARTICIPANTS)
        ]

    def desk(number: int) -> list[tuple[str, int, bool]]:
        answers: list[tuple[str, int, bool]] = []
        desk_headers = {**headers, "X-Desk-Id": f"festa-desk-{number}"}
        with httpx.Client(base_url=server.base_url, headers=desk_headers, timeout=30) as client:
            for i in range(CHECK_INS_PER_DESK):
                person = people[(number * STRIDE + i) % PARTICIPANTS]
                key = {"Idempotency-Key": f"desk-{number}-{i}"}
                tries = 2 if i % 7 == 0 else 1  # a dropped answer: the tablet sends it again
                for _ in range(tries):
                    answer = client.post(
                        f"/events/{event_id}/check-ins",
                        json={"participant_id": person},
                        headers=key,
                    )
                    replayed = answer.headers.get("Idempotent-Replayed") == "true"
                    answers.append((person, answer.status_code, replayed))
        return answers

    with ThreadPoolExecutor(DESKS) as pool:
        results = [answer for answers in pool.map(desk, range(DESKS)) for answer in answers]

    statuses = Counter(status for _, status, _ in results)
    assert set(statuses) <= {200, 201}, statuses
    expected = {
        people[(number * STRIDE + i) % PARTICIPANTS]
        for number in range(DESKS)
        for i in range(CHECK_INS_PER_DESK)
    }
    first_creations = Counter(
        person for person, status, replayed in results if status == 201 and not replayed
    )
    assert set(first_creations) == expected
    assert all(count == 1 for count in first_creations.values())

    with httpx.Client(base_url=server.base_url, headers=headers, timeout=30) as client:
        listed = client.get(f"/events/{event_id}/check-ins").json()
    assert listed["checked_in"] == len(expected)
    assert {entry["participant_id"] for entry in listed["check_ins"]} == expected

    # The log itself: one CheckedIn event per participant, none doubled.
    services = build_services(server.settings)
    try:
        stored = services.app.recorder.select_notifications(
            start=1, limit=100_000, topics=[get_topic(Attendance.CheckedIn)]
        )
        checked_in = [services.app.mapper.to_domain_event(n) for n in stored]
    finally:
        services.close()
    assert len(checked_in) == len(expected)
    assert {str(e.participant_id) for e in checked_in} == expected  # type: ignore[attr-defined]
