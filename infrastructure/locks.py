"""One runner per projection, across processes: an advisory lock on PostgreSQL, a file lock on
SQLite. eventsourcing-sqlalchemy's tracking update is read-check-update, not atomic between
two runners, so only the lock holder may run projections; the others stand by.
"""

from __future__ import annotations

import fcntl
import threading
import time
import zlib
from pathlib import Path
from typing import IO, Any

from sqlalchemy import text
from sqlalchemy.engine import Engine


class FileLock:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: IO[str] | None = None
        self._guard = threading.Lock()

    def acquire(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        handle = self.path.open("a")
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    handle.close()
                    return False
                time.sleep(0.1)
                continue
            with self._guard:
                self._file = handle
            return True

    def release(self) -> None:
        with self._guard:
            handle, self._file = self._file, None
        if handle is not None:
            fcntl.flock(handle, fcntl.LOCK_UN)
            handle.close()


class AdvisoryLock:
    """pg_try_advisory_lock on a connection held for as long as the lock."""

    def __init__(self, engine: Engine, name: str) -> None:
        self.engine = engine
        self.key = zlib.crc32(name.encode())
        self._connection: Any = None

    def acquire(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        connection = self.engine.connect()
        while True:
            got = connection.execute(text("SELECT pg_try_advisory_lock(:key)"), {"key": self.key})
            if got.scalar():
                connection.commit()
                self._connection = connection
                return True
            connection.rollback()
            if time.monotonic() >= deadline:
                connection.close()
                return False
            time.sleep(0.2)

    def release(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            try:
                connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": self.key})
                connection.commit()
            finally:
                connection.close()
