"""Bad requests get problem details and write nothing; good ones record who, where, what."""

from __future__ import annotations

import io
import json
import re
import sys
from collections.abc import Callable
from typing import Any

import pytest
import structlog
import structlog.testing

from domain.provenance import Role
from infrastructure.logging import configure_logging
from infrastructure.settings import LogFormat, Settings
from interfaces.bootstrap import Services
from interfaces.http import middleware
from tests.support import Api

IdMaker = Callable[..., dict[str, str]]


def _is_problem(answer: object, status: int, problem_type: str) -> None:
    from httpx import Response

    assert isinstance(answer, Response)
    assert answer.status_code == status
    assert answer.headers["content-type"] == "application/problem+json"
    body = answer.json()
    assert body["status"] == status
    assert body["type"] == problem_type
    assert body["detail"]
    assert body["request_id"] == answer.headers["X-Request-Id"]


@pytest.mark.parametrize(
    "body",
    [
        b'{"participant_id": ',
        b'{"participant_id": "\xff\xfe"}',  # not UTF-8
        b'{"participant_id": ' + b"[" * 30_000 + b"]" * 30_000 + b"}",  # nested too deeply
    ],
    ids=["truncated", "not-utf-8", "too-deep"],
)
def test_malformed_json_gets_400_and_nothing_is_written(
    api: Api, services: Services, make_ids: IdMaker, body: bytes
) -> None:
    ids = make_ids()
    before = services.app.recorder.max_notification_id()
    for path in (f"/events/{ids['event']}/check-ins", "/organizations"):
        answer = api.client.post(
            path,
            content=body,
            headers=api.headers(Role.ADMIN, **{"Content-Type": "application/json"}),
        )
        _is_problem(answer, 400, "/problems/malformed-json")
        assert answer.json()["detail"].startswith("The request body is not valid JSON")
    assert services.app.recorder.max_notification_id() == before


@pytest.mark.parametrize(
    ("header", "value", "named"),
    [
        ("X-Desk-Id", "d" * 65, "X-Desk-Id"),
        ("x-desk-id", "tablet 2", "X-Desk-Id"),
        ("Idempotency-Key", "k" * 256, "Idempotency-Key"),
        ("idempotency-key", "retry 1", "Idempotency-Key"),
    ],
)
def test_a_bad_desk_id_or_idempotency_key_gets_400_and_nothing_is_written(
    api: Api, services: Services, make_ids: IdMaker, header: str, value: str, named: str
) -> None:
    ids = make_ids()
    before = services.app.recorder.max_notification_id()
    answer = api.client.post(
        f"/events/{ids['event']}/check-ins",
        json={"participant_id": ids["participant0"]},
        headers=api.headers(Role.DESK, **{header: value}),
    )
    _is_problem(answer, 400, "/problems/bad-header")
    assert named in answer.json()["detail"]
    assert services.app.recorder.max_notification_id() == before
    # Who may not check in at all is told so first, whatever the headers.
    refused = api.client.post(
        f"/events/{ids['event']}/check-ins",
        json={"participant_id": ids["participant0"]},
        headers=api.headers(Role.EVALUATOR, **{header: value}),
    )
    _is_problem(refused, 403, "/problems/forbidden")


def test_the_api_docs_show_each_command_s_token_desk_and_idempotency_headers(api: Api) -> None:
    spec = api.client.get("/openapi.json").json()
    scheme = spec["components"]["securitySchemes"]["HTTPBearer"]
    assert (scheme["type"], scheme["scheme"]) == ("http", "bearer")
    assert "tsunagari token create" in scheme["description"]
    commands = 0
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            headers = [p["name"] for p in operation.get("parameters", []) if p["in"] == "header"]
            if path == "/health":
                assert "security" not in operation
                continue
            assert operation["security"] == [{"HTTPBearer": []}], (method, path)
            if method == "post":
                commands += 1
                assert headers == ["x-desk-id", "idempotency-key"], (method, path)
                # After the path's own parameters, as a client generator lists them.
                kinds = [p["in"] for p in operation["parameters"]]
                assert kinds == sorted(kinds, key=lambda kind: kind != "path"), (method, path)
                key = operation["parameters"][-1]
                assert key["required"] is False
                assert "replays the first answer" in key["description"]
            else:
                assert headers == [], (method, path)
    assert commands >= 15


def test_a_body_that_is_not_json_gets_415(api: Api, make_ids: IdMaker) -> None:
    ids = make_ids()
    answer = api.client.post(
        f"/events/{ids['event']}/check-ins",
        content=b"participant_id=1",
        headers=api.headers(Role.ADMIN, **{"Content-Type": "application/x-www-form-urlencoded"}),
    )
    _is_problem(answer, 415, "/problems/unsupported-media-type")


def test_an_oversized_body_gets_413_and_nothing_is_written(api: Api, services: Services) -> None:
    huge = {"name": "x" * 100, "kind": "npo", "padding": "y" * 70_000}
    answer = api.client.post("/organizations", json=huge, headers=api.headers())
    _is_problem(answer, 413, "/problems/body-too-large")
    assert services.app.recorder.max_notification_id() is None


def test_unknown_fields_are_refused_rather_than_silently_dropped(api: Api) -> None:
    answer = api.client.post(
        "/organizations",
        json={"name": "x", "kind": "npo", "distrct_id": "suge"},
        headers=api.headers(),
    )
    _is_problem(answer, 422, "/problems/validation")
    assert "distrct_id" in answer.json()["detail"]


def test_no_token_or_a_revoked_token_gets_401_and_a_wrong_role_gets_403(
    api: Api, services: Services
) -> None:
    body = {"name": "x", "kind": "npo"}
    missing = api.client.post("/organizations", json=body)
    _is_problem(missing, 401, "/problems/unauthenticated")
    assert missing.headers["WWW-Authenticate"].startswith("Bearer")
    bogus = api.client.post("/organizations", json=body, headers={"Authorization": "Bearer tsu_x"})
    _is_problem(bogus, 401, "/problems/unauthenticated")
    record, secret = services.tokens.create(name="lost tablet", role=Role.COORDINATOR)
    assert (
        api.client.post(
            "/organizations", json=body, headers={"Authorization": f"Bearer {secret}"}
        ).status_code
        == 201
    )
    assert services.tokens.revoke(record.id)
    revoked = api.client.post(
        "/organizations", json=body, headers={"Authorization": f"Bearer {secret}"}
    )
    _is_problem(revoked, 401, "/problems/unauthenticated")
    assert "revoked" in revoked.json()["detail"]
    wrong_role = api.client.post("/organizations", json=body, headers=api.headers(Role.DESK))
    _is_problem(wrong_role, 403, "/problems/forbidden")
    assert "allowed roles: admin, coordinator" in wrong_role.json()["detail"]


def test_evaluators_cannot_read_personal_data(api: Api, make_ids: IdMaker) -> None:
    ids = make_ids()
    answer = api.client.get(
        f"/participants/{ids['participant0']}", headers=api.headers(Role.EVALUATOR)
    )
    _is_problem(answer, 403, "/problems/forbidden")


def test_health_needs_no_token(api: Api) -> None:
    answer = api.client.get("/health")
    assert answer.status_code == 200
    assert answer.json() == {"status": "ok"}


def test_every_event_records_the_actor_the_desk_and_the_request(
    api: Api, services: Services, make_ids: IdMaker
) -> None:
    ids = make_ids()
    desk_record = next(t for t in services.tokens.list() if t.role is Role.DESK)
    answer = api.client.post(
        f"/events/{ids['event']}/check-ins",
        json={"participant_id": ids["participant0"]},
        headers=api.headers(Role.DESK, **{"X-Desk-Id": "suge-tablet-2", "X-Request-Id": "req-42"}),
    )
    assert answer.headers["X-Request-Id"] == "req-42"
    notifications = services.app.recorder.select_notifications(start=1, limit=100)
    check_in = services.app.mapper.to_domain_event(notifications[-1])
    recorded_by = check_in.recorded_by  # type: ignore[attr-defined]
    assert recorded_by.actor_id == str(desk_record.id)
    assert recorded_by.actor_role is Role.DESK
    assert recorded_by.desk_id == "suge-tablet-2"
    assert recorded_by.request_id == "req-42"
    for notification in notifications:
        event = services.app.mapper.to_domain_event(notification)
        assert event.recorded_by.request_id  # type: ignore[attr-defined]


def test_request_logs_are_json_lines_carrying_the_request_id_but_never_the_token(
    api: Api, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging(Settings(log_format=LogFormat.JSON))
    capsys.readouterr()
    answer = api.client.get(
        "/organizations/00000000-0000-0000-0000-000000000000", headers=api.headers()
    )
    refused = api.client.get(
        "/health/../organizations/x", headers={"Authorization": "Bearer tsu_secret"}
    )
    lines = [
        json.loads(line) for line in capsys.readouterr().err.splitlines() if line.startswith("{")
    ]
    request_id = answer.headers["X-Request-Id"]
    mine = [line for line in lines if line.get("request_id") == request_id]
    assert any(line["event"] == "request" and line["status"] == 404 for line in mine)
    failed = [line for line in lines if line["event"] == "authentication failed"]
    assert failed
    assert failed[0]["request_id"] == refused.headers["X-Request-Id"]
    assert "tsu_secret" not in json.dumps(lines)


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize("terminal", [False, True], ids=["piped", "terminal"])
def test_logs_are_json_unless_a_person_watches_a_terminal(
    api: Api, monkeypatch: pytest.MonkeyPatch, terminal: bool
) -> None:
    """The default format (``auto``): JSON lines into a file, a pipe or a log collector;
    structlog's console lines, for a person, on a terminal."""
    stderr = _Terminal() if terminal else io.StringIO()
    monkeypatch.setattr(sys, "stderr", stderr)
    settings = Settings()
    assert settings.log_format is LogFormat.AUTO
    configure_logging(settings)
    try:
        answer = api.client.get(
            "/organizations/00000000-0000-0000-0000-000000000000", headers=api.headers()
        )
    finally:
        configure_logging(Settings(log_format=LogFormat.JSON))  # as the other tests find it
    request_id = answer.headers["X-Request-Id"]
    (line,) = [line for line in stderr.getvalue().splitlines() if request_id in line]
    if terminal:
        plain = re.sub(r"\x1b\[[0-9;]*m", "", line)  # coloured, for a terminal
        assert plain != line
        assert not plain.startswith("{")
        assert "[info     ] request" in plain
        assert f"request_id={request_id}" in plain
        assert "status=404" in plain
    else:
        logged = json.loads(line)
        assert (logged["event"], logged["status"], logged["request_id"]) == (
            "request",
            404,
            request_id,
        )


def test_requests_are_logged_under_structlog_s_own_defaults_too(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before ``configure_logging`` (tests, an embedding application), structlog's default
    logger has no ``isEnabledFor``: asking it once made every request end in an error."""
    # A logger of the same name, not yet bound: the module's may be fixed to the stdlib one.
    monkeypatch.setattr(middleware, "logger", structlog.get_logger("tsunagari.http"))
    configured = structlog.get_config()
    structlog.reset_defaults()
    try:
        with structlog.testing.capture_logs() as logs:
            answer = api.client.get("/health")
    finally:
        structlog.configure(**configured)
    assert answer.status_code == 200
    assert [(line["event"], line["status"]) for line in logs] == [("request", 200)]
    assert logs[0]["path"] == "/health"


@pytest.mark.parametrize("log_format", [LogFormat.JSON, LogFormat.CONSOLE])
def test_a_database_error_is_logged_without_the_statements_parameters(
    api: Api, services: Services, capsys: pytest.CaptureFixture[str], log_format: LogFormat
) -> None:
    configure_logging(Settings(log_format=log_format))
    probe = "zq7-parameter-probe-4711"
    storage: Any = services.app.storage
    # The idempotency lookup is the first statement of a command, and binds the client's key.
    storage.outcomes.drop(services.datastore.engine)
    capsys.readouterr()

    answer = api.client.post(
        "/organizations",
        json={"name": "菅町会", "kind": "neighbourhood_association", "district_id": "suge"},
        headers=api.headers(Role.COORDINATOR, **{"Idempotency-Key": probe}),
    )

    assert answer.status_code in (500, 503)
    assert answer.headers["content-type"] == "application/problem+json"
    assert probe not in answer.text
    logged = capsys.readouterr().err
    assert "tsunagari_idempotency" in logged  # the error and its statement were logged
    assert "SQL parameters hidden" in logged
    assert probe not in logged


@pytest.mark.parametrize("starts_at", ["9999-12-31T23:59:00-12:00", "0001-01-01T00:00:00+14:00"])
def test_an_event_time_beyond_the_calendar_gets_422_and_nothing_is_written(
    api: Api, services: Services, make_ids: IdMaker, starts_at: str
) -> None:
    ids = make_ids()
    before = services.app.recorder.max_notification_id()
    scheduled = api.client.post(
        "/events",
        json={
            "program_id": ids["program"],
            "title": "子育てサロン",
            "starts_at": starts_at,
            "district_id": "suge",
        },
        headers=api.headers(Role.COORDINATOR),
    )
    _is_problem(scheduled, 422, "/problems/invalid-value")
    assert "between 1900 and 2999" in scheduled.json()["detail"]
    rescheduled = api.client.post(
        f"/events/{ids['event']}/reschedule",
        json={"starts_at": starts_at},
        headers=api.headers(Role.COORDINATOR),
    )
    _is_problem(rescheduled, 422, "/problems/invalid-value")
    assert services.app.recorder.max_notification_id() == before
    event = api.client.get(f"/events/{ids['event']}", headers=api.headers(Role.COORDINATOR))
    assert event.json()["starts_at"] == "2026-06-14T10:00:00+09:00"


def test_a_nul_in_a_reason_or_a_name_gets_422_and_nothing_is_written(
    api: Api, services: Services, make_ids: IdMaker
) -> None:
    # PostgreSQL's text columns cannot hold NUL: refused by the domain, before any store.
    ids = make_ids()
    event, person = ids["event"], ids["participant0"]
    desk = api.headers(Role.DESK)
    api.client.post(f"/events/{event}/check-ins", json={"participant_id": person}, headers=desk)
    tally = api.client.post(
        f"/events/{event}/walk-ins", json={"counts": {"infant": 2}}, headers=desk
    ).json()["id"]
    before = services.app.recorder.max_notification_id()
    refused = [
        api.client.post(
            f"/events/{event}/check-ins/{person}/revert",
            json={"reason": "取り\x00違え"},
            headers=desk,
        ),
        api.client.post(
            f"/events/{event}/walk-ins/{tally}/revert", json={"reason": "\x00"}, headers=desk
        ),
        api.client.post(
            "/organizations",
            json={"name": "菅\x00町会", "kind": "npo"},
            headers=api.headers(Role.ADMIN),
        ),
        api.client.post(
            "/participants",
            json={"birth_year": 1950, "district_id": "suge", "name": "多摩\x00花子"},
            headers=desk,
        ),
    ]
    for answer in refused:
        _is_problem(answer, 422, "/problems/invalid-value")
        assert "must not contain control characters (found U+0000)" in answer.json()["detail"]
    assert services.app.recorder.max_notification_id() == before
    check_in = api.client.get(f"/events/{event}/check-ins/{person}", headers=desk).json()
    assert check_in["status"] == "checked_in"
