"""infrastructure.pg_pipeline on the real PostgreSQL: statements in one write, answered in order,
a failure midway leaving nothing of the rest done, and the connection usable afterwards."""

from __future__ import annotations

from collections.abc import Iterator
from uuid import UUID, uuid4

import psycopg
import pytest

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
