"""Reads the event log in large pages of stored rows, for rebuilds and what-ifs.

The recorder's own select_notifications goes through the ORM, about twenty times slower than
a plain paged SELECT of the same rows; a rebuild reads millions of them.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from eventsourcing.application import Application
from sqlalchemy import create_engine, func, select
from sqlalchemy.pool import NullPool

from projections.indicators.facts import FACT_TOPICS, StoredRow, hex_id


@dataclass(frozen=True)
class LogSource:
    """Where the log is, for a process of its own to read it: a database URL (with its
    password: it only travels between our own processes) and the events table's name."""

    url: str
    table: str


class LogReader:
    def __init__(self, app: Application[Any]) -> None:
        recorder: Any = app.recorder
        self.table = recorder.events_record_cls.__table__
        self.engine = recorder.datastore.engine
        self.name = self.engine.dialect.identifier_preparer.format_table(self.table)
        self._mark = "%s" if self.engine.dialect.name == "postgresql" else "?"

    def source(self) -> LogSource:
        url = self.engine.url
        if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
            url = url.set(database=os.path.abspath(url.database))  # the reader's own cwd
        return LogSource(url.render_as_string(hide_password=False), self.name)

    @classmethod
    def at(cls, source: LogSource) -> LogReader:
        """A reader with an engine of its own (``pages`` and ``ranges`` with ``until`` only)."""
        reader = cls.__new__(cls)
        reader.engine = create_engine(source.url, poolclass=NullPool)
        reader.name = source.table
        reader._mark = "%s" if reader.engine.dialect.name == "postgresql" else "?"
        return reader

    def head(self) -> int:
        """The last position recorded so far (0 for an empty log)."""
        with self.engine.connect() as connection:
            value = connection.execute(select(func.max(self.table.c.id))).scalar()
        return int(value or 0)

    def pages(
        self,
        after: int,
        *,
        page_size: int = 20_000,
        topics: Sequence[str] = FACT_TOPICS,
        until: int | None = None,
    ) -> Iterator[tuple[list[StoredRow], int]]:
        """Rows of the given topics after a position, a range of positions at a time, with the
        last position each page covers (rows of other topics in the range are skipped)."""
        # Plain SQL on the driver's own cursor: no per-row processing, the rows come back as the
        # driver reads them.
        marks = ", ".join(self._mark for _ in topics)
        query = (
            f"SELECT id, originator_id, topic, state FROM {self.name} "  # noqa: S608 - our own table name
            f"WHERE id > {self._mark} AND id <= {self._mark} AND topic IN ({marks}) ORDER BY id"
        )
        for position, upto in self.ranges(after, page_size=page_size, until=until):
            connection = self.engine.raw_connection()
            try:
                cursor = connection.cursor()
                cursor.execute(query, (position, upto, *topics))
                rows = cursor.fetchall()
                cursor.close()
            finally:
                connection.close()
            yield [StoredRow(row[0], hex_id(row[1]), row[2], bytes(row[3])) for row in rows], upto

    def ranges(
        self, after: int, *, page_size: int = 20_000, until: int | None = None
    ) -> Iterator[tuple[int, int]]:
        """Ranges of positions (after, upto] of at most a page each, up to the head when
        called (or ``until``)."""
        head = self.head() if until is None else until
        position = after
        while position < head:
            upto = min(position + page_size, head)
            yield position, upto
            position = upto
