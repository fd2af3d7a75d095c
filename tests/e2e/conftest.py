"""The real server, started with `tsunagari serve` on a loopback port, for end-to-end tests."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from domain.provenance import Role
from infrastructure.settings import Settings
from interfaces.bootstrap import build_services


@dataclass(frozen=True)
class Server:
    base_url: str
    token: str
    settings: Settings
    process: subprocess.Popen[bytes]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def server(settings: Settings, tmp_path: Path) -> Iterator[Server]:
    services = build_services(settings)
    _, token = services.tokens.create(name="e2e", role=Role.ADMIN)
    services.close()
    port = _free_port()
    env = {
        **os.environ,
        "TSUNAGARI_DATABASE_URL": settings.database_url,
        "TSUNAGARI_LOG_FORMAT": "json",
        "TSUNAGARI_LOG_LEVEL": "WARNING",
    }
    if settings.database_schema:
        env["TSUNAGARI_DATABASE_SCHEMA"] = settings.database_schema
    log = (tmp_path / "server.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "interfaces.cli", "serve", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{base_url}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"server did not start: {(tmp_path / 'server.log').read_text()}")
            time.sleep(0.1)
        yield Server(base_url, token, settings, process)
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()
