"""Wires the application, its read models and the token store onto one datastore."""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine
from sqlalchemy.pool import NullPool

from application.app import Tsunagari, utc_now
from application.audit import AuditTrail
from infrastructure.archive import LogArchive
from infrastructure.locks import AdvisoryLock, FileLock
from infrastructure.log_records import SqlLogRecords
from infrastructure.persistence import Datastore, open_application, prepare_database
from infrastructure.seal import LogSeal
from infrastructure.settings import Settings
from infrastructure.tokens import TokenStore
from projections.follower import Follower, RunnerLock
from projections.indicators.progress import Targets, load_targets
from projections.indicators.read_model import IndicatorReadModel
from projections.roster import Roster


@dataclass
class Services:
    settings: Settings
    app: Tsunagari
    datastore: Datastore
    roster: Roster
    tokens: TokenStore
    indicators: IndicatorReadModel
    targets: Targets
    seal: LogSeal

    def runner_lock(self) -> RunnerLock:
        """The lock that lets one process, and only one, run the projections."""
        path = self.settings.sqlite_path()
        if path is not None:
            return FileLock(Path(f"{path}.projections.lock"))
        name = f"tsunagari-projections:{self.settings.database_schema or 'public'}"
        return AdvisoryLock(self.datastore.engine, name)

    def follower(self) -> Follower:
        """A follower of the live log for the indicator projections (not started)."""
        return Follower(self.app, self.indicators, self.runner_lock())

    @functools.cached_property
    def audit(self) -> AuditTrail:
        """The auditors' read-only view of the log."""
        return AuditTrail(self.app.mapper, SqlLogRecords(self.app.recorder))

    @functools.cached_property
    def archive(self) -> LogArchive:
        """Exports of the log and imports into an empty store."""
        return LogArchive(self.app, self.datastore, self.seal)

    def close(self) -> None:
        self.app.close()
        self.datastore.engine.dispose()


def build_services(settings: Settings, *, clock: Callable[[], datetime] = utc_now) -> Services:
    """Open the store named by the settings, creating any table it lacks."""
    with schema_lock(settings):
        app, datastore = open_application(settings, clock=clock)
        roster = Roster(datastore)
        tokens = TokenStore(datastore)
        recorder: Any = app.recorder
        seal = LogSeal(datastore, recorder.events_record_cls.__table__)
        datastore.create_tables()
        app.add_inline_projection(roster)
        app.use_attendance_index(roster)
        indicators = IndicatorReadModel(
            datastore, creating=functools.partial(schema_lock, settings)
        )
    targets = load_targets(settings.targets_file)
    return Services(settings, app, datastore, roster, tokens, indicators, targets, seal)


_holding = threading.local()
"""What this thread holds: ``schema_lock`` is taken again inside itself without waiting."""

SCHEMA_LOCK_TIMEOUT = 120.0
"""Seconds a process waits for another that is creating the store's tables."""


@contextmanager
def schema_lock(settings: Settings) -> Iterator[None]:
    """One process at a time opens a store and creates what it lacks. Several start together
    (the server, its check-in writer and projection worker, a command line), and SQLAlchemy's
    ``create_all(checkfirst=True)`` looks, then creates: two that both looked on a new store
    both created, and the second failed (PostgreSQL: duplicate key in ``pg_type``; SQLite:
    table already exists). Also held while an indicator generation's tables are created,
    which happens at first use. A file lock beside the SQLite file; on PostgreSQL an advisory
    lock per schema, on a connection of its own. A thread that holds it takes it again at
    once (a lock file is locked against the same process too)."""
    if getattr(_holding, "schema", False):  # this thread holds it already
        yield
        return
    path = settings.sqlite_path()
    engine = None
    lock: FileLock | AdvisoryLock
    if path is not None:
        prepare_database(settings)
        lock = FileLock(Path(f"{path}.schema.lock"))
    else:
        engine = create_engine(settings.database_url, poolclass=NullPool)
        lock = AdvisoryLock(engine, f"tsunagari-schema:{settings.database_schema or 'public'}")
    try:
        if not lock.acquire(timeout=SCHEMA_LOCK_TIMEOUT):
            raise RuntimeError(
                f"another process has been opening the store for {SCHEMA_LOCK_TIMEOUT:.0f} s; "
                "is one stuck creating its tables?"
            )
        _holding.schema = True
        try:
            yield
        finally:
            _holding.schema = False
            lock.release()
    finally:
        if engine is not None:
            engine.dispose()
