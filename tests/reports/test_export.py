"""The CSV export: Excel-ready bytes, the same numbers as GET /indicators, by HTTP and CLI."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import datetime, time
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from typer.testing import CliRunner

from domain.events import JST
from domain.organizations import OrganizationKind
from domain.programs import Policy, ProgramArea
from domain.provenance import Provenance, Role
from infrastructure.settings import Settings
from interfaces import cli as cli_module
from interfaces.bootstrap import Services
from projections.follower import Follower
from projections.indicators.definitions import all_indicators
from projections.indicators.export import (
    BOM,
    COLUMNS,
    csv_filename,
    csv_rows,
    indicators_csv,
)
from tests.support import Api, settle

BY = Provenance(actor_id="test-export", actor_role=Role.ADMIN, desk_id="desk-suge")
READERS = (Role.COORDINATOR, Role.EVALUATOR, Role.AUDITOR, Role.ADMIN)


def parse(data: bytes) -> list[dict[str, str]]:
    """CSV bytes back into rows, as a spreadsheet or pandas would read them."""
    assert data.startswith(BOM.encode("utf-8"))
    text = data.decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(text, newline="")))
    assert tuple(rows[0]) == COLUMNS
    return [dict(zip(COLUMNS, row, strict=True)) for row in rows[1:]]


def by_indicator(rows: list[dict[str, str]]) -> dict[str, dict[tuple[str, str], str]]:
    table: dict[str, dict[tuple[str, str], str]] = {}
    for row in rows:
        cells = table.setdefault(row["indicator_id"], {})
        assert (row["breakdown"], row["key"]) not in cells, f"duplicate row {row}"
        cells[(row["breakdown"], row["key"])] = row["value"]
    return table


def as_cells(figures: dict[str, Any]) -> dict[tuple[str, str], str]:
    """What the CSV should hold for one indicator of a JSON answer."""
    cells = {("", ""): repr(figures["value"])}
    for name, figure in figures.items():
        if name in {"value", "name_ja", "name_en"}:
            continue
        if isinstance(figure, dict):
            cells.update({(name, key): repr(value) for key, value in figure.items()})
        else:
            cells[(name, "")] = repr(figure)
    return cells


# The pure function -----------------------------------------------------------------------

ANSWER: dict[str, Any] = {
    "fiscal_year": 2026,
    "label": "2026(令和8)年度",
    "as_of": None,
    "definitions": "indicators-v1 (bands-2026.1; small ≤ 30; ties ≥ 2)",
    "scope": {"district": None, "program_id": None, "policy": None},
    "position": 12,
    "indicators": {
        "multigenerational_events": {
            "value": 2,
            "name_ja": "多世代交流の機会",
            "name_en": "Multi-generational events",
            "share": 0.6667,
            "held_events": 3,
        },
        "total_attendances": {
            "value": 11,
            "name_ja": "延べ人数",
            "name_en": "Total attendances",
            "registered": 8,
            "walk_ins": 3,
            "by_band": {"adult": 3, "infant": 2},
            "by_group": {"child": 5, "working": 3},
        },
    },
}


def test_the_csv_starts_with_a_bom_and_has_one_value_per_row_in_the_definitions_order() -> None:
    data = indicators_csv(ANSWER)
    assert data.startswith(b"\xef\xbb\xbf")
    assert b"\r\n" in data  # the csv module's line ends, which Excel expects
    rows = parse(data)
    assert [row["indicator_id"] for row in rows][:1] == ["total_attendances"]
    first = rows[0]
    assert first["fiscal_year"] == "2026"
    assert first["fiscal_year_label"] == "2026(令和8)年度"
    assert first["as_of"] == ""
    assert first["district"] == first["program_id"] == first["policy"] == ""
    assert first["definitions"] == "indicators-v1 (bands-2026.1; small ≤ 30; ties ≥ 2)"
    assert (first["name_ja"], first["name_en"]) == ("延べ人数", "Total attendances")
    assert by_indicator(rows) == {
        "total_attendances": {
            ("", ""): "11",
            ("registered", ""): "8",
            ("walk_ins", ""): "3",
            ("by_band", "adult"): "3",
            ("by_band", "infant"): "2",
            ("by_group", "child"): "5",
            ("by_group", "working"): "3",
        },
        "multigenerational_events": {
            ("", ""): "2",
            ("share", ""): "0.6667",
            ("held_events", ""): "3",
        },
    }


def test_several_answers_stack_under_one_header_and_text_never_becomes_a_formula() -> None:
    other = {
        **ANSWER,
        "fiscal_year": 2025,
        "label": "2025(令和7)年度",
        "as_of": "2026-03-31",
        "scope": {"district": "suge", "program_id": None, "policy": "2-2"},
        "indicators": {"held_events": {"value": 0, "name_ja": "=HYPERLINK()", "name_en": "x"}},
    }
    rows = parse(indicators_csv([ANSWER, other]))
    last = rows[-1]
    assert (last["fiscal_year"], last["district"], last["policy"], last["as_of"]) == (
        "2025",
        "suge",
        "2-2",
        "2026-03-31",
    )
    assert last["name_ja"] == "'=HYPERLINK()"
    assert len(rows) == len(list(csv_rows(ANSWER))) + 1


def test_the_file_name_is_ascii_and_names_the_year_and_scope() -> None:
    assert csv_filename(ANSWER) == "tsunagari-indicators-2026.csv"
    scoped = {
        **ANSWER,
        "as_of": "2026-09-30",
        "scope": {
            "district": "suge",
            "program_id": "6f1c2a3b-0000-4000-8000-000000000000",
            "policy": "2-2",
        },
    }
    assert (
        csv_filename(scoped)
        == "tsunagari-indicators-2026-suge-policy2-2-program-6f1c2a3b-as-of-2026-09-30.csv"
    )


# A small known dataset, recorded through the application ----------------------------------


@dataclass
class Known:
    program_support: UUID
    program_open: UUID


def at(day: str, hour: int = 10) -> datetime:
    return datetime.combine(datetime.fromisoformat(day).date(), time(hour), JST)


def record_known(services: Services) -> Known:
    """Three held events in 2026年度 (one reverted check-in), one in 2025年度.

    Registered: A born 1950 (senior), B 1990 (working), C 2018 (child); walk-ins at event 1.
    """
    app = services.app
    org1 = app.register_organization(
        name="菅町会", kind=OrganizationKind.NEIGHBOURHOOD_ASSOCIATION, district_id="suge",
        recorded_by=BY,
    ).result.id  # fmt: skip
    org2 = app.register_organization(
        name="すげ在宅診療所", kind=OrganizationKind.CLINIC, district_id="suge", recorded_by=BY
    ).result.id
    support = app.launch_program(
        name="TeamSUGE", policy=Policy.MUTUAL_SUPPORT, area=ProgramArea.COMMUNITY,
        host_organization_ids=[org1, org2], recorded_by=BY,
    ).result.id  # fmt: skip
    open_ = app.launch_program(
        name="子育てサロン", policy=Policy.OPEN_ACTIVITIES, area=ProgramArea.CHILDREN,
        host_organization_ids=[org1], recorded_by=BY,
    ).result.id  # fmt: skip
    people = [
        app.register_participant(
            birth_year=year, band_id=None, district_id="suge", recorded_by=BY
        ).result.id
        for year in (1950, 1990, 2018)
    ]
    a, b, c = people

    def event(program: UUID, day: str, district: str) -> UUID:
        return app.schedule_event(
            program_id=program, title=f"回 {day}", starts_at=at(day), ends_at=None,
            district_id=district, venue=None, recorded_by=BY,
        ).result.id  # fmt: skip

    first = event(support, "2026-06-14", "suge")
    second = event(support, "2026-07-12", "suge")
    third = event(open_, "2026-08-01", "ikuta")
    earlier = event(open_, "2026-03-20", "ikuta")
    for event_id, who in ((first, people), (second, people), (third, people), (earlier, [b])):
        for participant in who:
            app.check_in(event_id, participant_id=participant, recorded_by=BY)
    app.revert_check_in(third, a, reason="wrong person", recorded_by=BY)
    app.record_walk_ins(first, counts={"infant": 2, "young_old": 1}, recorded_by=BY)
    for event_id in (first, second, third, earlier):
        app.close_event(event_id, recorded_by=BY)
    del c
    return Known(support, open_)


EXPECTED_2026 = {
    "total_attendances": {
        ("", ""): "11",
        ("registered", ""): "8",
        ("walk_ins", ""): "3",
        ("by_band", "adult"): "3",
        ("by_band", "elementary"): "3",
        ("by_band", "infant"): "2",
        ("by_band", "old_old"): "2",
        ("by_band", "young_old"): "1",
        ("by_group", "child"): "5",
        ("by_group", "senior"): "3",
        ("by_group", "working"): "3",
    },
    "unique_participants": {
        ("", ""): "3",
        ("by_band", "adult"): "1",
        ("by_band", "elementary"): "1",
        ("by_band", "old_old"): "1",
        ("by_group", "child"): "1",
        ("by_group", "senior"): "1",
        ("by_group", "working"): "1",
    },
    "returning_participants": {("", ""): "3"},
    "held_events": {("", ""): "3"},
    "multigenerational_events": {("", ""): "3", ("share", ""): "1.0", ("held_events", ""): "3"},
    "cross_generation_encounters": {("", ""): "3"},
    "loose_ties": {("", ""): "3", ("threshold", ""): "2"},
    "support_activities": {("", ""): "2", ("active_organizations", ""): "2"},
    "organization_partnerships": {("", ""): "1"},
}


@pytest.fixture
def known(api: Api, services: Services, follower: Follower) -> Known:
    """The known dataset, projected."""
    recorded = record_known(services)
    settle(services, follower)
    return recorded


def test_the_csv_holds_the_same_numbers_as_get_indicators(api: Api, known: Known) -> None:
    headers = api.headers(Role.EVALUATOR)
    answer = api.client.get("/indicators", params={"fiscal_year": 2026}, headers=headers)
    assert answer.status_code == 200
    body = answer.json()
    response = api.client.get("/indicators.csv", params={"fiscal_year": 2026}, headers=headers)
    assert response.status_code == 200
    assert response.content.startswith(b"\xef\xbb\xbf")
    rows = parse(response.content)
    assert {row["fiscal_year"] for row in rows} == {"2026"}
    assert {row["fiscal_year_label"] for row in rows} == {"2026(令和8)年度"}
    assert {row["definitions"] for row in rows} == {body["definitions"]}
    table = by_indicator(rows)
    assert list(table) == [indicator.id for indicator in all_indicators()]
    assert table == {key: as_cells(figures) for key, figures in body["indicators"].items()}
    assert table == EXPECTED_2026
    names = {(row["indicator_id"], row["name_ja"], row["name_en"]) for row in rows}
    assert names == {(i.id, i.name_ja, i.name_en) for i in all_indicators()}


def test_a_scoped_csv_as_of_a_day_repeats_its_scope_on_every_row(api: Api, known: Known) -> None:
    params: dict[str, str | int] = {
        "fiscal_year": 2026,
        "district": "suge",
        "policy": "2-2",
        "program_id": str(known.program_support),
        "as_of": "2026-12-31",
    }
    headers = api.headers(Role.AUDITOR)
    body = api.client.get("/indicators", params=params, headers=headers).json()
    response = api.client.get("/indicators.csv", params=params, headers=headers)
    assert response.status_code == 200
    rows = parse(response.content)
    scopes = {(r["district"], r["program_id"], r["policy"], r["as_of"]) for r in rows}
    assert scopes == {("suge", str(known.program_support), "2-2", "2026-12-31")}
    table = by_indicator(rows)
    assert table == {key: as_cells(figures) for key, figures in body["indicators"].items()}
    assert table["total_attendances"][("", "")] == "9"  # the two suge events only
    assert table["held_events"][("", "")] == "2"
    filename = f"tsunagari-indicators-2026-suge-policy2-2-program-{str(known.program_support)[:8]}"
    assert f'filename="{filename}-as-of-2026-12-31.csv"' in response.headers["content-disposition"]


@pytest.mark.parametrize("as_of", ["9999-12-31", "0001-01-01"])
def test_as_of_the_calendar_s_last_or_first_day_is_everything_or_nothing(
    api: Api, known: Known, as_of: str
) -> None:
    headers = api.headers(Role.EVALUATOR)
    params: dict[str, str | int] = {"fiscal_year": 2026, "as_of": as_of}
    answer = api.client.get("/indicators", params=params, headers=headers)
    assert answer.status_code == 200, answer.text
    assert answer.json()["as_of"] == as_of
    csv_answer = api.client.get("/indicators.csv", params=params, headers=headers)
    assert csv_answer.status_code == 200
    table = by_indicator(parse(csv_answer.content))
    if as_of == "9999-12-31":
        assert table == EXPECTED_2026
    else:
        assert table["total_attendances"][("", "")] == "0"


def test_the_csv_response_is_an_attachment_in_utf8_for_every_reading_role(
    api: Api, known: Known
) -> None:
    for role in READERS:
        response = api.client.get(
            "/indicators.csv", params={"fiscal_year": 2025}, headers=api.headers(role)
        )
        assert response.status_code == 200, role
        assert response.headers["content-type"] == "text/csv; charset=utf-8"
        assert (
            response.headers["content-disposition"]
            == 'attachment; filename="tsunagari-indicators-2025.csv"'
        )
        table = by_indicator(parse(response.content))
        assert table["total_attendances"][("", "")] == "1"
        assert {row["fiscal_year_label"] for row in parse(response.content)} == {"2025(令和7)年度"}


def test_the_desk_may_not_export_and_a_bad_district_is_refused(api: Api, known: Known) -> None:
    forbidden = api.client.get(
        "/indicators.csv", params={"fiscal_year": 2026}, headers=api.headers(Role.DESK)
    )
    assert forbidden.status_code == 403
    assert forbidden.headers["content-type"].startswith("application/problem+json")
    unauthenticated = api.client.get("/indicators.csv", params={"fiscal_year": 2026})
    assert unauthenticated.status_code == 401
    bad = api.client.get(
        "/indicators.csv",
        params={"fiscal_year": 2026, "district": "atlantis"},
        headers=api.headers(Role.EVALUATOR),
    )
    assert bad.status_code == 422
    assert "atlantis" in bad.json()["detail"]
    missing_year = api.client.get("/indicators.csv", headers=api.headers(Role.EVALUATOR))
    assert missing_year.status_code == 422


def test_the_cli_export_writes_the_same_bytes_as_the_http_endpoint(
    api: Api,
    known: Known,
    settings: Settings,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TSUNAGARI_DATABASE_URL", settings.database_url)
    if settings.database_schema:
        monkeypatch.setenv("TSUNAGARI_DATABASE_SCHEMA", settings.database_schema)
    # The CLI would point the root logger at the runner's captured stderr.
    monkeypatch.setattr(cli_module, "configure_logging", lambda settings: None)
    out = tmp_path / "indicators.csv"
    runner = CliRunner()
    result = runner.invoke(
        cli_module.cli,
        ["export", "csv", "--fiscal-year", "2026", "--district", "suge", "--out", str(out)],
    )
    assert result.exit_code == 0, result.output
    http = api.client.get(
        "/indicators.csv",
        params={"fiscal_year": 2026, "district": "suge"},
        headers=api.headers(Role.EVALUATOR),
    )
    assert out.read_bytes() == http.content

    to_stdout = runner.invoke(cli_module.cli, ["export", "csv", "--fiscal-year", "2026"])
    assert to_stdout.exit_code == 0
    assert by_indicator(parse(to_stdout.stdout_bytes)) == EXPECTED_2026

    bad = runner.invoke(
        cli_module.cli, ["export", "csv", "--fiscal-year", "2026", "--district", "atlantis"]
    )
    assert bad.exit_code == 2
    assert "atlantis" in bad.output
