"""The command line as an operator types it: tokens and demo data, on both stores."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from typer.testing import CliRunner, Result

from infrastructure.settings import Settings
from infrastructure.tokens import hash_token
from interfaces import cli
from interfaces.bootstrap import build_services
from interfaces.http.app import create_app


@pytest.fixture
def tsunagari(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    """``tsunagari`` on the test's store, as its environment would point it there."""
    monkeypatch.setenv("TSUNAGARI_DATABASE_URL", settings.database_url)
    if settings.database_schema:
        monkeypatch.setenv("TSUNAGARI_DATABASE_SCHEMA", settings.database_schema)
    # The CLI would point the root logger at the runner's captured stderr.
    monkeypatch.setattr(cli, "configure_logging", lambda settings: None)
    return CliRunner()


def run(runner: CliRunner, *arguments: str) -> Result:
    return runner.invoke(cli.cli, list(arguments))


def _status_with(settings: Settings, token: str) -> int:
    services = build_services(settings)
    try:
        with TestClient(create_app(services=services)) as client:
            answer = client.get(
                "/events/00000000-0000-4000-8000-000000000000",
                headers={"Authorization": f"Bearer {token}"},
            )
            status: int = answer.status_code
            return status
    finally:
        services.close()


def test_a_token_is_printed_once_kept_as_a_hash_listed_and_revoked(
    tsunagari: CliRunner, settings: Settings
) -> None:
    created = run(tsunagari, "token", "create", "--role", "desk", "--name", "菅 受付1")

    assert created.exit_code == 0, created.output
    printed = re.fullmatch(
        r"Created desk token ([0-9a-f-]{36}) for '菅 受付1'\. Keep it now; it is not shown "
        r"again:\n(tsu_\S{43})\n",
        created.output,
    )
    assert printed is not None, created.output
    token_id, secret = printed.groups()
    services = build_services(settings)
    try:
        with services.datastore.transaction(commit=False) as session:
            stored = session.execute(select(services.tokens.tokens)).one()
    finally:
        services.close()
    assert stored.token_hash == hash_token(secret)
    assert secret not in repr(tuple(stored))
    assert _status_with(settings, secret) == 404  # authenticated: no such event

    listed = run(tsunagari, "token", "list")
    assert listed.exit_code == 0
    assert re.fullmatch(rf"{token_id}  desk\s+active\s+菅 受付1\n", listed.output)
    assert secret not in listed.output

    revoked = run(tsunagari, "token", "revoke", token_id)
    assert (revoked.exit_code, revoked.output) == (0, f"Revoked token {token_id}.\n")
    assert re.search(
        rf"{token_id}  desk\s+revoked \d{{4}}-\d\d-\d\d \d\d:\d\d",
        run(tsunagari, "token", "list").output,
    )
    assert _status_with(settings, secret) == 401
    again = run(tsunagari, "token", "revoke", token_id)
    assert again.exit_code == 1
    assert f"No active token with id {token_id}." in again.output


@pytest.mark.parametrize(
    ("arguments", "complaint"),
    [
        (("token", "create", "--role", "janitor", "--name", "x"), "janitor"),
        (("token", "create", "--role", "desk"), "--name"),
        (("token", "revoke", "not-a-uuid"), "valid UUID"),
        (("demo", "load", "--residents", "5"), "--residents"),
        (("demo", "load", "--fiscal-years", "0"), "--fiscal-years"),
    ],
)
def test_a_bad_command_line_is_refused_with_what_is_wrong(
    tsunagari: CliRunner, arguments: tuple[str, ...], complaint: str
) -> None:
    refused = run(tsunagari, *arguments)

    assert refused.exit_code == 2
    assert complaint in refused.output


def test_demo_load_takes_its_options_shows_progress_and_loads_once_if_empty(
    tsunagari: CliRunner, settings: Settings
) -> None:
    loaded = run(
        tsunagari, "demo", "load", "--residents", "30", "--fiscal-years", "1", "--seed", "7"
    )

    assert loaded.exit_code == 0, loaded.output
    assert "Loading demo data" in loaded.output  # the progress bar's label
    summary = re.search(
        r"Loaded 30 participants, (\d+) events \((\d+) cancelled\), (\d+) check-ins, "
        r"(\d+) walk-in tallies: (\d+) stored events\.",
        loaded.output,
    )
    assert summary is not None, loaded.output
    services = build_services(settings)
    try:
        head = services.app.recorder.max_notification_id()
    finally:
        services.close()
    assert head == int(summary[5])

    skipped = run(tsunagari, "demo", "load", "--if-empty", "--residents", "30", "--seed", "7")
    assert skipped.exit_code == 0
    assert "The store already holds events: no demo data loaded." in skipped.output
    services = build_services(settings)
    try:
        assert services.app.recorder.max_notification_id() == head
    finally:
        services.close()


_UUID = re.compile(rb"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|[0-9a-f]{32}")
_TIMESTAMP = re.compile(rb'"timestamp":\{[^}]*\}')


def _log_of(url: str) -> list[tuple[str, bytes]]:
    """Every stored event's topic and state, without its ids (random UUIDs) and its timestamp
    (the facts of past days are recorded at simulated times, those still to come at the
    moment of loading)."""
    services = build_services(Settings(database_url=url))
    try:
        head = services.app.recorder.max_notification_id() or 0
        stored = services.app.recorder.select_notifications(start=1, limit=head + 1)
    finally:
        services.close()
    return [
        (event.topic, _TIMESTAMP.sub(b"<at>", _UUID.sub(b"<id>", event.state))) for event in stored
    ]


def test_the_same_demo_seed_loads_the_same_data_and_another_seed_other_data(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # On SQLite files only: what is compared is the loader's plan, not the store.
    monkeypatch.setattr(cli, "configure_logging", lambda settings: None)
    logs = []
    for name, seed in (("a", "7"), ("b", "7"), ("c", "8")):
        url = f"sqlite:///{tmp_path}/{name}.sqlite3"
        monkeypatch.setenv("TSUNAGARI_DATABASE_URL", url)
        loaded = run(
            CliRunner(), "demo", "load", "--residents", "30", "--fiscal-years", "1", "--seed", seed
        )
        assert loaded.exit_code == 0, loaded.output
        logs.append(_log_of(url))
    assert len(logs[0]) > 500
    assert logs[0] == logs[1]  # event for event, every field but the ids and timestamps
    assert logs[2] != logs[0]
