"""Whatever a client sends, the answer is never a 5xx, and a refusal writes nothing.

Hypothesis draws requests for every command and every query with parameters: each field
either a plausible value or anything JSON can carry (text with control characters, numbers
beyond 64 bits, dates at the calendar's ends, nested lists and objects), sometimes a field
too many or a body that is no object at all, sometimes an Idempotency-Key already used.
On both stores: PostgreSQL refuses what SQLite keeps (NUL in text, say), and the other way.
"""

from __future__ import annotations

import json
import string
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from domain.generations import DEFAULT_BANDS
from domain.provenance import Role
from interfaces.bootstrap import Services
from tests.support import Api

IdMaker = Callable[..., dict[str, str]]

BIG = 2**70
junk: st.SearchStrategy[Any] = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-BIG, BIG)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=30),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=6,
)
texts = st.text(alphabet=st.characters(codec="utf-8"), max_size=260)
offsets = st.sampled_from(
    [
        UTC,
        timezone(timedelta(hours=9)),
        timezone(timedelta(hours=14)),
        timezone(-timedelta(hours=12)),
    ]
)
moments = st.datetimes(
    min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=offsets
)


Field = tuple[st.SearchStrategy[Any], st.SearchStrategy[Any]]
"""A field's plausible values, and its wild ones."""


nasty = st.sampled_from(
    ["", " ", "\x00", "取り\x00違え", "\x1b[31m赤", "\u3000", "x" * 201, "あ" * 1001, "\U0001f600"]
)
"""Text the checks must catch, drawn often: random text finds them only now and then."""


def either(plausible: st.SearchStrategy[Any]) -> Field:
    return plausible, st.one_of(nasty, nasty, texts, junk)


MOMENT_EDGES = ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-12:00", "2026-02-30T10:00+09:00"]
DAY_EDGES = ["0001-01-01", "9999-12-31", "2026-02-30"]


def moment(plausible: str | None, *also: str | None) -> Field:
    edges = st.sampled_from(MOMENT_EDGES)
    return (
        st.sampled_from([plausible, *also]),
        st.one_of(edges, edges, moments.map(datetime.isoformat), texts, junk),
    )


def day(plausible: str) -> Field:
    edges = st.sampled_from(DAY_EDGES)
    return st.just(plausible), st.one_of(edges, edges, st.dates().map(date.isoformat), texts, junk)


def _plausible_but_one(draw: st.DrawFn, fields: dict[str, Field]) -> dict[str, Any]:
    """Every field plausible, then one made wild (sometimes none, or two)."""
    drawn = {name: draw(plausible) for name, (plausible, _) in fields.items()}
    wild = min(draw(st.sampled_from([0, 1, 1, 1, 2])), len(fields))
    for name in draw(st.sets(st.sampled_from(sorted(fields)), min_size=wild, max_size=wild)):
        drawn[name] = draw(fields[name][1])
    return drawn


def body(fields: dict[str, Field]) -> st.SearchStrategy[Any]:
    """Mostly a plausible object with one field wild (sometimes none, or two), maybe one left
    out or one too many, so that a bad field reaches the checks behind the others'; now and
    then junk."""
    names = sorted(fields)

    @st.composite
    def mutated(draw: st.DrawFn) -> dict[str, Any]:
        drawn = _plausible_but_one(draw, fields)
        for name in draw(st.sets(st.sampled_from(names), max_size=1)):
            if draw(st.integers(0, 3)) == 0:
                del drawn[name]
        if draw(st.integers(0, 9)) == 0:
            drawn[draw(st.text(max_size=10))] = draw(junk)
        return drawn

    return st.one_of(mutated(), mutated(), mutated(), junk)


def _commands(ids: dict[str, str]) -> dict[str, tuple[str, st.SearchStrategy[Any]]]:
    """Each command by its operation id: its path and its bodies."""
    event, person, tally = ids["event"], ids["participant0"], ids["tally"]
    any_id = st.uuids().map(str)
    bands = st.sampled_from([band.id for band in DEFAULT_BANDS.bands])
    districts = st.sampled_from(["suge", "noborito"])
    reason = {"reason": either(st.just("取り違え"))}
    return {
        "register_organization": (
            "/organizations",
            body(
                {
                    "name": either(st.just("菅町会")),
                    "kind": either(st.sampled_from(["npo", "clinic", "alien"])),
                    "district_id": either(districts),
                }
            ),
        ),
        "launch_program": (
            "/programs",
            body(
                {
                    "name": either(st.just("TeamSUGE")),
                    "policy": either(st.sampled_from(["2-1", "2-2", "2-3"])),
                    "area": either(st.sampled_from(["children", "community", "sea"])),
                    "host_organization_ids": (
                        st.just([ids["organization"]]),
                        st.lists(st.just(ids["organization"]) | any_id, max_size=25) | texts | junk,
                    ),
                }
            ),
        ),
        "schedule_event": (
            "/events",
            body(
                {
                    "program_id": either(st.just(ids["program"]) | any_id),
                    "title": either(st.just("子育てサロン")),
                    "starts_at": moment("2026-07-01T10:00:00+09:00"),
                    "ends_at": moment("2026-07-01T12:00:00+09:00", None),
                    "district_id": either(districts),
                    "venue": either(st.just("菅こども文化センター")),
                }
            ),
        ),
        "reschedule_event": (
            f"/events/{ids['spare']}/reschedule",
            body(
                {
                    "starts_at": moment("2026-07-02T10:00:00+09:00"),
                    "ends_at": moment("2026-07-02T12:00:00+09:00", None),
                }
            ),
        ),
        "cancel_event": (f"/events/{ids['spare']}/cancel", body(reason)),
        "close_event": (f"/events/{ids['spare']}/close", st.none() | body(reason)),
        "register_participant": (
            "/participants",
            body(
                {
                    "birth_year": (
                        st.just(1948),  # as the birth date says
                        st.integers(-BIG, BIG) | st.integers(1890, 2030) | texts | junk,
                    ),
                    "band_id": (st.none(), bands | texts | junk),  # given instead of a year
                    "district_id": either(districts),
                    "name": either(st.just("多摩 花子")),
                    "contact": either(st.just("044-000-0000")),
                    "birth_date": day("1948-03-09"),
                }
            ),
        ),
        "correct_personal_data": (
            f"/participants/{person}/corrections",
            body(
                {
                    "name": either(st.just("多摩 はな子")),
                    "contact": either(st.just("hanako@example.jp")),
                    "birth_date": day("1950-03-09"),
                }
            ),
        ),
        "record_consent": (
            f"/participants/{person}/consents",
            body(
                {
                    "purpose": either(st.just("合理的配慮の提供")),
                    "given": either(st.booleans()),
                }
            ),
        ),
        "record_sensitive_data": (
            f"/participants/{person}/sensitive-data",
            body(
                {
                    "purpose": either(st.just("合理的配慮の提供")),
                    "category": either(st.just("disability")),
                    "detail": either(st.just("車いすを使用")),
                }
            ),
        ),
        "check_in": (
            f"/events/{event}/check-ins",
            body(
                {
                    "participant_id": (
                        st.sampled_from([ids["participant1"], ids["participant2"]]),
                        any_id | texts | junk,
                    ),
                }
            ),
        ),
        "revert_check_in": (f"/events/{event}/check-ins/{person}/revert", body(reason)),
        "record_walk_ins": (
            f"/events/{event}/walk-ins",
            body(
                {
                    "counts": (
                        st.dictionaries(bands, st.integers(0, 60), min_size=1, max_size=7),
                        st.dictionaries(bands | texts, st.integers(-BIG, BIG) | junk, max_size=22)
                        | texts
                        | junk,
                    ),
                }
            ),
        ),
        "revert_walk_ins": (f"/events/{event}/walk-ins/{tally}/revert", body(reason)),
    }


def _queries(ids: dict[str, str]) -> list[tuple[str, st.SearchStrategy[dict[str, Any]]]]:
    number = st.integers(-BIG, BIG) | st.text(max_size=12)
    word = st.text(max_size=40) | nasty
    days = st.sampled_from(DAY_EDGES) | st.dates().map(date.isoformat) | word
    fiscal_year = (st.just(2026), st.integers(1980, 2110) | number)
    filters: dict[str, Field] = {
        "district": (st.sampled_from(["suge", None]), st.just("kawasaki") | word),
        "program_id": (st.sampled_from([ids["program"], None]), word),
        "policy": (st.sampled_from(["2-2", None]), st.just("2-3") | word),
        "as_of": (st.sampled_from(["2026-09-30", None]), days),
    }
    audit: dict[str, Field] = {
        "after": (st.sampled_from([0, 3, None]), number),
        "limit": (st.sampled_from([10, None]), number),
        "type": (st.sampled_from(["Attendance.CheckedIn", None]), word),
        "actor": (st.none(), word),
        "from": (st.sampled_from(["2026-06-01", None]), days | moments.map(datetime.isoformat)),
        "to": (st.sampled_from(["2026-12-31", None]), days),
    }
    return [
        ("/indicators", parameters({"fiscal_year": fiscal_year, **filters})),
        ("/indicators.csv", parameters({"fiscal_year": fiscal_year, **filters})),
        ("/indicators/progress", parameters(filters)),
        ("/audit/log", parameters(audit)),
    ]


def parameters(fields: dict[str, Field]) -> st.SearchStrategy[dict[str, Any]]:
    """A query's parameters: plausible ones (None: left out) with one wild, sometimes two."""

    @st.composite
    def mutated(draw: st.DrawFn) -> dict[str, Any]:
        drawn = _plausible_but_one(draw, fields)
        return {name: value for name, value in drawn.items() if value is not None}

    return mutated()


@pytest.fixture
def ids(api: Api, make_ids: IdMaker) -> dict[str, str]:
    made = make_ids()
    for command in ("close_event", "revert_check_in", "revert_walk_ins"):
        _fresh(api, made, command)  # the spare event, a check-in, a tally
    return made


headers = st.fixed_dictionaries(
    {},
    optional={
        "Idempotency-Key": st.sampled_from(["key-1", "key-2"]),
        "X-Desk-Id": st.text(alphabet=string.printable, max_size=70),
    },
)


def _refused_cleanly(answer: Any) -> None:
    assert answer.status_code < 500, answer.text
    if answer.status_code >= 400:
        assert answer.headers["content-type"] == "application/problem+json", answer.text
        assert answer.json()["detail"], answer.text


COMMANDS = [
    "register_organization",
    "launch_program",
    "schedule_event",
    "reschedule_event",
    "cancel_event",
    "close_event",
    "register_participant",
    "correct_personal_data",
    "record_consent",
    "record_sensitive_data",
    "check_in",
    "revert_check_in",
    "record_walk_ins",
    "revert_walk_ins",
]


def _fresh(api: Api, ids: dict[str, str], command: str) -> None:
    """What the command acts on, as it was before any example changed it: a scheduled event
    to move, cancel or close; a check-in and a tally that still count, to revert."""
    admin = api.headers(Role.ADMIN)
    if command in ("reschedule_event", "cancel_event", "close_event"):
        ids["spare"] = api.client.post(
            "/events",
            json={
                "program_id": ids["program"],
                "title": "予備",
                "starts_at": "2026-08-01T10:00:00+09:00",
                "district_id": "suge",
            },
            headers=admin,
        ).json()["id"]
    elif command == "revert_check_in":
        checked_in = api.client.post(
            f"/events/{ids['event']}/check-ins",
            json={"participant_id": ids["participant0"]},
            headers=admin,
        )
        assert checked_in.json()["status"] == "checked_in"
    elif command == "revert_walk_ins":
        ids["tally"] = api.client.post(
            f"/events/{ids['event']}/walk-ins", json={"counts": {"infant": 2}}, headers=admin
        ).json()["id"]


@pytest.mark.parametrize("command", COMMANDS)
@settings(
    max_examples=40,
    deadline=None,
    derandomize=True,  # the same requests on every run of the suite: CI stays repeatable
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_any_command_gets_an_answer_below_500_and_a_refusal_writes_nothing(
    api: Api, services: Services, ids: dict[str, str], command: str, data: st.DataObject
) -> None:
    _fresh(api, ids, command)
    path, bodies = _commands(ids)[command]
    sent = data.draw(bodies, label="body")
    extra = data.draw(headers, label="headers")
    before = services.app.recorder.max_notification_id()
    content = None if sent is None else json.dumps(sent, ensure_ascii=data.draw(st.booleans()))
    answer = api.client.post(
        path,
        content=content,
        headers=api.headers(Role.ADMIN, **{"Content-Type": "application/json", **extra}),
    )
    _refused_cleanly(answer)
    if answer.status_code >= 400:
        assert services.app.recorder.max_notification_id() == before, (path, sent)


@settings(
    max_examples=200,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_any_query_gets_an_answer_below_500(
    api: Api, ids: dict[str, str], data: st.DataObject
) -> None:
    path, parameters = data.draw(st.sampled_from(_queries(ids)), label="route")
    params = data.draw(parameters, label="parameters")
    answer = api.client.get(path, params=params, headers=api.headers(Role.ADMIN))
    _refused_cleanly(answer)
