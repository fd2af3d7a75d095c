"""The stored records for the audit trail, read through the recorder and its events table."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any
from uuid import UUID

from eventsourcing.persistence import Notification
from sqlalchemy import select

IN_LIST = 500
"""Stream ids per query: well inside every engine's limit on bound parameters."""


class SqlLogRecords:
    """``application.audit.LogRecords`` on eventsourcing-sqlalchemy's application recorder."""

    def __init__(self, recorder: Any) -> None:
        self.recorder = recorder
        self.table = recorder.events_record_cls.__table__

    def head(self) -> int:
        """The last position recorded so far (0 for an empty log)."""
        return int(self.recorder.max_notification_id() or 0)

    def page(self, after: int, upto: int, topics: Sequence[str], limit: int) -> list[Notification]:
        """Records at positions in (after, upto] of the given topics, in order, at most ``limit``.

        The library's own paged read: a position range and a topic filter in its query.
        """
        records: list[Notification] = self.recorder.select_notifications(
            after, limit, stop=upto, topics=topics, inclusive_of_start=False
        )
        return records

    def stream(self, stream_id: UUID) -> list[Notification]:
        """Every record of one aggregate with its position: the library's stream read has none."""
        table = self.table
        query = (
            select(table.c.id, table.c.originator_version, table.c.topic, table.c.state)
            .where(table.c.originator_id == stream_id)
            .order_by(table.c.originator_version)
        )
        with self.recorder.transaction(commit=False) as session:
            rows = session.execute(query).all()
        return [
            Notification(
                id=row.id,
                originator_id=stream_id,
                originator_version=row.originator_version,
                topic=row.topic,
                state=bytes(row.state),
            )
            for row in rows
        ]

    def streams_holding(self, topic: str, stream_ids: Collection[UUID]) -> set[UUID]:
        """Those of the given streams that hold a record of this topic (by the stream index)."""
        table = self.table
        ids = list(stream_ids)
        found: set[UUID] = set()
        with self.recorder.transaction(commit=False) as session:
            for start in range(0, len(ids), IN_LIST):
                query = (
                    select(table.c.originator_id)
                    .where(table.c.originator_id.in_(ids[start : start + IN_LIST]))
                    .where(table.c.topic == topic)
                    .distinct()
                )
                found.update(
                    value if isinstance(value, UUID) else UUID(str(value))
                    for value in session.execute(query).scalars()
                )
        return found
