"""Sealing the log, and catching each kind of tampering made directly in the database."""

from __future__ import annotations

from datetime import datetime

import pytest
from sqlalchemy import text

from domain.organizations import OrganizationKind
from domain.provenance import Provenance, Role
from interfaces.bootstrap import Services

BY = Provenance("auditor-test", Role.ADMIN, "desk-1", "req-1")


def _record(services: Services, count: int) -> None:
    for number in range(count):
        services.app.register_organization(
            name=f"町会 {number}",
            kind=OrganizationKind.NEIGHBOURHOOD_ASSOCIATION,
            district_id="suge",
            recorded_by=BY,
        )


def _sql(services: Services, statement: str, **params: object) -> None:
    table = services.seal.events.fullname
    with services.datastore.engine.begin() as connection:
        connection.execute(text(statement.format(events=table)), params)


def test_an_untouched_log_verifies_against_its_seal(services: Services) -> None:
    _record(services, 6)
    seal = services.seal.seal()
    assert (seal.position, seal.records) == (6, 6)
    assert len(seal.head) == 64
    _record(services, 2)  # appended after the seal: not covered yet, not a fault
    result = services.seal.verify(seal.head)
    assert (result.ok, result.records, result.unsealed, result.confirmed_at) == (True, 6, 2, 6)
    second = services.seal.seal()
    assert (second.position, second.records) == (8, 2)
    assert services.seal.verify(second.head).ok
    earlier = services.seal.verify(seal.head)  # the earlier head still proves its prefix
    assert (earlier.ok, earlier.confirmed_at) == (True, 6)


def test_an_altered_record_is_found_at_its_position(services: Services) -> None:
    _record(services, 6)
    seal = services.seal.seal()
    _sql(services, "UPDATE {events} SET state = :state WHERE id = 3", state=b'{"name":"x"}')
    result = services.seal.verify(seal.head)
    assert (result.ok, result.first_bad_position) == (False, 3)
    assert "altered" in (result.problem or "")


def test_a_removed_record_is_found_at_its_position(services: Services) -> None:
    _record(services, 6)
    seal = services.seal.seal()
    _sql(services, "DELETE FROM {events} WHERE id = 4")
    result = services.seal.verify(seal.head)
    assert (result.ok, result.first_bad_position) == (False, 4)
    assert "removed" in (result.problem or "")


def test_reordered_records_are_found_at_the_first_moved_position(services: Services) -> None:
    _record(services, 6)
    seal = services.seal.seal()
    # Swap the contents of records 2 and 5 (a reordering of the log).
    _sql(services, "UPDATE {events} SET id = -2 WHERE id = 2")
    _sql(services, "UPDATE {events} SET id = 2 WHERE id = 5")
    _sql(services, "UPDATE {events} SET id = 5 WHERE id = -2")
    result = services.seal.verify(seal.head)
    assert (result.ok, result.first_bad_position) == (False, 2)


def test_a_record_inserted_into_the_sealed_log_is_found(services: Services) -> None:
    _record(services, 6)
    # A gap, as PostgreSQL leaves after a failed insert: position 4 holds nothing when sealed.
    _sql(services, "DELETE FROM {events} WHERE id = 4")
    seal = services.seal.seal()
    assert services.seal.verify(seal.head).ok
    _sql(
        services,
        "INSERT INTO {events} (id, originator_id, originator_version, topic, state) "
        "SELECT 4, originator_id, 2, topic, state FROM {events} WHERE id = 3",
    )
    result = services.seal.verify(seal.head)
    assert (result.ok, result.first_bad_position) == (False, 4)
    assert "inserted" in (result.problem or "")


def test_rewriting_the_stored_links_does_not_fool_a_head_kept_outside(
    services: Services,
) -> None:
    _record(services, 4)
    kept_outside = services.seal.seal().head
    _sql(services, "UPDATE {events} SET state = :state WHERE id = 2", state=b'{"name":"x"}')
    # The tamperer re-chains everything and re-seals, so the stored links fit again...
    with services.datastore.engine.begin() as connection:
        connection.execute(services.seal.links.delete())
        connection.execute(services.seal.seals.delete())
    services.seal.seal()
    assert services.seal.verify().ok
    # ...but not the head the auditors kept.
    result = services.seal.verify(kept_outside)
    assert not result.ok
    assert "rewritten" in (result.problem or "")


@pytest.mark.parametrize("records", [0, 1])
def test_small_logs_seal_and_verify(services: Services, records: int) -> None:
    _record(services, records)
    seal = services.seal.seal()
    assert seal.position == records
    assert services.seal.verify(seal.head).ok
    assert isinstance(seal.sealed_at, datetime)


def test_the_command_line_prints_the_seal_and_fails_naming_the_bad_record(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from interfaces import cli

    settings = services.settings
    monkeypatch.setenv("TSUNAGARI_DATABASE_URL", settings.database_url)
    if settings.database_schema:
        monkeypatch.setenv("TSUNAGARI_DATABASE_SCHEMA", settings.database_schema)
    monkeypatch.setattr(cli, "configure_logging", lambda settings: None)
    _record(services, 5)
    runner = CliRunner()
    sealed = runner.invoke(cli.cli, ["audit", "seal"])
    assert sealed.exit_code == 0, sealed.output
    head = sealed.output.split("head")[1].split()[0]
    assert len(head) == 64
    assert "records/s" in sealed.output
    assert runner.invoke(cli.cli, ["audit", "verify", "--seal", head]).exit_code == 0
    _sql(services, "DELETE FROM {events} WHERE id = 2")
    failed = runner.invoke(cli.cli, ["audit", "verify", "--seal", head])
    assert failed.exit_code == 1
    assert "FAILED at position 2: record 2 was removed" in failed.output
