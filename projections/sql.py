"""What read models need of the SQL store, as a protocol: infrastructure's Datastore fits it."""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Any, Protocol

from sqlalchemy import MetaData


class SqlDatastore(Protocol):
    metadata: MetaData

    def transaction(self, *, commit: bool) -> AbstractContextManager[Any]:
        """A transaction; inside another one it joins it."""
