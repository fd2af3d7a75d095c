"""Side rows (the roster, idempotency answers) are written with the events of every store a
process opens, however many it opened and closed before.

They are written when the transaction commits, by a listener on the store's SQLAlchemy
session maker. SQLAlchemy's event registry keys a listener by the id() of its target and keeps
the key after the target is gone, so asking it whether a new maker was listened to answered yes
when the maker took the address of a closed store's. Then that store's check-ins and walk-ins
were answered 201 and never reached the roster, and idempotency answers were lost: a CI flake,
since CPython reuses a freed object's address only when nothing else took it first.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    func,
    insert,
    select,
    text,
)
from sqlalchemy.orm import sessionmaker

from infrastructure.persistence import Datastore
from tests.support import POSTGRES_URL, PostgresSchema


def test_rows_deferred_in_a_store_whose_maker_took_a_closed_store_s_address_are_written(
    tmp_path: Path,
) -> None:
    engine = create_engine(f"sqlite:///{tmp_path}/side.sqlite3")
    table = Table("side_rows", MetaData(), Column("n", Integer, primary_key=True))
    table.metadata.create_all(engine)

    maker = _maker_at_a_closed_store_s_address(engine)
    if maker is None:
        pytest.skip("this interpreter never reused a closed store's session maker's address")

    store = _store(engine, maker)
    with maker() as session, session.begin():
        store.defer(session, insert(table), [{"n": 1}, {"n": 2}])
    with engine.connect() as connection:
        assert connection.execute(select(func.count()).select_from(table)).scalar() == 2


def _store(engine: Any, maker: Any) -> Datastore:
    """A Datastore over this engine and maker, as over eventsourcing-sqlalchemy's recorder."""
    recorder: Any = SimpleNamespace(datastore=SimpleNamespace(engine=engine, session_maker=maker))
    return Datastore(recorder, schema=None)


def _maker_at_a_closed_store_s_address(engine: Any) -> Any:
    """Stores opened and closed in turn, until a new one's maker takes a closed one's address
    (CPython hands freed memory to the next object of its size, unless another took it)."""
    closed: set[int] = set()
    for _ in range(500):
        maker = sessionmaker(bind=engine)
        if id(maker) in closed:
            return maker
        closed.add(id(maker))
        _store(engine, maker)
        del maker
        gc.collect()
    return None


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def engine_and_schema(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[tuple[Any, str | None]]:
    if request.param == "sqlite":
        engine = create_engine(f"sqlite:///{tmp_path}/side.sqlite3")
        yield engine, None
        engine.dispose()
        return
    with PostgresSchema() as schema:
        engine = create_engine(POSTGRES_URL)
        yield engine, schema
        engine.dispose()


def test_side_rows_written_at_commit_on_the_driver_are_stored_as_sqlalchemy_stores_them(
    engine_and_schema: tuple[Any, str | None],
) -> None:
    """The deferred rows go by sqlite3's executemany (values turned by their column types as
    SQLAlchemy turns them), or by one INSERT from unnest() arrays on psycopg: the same stored
    values as SQLAlchemy's own insert, column for column, a column of NULLs included."""
    engine, schema = engine_and_schema
    metadata = MetaData(schema=schema)
    tables = [
        Table(
            name,
            metadata,
            Column("key", String(40), primary_key=True),
            Column("counted", Boolean, nullable=False),
            Column("recorded_at", DateTime(timezone=True), nullable=False),
            Column("total", Integer, nullable=False),
            Column("reason", Text),
            Column("note", Text),
        )
        for name in ("deferred", "executed")
    ]
    metadata.create_all(engine)
    rows = [
        {
            "key": "a",
            "counted": True,
            "recorded_at": datetime(2026, 4, 1, 0, 30, 5, 120, tzinfo=UTC),
            "total": 7,
            "reason": None,
            "note": None,
        },
        {
            "key": "b",
            "counted": False,
            "recorded_at": datetime(2027, 3, 31, 15, 0, tzinfo=UTC),
            "total": 3_000_000_000 // 2,
            "reason": "二重に記録",
            "note": None,
        },
    ]
    maker = sessionmaker(bind=engine)
    store = _store(engine, maker)
    with maker() as session, session.begin():
        store.defer(session, insert(tables[0]), rows)
    with engine.begin() as connection:
        connection.execute(insert(tables[1]), rows)

    with engine.connect() as connection:
        stored = [
            connection.execute(text(f"SELECT * FROM {_name(table, engine)} ORDER BY key")).all()  # noqa: S608
            for table in tables
        ]
        read = [connection.execute(select(table).order_by(table.c.key)).all() for table in tables]
    assert stored[0] == stored[1]
    assert len(stored[0]) == 2
    assert read[0] == read[1]
    if schema is None:
        assert stored[0][0][2] == "2026-04-01 00:30:05.000120"  # SQLAlchemy's text for a datetime


def _name(table: Table, engine: Any) -> str:
    name: str = engine.dialect.identifier_preparer.format_table(table)
    return name


def test_a_side_row_too_long_for_its_column_is_refused_as_by_sqlalchemy_not_cut_short(
    engine_and_schema: tuple[Any, str | None],
) -> None:
    """PostgreSQL refuses a string over its column's length (SQLite keeps it whole): so must
    the deferred insert, and not store it cut short."""
    engine, schema = engine_and_schema
    metadata = MetaData(schema=schema)
    tables = [
        Table(name, metadata, Column("key", String(8), primary_key=True))
        for name in ("deferred", "executed")
    ]
    metadata.create_all(engine)
    rows = [{"key": "much-too-long-a-key"}]
    maker = sessionmaker(bind=engine)
    store = _store(engine, maker)
    outcomes: list[str] = []
    try:
        with maker() as session, session.begin():
            store.defer(session, insert(tables[0]), rows)
        outcomes.append("stored")
    except Exception as error:
        outcomes.append(f"refused: {'too long' in str(error)}")
    try:
        with engine.begin() as connection:
            connection.execute(insert(tables[1]), rows)
        outcomes.append("stored")
    except Exception as error:
        outcomes.append(f"refused: {'too long' in str(error)}")

    with engine.connect() as connection:
        stored = [connection.execute(select(table.c.key)).scalars().all() for table in tables]
    expected = "refused: True" if schema is not None else "stored"
    assert outcomes == [expected, expected]
    assert stored[0] == stored[1] == ([] if schema is not None else ["much-too-long-a-key"])
