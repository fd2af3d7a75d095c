"""Export the log for auditors to keep, and import such an export into an empty store.

An export is a directory: ``log-00001.jsonl`` … (one stored record a line: position,
originator id, version, topic and the state bytes as stored, base64) and ``manifest.json``
(SHA-256 of every file, record count, first and last position, and the seal: the head of the
hash chain of ``infrastructure/seal.py`` over the exported records). Only the events table is
exported (the stored chain is read to check it): tokens, idempotency answers, read models and
any personal-data keys stay behind, so personal data stays as encrypted in the export as it is
in the log.

``--fiscal-year Y`` exports the log as it stood at the end of that fiscal year: every record
up to the first one recorded after 31 March Y+1 (JST). Before the year is over that is the whole
log so far. Either way the export is a prefix of the log, and its chain head is the original's
at that position.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TextIO
from uuid import UUID

from eventsourcing.persistence import Notification
from sqlalchemy import func, insert, select, text

from application.app import Tsunagari
from application.audit import decode_state, stored_topics
from domain.events import JST
from domain.fiscal import fiscal_year_bounds, fiscal_year_label
from infrastructure.persistence import Datastore, log_lock_sql
from infrastructure.seal import GENESIS, LogSeal, link

FORMAT = "tsunagari-log-export/1"
MANIFEST = "manifest.json"
RECORDS_PER_FILE = 1_000_000
BATCH = 5_000


class ExportRefused(Exception):
    """The export cannot be written (the target is not empty, the log does not fit its chain)."""


class ImportRefused(Exception):
    """The export was not imported: it is damaged or tampered with, or the store is not empty.

    Raised before anything is written, or with everything written rolled back.
    """


@dataclass(frozen=True)
class ExportResult:
    directory: Path
    fiscal_year: int
    cutoff: datetime
    records: int
    first_position: int | None
    last_position: int | None
    head: str
    files: int
    seconds: float


@dataclass(frozen=True)
class VerifiedExport:
    manifest: dict[str, Any]
    confirmed_at: int | None
    """The position at which the kept head equals the export's chain (None without one)."""


@dataclass(frozen=True)
class ImportResult:
    records: int
    last_position: int | None
    head: str
    confirmed_at: int | None
    """The position at which the kept head was confirmed (None when none was given)."""
    seconds: float


@dataclass(frozen=True)
class _Record:
    position: int
    originator_id: str
    version: int
    topic: str
    state: bytes

    def line(self) -> str:
        return (
            json.dumps(
                {
                    "position": self.position,
                    "originator_id": self.originator_id,
                    "version": self.version,
                    "topic": self.topic,
                    "state": base64.b64encode(self.state).decode("ascii"),
                },
                ensure_ascii=False,
                separators=(",", ":"),
            )
            + "\n"
        )

    def link(self, previous: str) -> str:
        return link(
            previous, self.position, self.originator_id, self.version, self.topic, self.state
        )


def fiscal_year_end(fiscal_year: int) -> datetime:
    """The first instant after a fiscal year (1 April of the next year, 00:00 JST)."""
    return datetime.combine(
        fiscal_year_bounds(fiscal_year)[1] + timedelta(days=1), datetime.min.time(), JST
    )


class LogArchive:
    """Exports and imports of the stored log, chained exactly as ``LogSeal`` chains it."""

    def __init__(self, app: Tsunagari, datastore: Datastore, seal: LogSeal) -> None:
        self.app = app
        self.datastore = datastore
        self.seal = seal
        self.events = seal.events
        self.topics = stored_topics()

    # Export ------------------------------------------------------------------------------

    def export(self, fiscal_year: int, out: Path) -> ExportResult:
        """Write the log as it stood at the end of ``fiscal_year`` into the empty folder ``out``.

        Refused, with nothing left in ``out``, when a stored record no longer fits the stored
        chain: every link the export passes is compared, not only the last one.
        """
        started = time.perf_counter()
        if out.exists() and (not out.is_dir() or any(out.iterdir())):
            raise ExportRefused(f"{out} is not an empty folder: export into a new one")
        out.mkdir(parents=True, exist_ok=True)
        cutoff = fiscal_year_end(fiscal_year)
        head = GENESIS
        count = 0
        first: int | None = None
        last: int | None = None
        files: list[dict[str, Any]] = []
        current: _FileWriter | None = None
        stored = _StoredChain(self.seal.chain())
        try:
            for record in self._prefix(cutoff):
                if current is None or current.records >= RECORDS_PER_FILE:
                    if current is not None:
                        files.append(current.close())
                    current = _FileWriter(out / f"log-{len(files) + 1:05d}.jsonl")
                current.write(record)
                head = record.link(head)
                stored.check(record.position, head)
                count += 1
                first = record.position if first is None else first
                last = record.position
            self._check_rest(stored)
        except BaseException:
            # No half an export left behind, whatever stopped it.
            if current is not None:
                current.close()
                current.path.unlink()
            for written in files:
                (out / written["name"]).unlink(missing_ok=True)
            raise
        if current is not None:
            files.append(current.close())
        exported_at = self.app.clock()
        manifest = {
            "format": FORMAT,
            "fiscal_year": fiscal_year,
            "label": fiscal_year_label(fiscal_year),
            "cutoff": cutoff.isoformat(),
            "selection": "the log up to the first record recorded at or after the cutoff",
            "exported_at": exported_at.isoformat(),
            "records": count,
            "first_position": first,
            "last_position": last,
            "state_encoding": "base64 of the stored bytes",
            "chain": "sha256(previous link ‖ 'position␟originator_id␟version␟topic␟' ‖ state), "
            "from 64 zeros",
            "files": files,
            "seal": {"position": last or 0, "head": head, "sealed_at": exported_at.isoformat()},
        }
        (out / MANIFEST).write_text(
            json.dumps(manifest, ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
        )
        return ExportResult(
            out,
            fiscal_year,
            cutoff,
            count,
            first,
            last,
            head,
            len(files),
            time.perf_counter() - started,
        )

    def _prefix(self, cutoff: datetime) -> Iterator[_Record]:
        """Records up to the head as it is now, stopping at the first recorded at the cutoff."""
        until = int(self.app.recorder.max_notification_id() or 0)
        mapper = self.app.mapper
        for position, originator_id, version, topic, state in self.seal.records(0):
            if position > until:
                return
            recorded_at = decode_state(mapper, state).get("timestamp")
            if isinstance(recorded_at, datetime) and recorded_at >= cutoff:
                return
            yield _Record(position, originator_id, version, topic, state)

    def _check_rest(self, stored: _StoredChain) -> None:
        """A link the export did not reach must still have its record (beyond the cutoff):
        otherwise the sealed log lost records at the end of the export."""
        if stored.pending is None:
            return
        position = stored.pending[0]
        with self.datastore.engine.connect() as connection:
            held = connection.execute(
                select(func.count()).select_from(self.events).where(self.events.c.id == position)
            ).scalar()
        if not held:
            raise ExportRefused(_misfit(position, f"record {position} was removed"))

    # Import ------------------------------------------------------------------------------

    def verify_export(self, directory: Path, kept_head: str | None = None) -> VerifiedExport:
        """Check the export against its manifest (hashes, count, positions, chain head, known
        topics, no unlisted files) and against the head the auditors kept, if given; raises
        ImportRefused naming the first problem. Reads only the files.

        The kept head may be that of any seal the export covers: it is confirmed where it
        equals the recomputed chain, at whatever position (a live log, or a past fiscal year,
        rarely ends exactly on a seal).
        """
        manifest = _read_manifest(directory)
        listed = {entry["name"] for entry in manifest["files"]} | {MANIFEST}
        unlisted = sorted(path.name for path in directory.iterdir() if path.name not in listed)
        if unlisted:
            raise ImportRefused(
                f"the export folder holds what the manifest does not list: {', '.join(unlisted)}"
            )
        confirmed: int | None = 0 if kept_head == GENESIS else None
        for record, head in _records_of(directory, manifest, self.topics):
            if confirmed is None and head == kept_head:
                confirmed = record.position
        # Last: an export re-chained by a forger is consistent in itself, only not with this.
        if kept_head is not None and confirmed is None:
            raise ImportRefused(
                f"the head you kept ({kept_head}) matches the export's chain at no position: "
                "this is not the log you sealed, or it ends before your seal"
            )
        return VerifiedExport(manifest, confirmed)

    def import_export(self, directory: Path, kept_head: str | None = None) -> ImportResult:
        """Verify the export, then write its records at their positions into this empty store,
        with their chain links and seal, in one transaction."""
        started = time.perf_counter()
        verified = self.verify_export(directory, kept_head)
        manifest = verified.manifest
        self._ensure_empty()
        table = self.events
        postgres = self.datastore.engine.dialect.name == "postgresql"
        count = 0
        with self.datastore.transaction(commit=True) as session:
            if postgres:
                # The log's write lock, as every writer takes it: none can slip in between.
                preparer = self.datastore.engine.dialect.identifier_preparer
                session.execute(text(log_lock_sql(preparer.format_table(table))))
            self._ensure_empty(session)
            events: list[dict[str, Any]] = []
            chained: list[dict[str, Any]] = []
            notifications: list[Notification] = []
            # The files are read again: what is written is re-checked against the manifest as it
            # goes, and a mismatch (a file changed since the check) rolls everything back.
            for record, head in _records_of(directory, manifest, self.topics):
                originator_id = UUID(hex=record.originator_id)
                events.append(
                    {
                        "id": record.position,
                        "originator_id": originator_id,
                        "originator_version": record.version,
                        "topic": record.topic,
                        "state": record.state,
                    }
                )
                chained.append({"position": record.position, "link": head})
                notifications.append(
                    Notification(
                        id=record.position,
                        originator_id=originator_id,
                        originator_version=record.version,
                        topic=record.topic,
                        state=record.state,
                    )
                )
                count += 1
                if len(events) >= BATCH:
                    self._write(session, events, chained, notifications)
                    events, chained, notifications = [], [], []
            self._write(session, events, chained, notifications)
            seal = manifest["seal"]
            session.execute(
                insert(self.seal.seals).values(
                    position=seal["position"],
                    head=seal["head"],
                    sealed_at=datetime.fromisoformat(seal["sealed_at"]),
                )
            )
            last = manifest["last_position"]
            if postgres and last is not None:
                # Explicit ids leave the sequence behind: the next event must come after them.
                session.execute(
                    text("SELECT setval(pg_get_serial_sequence(:table, 'id'), :last)"),
                    {"table": table.fullname, "last": last},
                )
        return ImportResult(
            count, last, seal["head"], verified.confirmed_at, time.perf_counter() - started
        )

    def _write(
        self,
        session: Any,
        events: list[dict[str, Any]],
        chained: list[dict[str, Any]],
        notifications: list[Notification],
    ) -> None:
        if not events:
            return
        session.execute(insert(self.events), events)
        session.execute(insert(self.seal.links), chained)
        # The inline read models (the front desk's roster) are rebuilt as the records go in,
        # in the same transaction, as if the commands had just run.
        domain_events = [self.app.mapper.to_domain_event(n) for n in notifications]
        for projection in self.app.inline_projections:
            projection.process(domain_events)

    def _ensure_empty(self, session: Any | None = None) -> None:
        queries = {
            "records": select(func.count()).select_from(self.events),
            "chain links": select(func.count()).select_from(self.seal.links),
            "seals": select(func.count()).select_from(self.seal.seals),
        }
        for what, query in queries.items():
            if session is not None:
                held = session.execute(query).scalar()
            else:
                with self.datastore.engine.connect() as connection:
                    held = connection.execute(query).scalar()
            if held:
                raise ImportRefused(
                    f"the store is not empty ({what}: {held}): import only into a new, empty store"
                )


def _misfit(position: int, problem: str) -> str:
    return (
        f"the stored log does not fit its hash chain at position {position} ({problem}): "
        "run `tsunagari audit verify` before exporting"
    )


class _StoredChain:
    """The stored links, walked alongside the records being exported: a merge, so linear."""

    def __init__(self, links: Iterator[tuple[int, str]]) -> None:
        self.links = links
        self.pending = next(links, None)

    def check(self, position: int, head: str) -> None:
        """The running chain head at ``position`` against the stored link there, if any."""
        if self.pending is None:
            return  # past the last seal: nothing to compare with
        linked, stored = self.pending
        if linked < position:
            raise ExportRefused(_misfit(linked, f"record {linked} was removed"))
        if linked > position:
            raise ExportRefused(
                _misfit(position, f"record {position} was inserted into the sealed log")
            )
        if stored != head:
            raise ExportRefused(_misfit(position, f"record {position} was altered or moved"))
        self.pending = next(self.links, None)


class _FileWriter:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.handle: TextIO = path.open("w", encoding="utf-8", newline="\n")
        self.digest = hashlib.sha256()
        self.records = 0
        self.first: int | None = None
        self.last: int | None = None

    def write(self, record: _Record) -> None:
        line = record.line()
        self.handle.write(line)
        self.digest.update(line.encode("utf-8"))
        self.records += 1
        self.first = record.position if self.first is None else self.first
        self.last = record.position

    def close(self) -> dict[str, Any]:
        self.handle.close()
        return {
            "name": self.path.name,
            "sha256": self.digest.hexdigest(),
            "records": self.records,
            "first_position": self.first,
            "last_position": self.last,
        }


def _read_manifest(directory: Path) -> dict[str, Any]:
    path = directory / MANIFEST
    if not path.is_file():
        raise ImportRefused(f"{path} is missing: not an export")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ImportRefused(f"{MANIFEST} is not valid JSON: {error}") from None
    try:
        if manifest["format"] != FORMAT:
            raise ImportRefused(f"{MANIFEST}: format {manifest['format']!r} is not {FORMAT!r}")
        for entry in manifest["files"]:
            if Path(entry["name"]).name != entry["name"] or not isinstance(entry["sha256"], str):
                raise ImportRefused(f"{MANIFEST}: bad file entry {entry!r}")
        seal = manifest["seal"]
        if not isinstance(seal["head"], str) or not isinstance(seal["position"], int):
            raise ImportRefused(f"{MANIFEST}: the seal needs a position and a head")
        datetime.fromisoformat(seal["sealed_at"])
        if not isinstance(manifest["records"], int):
            raise ImportRefused(f"{MANIFEST}: records must be a number")
        _ = manifest["first_position"], manifest["last_position"]
    except (KeyError, TypeError, ValueError) as error:
        raise ImportRefused(f"{MANIFEST} lacks or garbles a field: {error}") from None
    checked: dict[str, Any] = manifest
    return checked


def _records_of(
    directory: Path, manifest: dict[str, Any], topics: frozenset[str]
) -> Iterator[tuple[_Record, str]]:
    """Every record of the export with its chain link, checked against the manifest as read.

    A topic names the class a record is decoded with, and decoding imports its module: so
    every topic must be one of the application's event types before anything reads it.

    The manifest's checks that need the whole file (hash, count) run when a file ends, the
    chain head and totals when the last one does: a consumer must read to the end.
    """
    head = GENESIS
    count = 0
    previous = 0
    first: int | None = None
    for entry in manifest["files"]:
        path = directory / entry["name"]
        if not path.is_file():
            raise ImportRefused(f"{entry['name']} is listed in the manifest but missing")
        digest = hashlib.sha256()
        in_file = 0
        with path.open("rb") as handle:
            for number, raw in enumerate(handle, start=1):
                digest.update(raw)
                record = _parse_line(raw, f"{entry['name']} line {number}")
                if record.topic not in topics:
                    raise ImportRefused(
                        f"{entry['name']} line {number}: topic {record.topic!r} is not one of "
                        "this application's event types"
                    )
                if record.position <= previous:
                    raise ImportRefused(
                        f"{entry['name']} line {number}: position {record.position} does not "
                        f"follow {previous}"
                    )
                previous = record.position
                first = record.position if first is None else first
                head = record.link(head)
                in_file += 1
                count += 1
                yield record, head
        if digest.hexdigest() != entry["sha256"]:
            raise ImportRefused(
                f"{entry['name']}: its SHA-256 is not the manifest's: the file was changed"
            )
        if in_file != entry.get("records"):
            raise ImportRefused(
                f"{entry['name']}: holds {in_file} records, "
                f"the manifest says {entry.get('records')}"
            )
    if count != manifest["records"]:
        raise ImportRefused(
            f"the export holds {count} records, the manifest says {manifest['records']}"
        )
    last = previous if count else None
    if (first, last) != (manifest["first_position"], manifest["last_position"]):
        raise ImportRefused(
            f"the records run from {first} to {last}, the manifest says "
            f"{manifest['first_position']} to {manifest['last_position']}"
        )
    seal = manifest["seal"]
    if seal["position"] != (last or 0) or seal["head"] != head:
        raise ImportRefused(
            f"the chain head of the records ({head} at position {last or 0}) is not the "
            f"manifest's seal ({seal['head']} at position {seal['position']})"
        )


def _parse_line(raw: bytes, where: str) -> _Record:
    try:
        data = json.loads(raw)
        record = _Record(
            position=data["position"],
            originator_id=data["originator_id"],
            version=data["version"],
            topic=data["topic"],
            state=base64.b64decode(data["state"], validate=True),
        )
        UUID(hex=record.originator_id)
    except (
        json.JSONDecodeError,
        UnicodeDecodeError,
        KeyError,
        TypeError,
        ValueError,
        binascii.Error,
    ) as error:
        raise ImportRefused(f"{where} is not a stored record: {error}") from None
    if not (
        isinstance(record.position, int)
        and isinstance(record.version, int)
        and isinstance(record.topic, str)
        and len(record.originator_id) == 32
    ):
        raise ImportRefused(f"{where} is not a stored record")
    return record
