"""Export the log, import it into an empty store: same indicators, same chain; tampering refused."""

from __future__ import annotations

import base64
import hashlib
import json
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import psycopg
import pytest
from sqlalchemy import func, select, text
from typer.testing import CliRunner

from application.audit import LogQuery
from domain.organizations import OrganizationKind
from domain.provenance import Provenance, Role
from infrastructure import archive
from infrastructure.seal import GENESIS, link
from interfaces import cli
from interfaces.bootstrap import Services
from interfaces.demo import DemoPlan, load_demo
from projections.indicators.model import Scope
from projections.indicators.parameters import DEFAULT_PARAMETERS
from projections.whatif import what_if
from tests.support import Clock

BY = Provenance("archive-test", Role.ADMIN, "desk-1", "req-1")
Run = Callable[..., Any]


@pytest.fixture
def run(monkeypatch: pytest.MonkeyPatch) -> Run:
    """Run ``tsunagari`` against one of the stores."""
    monkeypatch.setattr(cli, "configure_logging", lambda settings: None)
    runner = CliRunner()

    def invoke(services: Services, *args: str) -> Any:
        settings = services.settings
        monkeypatch.setenv("TSUNAGARI_DATABASE_URL", settings.database_url)
        if settings.database_schema:
            monkeypatch.setenv("TSUNAGARI_DATABASE_SCHEMA", settings.database_schema)
        else:
            monkeypatch.delenv("TSUNAGARI_DATABASE_SCHEMA", raising=False)
        return runner.invoke(cli.cli, list(args))

    return invoke


def _organizations(services: Services, count: int) -> None:
    for number in range(count):
        services.app.register_organization(
            name=f"町会 {number}",
            kind=OrganizationKind.NEIGHBOURHOOD_ASSOCIATION,
            district_id="suge",
            recorded_by=BY,
        )


def _manifest(directory: Path) -> dict[str, Any]:
    manifest: dict[str, Any] = json.loads((directory / "manifest.json").read_text("utf-8"))
    return manifest


def _stored(services: Services) -> tuple[int, int, int]:
    """Records, chain links and seals held by a store."""
    seal = services.seal
    with services.datastore.engine.connect() as connection:
        return tuple(  # type: ignore[return-value]
            connection.execute(select(func.count()).select_from(table)).scalar_one()
            for table in (seal.events, seal.links, seal.seals)
        )


def test_an_imported_export_verifies_and_gives_the_same_indicators(
    services: Services, fresh: Services, run: Run, tmp_path: Path
) -> None:
    load_demo(services.app, DemoPlan(residents=40, fiscal_years=1), today=services.app.today())
    sealed = run(services, "audit", "seal")
    assert sealed.exit_code == 0, sealed.output
    kept_head = sealed.stdout.split("head")[1].split()[0]
    head = services.app.recorder.max_notification_id()
    out = tmp_path / "export-2026"

    exported = run(services, "audit", "export", "--fiscal-year", "2026", "--out", str(out))

    assert exported.exit_code == 0, exported.output
    manifest = _manifest(out)
    assert (manifest["records"], manifest["first_position"], manifest["last_position"]) == (
        _stored(services)[0],
        1,
        head,
    )
    # The year is not over: the whole log, so the export's seal is the one the auditors kept.
    assert manifest["seal"]["head"] == kept_head
    assert sorted(path.name for path in out.iterdir()) == ["log-00001.jsonl", "manifest.json"]
    for entry in manifest["files"]:
        assert hashlib.sha256((out / entry["name"]).read_bytes()).hexdigest() == entry["sha256"]

    imported = run(fresh, "audit", "import", str(out), "--seal", kept_head)

    assert imported.exit_code == 0, imported.output
    assert f"Imported {manifest['records']} records up to position {head}" in imported.stdout
    verified = run(fresh, "audit", "verify", "--seal", kept_head)
    assert verified.exit_code == 0, verified.output
    assert "OK: the sealed log is intact (0 records appended" in verified.stdout
    # Indicators from the log, and from the read models rebuilt by a replay.
    for fiscal_year in (2025, 2026):
        assert (
            what_if(fresh.app, fiscal_year, DEFAULT_PARAMETERS).as_dict()
            == what_if(services.app, fiscal_year, DEFAULT_PARAMETERS).as_dict()
        )
    printed = [run(store, "indicators", "--fiscal-year", "2026") for store in (services, fresh)]
    assert printed[0].exit_code == 0, printed[0].output
    assert "total_attendances" in printed[0].stdout
    assert printed[1].stdout == printed[0].stdout
    # One rebuilt on every core (the default), the other in one process.
    for store, workers in ((services, []), (fresh, ["--workers", "1"])):
        replayed = run(store, "replay", *workers)
        assert replayed.exit_code == 0, replayed.output
        assert "Rebuilt generation 2 from" in replayed.stdout
    for district in (None, "suge", "noborito"):
        original = services.indicators.indicators(2026, Scope(district))
        assert fresh.indicators.indicators(2026, Scope(district)) == original
    assert original["indicators"]["total_attendances"]["value"] > 0
    # The audit trail reads the same, and the front desk's roster came back with the records.
    everything = LogQuery(limit=1000)
    assert fresh.audit.log(everything) == services.audit.log(everything)
    checked_in = next(
        e for e in services.audit.log(LogQuery.parse(limit=1, type="Attendance.CheckedIn")).entries
    )
    event_id = checked_in.payload["event_id"]
    assert fresh.roster.check_ins_at(UUID(event_id)) == services.roster.check_ins_at(UUID(event_id))
    # New facts follow the imported ones.
    _organizations(fresh, 1)
    assert fresh.app.recorder.max_notification_id() == (head or 0) + 1


def test_a_fiscal_year_export_is_the_log_as_it_stood_at_the_end_of_that_year(
    services: Services, clock: Clock, run: Run, tmp_path: Path
) -> None:
    for moment in (
        datetime(2026, 4, 1, 0, 0, tzinfo=UTC),
        datetime(2027, 3, 31, 14, 59, 59, tzinfo=UTC),  # 31 March 23:59:59 in Tokyo
        datetime(2027, 3, 31, 15, 0, tzinfo=UTC),  # 1 April in Tokyo: 2027年度
        datetime(2027, 5, 1, 0, 0, tzinfo=UTC),
    ):
        clock.now = moment
        _organizations(services, 1)
    services.seal.seal()

    first = run(services, "audit", "export", "--fiscal-year", "2026", "--out", str(tmp_path / "a"))
    assert first.exit_code == 0, first.output
    manifest = _manifest(tmp_path / "a")

    assert (manifest["records"], manifest["last_position"]) == (2, 2)
    assert manifest["cutoff"] == "2027-04-01T00:00:00+09:00"
    with services.datastore.engine.connect() as connection:
        stored_link = connection.execute(
            select(services.seal.links.c.link).where(services.seal.links.c.position == 2)
        ).scalar()
    assert manifest["seal"] == {
        "position": 2,
        "head": stored_link,
        "sealed_at": manifest["exported_at"],
    }
    later = run(services, "audit", "export", "--fiscal-year", "2027", "--out", str(tmp_path / "b"))
    assert later.exit_code == 0, later.output
    assert _manifest(tmp_path / "b")["records"] == 4
    again = run(services, "audit", "export", "--fiscal-year", "2027", "--out", str(tmp_path / "b"))
    assert again.exit_code == 1
    assert "is not an empty folder" in again.stderr


def _lines(directory: Path) -> list[str]:
    return (directory / "log-00001.jsonl").read_text("utf-8").splitlines(keepends=True)


def _write_lines(directory: Path, lines: list[str], name: str = "log-00001.jsonl") -> None:
    (directory / name).write_text("".join(lines), "utf-8")


def _write_manifest(directory: Path, manifest: dict[str, Any]) -> None:
    (directory / "manifest.json").write_text(json.dumps(manifest), "utf-8")


def _alter_line(directory: Path) -> None:
    lines = _lines(directory)
    record = json.loads(lines[1])
    state = base64.b64decode(record["state"]).replace("町会 1".encode(), "町会 X".encode())
    record["state"] = base64.b64encode(state).decode()
    lines[1] = json.dumps(record) + "\n"
    _write_lines(directory, lines)


def _remove_line(directory: Path) -> None:
    lines = _lines(directory)
    del lines[1]
    _write_lines(directory, lines)


def _rehash(directory: Path, *, reseal: bool = False) -> None:
    """What a careful tamperer does next: make the manifest fit the changed file."""
    manifest = _manifest(directory)
    lines = _lines(directory)
    entry = manifest["files"][0]
    entry["sha256"] = hashlib.sha256("".join(lines).encode()).hexdigest()
    entry["records"] = manifest["records"] = len(lines)
    if reseal:
        head = GENESIS
        for line in lines:
            r = json.loads(line)
            state = base64.b64decode(r["state"])
            head = link(head, r["position"], r["originator_id"], r["version"], r["topic"], state)
        manifest["seal"]["head"] = head
    _write_manifest(directory, manifest)


def _change_manifest(directory: Path, **changes: Any) -> None:
    manifest = _manifest(directory)
    for key, value in changes.items():
        if key == "head":
            manifest["seal"]["head"] = value
        else:
            manifest[key] = value
    _write_manifest(directory, manifest)


def _then(*steps: Callable[[Path], None]) -> Callable[[Path], None]:
    def tamper(directory: Path) -> None:
        for step in steps:
            step(directory)

    return tamper


TAMPERING: dict[str, tuple[Callable[[Path], None], str]] = {
    "changed line": (_alter_line, "log-00001.jsonl: its SHA-256 is not the manifest's"),
    "changed line, rehashed": (
        _then(_alter_line, _rehash),
        "the chain head of the records",
    ),
    "removed line": (_remove_line, "log-00001.jsonl: its SHA-256 is not the manifest's"),
    "removed line, rehashed": (
        _then(_remove_line, _rehash),
        "the chain head of the records",
    ),
    "changed seal head": (
        lambda d: _change_manifest(d, head="ab" * 32),
        "is not the manifest's seal (abab",
    ),
    "changed record count": (
        lambda d: _change_manifest(d, records=6),
        "the export holds 5 records, the manifest says 6",
    ),
    "garbled manifest": (
        lambda d: _write_lines(d, ["{not json"], name="manifest.json"),
        "manifest.json is not valid JSON",
    ),
    "resealed forgery, checked against the kept head": (
        _then(_alter_line, lambda d: _rehash(d, reseal=True)),
        "matches the export's chain at no position",
    ),
}


@pytest.mark.parametrize("kind", TAMPERING)
def test_a_tampered_export_is_refused_and_nothing_is_written(
    services: Services, fresh: Services, run: Run, tmp_path: Path, kind: str
) -> None:
    _organizations(services, 5)
    kept_head = services.seal.seal().head
    out = tmp_path / "export"
    assert (
        run(services, "audit", "export", "--fiscal-year", "2026", "--out", str(out)).exit_code == 0
    )
    tamper, message = TAMPERING[kind]
    tamper(out)

    result = run(fresh, "audit", "import", str(out), "--seal", kept_head)

    assert result.exit_code == 1
    assert message in result.stderr
    assert "Nothing was imported" in result.stderr
    assert _stored(fresh) == (0, 0, 0)


def test_an_import_into_a_store_that_holds_records_is_refused(
    services: Services, fresh: Services, run: Run, tmp_path: Path
) -> None:
    _organizations(services, 3)
    out = tmp_path / "export"
    assert (
        run(services, "audit", "export", "--fiscal-year", "2026", "--out", str(out)).exit_code == 0
    )
    _organizations(fresh, 1)

    result = run(fresh, "audit", "import", str(out))

    assert result.exit_code == 1
    assert "the store is not empty (records: 1)" in result.stderr
    assert _stored(fresh) == (1, 0, 0)
    assert run(services, "audit", "import", str(out)).exit_code == 1
    assert _stored(services) == (3, 0, 0)


def _sql(services: Services, statement: str, **params: object) -> None:
    with services.datastore.engine.begin() as connection:
        connection.execute(text(statement.format(events=services.seal.events.fullname)), params)


def _alter_2(services: Services) -> None:
    _sql(services, "UPDATE {events} SET state = :state WHERE id = 2", state=b'{"name":"x"}')


def _insert_4(services: Services) -> None:
    _sql(
        services,
        "INSERT INTO {events} (id, originator_id, originator_version, topic, state) "
        "SELECT 4, originator_id, 2, topic, state FROM {events} WHERE id = 3",
    )


STORED_TAMPERING: dict[str, tuple[Callable[[Services], None], str]] = {
    "altered": (_alter_2, "at position 2 (record 2 was altered or moved)"),
    "removed": (
        lambda s: _sql(s, "DELETE FROM {events} WHERE id = 3"),
        "at position 3 (record 3 was removed)",
    ),
    "removed at the end": (
        lambda s: _sql(s, "DELETE FROM {events} WHERE id = 5"),
        "at position 5 (record 5 was removed)",
    ),
    "inserted": (_insert_4, "at position 4 (record 4 was inserted into the sealed log)"),
}


@pytest.mark.parametrize(
    ("kind", "appended"),
    [
        *((kind, False) for kind in STORED_TAMPERING),
        # Then one more record: the last exported one is not sealed, so only comparing every
        # link finds the fault. (After removing the last record SQLite would reuse its id.)
        *((kind, True) for kind in STORED_TAMPERING if kind != "removed at the end"),
    ],
)
def test_a_log_that_no_longer_fits_its_seal_is_not_exported(
    services: Services,
    run: Run,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    kind: str,
    appended: bool,
) -> None:
    monkeypatch.setattr(archive, "RECORDS_PER_FILE", 2)  # refused after some files are written
    _organizations(services, 5)
    if kind == "inserted":
        _sql(services, "DELETE FROM {events} WHERE id = 4")  # a gap when sealed, as on PostgreSQL
    services.seal.seal()
    tamper, message = STORED_TAMPERING[kind]
    tamper(services)
    if appended:
        _organizations(services, 1)
    assert not services.seal.verify().ok

    result = run(services, "audit", "export", "--fiscal-year", "2026", "--out", str(tmp_path / "x"))

    assert result.exit_code == 1
    assert f"the stored log does not fit its hash chain {message}" in result.stderr
    assert list((tmp_path / "x").iterdir()) == []  # no half an export left behind


def test_a_kept_head_is_confirmed_where_the_export_passes_it(
    services: Services, fresh: Services, run: Run, tmp_path: Path
) -> None:
    _organizations(services, 5)
    kept_head = services.seal.seal().head
    _organizations(services, 1)  # one more check-in lands: the live log no longer ends on a seal
    out = tmp_path / "export"
    assert (
        run(services, "audit", "export", "--fiscal-year", "2026", "--out", str(out)).exit_code == 0
    )
    assert _manifest(out)["seal"]["position"] == 6

    imported = run(fresh, "audit", "import", str(out), "--seal", kept_head)

    assert imported.exit_code == 0, imported.output
    assert "Imported 6 records up to position 6" in imported.stdout
    assert "The head you kept was confirmed at position 5; records after it (to position 6)" in (
        imported.stdout
    )
    assert _stored(fresh) == (6, 6, 1)
    verified = run(fresh, "audit", "verify", "--seal", kept_head)
    assert verified.exit_code == 0, verified.output
    assert "The head you kept matches the log at position 5." in verified.stdout
    original = run(services, "audit", "verify", "--seal", kept_head)
    assert "The head you kept matches the log at position 5." in original.stdout


def test_a_kept_head_the_export_never_reaches_is_refused(
    services: Services, fresh: Services, clock: Clock, run: Run, tmp_path: Path
) -> None:
    _organizations(services, 2)  # 2026年度
    clock.now = datetime(2027, 5, 1, tzinfo=UTC)
    _organizations(services, 2)  # 2027年度
    kept_head = services.seal.seal().head  # sealed at position 4, after the year's end
    out = tmp_path / "export-2026"
    assert (
        run(services, "audit", "export", "--fiscal-year", "2026", "--out", str(out)).exit_code == 0
    )

    result = run(fresh, "audit", "import", str(out), "--seal", kept_head)

    assert result.exit_code == 1
    assert f"the head you kept ({kept_head}) matches the export's chain at no position" in (
        result.stderr
    )
    assert _stored(fresh) == (0, 0, 0)


def _forge_topic(directory: Path, topic: str) -> None:
    """A forger who re-chains: the export is consistent in itself, only its topic is foreign."""
    lines = _lines(directory)
    record = json.loads(lines[2])
    record["topic"] = topic
    lines[2] = json.dumps(record) + "\n"
    _write_lines(directory, lines)
    _rehash(directory, reseal=True)


def test_an_export_naming_a_foreign_topic_is_refused_before_anything_imports_it(
    services: Services,
    fresh: Services,
    run: Run,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A module that would run if the import resolved the topic: it leaves a mark.
    modules = tmp_path / "modules"
    modules.mkdir()
    mark = tmp_path / "imported"
    (modules / "forged_payload.py").write_text(
        f"from pathlib import Path\nPath({str(mark)!r}).write_text('ran')\nclass Thing: ...\n"
    )
    monkeypatch.syspath_prepend(str(modules))
    _organizations(services, 4)
    out = tmp_path / "export"
    assert (
        run(services, "audit", "export", "--fiscal-year", "2026", "--out", str(out)).exit_code == 0
    )
    _forge_topic(out, "forged_payload:Thing")

    result = run(fresh, "audit", "import", str(out))

    assert result.exit_code == 1
    assert (
        "log-00001.jsonl line 3: topic 'forged_payload:Thing' is not one of this "
        "application's event types" in result.stderr
    )
    assert not mark.exists()
    assert "forged_payload" not in sys.modules
    assert _stored(fresh) == (0, 0, 0)


def test_files_the_manifest_does_not_list_are_refused(
    services: Services, fresh: Services, run: Run, tmp_path: Path
) -> None:
    _organizations(services, 2)
    out = tmp_path / "export"
    assert (
        run(services, "audit", "export", "--fiscal-year", "2026", "--out", str(out)).exit_code == 0
    )
    _write_lines(out, _lines(out), name="log-00002.jsonl")

    result = run(fresh, "audit", "import", str(out))

    assert result.exit_code == 1
    assert "the export folder holds what the manifest does not list: log-00002.jsonl" in (
        result.stderr
    )
    assert _stored(fresh) == (0, 0, 0)


def test_an_import_goes_on_while_a_vacuum_of_the_log_runs(
    services: Services, fresh: Services, run: Run, tmp_path: Path
) -> None:
    """PostgreSQL: an import takes the log's write lock as every writer does (an advisory
    lock), not a table lock that would wait for the SHARE UPDATE EXCLUSIVE a VACUUM holds."""
    if fresh.datastore.engine.dialect.name != "postgresql":
        pytest.skip("SQLite has no VACUUM beside its writers")
    _organizations(services, 3)
    out = tmp_path / "export"
    assert (
        run(services, "audit", "export", "--fiscal-year", "2026", "--out", str(out)).exit_code == 0
    )
    url = fresh.settings.database_url.replace("postgresql+psycopg://", "postgresql://", 1)
    with psycopg.connect(url) as vacuum:
        vacuum.execute(
            f'LOCK TABLE "{fresh.settings.database_schema}".tsunagari_events'
            " IN SHARE UPDATE EXCLUSIVE MODE"
        )
        pool = ThreadPoolExecutor(1)
        try:
            result = pool.submit(run, fresh, "audit", "import", str(out)).result(timeout=20)
        finally:
            vacuum.rollback()  # the vacuum ends, then what waited for it
            pool.shutdown()
    assert result.exit_code == 0, result.output
    assert _stored(fresh)[0] == 3
