"""Wires the application, its read models and the token store onto one datastore."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from application.app import Tsunagari, utc_now
from infrastructure.persistence import Datastore, open_application
from infrastructure.settings import Settings
from infrastructure.tokens import TokenStore
from projections.roster import Roster


@dataclass
class Services:
    settings: Settings
    app: Tsunagari
    datastore: Datastore
    roster: Roster
    tokens: TokenStore

    def close(self) -> None:
        self.app.close()
        self.datastore.engine.dispose()


def build_services(settings: Settings, *, clock: Callable[[], datetime] = utc_now) -> Services:
    """Open the store named by the settings, creating any table it lacks."""
    app, datastore = open_application(settings, clock=clock)
    roster = Roster(datastore)
    tokens = TokenStore(datastore)
    datastore.create_tables()
    app.add_inline_projection(roster)
    return Services(settings, app, datastore, roster, tokens)
