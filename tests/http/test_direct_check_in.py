"""The check-in answered straight from ASGI (interfaces/http/direct.py) answers exactly as
FastAPI's route does, for every request, and takes the front desk's usual requests itself.

Two worlds, each a store of the same kind with the same standing clock, a token per role, an
event and participants: one app with the direct path, one without. The same requests go to
both; their answers (status, the headers a client reads, the body) must be the same once each
world's ids are written as names.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from domain.provenance import Role
from interfaces.bootstrap import Services
from interfaces.http import direct
from interfaces.http.app import create_app

REQUEST_ID = "desk-request-0001"
SHOWN = ("content-type", "location", "idempotent-replayed", "www-authenticate", "x-request-id")


@dataclass
class World:
    client: TestClient
    tokens: dict[Role, str]
    names: dict[str, str]  # id or token id → name

    def post(
        self,
        path: str,
        *,
        role: Role | None = Role.DESK,
        headers: dict[str, str] | list[tuple[str, str]] | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        sent = [("X-Request-Id", REQUEST_ID)]
        if role is not None:
            sent.append(("Authorization", f"Bearer {self.tokens[role]}"))
        sent += list(headers.items()) if isinstance(headers, dict) else list(headers or [])
        answer: httpx.Response = self.client.post(
            self.named(path, back=True), headers=sent, **kwargs
        )
        return answer

    def named(self, text: str, *, back: bool = False) -> str:
        """Ids written as their names, or (back) names as this world's ids."""
        for ident, name in self.names.items():
            text = text.replace(name, ident) if back else text.replace(ident, name)
        return text

    def answer(self, response: httpx.Response) -> tuple[int, dict[str, str], Any]:
        headers = {
            name: self.named(response.headers[name]) for name in SHOWN if name in response.headers
        }
        body = json.loads(self.named(response.text)) if response.content else None
        return response.status_code, headers, body


def _world(services: Services, *, direct_check_in: bool) -> Iterator[World]:
    tokens, names = {}, {}
    for role in Role:
        record, secret = services.tokens.create(name=f"test {role.value}", role=role)
        tokens[role] = secret
        names[str(record.id)] = f"<token {role.value}>"
    app = create_app(services=services, direct_check_in=direct_check_in)
    with TestClient(app, raise_server_exceptions=False) as client:
        world = World(client, tokens, names)
        org = world.post(
            "/organizations",
            json={"name": "菅町会", "kind": "neighbourhood_association", "district_id": "suge"},
            role=Role.ADMIN,
        ).json()["id"]
        program = world.post(
            "/programs",
            json={
                "name": "TeamSUGE",
                "policy": "2-2",
                "area": "community",
                "host_organization_ids": [org],
            },
            role=Role.ADMIN,
        ).json()["id"]
        for event in ("open", "closed"):
            made = world.post(
                "/events",
                json={
                    "program_id": program,
                    "title": "TeamSUGE 現地ツアー",
                    "starts_at": "2026-06-14T10:00:00+09:00",
                    "district_id": "suge",
                },
                role=Role.ADMIN,
            ).json()["id"]
            names[made] = f"<event {event}>"
        for index, year in enumerate((1950, 1990, 2018, 2001, 1960, 1975, 2010)):
            made = world.post(
                "/participants", json={"birth_year": year, "district_id": "suge"}, role=Role.ADMIN
            ).json()["id"]
            names[made] = f"<person {index}>"
        names[str(org)], names[str(program)] = "<org>", "<program>"
        world.post("/events/<event closed>/close", role=Role.COORDINATOR)
        yield world


@pytest.fixture
def worlds(services: Services, fresh: Services) -> Iterator[tuple[World, World]]:
    direct_world = _world(services, direct_check_in=True)
    routed_world = _world(fresh, direct_check_in=False)
    yield next(direct_world), next(routed_world)
    for world in (direct_world, routed_world):
        next(world, None)


@pytest.fixture
def taken(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The participant ids of the check-ins the direct path answered itself."""
    answered: list[str] = []
    check_in = direct._check_in

    async def recording(scope: Any, receive: Any, send: Any, command: Any) -> None:
        answered.append(str(command.participant_id))
        await check_in(scope, receive, send, command)

    monkeypatch.setattr(direct, "_check_in", recording)
    return answered


CHECK_IN = "/events/<event open>/check-ins"
Step = Callable[[World], httpx.Response]


def check_in(
    person: int | str, path: str = CHECK_IN, *, upper: bool = False, **kwargs: Any
) -> Step:
    """A check-in of ``<person N>`` (or of an id as it is) as the step of a world."""

    def step(world: World) -> httpx.Response:
        who = world.named(f"<person {person}>", back=True) if isinstance(person, int) else person
        at = path
        if upper:
            who, at = (
                who.upper(),
                path.replace("<event open>", world.named("<event open>", back=True).upper()),
            )
        return world.post(at, json={"participant_id": who}, **kwargs)

    return step


def sending(
    content: str | bytes,
    content_type: str = "application/json",
    headers: dict[str, str] | list[tuple[str, str]] | None = None,
) -> Step:
    """A check-in with this body (names written as the world's ids) and Content-Type."""
    sent = headers if headers is not None else {"Content-Type": content_type}

    def step(world: World) -> httpx.Response:
        body = world.named(content, back=True).encode() if isinstance(content, str) else content
        return world.post(CHECK_IN, content=body, headers=sent)

    return step


KEY = {"Idempotency-Key": "tablet-3/0001"}
UNKNOWN_EVENT = "/events/00000000-0000-4000-8000-000000000000/check-ins"

# The front desk's requests, which the direct path answers itself once the token is known.
USUAL: list[tuple[str, Step]] = [
    ("first check-in", check_in(0)),
    ("again", check_in(0)),
    ("with a key and a desk", check_in(1, headers={**KEY, "X-Desk-Id": "suge-1"})),
    (
        "the key replayed, other spacing",
        sending(
            '{ "participant_id" : "<person 1>" }',
            headers={**KEY, "Content-Type": "application/json"},
        ),
    ),
    ("the key with another body", check_in(2, headers=KEY)),
    ("an unknown event", check_in(2, UNKNOWN_EVENT)),
    ("an unknown participant", check_in("00000000-0000-4000-8000-000000000001")),
    ("a closed event", check_in(2, "/events/<event closed>/check-ins")),
    ("by a coordinator, upper-case ids", check_in(3, upper=True, role=Role.COORDINATOR)),
]

# Requests the route refuses or reads its own way: the direct path leaves them all to it.
LEFT_TO_THE_ROUTE: list[tuple[str, Step]] = [
    ("no token", check_in(4, role=None)),
    ("an unknown token", check_in(4, role=None, headers={"Authorization": "Bearer tsu_unknown"})),
    ("an evaluator", check_in(4, role=Role.EVALUATOR)),
    ("a bad desk id", check_in(4, headers={"X-Desk-Id": "a b"})),
    ("a bad idempotency key", check_in(4, headers={"Idempotency-Key": "tablet 3"})),
    ("malformed JSON", sending('{"participant_id": ')),
    ("not an object", sending('["<person 4>"]')),
    ("an extra field", sending('{"participant_id": "<person 4>", "x": 1}')),
    ("not a uuid", check_in("someone")),
    ("no body", lambda w: w.post(CHECK_IN)),
    ("a query string", check_in(4, CHECK_IN + "?x=1")),
    (
        "a uuid without hyphens",
        lambda w: check_in(w.named("<person 3>", back=True).replace("-", ""))(w),
    ),
    (
        "a token sent twice",
        lambda w: check_in(
            4, role=None, headers=[("Authorization", f"Bearer {w.tokens[Role.DESK]}")] * 2
        )(w),
    ),
    (
        "a +json type outside application/",
        sending('{"participant_id": "<person 5>"}', "text/plain+json"),
    ),
    (
        "a vendor +json type",
        sending(
            '{"participant_id": "<person 5>"}', "application/vnd.tsunagari+json; charset=utf-8"
        ),
    ),
    (
        "two content types",
        sending(
            '{"participant_id": "<person 6>"}',
            headers=[("Content-Type", "text/plain"), ("Content-Type", "application/json")],
        ),
    ),
    ("JSON nested too deep", sending(b"[" * 5000 + b"]" * 5000)),
    (
        "the event id not a uuid",
        lambda w: w.post("/events/abc/check-ins", json={"participant_id": "x"}),
    ),
]


def _same_answers(worlds: tuple[World, World], steps: list[tuple[str, Step]]) -> list[str]:
    direct_world, routed_world = worlds
    for world in worlds:  # every token checked once, as by each role's first request
        event = world.named("/events/<event open>", back=True)
        for token in world.tokens.values():
            world.client.get(event, headers={"Authorization": f"Bearer {token}"})
    seen = []
    for what, step in steps:
        directly, routed = (
            direct_world.answer(step(direct_world)),
            routed_world.answer(step(routed_world)),
        )
        assert directly == routed, what
        seen.append(f"{what}: {directly[0]}")
    return seen


def test_the_desk_s_usual_check_ins_are_answered_directly_exactly_as_by_the_route(
    worlds: tuple[World, World], taken: list[str]
) -> None:
    seen = _same_answers(worlds, USUAL)

    assert seen == [
        "first check-in: 201",
        "again: 200",
        "with a key and a desk: 201",
        "the key replayed, other spacing: 201",
        "the key with another body: 422",
        "an unknown event: 404",
        "an unknown participant: 422",
        "a closed event: 409",
        "by a coordinator, upper-case ids: 201",
    ]
    direct_world = worlds[0]
    assert [direct_world.named(pid) for pid in taken] == [
        "<person 0>",
        "<person 0>",
        "<person 1>",
        "<person 1>",
        "<person 2>",
        "<person 2>",
        "00000000-0000-4000-8000-000000000001",
        "<person 2>",
        "<person 3>",
    ]


def test_every_other_request_is_left_to_the_route(
    worlds: tuple[World, World], taken: list[str]
) -> None:
    seen = _same_answers(worlds, LEFT_TO_THE_ROUTE)

    assert taken == []
    statuses = dict(entry.rsplit(": ", 1) for entry in seen)
    assert statuses["no token"] == statuses["an unknown token"] == "401"
    assert statuses["an evaluator"] == "403"
    assert statuses["a bad desk id"] == statuses["a bad idempotency key"] == "400"
    assert statuses["malformed JSON"] == "400"
    assert statuses["an extra field"] == statuses["not a uuid"] == statuses["no body"] == "422"
    assert statuses["a +json type outside application/"] == "422"
    assert statuses["two content types"] == "415"  # the first, text/plain, as FastAPI reads it
    assert statuses["JSON nested too deep"] == "400"
    # The route reads these its own way, and records them.
    assert statuses["a query string"] == statuses["a uuid without hyphens"] == "201"
    assert statuses["a vendor +json type"] == "201"


def test_a_check_in_answered_directly_is_recorded_with_its_desk_and_request(
    worlds: tuple[World, World], services: Services, taken: list[str]
) -> None:
    direct_world = worlds[0]
    _same_answers(worlds, [])
    person = direct_world.named("<person 0>", back=True)
    answer = direct_world.post(
        CHECK_IN,
        json={"participant_id": person},
        headers={"X-Desk-Id": "suge-1", "Idempotency-Key": "k-1"},
    )

    assert answer.status_code == 201
    assert taken == [person]
    [notification] = services.app.recorder.select_notifications(
        services.app.recorder.max_notification_id() or 0, 1
    )
    recorded = services.app.mapper.to_domain_event(notification)
    by = recorded.recorded_by  # type: ignore[attr-defined]
    assert (by.actor_role, by.desk_id, by.request_id) == (Role.DESK, "suge-1", REQUEST_ID)
    assert direct_world.named(by.actor_id) == "<token desk>"
    listed = direct_world.client.get(
        answer.headers["location"].rsplit("/", 1)[0],
        headers={"Authorization": f"Bearer {direct_world.tokens[Role.DESK]}"},
    ).json()
    assert [direct_world.named(entry["participant_id"]) for entry in listed["check_ins"]] == [
        "<person 0>"
    ]
