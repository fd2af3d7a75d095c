"""Runs the indicators' projection on the live log, in a background thread.

Events arrive through the library's recorder subscription: LISTEN/NOTIFY on PostgreSQL,
a polling subscription on SQLite (``infrastructure.persistence``). The library's own
ProjectionRunner commits once per event; we drain what has arrived into batches instead, so a
burst of check-ins costs one transaction and one recomputation per touched fiscal year.
"""

from __future__ import annotations

import queue
import threading
import time
from typing import Any, Protocol

import structlog
from eventsourcing.application import Application
from eventsourcing.persistence import Subscription

from projections.indicators.facts import StoredRow, hex_id
from projections.indicators.projection import IndicatorProjection
from projections.indicators.read_model import IndicatorReadModel

logger = structlog.get_logger("tsunagari.projections")


class RunnerLock(Protocol):
    """Keeps a second runner of the same projection out (the tracking update is not atomic)."""

    def acquire(self, timeout: float) -> bool: ...

    def release(self) -> None: ...


class Follower:
    """Follows the log with the active generation's projection until stopped."""

    def __init__(
        self,
        app: Application[Any],
        read_model: IndicatorReadModel,
        lock: RunnerLock,
        *,
        batch_size: int = 5000,
        retry_after: float = 1.0,
        min_interval: float = 0.25,
    ) -> None:
        self.app = app
        self.read_model = read_model
        self.lock = lock
        self.batch_size = batch_size
        self.retry_after = retry_after
        self.min_interval = min_interval
        """Under load, let events gather this long between batches: each batch recomputes the
        fiscal years it touches, and one recomputation per burst is enough."""
        self.projection: IndicatorProjection | None = None
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="indicator-follower", daemon=True)
        self._progress = threading.Condition()

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stopping.set()
        self._thread.join(timeout)

    @property
    def position(self) -> int | None:
        projection = self.projection
        return None if projection is None else projection.position

    def wait_for(self, position: int, timeout: float = 5.0) -> bool:
        """Block until the projection has processed the given log position."""
        deadline = time.monotonic() + timeout
        with self._progress:
            while (self.position or 0) < position:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._progress.wait(remaining)
        return True

    def _run(self) -> None:
        while not self._stopping.is_set():
            if not self.lock.acquire(timeout=1.0):
                continue  # another process runs the projections: stand by
            try:
                self._follow()
            except Exception:
                logger.exception("projection failed; restarting from its last committed position")
                self._stopping.wait(self.retry_after)
            finally:
                self.lock.release()

    def _follow(self) -> None:
        projection = self.read_model.open_projection()
        projection.load()
        self.projection = projection
        logger.info(
            "following the log",
            generation=projection.generation.number,
            position=projection.position,
        )
        arrived: queue.Queue[StoredRow | BaseException] = queue.Queue(maxsize=10 * self.batch_size)
        # The library's subscription to the recorder: stored rows, read as facts directly.
        subscription = self.app.recorder.subscribe(gt=projection.position)
        done = threading.Event()
        reader = threading.Thread(target=_read, args=(subscription, arrived, done), daemon=True)
        with subscription:
            reader.start()
            try:
                while not self._stopping.is_set():
                    batch = _drain(arrived, self.batch_size, timeout=0.2)
                    if batch:
                        started = time.monotonic()
                        projection.process(batch)
                        with self._progress:
                            self._progress.notify_all()
                        if len(batch) < self.batch_size:  # live, not catching up
                            self._stopping.wait(self.min_interval - (time.monotonic() - started))
                    if self.read_model.active_generation() != projection.generation.number:
                        logger.info("a replay switched generations: following the new one")
                        return
            finally:
                done.set()
                subscription.stop()
        reader.join(timeout=5)


def _read(
    subscription: Subscription[Any], arrived: queue.Queue[Any], done: threading.Event
) -> None:
    try:
        for notification in subscription:
            row = StoredRow(
                notification.id,
                hex_id(notification.originator_id),
                notification.topic,
                notification.state,
            )
            # The queue is bounded; never block on it for good once processing has stopped.
            while not done.is_set():
                try:
                    arrived.put(row, timeout=0.1)
                    break
                except queue.Full:
                    continue
            if done.is_set():
                return
    except BaseException as error:  # handed to the processing loop, which raises it
        arrived.put(error)


def _drain(arrived: queue.Queue[Any], limit: int, timeout: float) -> list[StoredRow]:
    batch: list[StoredRow] = []
    try:
        item = arrived.get(timeout=timeout)
        while True:
            if isinstance(item, BaseException):
                raise item
            batch.append(item)
            if len(batch) >= limit:
                break
            item = arrived.get_nowait()
    except queue.Empty:
        pass
    return batch
