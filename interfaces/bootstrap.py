"""Wires the application, its read models and the token store onto one datastore."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from application.app import Tsunagari, utc_now
from application.audit import AuditTrail
from infrastructure.archive import LogArchive
from infrastructure.locks import AdvisoryLock, FileLock
from infrastructure.log_records import SqlLogRecords
from infrastructure.persistence import Datastore, open_application
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
    app, datastore = open_application(settings, clock=clock)
    roster = Roster(datastore)
    tokens = TokenStore(datastore)
    recorder: Any = app.recorder
    seal = LogSeal(datastore, recorder.events_record_cls.__table__)
    datastore.create_tables()
    app.add_inline_projection(roster)
    app.use_attendance_index(roster)
    indicators = IndicatorReadModel(datastore)
    targets = load_targets(settings.targets_file)
    return Services(settings, app, datastore, roster, tokens, indicators, targets, seal)
