"""The indicator projections in a worker process of their own, started and watched by `serve`.

In the server's own process the projections share its interpreter lock with request handling:
every batch they compute is time the desks wait (bench/README.md measured check-ins about 30 %
slower, p99 twice as long). A second process uses another core. The worker is the same
`tsunagari projections run` an operator would start by hand; `serve` starts it with its own
settings, starts it again if it dies, and stops it when the server stops.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading

import structlog

from infrastructure.settings import Settings

logger = structlog.get_logger("tsunagari.projections")

WORKER_OF = "TSUNAGARI_WORKER_OF"
"""Environment variable naming the server process a projection worker belongs to."""
RESTART_AFTER = 1.0
"""Seconds before a worker that died is started again."""
STOP_TIMEOUT = 15.0
"""Seconds a worker gets to finish its batch when asked to stop, before it is killed."""
NICENESS = 10
"""How much the worker lowers its own scheduling priority (``nice``) below the server's.

The indicators may be a moment behind; a desk's check-in may not. On a machine with few
cores the server's loop, its check-in writer, PostgreSQL and this worker all want a core at
once during a rush, and the writer is the one every desk waits for. At nice 10 the worker
still has every core the others leave idle (the machine was half idle), and gives way when
they want it: 16 desks on 2 cores checked in about 14 % faster on PostgreSQL (bench/README).
"""


class ProjectionWorker:
    """Runs `python -m interfaces.cli projections run` while the server runs."""

    def __init__(self, settings: Settings) -> None:
        self.command = [sys.executable, "-m", "interfaces.cli", "projections", "run"]
        self.env = {**os.environ, **settings.as_environment(), WORKER_OF: str(os.getpid())}
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._process: subprocess.Popen[bytes] | None = None
        self._watcher = threading.Thread(target=self._watch, name="projection-worker", daemon=True)

    @property
    def pid(self) -> int | None:
        """The running worker's process id, if one runs."""
        with self._lock:
            return self._process.pid if self._process is not None else None

    def start(self) -> None:
        self._watcher.start()

    def stop(self) -> None:
        """Ask the worker to stop after its batch (SIGTERM), and wait for it."""
        self._stopping.set()
        with self._lock:
            process = self._process
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                logger.warning("projection worker did not stop in time; killing it")
                process.kill()
                process.wait()
        self._watcher.join()

    def _watch(self) -> None:
        while not self._stopping.is_set():
            with self._lock:
                if self._stopping.is_set():
                    return
                # Its output goes where the server's goes: one stream of structured logs.
                # The command is this interpreter and this package: no outside input in it.
                self._process = subprocess.Popen(self.command, env=self.env)  # noqa: S603
                process = self._process
            logger.info("projection worker started", pid=process.pid)
            code = process.wait()
            if not self._stopping.is_set():
                logger.error("projection worker exited; starting it again", code=code)
                self._stopping.wait(RESTART_AFTER)
