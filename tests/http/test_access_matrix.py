"""Every route × every role, no token and a revoked token: allowed, 401 or 403, as README says."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest

from domain.provenance import Role
from interfaces.bootstrap import Services
from tests.support import Api

ALL = frozenset(Role)
SCHEDULING = frozenset({Role.COORDINATOR, Role.ADMIN})
FRONT_DESK = frozenset({Role.DESK, Role.COORDINATOR, Role.ADMIN})
INDICATORS = frozenset({Role.COORDINATOR, Role.EVALUATOR, Role.AUDITOR, Role.ADMIN})
AUDIT = frozenset({Role.AUDITOR, Role.ADMIN})
ADMIN = frozenset({Role.ADMIN})

# (method, path, JSON body, roles allowed) — the table in README.md, route by route.
ROUTES: list[tuple[str, str, dict[str, object] | None, frozenset[Role]]] = [
    ("POST", "/organizations", {"name": "x", "kind": "npo"}, SCHEDULING),
    ("GET", "/organizations/{organization}", None, ALL),
    (
        "POST",
        "/programs",
        {
            "name": "x",
            "policy": "2-1",
            "area": "community",
            "host_organization_ids": ["{organization}"],
        },
        SCHEDULING,
    ),
    ("GET", "/programs/{program}", None, ALL),
    (
        "POST",
        "/events",
        {
            "program_id": "{program}",
            "title": "x",
            "starts_at": "2026-06-14T10:00:00+09:00",
            "district_id": "suge",
        },
        SCHEDULING,
    ),
    ("GET", "/events/{event}", None, ALL),
    ("POST", "/events/{spare}/reschedule", {"starts_at": "2026-06-15T10:00:00+09:00"}, SCHEDULING),
    ("POST", "/events/{spare}/cancel", {"reason": "x"}, SCHEDULING),
    ("POST", "/events/{spare}/close", None, SCHEDULING),
    ("POST", "/participants", {"birth_year": 1980, "district_id": "suge"}, FRONT_DESK),
    ("GET", "/participants/{participant0}", None, FRONT_DESK),
    ("POST", "/participants/{participant0}/corrections", {"contact": "x"}, FRONT_DESK),
    ("POST", "/participants/{participant0}/consents", {"purpose": "x", "given": True}, FRONT_DESK),
    (
        "POST",
        "/participants/{participant0}/sensitive-data",
        {"purpose": "x", "category": "disability"},
        FRONT_DESK,
    ),
    ("GET", "/participants/{participant0}/disclosure", None, ADMIN),
    ("POST", "/events/{event}/check-ins", {"participant_id": "{participant1}"}, FRONT_DESK),
    ("GET", "/events/{event}/check-ins", None, ALL),
    ("GET", "/events/{event}/check-ins/{participant0}", None, ALL),
    ("POST", "/events/{event}/check-ins/{participant0}/revert", {"reason": "x"}, FRONT_DESK),
    ("POST", "/events/{event}/walk-ins", {"counts": {"adult": 1}}, FRONT_DESK),
    ("GET", "/events/{event}/walk-ins", None, ALL),
    ("GET", "/events/{event}/walk-ins/{tally}", None, ALL),
    ("POST", "/events/{event}/walk-ins/{tally}/revert", {"reason": "x"}, FRONT_DESK),
    ("GET", "/indicators?fiscal_year=2026", None, INDICATORS),
    ("GET", "/indicators/progress", None, INDICATORS),
    ("GET", "/indicators.csv?fiscal_year=2026", None, INDICATORS),
    ("GET", "/audit/log?limit=5", None, AUDIT),
    ("GET", "/audit/streams/{event}", None, AUDIT),
    # Last: it erases a participant the routes above still use.
    ("POST", "/participants/{participant1}/erasure", {"reason": "x"}, ADMIN),
]


def _fill(value: object, ids: dict[str, str]) -> object:
    if isinstance(value, str):
        return value.format(**ids)
    if isinstance(value, list):
        return [_fill(item, ids) for item in value]
    if isinstance(value, dict):
        return {key: _fill(item, ids) for key, item in value.items()}
    return value


def _shape(path: str) -> str:
    """A path with its parameters blanked: /events/{event_id}/check-ins -> /events/{}/check-ins."""
    return re.sub(r"\{[^}]*\}", "{}", path.split("?")[0])


def test_the_matrix_covers_every_route_of_the_api(api: Api) -> None:
    served = {
        (method.upper(), _shape(path))
        for path, operations in api.client.get("/openapi.json").json()["paths"].items()
        for method in operations
        if path != "/health"
    }
    assert {(method, _shape(path)) for method, path, _, _ in ROUTES} == served


def _expected(who: Role | str, allowed: frozenset[Role]) -> str:
    if not isinstance(who, Role):
        return "401"
    return "allowed" if who in allowed else "403"


@pytest.mark.parametrize("who", [*Role, "nobody", "revoked"], ids=str)
def test_each_role_gets_what_readme_documents(
    api: Api,
    services: Services,
    make_ids: Callable[..., dict[str, str]],
    who: Role | str,
) -> None:
    ids = make_ids(birth_years=(1950, 1990))
    admin = api.headers(Role.ADMIN)
    ids["spare"] = make_ids(birth_years=())["event"]
    api.client.post(
        f"/events/{ids['event']}/check-ins",
        json={"participant_id": ids["participant0"]},
        headers=admin,
    )
    ids["tally"] = api.client.post(
        f"/events/{ids['event']}/walk-ins", json={"counts": {"adult": 1}}, headers=admin
    ).json()["id"]
    if who == "nobody":
        headers: dict[str, str] = {}
    elif who == "revoked":
        record, secret = services.tokens.create(name="revoked", role=Role.ADMIN)
        services.tokens.revoke(record.id)
        headers = {"Authorization": f"Bearer {secret}"}
    else:
        assert isinstance(who, Role)
        headers = api.headers(who)
    for method, path, body, allowed in ROUTES:
        answer = api.client.request(
            method, path.format(**ids), json=_fill(body, ids), headers=headers
        )
        expected = _expected(who, allowed)
        got = str(answer.status_code) if answer.status_code in (401, 403) else "allowed"
        assert got == expected, f"{who} {method} {path}: {answer.status_code} {answer.text}"
        if got == "allowed":
            assert answer.status_code < 500, f"{method} {path}: {answer.text}"
