"""Every route × every role, no token and a revoked token: the route's success, 401 or 403,
with the role sets the routes use (interfaces/http/access.py), and exactly as README's tables say.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from domain.provenance import Role
from interfaces.bootstrap import Services
from interfaces.http import access
from tests.support import Api

README = Path(__file__).resolve().parents[2] / "README.md"


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    """With the ids of the fixture in braces: /events/{event}/check-ins."""
    body: dict[str, object] | None
    allowed: frozenset[Role] | None
    """The roles that may call it; None: anyone, without a token."""
    success: int
    """What an allowed call answers, every call below being one that can succeed."""


# In an order in which every allowed call succeeds: each call finds what it needs.
ROUTES: list[Route] = [
    Route("GET", "/health", None, None, 200),
    Route("POST", "/organizations", {"name": "x", "kind": "npo"}, access.SCHEDULING, 201),
    Route("GET", "/organizations/{organization}", None, access.READ_RECORDS, 200),
    Route(
        "POST",
        "/programs",
        {
            "name": "x",
            "policy": "2-1",
            "area": "community",
            "host_organization_ids": ["{organization}"],
        },
        access.SCHEDULING,
        201,
    ),
    Route("GET", "/programs/{program}", None, access.READ_RECORDS, 200),
    Route(
        "POST",
        "/events",
        {
            "program_id": "{program}",
            "title": "x",
            "starts_at": "2026-06-14T10:00:00+09:00",
            "district_id": "suge",
        },
        access.SCHEDULING,
        201,
    ),
    Route("GET", "/events/{event}", None, access.READ_RECORDS, 200),
    Route(
        "POST",
        "/events/{spare}/reschedule",
        {"starts_at": "2026-06-15T10:00:00+09:00"},
        access.SCHEDULING,
        200,
    ),
    Route("POST", "/events/{spare}/cancel", {"reason": "x"}, access.SCHEDULING, 201),
    # Another event: a cancelled one cannot be closed.
    Route("POST", "/events/{closing}/close", None, access.SCHEDULING, 201),
    Route(
        "POST", "/participants", {"birth_year": 1980, "district_id": "suge"}, access.FRONT_DESK, 201
    ),
    Route("GET", "/participants/{participant0}", None, access.FRONT_DESK, 200),
    Route(
        "POST",
        "/participants/{participant0}/corrections",
        {"contact": "x"},
        access.FRONT_DESK,
        200,
    ),
    Route(
        "POST",
        "/participants/{participant0}/consents",
        {"purpose": "x", "given": True},
        access.FRONT_DESK,
        201,
    ),
    Route(  # under the consent just given
        "POST",
        "/participants/{participant0}/sensitive-data",
        {"purpose": "x", "category": "disability"},
        access.FRONT_DESK,
        201,
    ),
    Route("GET", "/participants/{participant0}/disclosure", None, access.ADMIN_ONLY, 200),
    Route(
        "POST",
        "/events/{event}/check-ins",
        {"participant_id": "{participant1}"},
        access.FRONT_DESK,
        201,
    ),
    Route("GET", "/events/{event}/check-ins", None, access.READ_RECORDS, 200),
    Route("GET", "/events/{event}/check-ins/{participant0}", None, access.READ_RECORDS, 200),
    Route(
        "POST",
        "/events/{event}/check-ins/{participant0}/revert",
        {"reason": "x"},
        access.FRONT_DESK,
        200,
    ),
    Route("POST", "/events/{event}/walk-ins", {"counts": {"adult": 1}}, access.FRONT_DESK, 201),
    Route("GET", "/events/{event}/walk-ins", None, access.READ_RECORDS, 200),
    Route("GET", "/events/{event}/walk-ins/{tally}", None, access.READ_RECORDS, 200),
    Route(
        "POST", "/events/{event}/walk-ins/{tally}/revert", {"reason": "x"}, access.FRONT_DESK, 200
    ),
    Route("GET", "/indicators?fiscal_year=2026", None, access.READ_INDICATORS, 200),
    Route("GET", "/indicators/progress", None, access.READ_INDICATORS, 200),
    Route("GET", "/indicators.csv?fiscal_year=2026", None, access.READ_INDICATORS, 200),
    Route("GET", "/audit/log?limit=5", None, access.AUDIT, 200),
    Route("GET", "/audit/streams/{event}", None, access.AUDIT, 200),
    # Last: it erases a participant the routes above still use.
    Route("POST", "/participants/{participant1}/erasure", {"reason": "x"}, access.ADMIN_ONLY, 200),
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
    }
    assert {(route.method, _shape(route.path)) for route in ROUTES} == served


def _expected(who: Role | str, route: Route) -> int:
    if route.allowed is None:
        return route.success
    if not isinstance(who, Role):
        return 401
    return route.success if who in route.allowed else 403


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
    ids["closing"] = make_ids(birth_years=())["event"]
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
    got: dict[str, int] = {}
    for route in ROUTES:
        answer = api.client.request(
            route.method, route.path.format(**ids), json=_fill(route.body, ids), headers=headers
        )
        got[f"{route.method} {route.path}"] = answer.status_code
        if answer.status_code in (401, 403):
            assert answer.headers["content-type"] == "application/problem+json"
        if answer.status_code == 401:
            assert answer.headers["www-authenticate"].startswith("Bearer")
    expected = {f"{route.method} {route.path}": _expected(who, route) for route in ROUTES}
    assert got == expected


# README ---------------------------------------------------------------------------------

_ROLE_WORDS = {role.value: role for role in Role}


def _paths(cells: str) -> Iterator[tuple[str, str]]:
    """(method, path) of each route a README table cell names, shorthand expanded:
    `POST /events/{id}/reschedule` · `/cancel` is two routes, `…/walk-ins/{id}/revert` takes
    the previous route's prefix, `[/{tally_id}]` is optional, queries are dropped."""
    method, previous = "", ""
    for span in re.findall(r"`([^`]*)`", cells):
        named = re.fullmatch(r"(GET|POST|PUT|PATCH|DELETE) (\S+)", span)
        if named:
            method, path = named.groups()
        elif span.startswith("/") and method:
            path = previous.rsplit("/", 1)[0] + span
        else:
            continue  # a body, a value: not a route
        path = re.sub(r"\[[?&][^\]]*\]", "", path).split("?")[0]
        if path.startswith("…"):
            tail = path[1:]
            first = "/" + tail.strip("/").split("/")[0]
            path = previous[: previous.index(first)] + tail
        optional = re.fullmatch(r"(.*)\[(/[^\]]*)\](.*)", path)
        variants = (
            [optional[1] + optional[3], optional[1] + optional[2] + optional[3]]
            if optional
            else [path]
        )
        for variant in variants:
            yield method, variant
        previous = variants[-1]


def _roles(cell: str) -> dict[str | None, frozenset[Role] | None]:
    """A roles cell by method (None: every method of the row): "POST: desk, admin; GET: every
    role"; "anyone" is None (no token needed)."""
    found: dict[str | None, frozenset[Role] | None] = {}
    for clause in cell.split(";"):
        method, _, words = clause.strip().rpartition(": ")
        words = re.sub(r"\([^)]*\)", "", words).strip()
        if words == "anyone":
            found[method or None] = None
        elif words == "every role":
            found[method or None] = frozenset(Role)
        else:
            found[method or None] = frozenset(
                _ROLE_WORDS[word.strip()] for word in words.split(",")
            )
    return found


def readme_matrix(text: str) -> dict[tuple[str, str], frozenset[Role] | None]:
    """Route shape -> roles, from every README table whose last column is the roles."""
    matrix: dict[tuple[str, str], frozenset[Role] | None] = {}
    columns: list[str] = []
    for line in text.splitlines():
        if not line.startswith("|"):
            columns = []
            continue
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if not columns:
            columns = cells
            continue
        if columns[0] != "route" or columns[-1] != "roles" or set(cells[0]) <= {"-"}:
            continue
        roles = _roles(cells[-1])
        for method, path in _paths(cells[0]):
            matrix[(method, _shape(path))] = roles.get(method, roles.get(None))
    return matrix


def test_readme_documents_exactly_these_roles_for_every_route() -> None:
    documented = readme_matrix(README.read_text(encoding="utf-8"))
    assert documented == {(route.method, _shape(route.path)): route.allowed for route in ROUTES}


def test_the_readme_reader_expands_the_tables_shorthand() -> None:
    table = (
        "| route | what | roles |\n|---|---|---|\n"
        "| `POST /a/{id}/x` · `/y` (with `reason`) | z | coordinator, admin |\n"
        '| `POST /w` `{"n"}`, `GET /w[/{t}]`, `POST …/w/{t}/r` | z '
        "| POST: desk; GET: every role |\n"
        "| `GET /i?fiscal_year=[&d=]`, `GET /i/p[?d=…]`: text | z | auditor (all) |\n"
    )
    every = frozenset(Role)
    assert readme_matrix(table) == {
        ("POST", "/a/{}/x"): frozenset({Role.COORDINATOR, Role.ADMIN}),
        ("POST", "/a/{}/y"): frozenset({Role.COORDINATOR, Role.ADMIN}),
        ("POST", "/w"): frozenset({Role.DESK}),
        ("GET", "/w"): every,
        ("GET", "/w/{}"): every,
        ("POST", "/w/{}/r"): frozenset({Role.DESK}),
        ("GET", "/i"): frozenset({Role.AUDITOR}),
        ("GET", "/i/p"): frozenset({Role.AUDITOR}),
    }
