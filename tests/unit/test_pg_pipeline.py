"""infrastructure.pg_pipeline on the real PostgreSQL: statements in one write, answered in order,
a failure midway leaving nothing of the rest done, the connection usable afterwards, and arrays
sent as psycopg would have sent them."""

from __future__ import annotations

import enum
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from uuid import UUID, uuid4

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from infrastructure import pg_pipeline
from tests.support import PostgresSchema, _libpq_url

pytestmark = pytest.mark.postgres


@pytest.fixture
def connection() -> Iterator[psycopg.Connection[tuple[object, ...]]]:
    with PostgresSchema() as schema, psycopg.connect(_libpq_url()) as conn:
        conn.execute(f'SET search_path TO "{schema}"')
        conn.execute("CREATE TABLE t (id uuid PRIMARY KEY, n int NOT NULL, note text)")
        conn.commit()
        yield conn


def _rows(conn: psycopg.Connection[tuple[object, ...]]) -> list[tuple[object, ...]]:
    return conn.execute("SELECT n, note FROM t ORDER BY n").fetchall()


def test_statements_begin_run_in_order_and_answer_their_rows(
    connection: psycopg.Connection[tuple[object, ...]],
) -> None:
    ids = [uuid4(), uuid4()]
    assert pg_pipeline.usable(connection)  # idle: it begins the transaction itself
    answers = pg_pipeline.run(
        connection,
        [
            (
                "INSERT INTO t SELECT * FROM unnest(%b::uuid[], %b::int[], %b::text[])",
                [ids, [1, 2], ["一", None]],
            ),
            ("SELECT id, n FROM t WHERE id = ANY(%s) ORDER BY n", [ids]),
            ("SELECT 1 WHERE false", ()),
        ],
    )
    assert answers == [[], [(ids[0], 1), (ids[1], 2)], []]
    assert connection.pgconn.transaction_status == psycopg.pq.TransactionStatus.INTRANS
    connection.rollback()  # it was the connection's transaction: nothing was committed
    assert _rows(connection) == []


def test_a_commit_among_them_commits_and_psycopg_sees_the_connection_idle(
    connection: psycopg.Connection[tuple[object, ...]],
) -> None:
    pg_pipeline.run(
        connection, [("INSERT INTO t VALUES (%s, %s, %s)", [uuid4(), 7, "x"]), ("COMMIT", ())]
    )
    assert connection.pgconn.transaction_status == psycopg.pq.TransactionStatus.IDLE
    connection.commit()  # nothing to do, and no error
    assert _rows(connection) == [(7, "x")]


def test_a_failure_midway_raises_its_error_and_runs_nothing_after_it(
    connection: psycopg.Connection[tuple[object, ...]],
) -> None:
    taken: UUID = uuid4()
    pg_pipeline.run(
        connection, [("INSERT INTO t VALUES (%s, 1, 'first')", [taken]), ("COMMIT", ())]
    )
    with pytest.raises(psycopg.errors.UniqueViolation, match="duplicate key"):
        pg_pipeline.run(
            connection,
            [
                ("INSERT INTO t VALUES (%s, 2, 'before')", [uuid4()]),
                ("INSERT INTO t VALUES (%s, 3, 'again')", [taken]),
                ("INSERT INTO t VALUES (%s, 4, 'after')", [uuid4()]),
                ("COMMIT", ()),
            ],
        )
    assert connection.pgconn.transaction_status == psycopg.pq.TransactionStatus.INERROR
    connection.rollback()
    assert _rows(connection) == [(1, "first")]  # neither the one before nor the one after
    assert pg_pipeline.run(connection, [("SELECT count(*) FROM t", ())]) == [[(1,)]]


def test_a_value_that_cannot_be_sent_fails_before_anything_is_sent(
    connection: psycopg.Connection[tuple[object, ...]],
) -> None:
    with pytest.raises(psycopg.DataError):
        pg_pipeline.run(
            connection,
            [
                ("INSERT INTO t VALUES (%s, 1, 'sent?')", [uuid4()]),
                ("SELECT %s", [[1, "one"]]),  # psycopg dumps no list of mixed types
                ("COMMIT", ()),
            ],
        )
    # Nothing was queued: no transaction was begun, and the connection takes the next ones.
    assert connection.pgconn.transaction_status == psycopg.pq.TransactionStatus.IDLE
    assert pg_pipeline.run(connection, [("SELECT count(*) FROM t", ())]) == [[(0,)]]


def test_it_is_not_used_where_psycopg_would_begin_otherwise(
    connection: psycopg.Connection[tuple[object, ...]],
) -> None:
    connection.read_only = True
    assert not pg_pipeline.usable(connection)  # psycopg's BEGIN would say READ ONLY
    connection.read_only = None
    with connection.pipeline():
        assert not pg_pipeline.usable(connection)  # psycopg's own pipeline is open
    connection.autocommit = True
    assert not pg_pipeline.usable(connection)


def _ours(conn: psycopg.Connection[tuple[object, ...]]) -> list[object]:
    names = "SELECT name FROM pg_prepared_statements WHERE name LIKE 'tsunagari_%' ORDER BY 1"
    return [name for (name,) in conn.execute(names).fetchall()]


def test_where_psycopg_prepares_nothing_each_statement_is_prepared_once_and_stays(
    connection: psycopg.Connection[tuple[object, ...]],
) -> None:
    pg_pipeline.own_statements(connection)
    insert = ("INSERT INTO t VALUES (%s, %s, NULL)", [uuid4(), 1])
    pg_pipeline.run(connection, [insert])
    connection.rollback()  # psycopg, holding none of its own, deallocates nothing
    for n in (2, 3):
        pg_pipeline.run(connection, [("INSERT INTO t VALUES (%s, %s, NULL)", [uuid4(), n])])
    assert len(_ours(connection)) == 1
    connection.commit()
    assert [n for n, _ in _rows(connection)] == [2, 3]


def test_where_psycopg_prepares_its_own_ours_go_unnamed(
    connection: psycopg.Connection[tuple[object, ...]],
) -> None:
    for n in range(8):  # past psycopg's threshold for its own
        pg_pipeline.run(connection, [("INSERT INTO t VALUES (%s, %s, NULL)", [uuid4(), n])])
    assert _ours(connection) == []
    connection.rollback()
    assert _rows(connection) == []


# Arrays go in PostgreSQL's binary form, built here rather than by psycopg's list dumper: what
# PostgreSQL receives must be what psycopg would have sent it.

_ZONES = st.sampled_from(
    [UTC, timezone(timedelta(hours=9)), timezone(-timedelta(hours=3, minutes=30))]
)
_ELEMENTS = {
    "uuid": st.uuids(),
    "bigint": st.integers(-(2**63), 2**63 - 1),
    "text": st.text(st.characters(codec="utf-8", exclude_characters="\x00")),
    "bytea": st.binary(),
    "boolean": st.booleans(),
    "timestamptz": st.datetimes(
        min_value=datetime(1900, 1, 1), max_value=datetime(2200, 1, 1), timezones=_ZONES
    ),
}


@given(
    data=st.sampled_from(sorted(_ELEMENTS)).flatmap(
        lambda kind: st.tuples(
            st.just(kind), st.lists(st.one_of(st.none(), _ELEMENTS[kind]), min_size=1)
        )
    )
)
@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_an_array_arrives_as_psycopg_would_have_sent_it(
    connection: psycopg.Connection[tuple[object, ...]], data: tuple[str, list[object]]
) -> None:
    kind, values = data
    ours = pg_pipeline.run(connection, [(f"SELECT %b::{kind}[], %s::{kind}[]", [values, values])])
    theirs = connection.execute(f"SELECT %b::{kind}[]", [values]).fetchall()
    connection.rollback()
    assert ours == [[(theirs[0][0], theirs[0][0])]] == [[(values, values)]]
    assert pg_pipeline._array(values) is not None or all(value is None for value in values)


class _Colour(enum.StrEnum):
    RED = "red"


@pytest.mark.parametrize(
    "values",
    [
        [_Colour.RED, None],  # a subclass of str: psycopg's dumper for it decides
        [2**63],  # beyond bigint: psycopg sends a numeric
        [datetime(2026, 4, 1, 9)],  # naive: psycopg sends a timestamp
        [None],
        [],
        [1, "one"],
    ],
    ids=["enum", "numeric", "naive", "null", "empty", "mixed"],
)
def test_an_array_this_does_not_build_goes_as_psycopg_sends_it(
    connection: psycopg.Connection[tuple[object, ...]], values: list[object]
) -> None:
    assert pg_pipeline._array(values) is None
    try:
        theirs: object = connection.execute("SELECT %s", [values]).fetchall()
    except psycopg.Error as error:
        theirs = type(error)
    connection.rollback()
    try:
        ours: object = pg_pipeline.run(connection, [("SELECT %s", [values])])[0]
    except psycopg.Error as error:
        ours = type(error)
    connection.rollback()
    assert ours == theirs


def test_arrays_built_here_and_by_psycopg_go_together_in_one_statement(
    connection: psycopg.Connection[tuple[object, ...]],
) -> None:
    """A batch's insert whose one column is all NULLs: that array goes as psycopg dumps it,
    the others as built here, each in its place."""
    ids = [uuid4(), uuid4()]
    params: list[list[Any]] = [ids, [None, None], [_Colour.RED, _Colour.RED], [1, 2]]
    assert [pg_pipeline._array(p) is not None for p in params] == [True, False, False, True]
    sql = "SELECT %b::uuid[], %b::text[], %s, %b::int[]"
    ours = pg_pipeline.run(connection, [(sql, params)])
    theirs = connection.execute(sql, params).fetchall()
    connection.rollback()
    assert ours == [theirs]
    assert theirs[0][0] == ids
    assert theirs[0][1] == [None, None]
    assert theirs[0][3] == [1, 2]
