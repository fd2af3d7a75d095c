"""What read models need of the SQL store, as a protocol: infrastructure's Datastore fits it."""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Any, Protocol

from sqlalchemy import Executable, MetaData
from sqlalchemy.engine import Engine


class SqlDatastore(Protocol):
    metadata: MetaData
    engine: Engine
    schema: str | None
    raw: Any
    """eventsourcing-sqlalchemy's own datastore, for the library's tracking recorder."""

    def transaction(self, *, commit: bool) -> AbstractContextManager[Any]:
        """A transaction; inside another one it joins it."""

    def defer(self, session: Any, statement: Executable, rows: list[dict[str, Any]]) -> None:
        """Write ``rows`` with ``statement`` when the session's transaction commits."""
