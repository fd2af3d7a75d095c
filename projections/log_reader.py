"""Reads the event log in large pages of stored rows, for rebuilds and what-ifs.

The recorder's own select_notifications goes through the ORM, about twenty times slower than
a plain paged SELECT of the same rows; a rebuild reads millions of them.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from eventsourcing.application import Application
from sqlalchemy import func, select

from projections.indicators.facts import FACT_TOPICS, StoredRow, hex_id


class LogReader:
    def __init__(self, app: Application[Any]) -> None:
        recorder: Any = app.recorder
        self.table = recorder.events_record_cls.__table__
        self.engine = recorder.datastore.engine
        self.name = self.engine.dialect.identifier_preparer.format_table(self.table)
        self._mark = "%s" if self.engine.dialect.name == "postgresql" else "?"

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
