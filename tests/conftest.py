"""One fixture picks the store: a real SQLite file, or the real PostgreSQL in a schema of its own.

On a machine without PostgreSQL the PostgreSQL cases skip with the reason; with
TSUNAGARI_REQUIRE_POSTGRES=1 (as in .ci/run) they fail instead.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import structlog
from fastapi.testclient import TestClient

from domain.provenance import Role
from infrastructure.settings import Settings
from interfaces.bootstrap import Services, build_services
from interfaces.http.app import create_app
from projections.follower import Follower
from tests.support import Api, Clock, PostgresSchema, postgres_settings


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    """Undo a test's ``configure_logging``: its handler writes to that test's captured stderr,
    which pytest closes, and every later log line then failed with "I/O operation on closed
    file"."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    configured = structlog.get_config()
    try:
        yield
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
        structlog.configure(**configured)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Settings]:
    """Settings for a fresh, empty store of each kind."""
    if request.param == "sqlite":
        yield Settings(database_url=f"sqlite:///{tmp_path}/tsunagari.sqlite3")
        return
    with PostgresSchema() as schema:
        yield postgres_settings(schema)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def services(settings: Settings, clock: Clock) -> Iterator[Services]:
    built = build_services(settings, clock=clock)
    try:
        yield built
    finally:
        built.close()


@pytest.fixture
def fresh(settings: Settings, tmp_path: Path, clock: Clock) -> Iterator[Services]:
    """A second, empty store of the same kind as ``services`` (to import into, say)."""
    if settings.is_sqlite:
        built = build_services(
            Settings(database_url=f"sqlite:///{tmp_path}/second.sqlite3"), clock=clock
        )
        try:
            yield built
        finally:
            built.close()
        return
    with PostgresSchema() as schema:
        built = build_services(postgres_settings(schema), clock=clock)
        try:
            yield built
        finally:
            built.close()


@pytest.fixture
def follower(services: Services) -> Iterator[Follower]:
    """The indicator projections following the log, as inside `tsunagari serve`."""
    running = services.follower()
    running.start()
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def api(services: Services) -> Iterator[Api]:
    tokens = {
        role: services.tokens.create(name=f"test {role.value}", role=role)[1] for role in Role
    }
    with TestClient(create_app(services=services), raise_server_exceptions=False) as client:
        yield Api(client, tokens)


@pytest.fixture
def make_ids(api: Api) -> Callable[..., dict[str, str]]:
    """Creates an organisation, a programme, an event and participants through the API."""

    def make(*, birth_years: tuple[int, ...] = (1950, 1990, 2018)) -> dict[str, str]:
        headers = api.headers(Role.ADMIN)
        org = api.client.post(
            "/organizations",
            json={"name": "菅町会", "kind": "neighbourhood_association", "district_id": "suge"},
            headers=headers,
        ).json()
        program = api.client.post(
            "/programs",
            json={
                "name": "TeamSUGE",
                "policy": "2-2",
                "area": "community",
                "host_organization_ids": [org["id"]],
            },
            headers=headers,
        ).json()
        event = api.client.post(
            "/events",
            json={
                "program_id": program["id"],
                "title": "TeamSUGE 現地ツアー",
                "starts_at": "2026-06-14T10:00:00+09:00",
                "district_id": "suge",
            },
            headers=headers,
        ).json()
        ids = {"organization": org["id"], "program": program["id"], "event": event["id"]}
        for index, year in enumerate(birth_years):
            ids[f"participant{index}"] = api.client.post(
                "/participants",
                json={"birth_year": year, "district_id": "suge"},
                headers=headers,
            ).json()["id"]
        return ids

    return make
