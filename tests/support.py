"""Helpers shared by the tests: the PostgreSQL connection and the in-process API client."""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

import psycopg
import pytest
from fastapi.testclient import TestClient

from domain.provenance import Role
from infrastructure.settings import Settings
from interfaces.bootstrap import Services
from projections.follower import Follower

POSTGRES_URL = os.environ.get(
    "TSUNAGARI_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
REQUIRE_POSTGRES = os.environ.get("TSUNAGARI_REQUIRE_POSTGRES") == "1"
NOW = datetime(2026, 11, 28, 3, 0, tzinfo=UTC)  # 12:00 in Tokyo


class Clock:
    """The application's clock in tests: it stands still until a test moves it."""

    def __init__(self, now: datetime = NOW) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def _libpq_url() -> str:
    return POSTGRES_URL.replace("postgresql+psycopg://", "postgresql://", 1)


def postgres_or_skip() -> None:
    try:
        psycopg.connect(_libpq_url(), connect_timeout=3).close()
    except psycopg.OperationalError as error:
        reason = f"PostgreSQL not reachable at {POSTGRES_URL}: {error}"
        if REQUIRE_POSTGRES:
            pytest.fail(reason)
        pytest.skip(reason)


def postgres_settings(schema: str) -> Settings:
    return Settings(database_url=POSTGRES_URL, database_schema=schema)


class PostgresSchema:
    """A schema of the test's own, dropped with everything in it afterwards."""

    def __init__(self) -> None:
        self.name = f"test_{uuid.uuid4().hex[:16]}"

    def __enter__(self) -> str:
        postgres_or_skip()
        with psycopg.connect(_libpq_url(), autocommit=True) as conn:
            conn.execute(f'CREATE SCHEMA "{self.name}"')
        return self.name

    def __exit__(self, *_: object) -> None:
        with psycopg.connect(_libpq_url(), autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{self.name}" CASCADE')


@dataclass
class Api:
    """The real FastAPI app in-process, with a token per role."""

    client: TestClient
    tokens: dict[Role, str]

    def headers(self, role: Role = Role.ADMIN, **extra: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[role]}", **extra}


def settle(services: Services, follower: Follower) -> None:
    """Wait until the projections have processed everything recorded so far."""
    head = services.app.recorder.max_notification_id() or 0
    assert follower.wait_for(head, timeout=10), f"projections did not reach position {head}"
