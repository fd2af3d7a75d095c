"""The audit trail over HTTP and in the terminal: pages, filters, masking, stream histories."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from application import audit
from domain.participants import Participant
from domain.provenance import Role
from interfaces import cli
from interfaces.bootstrap import Services
from tests.support import Api, Clock

Ids = dict[str, str]


def _token_id(services: Services, secret: str) -> str:
    principal = services.tokens.authenticate(secret)
    assert principal is not None
    return str(principal.token_id)


def _all_pages(api: Api, query: str = "", limit: int = 3) -> list[dict[str, Any]]:
    """Follow the cursor from the start to the end of the log."""
    entries: list[dict[str, Any]] = []
    after: int | None = 0
    pages = 0
    while after is not None:
        answer = api.client.get(
            f"/audit/log?after={after}&limit={limit}{query}", headers=api.headers(Role.AUDITOR)
        )
        assert answer.status_code == 200, answer.text
        body = answer.json()
        entries.extend(body["entries"])
        after = body["next_after"]
        pages += 1
        assert pages < 100, "the cursor did not reach the end"
    return entries


def test_the_log_pages_in_position_order_with_who_recorded_each_fact(
    api: Api, services: Services, make_ids: Callable[..., Ids]
) -> None:
    ids = make_ids(birth_years=(1950,))
    answer = api.client.post(
        f"/events/{ids['event']}/check-ins",
        json={"participant_id": ids["participant0"]},
        headers=api.headers(Role.DESK, **{"X-Desk-Id": "suge-tablet-2", "X-Request-Id": "req-77"}),
    )
    assert answer.status_code == 201

    entries = _all_pages(api, limit=2)

    head = services.app.recorder.max_notification_id()
    assert [entry["position"] for entry in entries] == list(range(1, (head or 0) + 1))
    assert [entry["type"] for entry in entries] == [
        "Organization.Registered",
        "Program.Launched",
        "Event.Scheduled",
        "Participant.Registered",
        "Attendance.CheckedIn",
    ]
    check_in = entries[-1]
    assert check_in["topic"] == "domain.attendance:Attendance.CheckedIn"
    assert check_in["actor_id"] == _token_id(services, api.tokens[Role.DESK])
    assert (check_in["actor_role"], check_in["desk_id"], check_in["request_id"]) == (
        "desk",
        "suge-tablet-2",
        "req-77",
    )
    assert check_in["version"] == 1
    assert check_in["recorded_at"].startswith("2026-11-28T03:00:00")
    assert check_in["payload"] == {
        "originator_topic": "domain.attendance:Attendance",
        "event_id": ids["event"],
        "participant_id": ids["participant0"],
    }
    assert entries[2]["payload"]["title"] == "TeamSUGE 現地ツアー"


def test_the_last_page_says_there_is_no_more(api: Api, make_ids: Callable[..., Ids]) -> None:
    make_ids(birth_years=())
    body = api.client.get("/audit/log?limit=2", headers=api.headers(Role.ADMIN)).json()
    assert (len(body["entries"]), body["next_after"], body["head"]) == (2, 2, 3)
    last = api.client.get("/audit/log?after=2", headers=api.headers(Role.ADMIN)).json()
    assert ([e["position"] for e in last["entries"]], last["next_after"]) == ([3], None)
    assert api.client.get("/audit/log?after=3", headers=api.headers()).json()["entries"] == []


def test_personal_fields_show_only_as_encrypted(api: Api) -> None:
    answer = api.client.post(
        "/participants",
        json={
            "birth_year": 1948,
            "district_id": "suge",
            "name": "山田 花子",
            "contact": "044-000-0000",
        },
        headers=api.headers(Role.DESK),
    )
    assert answer.status_code == 201
    log = api.client.get("/audit/log", headers=api.headers(Role.AUDITOR))
    assert "山田" not in log.text
    assert "044-000-0000" not in log.text
    payload = log.json()["entries"][0]["payload"]
    # Exactly the fields the event class declares personal are masked; the rest are shown.
    masked = {key for key, value in payload.items() if value == audit.ENCRYPTED}
    assert masked == Participant.Registered.personal_fields & payload.keys()
    assert "sealed" in masked
    assert (payload["birth_year"], payload["district_id"]) == (1948, "suge")
    stream = api.client.get(f"/audit/streams/{answer.json()['id']}", headers=api.headers())
    assert "山田" not in stream.text
    assert stream.json()["versions"][0]["payload"]["sealed"] == audit.ENCRYPTED


def test_filters_by_type_and_actor(
    api: Api, services: Services, make_ids: Callable[..., Ids]
) -> None:
    ids = make_ids(birth_years=(1950, 1990))
    for participant in ("participant0", "participant1"):
        api.client.post(
            f"/events/{ids['event']}/check-ins",
            json={"participant_id": ids[participant]},
            headers=api.headers(Role.DESK),
        )
    by_type = _all_pages(api, "&type=Participant.Registered", limit=1)
    assert [e["stream_id"] for e in by_type] == [ids["participant0"], ids["participant1"]]
    desk = _token_id(services, api.tokens[Role.DESK])
    by_actor = _all_pages(api, f"&actor={desk}")
    assert [e["type"] for e in by_actor] == ["Attendance.CheckedIn"] * 2
    assert {e["actor_id"] for e in by_actor} == {desk}
    both = _all_pages(api, f"&actor={desk}&type=Participant.Registered")
    assert both == []


def test_filters_by_recorded_at_with_bare_dates_in_japan_time(
    api: Api, clock: Clock, make_ids: Callable[..., Ids]
) -> None:
    moments = [
        datetime(2026, 6, 1, 14, 59, tzinfo=UTC),  # 23:59 on 1 June in Tokyo
        datetime(2026, 6, 1, 15, 0, tzinfo=UTC),  # 00:00 on 2 June in Tokyo
        datetime(2026, 6, 2, 14, 59, 59, tzinfo=UTC),  # 23:59:59 on 2 June in Tokyo
        datetime(2026, 6, 2, 15, 0, tzinfo=UTC),  # 3 June in Tokyo
    ]
    for moment in moments:
        clock.now = moment
        api.client.post(
            "/organizations",
            json={"name": f"会 {moment:%H%M}", "kind": "npo"},
            headers=api.headers(),
        )
    day = _all_pages(api, "&from=2026-06-02&to=2026-06-02")
    assert [e["payload"]["name"] for e in day] == ["会 1500", "会 1459"]
    since = _all_pages(api, "&from=2026-06-02T00:00:00%2B09:00")
    assert [e["position"] for e in since] == [2, 3, 4]
    until = _all_pages(api, "&to=2026-06-01T14:59:00Z")
    assert [e["position"] for e in until] == [1]
    naive_is_japan_time = _all_pages(api, "&to=2026-06-01T23:59:00")
    assert [e["position"] for e in naive_is_japan_time] == [1]


def test_a_filter_checked_on_decoded_records_scans_a_bounded_stretch_per_page(
    api: Api, services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(audit, "PYTHON_SCAN", 4)
    monkeypatch.setattr(audit, "WINDOW", 3)
    for number in range(9):
        role = Role.COORDINATOR if number in (1, 8) else Role.ADMIN
        api.client.post(
            "/organizations",
            json={"name": f"会 {number}", "kind": "npo"},
            headers=api.headers(role),
        )
    coordinator = _token_id(services, api.tokens[Role.COORDINATOR])
    first = api.client.get(f"/audit/log?actor={coordinator}", headers=api.headers()).json()
    # Four positions scanned, one match: the cursor stands where the scan stopped.
    assert ([e["position"] for e in first["entries"]], first["next_after"]) == ([2], 4)
    second = api.client.get(f"/audit/log?after=4&actor={coordinator}", headers=api.headers())
    assert (second.json()["entries"], second.json()["next_after"]) == ([], 8)
    assert [e["position"] for e in _all_pages(api, f"&actor={coordinator}")] == [2, 9]


@pytest.mark.parametrize(
    ("query", "detail"),
    [
        ("limit=-1", "limit must be between 1 and 1000, not -1"),
        ("limit=0", "limit must be between 1 and 1000, not 0"),
        ("limit=1001", "limit must be between 1 and 1000, not 1001"),
        ("limit=ten", "limit: Input should be a valid integer"),
        ("after=-5", "after must be a log position ≥ 0, not -5"),
        ("after=1.5", "after: Input should be a valid integer"),
        ("type=Participant.Deleted", "unknown event type 'Participant.Deleted'; known types:"),
        ("from=yesterday", "from must be an ISO 8601 date or datetime"),
        ("to=2026-13-01", "to must be an ISO 8601 date or datetime"),
        ("from=2026-06-02&to=2026-06-01", "from (2026-06-02) is after to (2026-06-01)"),
    ],
)
def test_bad_query_values_are_refused_with_a_clear_problem(
    api: Api, query: str, detail: str
) -> None:
    answer = api.client.get(f"/audit/log?{query}", headers=api.headers(Role.AUDITOR))
    assert answer.status_code == 422
    assert answer.headers["content-type"] == "application/problem+json"
    assert detail in answer.json()["detail"]


def test_a_stream_shows_each_correction_next_to_what_it_corrects(
    api: Api, make_ids: Callable[..., Ids]
) -> None:
    ids = make_ids(birth_years=(1950,))
    admin = api.headers()
    check_ins = f"/events/{ids['event']}/check-ins"
    api.client.post(check_ins, json={"participant_id": ids["participant0"]}, headers=admin)
    api.client.post(
        f"{check_ins}/{ids['participant0']}/revert", json={"reason": "別の人"}, headers=admin
    )
    api.client.post(check_ins, json={"participant_id": ids["participant0"]}, headers=admin)
    attendance = _all_pages(api, "&type=Attendance.CheckedIn")[0]["stream_id"]

    history = api.client.get(f"/audit/streams/{attendance}", headers=api.headers(Role.AUDITOR))

    assert history.status_code == 200
    versions = history.json()["versions"]
    assert [(v["version"], v["type"], v["corrects"], v["corrected_by"]) for v in versions] == [
        (1, "Attendance.CheckedIn", None, [2]),
        (2, "Attendance.CheckInReverted", 1, [3]),
        (3, "Attendance.CheckedInAgain", 2, []),
    ]
    assert versions[1]["payload"] == {"reason": "別の人"}
    assert [v["position"] for v in versions] == sorted(v["position"] for v in versions)


def test_rescheduling_and_cancelling_point_at_the_scheduling_they_change(
    api: Api, make_ids: Callable[..., Ids]
) -> None:
    event = make_ids(birth_years=())["event"]
    admin = api.headers()
    api.client.post(
        f"/events/{event}/reschedule",
        json={"starts_at": "2026-06-21T10:00:00+09:00"},
        headers=admin,
    )
    api.client.post(f"/events/{event}/cancel", json={"reason": "雨天"}, headers=admin)
    versions = api.client.get(f"/audit/streams/{event}", headers=admin).json()["versions"]
    assert [(v["type"], v["corrects"], v["corrected_by"]) for v in versions] == [
        ("Event.Scheduled", None, [2]),
        ("Event.Rescheduled", 1, [3]),
        ("Event.Cancelled", 2, []),
    ]
    assert versions[1]["payload"]["starts_at"] == "2026-06-21T10:00:00+09:00"


def test_an_unknown_stream_is_a_404_problem(api: Api) -> None:
    missing = "7b0d6a38-0000-4000-8000-000000000000"
    answer = api.client.get(f"/audit/streams/{missing}", headers=api.headers(Role.AUDITOR))
    assert answer.status_code == 404
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["detail"] == f"the log holds no stream with id {missing}"
    bad = api.client.get("/audit/streams/not-an-id", headers=api.headers(Role.AUDITOR))
    assert bad.status_code == 422


@pytest.fixture
def run_cli(services: Services, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Any]:
    settings = services.settings
    monkeypatch.setenv("TSUNAGARI_DATABASE_URL", settings.database_url)
    if settings.database_schema:
        monkeypatch.setenv("TSUNAGARI_DATABASE_SCHEMA", settings.database_schema)
    monkeypatch.setattr(cli, "configure_logging", lambda settings: None)
    runner = CliRunner()

    def run(*args: str) -> Any:
        return runner.invoke(cli.cli, list(args))

    return run


def test_the_terminal_prints_what_the_api_answers(
    api: Api, make_ids: Callable[..., Ids], run_cli: Callable[..., Any]
) -> None:
    ids = make_ids(birth_years=(1950, 1990))
    api_page = api.client.get(
        "/audit/log?after=1&limit=4&type=Participant.Registered", headers=api.headers()
    ).json()

    as_json = run_cli(
        "audit", "log", "--after", "1", "--limit", "4", "--type", "Participant.Registered", "--json"
    )

    assert as_json.exit_code == 0, as_json.output
    lines = [json.loads(line) for line in as_json.stdout.splitlines()]
    assert [line["position"] for line in lines] == [e["position"] for e in api_page["entries"]]
    assert [line["payload"] for line in lines] == [e["payload"] for e in api_page["entries"]]
    assert [line["stream_id"] for line in lines] == [ids["participant0"], ids["participant1"]]
    assert "End of the log" in as_json.stderr

    table = run_cli("audit", "log", "--limit", "2")
    assert table.exit_code == 0, table.output
    rows = table.stdout.splitlines()
    assert rows[0].split()[:2] == ["position", "recorded"]
    assert "Organization.Registered" in rows[1]
    assert "2026-11-28 12:00:00" in rows[1]  # recorded at, in Japan time
    assert "Program.Launched" in rows[2]
    assert "Next page: --after 2" in table.stderr


def test_the_terminal_refuses_bad_values_like_the_api(run_cli: Callable[..., Any]) -> None:
    result = run_cli("audit", "log", "--from", "2026-06-02", "--to", "2026-06-01")
    assert result.exit_code == 2
    assert "from (2026-06-02) is after to (2026-06-01)" in result.stderr


def test_a_participants_corrections_and_withdrawn_consent_point_at_what_they_change(
    api: Api,
) -> None:
    desk = api.headers(Role.DESK)
    person = api.client.post(
        "/participants",
        json={"birth_year": 1990, "district_id": "suge", "name": "多摩 太郎"},
        headers=desk,
    ).json()["id"]
    base = f"/participants/{person}"
    api.client.post(f"{base}/corrections", json={"name": "多摩 次郎"}, headers=desk)
    purpose = {"purpose": "合理的配慮の提供"}
    api.client.post(f"{base}/consents", json={**purpose, "given": True}, headers=desk)
    api.client.post(f"{base}/corrections", json={"contact": "044-111-2222"}, headers=desk)
    api.client.post(f"{base}/consents", json={**purpose, "given": False}, headers=desk)

    history = api.client.get(f"/audit/streams/{person}", headers=api.headers(Role.AUDITOR))

    versions = history.json()["versions"]
    assert [(v["type"], v["corrects"], v["corrected_by"]) for v in versions] == [
        ("Participant.Registered", None, [2]),
        ("Participant.PersonalDataCorrected", 1, [4]),
        ("Participant.ConsentGiven", None, [5]),
        ("Participant.PersonalDataCorrected", 2, []),
        ("Participant.ConsentWithdrawn", 3, []),
    ]
    assert "多摩" not in history.text
    assert "044-111-2222" not in history.text
    assert versions[1]["payload"]["sealed"] == audit.ENCRYPTED


def _register(api: Api, name: str, contact: str) -> str:
    answer = api.client.post(
        "/participants",
        json={"birth_year": 1948, "district_id": "suge", "name": name, "contact": contact},
        headers=api.headers(Role.DESK),
    )
    assert answer.status_code == 201, answer.text
    participant: str = answer.json()["id"]
    return participant


def _personal(entries: list[dict[str, Any]], stream_id: str) -> list[tuple[str, Any]]:
    """(type, sealed) of a stream's entries that carry sealed personal data."""
    return [(e["type"], e["payload"]["sealed"]) for e in entries if e["stream_id"] == stream_id]


def test_an_erased_participants_personal_fields_read_as_erased_in_the_audit_trail(
    api: Api, run_cli: Callable[..., Any]
) -> None:
    erased = _register(api, "山田 花子", "044-000-0000")
    kept = _register(api, "多摩 太郎", "044-111-1111")
    for person in (erased, kept):
        corrected = api.client.post(
            f"/participants/{person}/corrections", json={"name": "訂正 後"}, headers=api.headers()
        )
        assert corrected.status_code == 200, corrected.text
    erasure = api.client.post(
        f"/participants/{erased}/erasure",
        json={"reason": "本人からの削除請求"},
        headers=api.headers(),
    )
    assert erasure.status_code == 200, erasure.text

    # A page that does not reach the erasure record still knows the stream was erased.
    registrations = _all_pages(api, "&type=Participant.Registered")
    corrections = _all_pages(api, "&type=Participant.PersonalDataCorrected")
    everything = _all_pages(api)

    assert _personal(registrations, erased) == [("Participant.Registered", audit.ERASED)]
    assert _personal(corrections, erased) == [("Participant.PersonalDataCorrected", audit.ERASED)]
    assert _personal(registrations + corrections, kept) == [
        ("Participant.Registered", audit.ENCRYPTED),
        ("Participant.PersonalDataCorrected", audit.ENCRYPTED),
    ]
    registered = next(e for e in everything if e["stream_id"] == erased)
    assert (registered["payload"]["birth_year"], registered["payload"]["district_id"]) == (
        1948,
        "suge",
    )  # what the indicators count by stays
    assert everything[-1]["type"] == "Participant.Erased"
    assert everything[-1]["payload"]["reason"] == "本人からの削除請求"
    history = api.client.get(f"/audit/streams/{erased}", headers=api.headers(Role.AUDITOR))
    assert [(v["type"], v["payload"].get("sealed")) for v in history.json()["versions"]] == [
        ("Participant.Registered", audit.ERASED),
        ("Participant.PersonalDataCorrected", audit.ERASED),
        ("Participant.Erased", None),
    ]
    live = api.client.get(f"/audit/streams/{kept}", headers=api.headers(Role.AUDITOR)).json()
    assert {v["payload"]["sealed"] for v in live["versions"]} == {audit.ENCRYPTED}
    printed = run_cli("audit", "log", "--json")
    assert printed.exit_code == 0, printed.output
    lines = [json.loads(line) for line in printed.stdout.splitlines()]
    assert [line["payload"] for line in lines] == [e["payload"] for e in everything]
    table = run_cli("audit", "log")
    erased_rows = [row for row in table.stdout.splitlines() if erased in row]
    assert len(erased_rows) == 3
    assert all(audit.ENCRYPTED not in row for row in erased_rows)
    assert sum(audit.ERASED in row for row in erased_rows) == 2


def test_an_export_after_an_erasure_holds_only_the_sealed_envelopes(
    api: Api, services: Services, run_cli: Callable[..., Any], tmp_path: Path
) -> None:
    erased = _register(api, "山田 花子", "044-000-0000")
    api.client.post(
        f"/participants/{erased}/corrections", json={"name": "山田 次子"}, headers=api.headers()
    )
    api.client.post(
        f"/participants/{erased}/erasure",
        json={"reason": "本人からの削除請求"},
        headers=api.headers(),
    )
    out = tmp_path / "export"

    exported = run_cli("audit", "export", "--fiscal-year", "2026", "--out", str(out))

    assert exported.exit_code == 0, exported.output
    raw = b"".join(path.read_bytes() for path in sorted(out.iterdir()))
    states = [
        base64.b64decode(json.loads(line)["state"])
        for line in (out / "log-00001.jsonl").read_text("utf-8").splitlines()
    ]
    assert len(states) == 3
    for secret in ("山田", "花子", "次子", "044-000-0000"):
        for where in (raw, *states):
            assert secret.encode() not in where
    assert all(b'"sealed":"aesgcm1:' in state for state in states[:2])
    assert services.seal.verify().ok  # the erasure changed no stored byte


def test_the_openapi_example_payload_is_what_a_registration_shows(api: Api) -> None:
    _register(api, "山田 花子", "044-000-0000")
    schema = api.client.get("/openapi.json").json()["components"]["schemas"]["AuditEntryOut"]
    example = schema["properties"]["payload"]["examples"][0]
    shown = api.client.get("/audit/log", headers=api.headers(Role.AUDITOR)).json()["entries"][0]

    # The OpenAPI document drops null values from examples (band_id here).
    filled = {key for key, value in shown["payload"].items() if value is not None}
    assert filled <= example.keys() <= shown["payload"].keys()
    assert example["sealed"] == shown["payload"]["sealed"] == audit.ENCRYPTED
    assert "name" not in example


def test_the_known_event_types_are_the_ones_the_log_can_hold(api: Api) -> None:
    answer = api.client.get("/audit/log?type=Nothing", headers=api.headers(Role.AUDITOR))
    listed = answer.json()["detail"].split("known types: ")[1].split(", ")
    assert "Participant.Registered" in listed
    assert "Attendance.CheckInReverted" in listed
    # The library defines a Created class on every aggregate; ours are never created with it.
    assert not [name for name in listed if name.endswith(".Created")]
    for name in listed:
        found = api.client.get(f"/audit/log?type={name}", headers=api.headers(Role.AUDITOR))
        assert found.status_code == 200, found.text


def test_iso_basic_dates_mean_the_same_days_as_extended_ones(api: Api, clock: Clock) -> None:
    for moment in (
        datetime(2026, 6, 1, 14, 59, tzinfo=UTC),  # 23:59 on 1 June in Tokyo
        datetime(2026, 6, 1, 15, 0, tzinfo=UTC),  # 00:00 on 2 June in Tokyo
    ):
        clock.now = moment
        api.client.post("/organizations", json={"name": "会", "kind": "npo"}, headers=api.headers())

    assert [e["position"] for e in _all_pages(api, "&to=20260601")] == [1]
    assert [e["position"] for e in _all_pages(api, "&from=20260602")] == [2]
    assert [e["position"] for e in _all_pages(api, "&from=2026-W23-1&to=2026-W23-1")] == [1]


@pytest.mark.parametrize("parameter", ["type", "actor", "from", "to"])
def test_an_empty_filter_is_refused_naming_it(
    api: Api, run_cli: Callable[..., Any], parameter: str
) -> None:
    answer = api.client.get(f"/audit/log?{parameter}=", headers=api.headers(Role.AUDITOR))
    assert answer.status_code == 422
    assert answer.headers["content-type"] == "application/problem+json"
    assert (
        answer.json()["detail"] == f"{parameter} is empty: give a value, or leave {parameter} out"
    )
    printed = run_cli("audit", "log", f"--{parameter}", "")
    assert printed.exit_code == 2
    assert f"{parameter} is empty" in printed.stderr
