"""PostgreSQL: a few statements sent in one write, and their answers read in one go.

psycopg's pipeline sends each statement as it is executed and flushes it on its own, polling
the socket before each one: a poll and a send a statement, and more polls while it reads the
answers. On the machines this runs on a system call is dear (a non-blocking poll costs tens of
microseconds of CPU): a check-in batch's commit, seven statements (LOCK, NOTIFY, the check of
what was read before the lock, three inserts, COMMIT), cost the writer ~1.4 ms of CPU in
psycopg's pipeline and ~0.35 ms here, where libpq's own pipeline mode queues them all, sends
them with one write at the sync, and the answers are read as they come (bench/README.md).

It uses psycopg's documented low-level layers (``psycopg.pq``, libpq's calls, and
``psycopg.adapt.Transformer``, which dumps parameters and loads rows as a cursor does), on
the same connection: psycopg learns the transaction's state from libpq, as always, so its
later ``commit()`` finds the connection as these statements left it. Only our own statements
go here, written with psycopg's ``%s`` (text) and ``%b`` (binary) placeholders.
"""

from __future__ import annotations

import itertools
import re
import select
import struct
from collections.abc import Callable, Sequence
from contextlib import suppress
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID
from weakref import WeakKeyDictionary

import psycopg
from psycopg import pq
from psycopg.adapt import PyFormat, Transformer

Statement = tuple[str, Sequence[Any]]
"""SQL with ``%s``/``%b`` placeholders, and its parameters."""

_PLACEHOLDER = re.compile(r"%([sb])")
_FORMATS = {"s": PyFormat.AUTO, "b": PyFormat.BINARY}
_IDLE = pq.TransactionStatus.IDLE
_IN_TRANSACTION = pq.TransactionStatus.INTRANS
_DONE = (pq.ExecStatus.COMMAND_OK, pq.ExecStatus.TUPLES_OK, pq.ExecStatus.EMPTY_QUERY)
_ABORTED = pq.ExecStatus.PIPELINE_ABORTED

_converted: dict[str, tuple[bytes, list[PyFormat]]] = {}
_prepared: WeakKeyDictionary[Any, dict[tuple[bytes, tuple[int, ...]], bytes]] = WeakKeyDictionary()
"""Per psycopg connection, the statements prepared on its session, by text and parameter
types (``_send``). The names are ours (``tsunagari_N``), apart from psycopg's (``_pg3_N``)."""
_names = itertools.count(1)


def own_statements(dbapi_connection: Any, _record: Any = None) -> None:
    """A connection on which psycopg prepares nothing, and statements sent here are prepared
    once under names of ours: for a process whose hot statements all go here (the check-in
    writer), where PostgreSQL parsed and planned a batch's five every time. SQLAlchemy's
    ``connect`` event takes it as it is."""
    dbapi_connection.prepare_threshold = None


def usable(driver: Any) -> bool:
    """Whether the connection can take statements this way now: not in psycopg's pipeline or
    autocommit, and either in a transaction or able to begin one with a plain BEGIN (psycopg
    would add an isolation level, read-only or deferrable to its BEGIN when set)."""
    pgconn = driver.pgconn
    if pgconn.pipeline_status != pq.PipelineStatus.OFF or driver.autocommit:
        return False
    status = pgconn.transaction_status
    if status == _IN_TRANSACTION:
        return True
    return status == _IDLE and (
        driver.isolation_level is None and driver.read_only is None and driver.deferrable is None
    )


def run(driver: Any, statements: Sequence[Statement]) -> list[list[tuple[Any, ...]]]:
    """Run the statements in order, in the connection's transaction (begun first when there
    is none, as psycopg would), in one round trip; answer each one's rows ([] for one that
    returns none). The first that fails raises its psycopg error once every answer is read;
    the statements after it did not run, and the transaction is left failed, to roll back.
    ``usable(driver)`` must hold."""
    pgconn = driver.pgconn
    encoding = driver.info.encoding
    transformer = Transformer(driver)
    prepared = _prepared.setdefault(driver, {}) if driver.prepare_threshold is None else None
    begin = pgconn.transaction_status == _IDLE
    if begin:
        statements = [("BEGIN", ()), *statements]
    # Every statement's parameters are dumped before any is sent: one that cannot be (a value
    # psycopg cannot adapt) raises here, with nothing queued and the connection as it was.
    dumped = [_dump(transformer, sql, params) for sql, params in statements]
    pgconn.enter_pipeline_mode()
    try:
        queued = [_send(pgconn, prepared, statement) for statement in dumped]
        pgconn.pipeline_sync()
        _flush(pgconn)
        results = _read(pgconn, len(statements) + sum(key is not None for key in queued))
    except BaseException:
        _drain(pgconn)
        raise
    finally:
        with suppress(psycopg.Error):
            pgconn.exit_pipeline_mode()
    rows: list[list[tuple[Any, ...]]] = []
    failure: psycopg.Error | None = None
    answers = iter(results)
    for key in queued:
        if key is not None and next(answers).status not in _DONE and prepared is not None:
            del prepared[key]  # not prepared after all: the pipeline failed before it
        result = next(answers)
        if result.status not in _DONE and result.status != _ABORTED and failure is None:
            failure = psycopg.errors.error_from_result(result, encoding=encoding)
        if result.status == pq.ExecStatus.TUPLES_OK and result.ntuples:
            transformer.set_pgresult(result)
            rows.append(transformer.load_rows(0, result.ntuples, tuple))
        else:
            rows.append([])
    if failure is not None:
        raise failure
    return rows[1:] if begin else rows


_Dumped = tuple[bytes, Sequence[bytes | None] | None, tuple[int, ...], Sequence[pq.Format]]
"""A statement as libpq takes it: its SQL, its parameters' bytes, their types and formats."""


def _dump(transformer: Any, sql: str, params: Sequence[Any]) -> _Dumped:
    """The statement as libpq takes it: each list that ``_array`` can build goes in binary
    as built, every other parameter as psycopg dumps it (a column of NULLs only, say, among
    a batch's insert's arrays: the others still go the fast way)."""
    query, formats = _convert(sql)
    if not formats:
        return query, None, (), ()
    arrays = [_array(param) if type(param) is list else None for param in params]
    rest = [i for i, array in enumerate(arrays) if array is None]
    values: list[bytes | None] = [None if array is None else array[0] for array in arrays]
    types = [0 if array is None else array[1] for array in arrays]
    dumped_as = [_BINARY] * len(arrays)
    if rest:
        dumped = transformer.dump_sequence([params[i] for i in rest], [formats[i] for i in rest])
        for i, value, oid, format_ in zip(
            rest, dumped, transformer.types, transformer.formats, strict=True
        ):
            values[i], types[i], dumped_as[i] = value, oid, format_
    return query, values, tuple(types), dumped_as


def _send(
    pgconn: Any,
    prepared: dict[tuple[bytes, tuple[int, ...]], bytes] | None,
    statement: _Dumped,
) -> tuple[bytes, tuple[int, ...]] | None:
    """Queue one statement; the key of the PREPARE queued before it, if one was.

    ``prepared`` (a connection where psycopg prepares nothing itself: ``own_statements``):
    each statement is prepared under a name of ours the first time, so PostgreSQL parses and
    plans it once per connection. Otherwise unnamed, parsed every time: a name of ours would
    not survive the DEALLOCATE ALL psycopg sends after a rollback (any refused command)
    whenever it holds prepared statements of its own."""
    query, values, types, formats = statement
    if values is None:
        pgconn.send_query_params(query, None)
        return None
    if prepared is None:
        pgconn.send_query_params(query, values, param_types=types, param_formats=formats)
        return None
    key = (query, types)
    name = prepared.get(key)
    queued = None
    if name is None:
        name = prepared[key] = f"tsunagari_{next(_names)}".encode()
        pgconn.send_prepare(name, query, param_types=types)
        queued = key
    pgconn.send_query_prepared(name, values, param_formats=formats)
    return queued


def _convert(sql: str) -> tuple[bytes, list[PyFormat]]:
    """``%s``/``%b`` as ``$1``, ``$2``...: the SQL libpq takes, and each parameter's format."""
    converted = _converted.get(sql)
    if converted is None:
        formats: list[PyFormat] = []

        def number(match: re.Match[str]) -> str:
            formats.append(_FORMATS[match.group(1)])
            return f"${len(formats)}"

        if len(_converted) >= 256:  # many stores in one process (tests): start again
            _converted.clear()
        converted = _converted[sql] = (_PLACEHOLDER.sub(number, sql).encode(), formats)
    return converted


def _flush(pgconn: Any) -> None:
    """Send what libpq holds: one write, unless the socket's buffer is full."""
    while pgconn.flush():
        select.select([pgconn.socket], [pgconn.socket], [])
        pgconn.consume_input()  # the server may be answering while we send


def _read(pgconn: Any, count: int) -> list[Any]:
    """The next ``count`` results and the sync's, waiting on the socket only when libpq has
    none ready."""
    results: list[Any] = []
    while True:
        while pgconn.is_busy():
            select.select([pgconn.socket], [], [])
            pgconn.consume_input()
        result = pgconn.get_result()
        if result is None:
            continue  # the end of one statement's results
        if result.status == pq.ExecStatus.PIPELINE_SYNC:
            if len(results) != count:
                raise psycopg.OperationalError(
                    f"PostgreSQL answered {len(results)} of {count} statements"
                )
            return results
        results.append(result)


def _drain(pgconn: Any) -> None:
    """After a failure midway (a lost connection, an interrupt): read what is left up to the
    sync, so that libpq can leave pipeline mode; a broken connection fails its next use."""
    with suppress(psycopg.Error, OSError):
        nothing = 0  # two "no result" in a row: nothing is left (the sync was read)
        while nothing < 2:
            while pgconn.is_busy():
                if not select.select([pgconn.socket], [], [], 5.0)[0]:
                    return
                pgconn.consume_input()
            result = pgconn.get_result()
            if result is not None and result.status == pq.ExecStatus.PIPELINE_SYNC:
                return
            nothing = nothing + 1 if result is None else 0


# Arrays in PostgreSQL's binary form --------------------------------------------------------
#
# A batch's statements carry their values as arrays (the inserts' unnest(), the reads'
# ANY()), and psycopg's list dumper is Python, element by element, through its per-element
# dispatch: 5-6 µs for an array of 8 (this machine), and a batch sends ~20 of them. The
# binary form of a one-dimensional array is a short header and each element's length and
# bytes (PostgreSQL's array_send); for the six element types below that is a few struct
# calls. A list of anything else (another type, several types, only NULLs, no elements)
# goes to psycopg as before.

_BINARY = pq.Format.BINARY
_INT32 = struct.Struct("!i")
_HEADER = struct.Struct("!iiiii")  # dimensions, has NULLs, element type, length, lower bound
_NULL = _INT32.pack(-1)
_PG_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
_SIZE_16 = _INT32.pack(16)
_MICROSECOND = timedelta(microseconds=1)


def _uuids(values: list[UUID]) -> bytes:
    size = _SIZE_16
    return b"".join([size + value.bytes for value in values])


def _int8s(values: list[int]) -> bytes:
    return struct.pack(f"!{'iq' * len(values)}", *[n for value in values for n in (8, value)])


def _texts(values: list[str]) -> bytes:
    pack = _INT32.pack
    return b"".join([pack(len(data)) + data for data in [value.encode() for value in values]])


def _byteas(values: list[bytes]) -> bytes:
    pack = _INT32.pack
    return b"".join([pack(len(value)) + value for value in values])


def _bools(values: list[bool]) -> bytes:
    return b"".join(
        [b"\x00\x00\x00\x01\x01" if value else b"\x00\x00\x00\x01\x00" for value in values]
    )


def _timestamptzs(values: list[datetime]) -> bytes:
    if any(value.utcoffset() is None for value in values):
        raise TypeError("a naive datetime is a timestamp, not a timestamptz")
    epoch = _PG_EPOCH
    return _int8s([(value - epoch) // _MICROSECOND for value in values])


_ELEMENTS: dict[type, tuple[int, int, Callable[[list[Any]], bytes]]] = {
    # Python type: (element type's oid, array type's oid, the elements' binary form)
    UUID: (2950, 2951, _uuids),
    int: (20, 1016, _int8s),
    str: (25, 1009, _texts),
    bytes: (17, 1001, _byteas),
    bool: (16, 1000, _bools),
    datetime: (1184, 1185, _timestamptzs),
}


def _array(values: list[Any]) -> tuple[bytes, int] | None:
    """The list as a binary one-dimensional array and the array type's oid, when every
    element is None or of one of ``_ELEMENTS``' types exactly (a subclass, such as an Enum's
    member, dumps as psycopg decides), and at least one is not None."""
    kinds = set(map(type, values))
    nulls = type(None) in kinds
    if nulls:
        kinds.discard(type(None))
    if len(kinds) != 1:
        return None
    element = _ELEMENTS.get(kinds.pop())
    if element is None:
        return None
    element_oid, array_oid, binary = element
    try:
        if nulls:
            null = _NULL
            data = b"".join([null if value is None else binary([value]) for value in values])
        else:
            data = binary(values)
    except (struct.error, OverflowError, TypeError):  # beyond int8; a naive datetime
        return None
    return _HEADER.pack(1, 1 if nulls else 0, element_oid, len(values), 1) + data, array_oid
