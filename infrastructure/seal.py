"""Seal and verify the event log: a hash chain over the stored records, in log order.

Each record's link is SHA-256 of the previous link and the record exactly as stored (position,
originator id, version, topic, state bytes), so erasing a participant's key, which changes no
stored byte, leaves the chain intact, while any altered, removed, reordered or inserted record
breaks it. The links are kept so that verification can name the first bad position; the head
of each seal is printed so that auditors keep it outside the system, where rewriting the
links cannot reach it.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import BigInteger, Column, DateTime, Integer, String, Table, insert, select, text

from infrastructure.persistence import Datastore

GENESIS = "0" * 64
PAGE = 10_000


@dataclass(frozen=True)
class Seal:
    position: int
    head: str
    sealed_at: datetime
    records: int
    """Records newly chained by this seal."""
    seconds: float


@dataclass(frozen=True)
class Verification:
    ok: bool
    records: int
    seconds: float
    first_bad_position: int | None = None
    problem: str | None = None
    unsealed: int = 0
    """Records appended since the last seal: not covered yet."""
    confirmed_at: int | None = None
    """Where the head given to ``verify`` equals the recomputed chain (None without one)."""


def link(
    previous: str, position: int, originator_id: str, version: int, topic: str, state: bytes
) -> str:
    """The chain link of one stored record."""
    digest = hashlib.sha256(bytes.fromhex(previous))
    digest.update(f"{position}\x1f{originator_id}\x1f{version}\x1f{topic}\x1f".encode())
    digest.update(state)
    return digest.hexdigest()


def _hex(value: Any) -> str:
    return value.hex() if isinstance(value, bytes) else value.hex


class LogSeal:
    def __init__(self, datastore: Datastore, events_table: Table) -> None:
        self.datastore = datastore
        self.events = events_table
        self.links = Table(
            "tsunagari_chain",
            datastore.metadata,
            Column("position", BigInteger, primary_key=True, autoincrement=False),
            Column("link", String(64), nullable=False),
        )
        self.seals = Table(
            "tsunagari_seals",
            datastore.metadata,
            Column("id", Integer, primary_key=True, autoincrement=True),
            Column("position", BigInteger, nullable=False),
            Column("head", String(64), nullable=False),
            Column("sealed_at", DateTime(timezone=True), nullable=False),
        )

    def records(self, after: int) -> Iterator[tuple[int, str, int, str, bytes]]:
        """Stored records after a position, in log order, as chained: (position, originator id
        as 32 hex digits, version, topic, state bytes)."""
        query = text(
            "SELECT id, originator_id, originator_version, topic, state "  # noqa: S608 - our table
            f"FROM {self.events.fullname} WHERE id > :after ORDER BY id LIMIT :limit"
        )
        while True:
            with self.datastore.engine.connect() as connection:
                rows = connection.execute(query, {"after": after, "limit": PAGE}).all()
            if not rows:
                return
            for row in rows:
                yield row[0], _hex(row[1]), row[2], row[3], bytes(row[4])
            after = rows[-1][0]

    def chain(self) -> Iterator[tuple[int, str]]:
        """The stored links in position order: (position, link)."""
        after = 0
        while True:
            query = (
                select(self.links.c.position, self.links.c.link)
                .where(self.links.c.position > after)
                .order_by(self.links.c.position)
                .limit(PAGE)
            )
            with self.datastore.engine.connect() as connection:
                rows = connection.execute(query).all()
            if not rows:
                return
            yield from ((row[0], row[1]) for row in rows)
            after = rows[-1][0]

    def seal(self) -> Seal:
        """Chain every record appended since the last seal and record the new head."""
        started = time.perf_counter()
        with self.datastore.engine.connect() as connection:
            last = connection.execute(
                select(self.links.c.position, self.links.c.link)
                .order_by(self.links.c.position.desc())
                .limit(1)
            ).first()
        position, head = (last[0], last[1]) if last is not None else (0, GENESIS)
        pending: list[dict[str, Any]] = []
        records = 0
        for record in self.records(position):
            head = link(head, *record)
            position = record[0]
            pending.append({"position": position, "link": head})
            records += 1
            if len(pending) >= PAGE:
                self._write(pending)
                pending = []
        self._write(pending)
        sealed_at = datetime.now(UTC)
        with self.datastore.transaction(commit=True) as session:
            session.execute(
                insert(self.seals).values(position=position, head=head, sealed_at=sealed_at)
            )
        return Seal(position, head, sealed_at, records, time.perf_counter() - started)

    def _write(self, rows: list[dict[str, Any]]) -> None:
        if rows:
            with self.datastore.transaction(commit=True) as session:
                session.execute(insert(self.links), rows)

    def verify(self, head: str | None = None) -> Verification:
        """Recompute the chain over the stored records; name the first one that does not fit.

        With ``head`` (a seal's head kept outside the system), also prove that the chain up to
        that seal is the one that was sealed, even if the stored links were rewritten: the head
        must equal the recomputed chain at some position, which ``confirmed_at`` names. Any
        position will do, not only a stored seal's, so a store imported from an export that
        runs past the seal is checked as the original is.
        """
        started = time.perf_counter()
        with self.datastore.engine.connect() as connection:
            seals = connection.execute(select(self.seals.c.position, self.seals.c.head)).all()
        sealed_positions = {seal_position for seal_position, _ in seals}
        records = self.records(0)
        previous = GENESIS
        checked = 0
        chained: dict[int, str] = {0: GENESIS}
        confirmed = 0 if head == GENESIS else None
        record = next(records, None)

        def failed(position: int, problem: str) -> Verification:
            return Verification(False, checked, time.perf_counter() - started, position, problem)

        for position, expected in self.chain():
            if record is None or record[0] > position:
                return failed(position, f"record {position} was removed")
            if record[0] < position:
                return failed(record[0], f"record {record[0]} was inserted into the sealed log")
            previous = link(previous, *record)
            if previous != expected:
                return failed(position, f"record {position} was altered or moved")
            if position in sealed_positions:
                chained[position] = previous
            if confirmed is None and previous == head:
                confirmed = position
            checked += 1
            record = next(records, None)
        unsealed = 0 if record is None else 1 + sum(1 for _ in records)
        for seal_position, seal_head in seals:
            if chained.get(seal_position) != seal_head:
                return failed(seal_position, f"the seal at record {seal_position} does not match")
        if head is not None and confirmed is None:
            return Verification(
                False,
                checked,
                time.perf_counter() - started,
                None,
                f"the head {head} matches the log at no position: the log or its links were "
                "rewritten",
                unsealed,
            )
        return Verification(
            True, checked, time.perf_counter() - started, unsealed=unsealed, confirmed_at=confirmed
        )
