"""`tsunagari serve` runs the indicator projections in a worker process it starts and watches."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path

import httpx
import pytest

from interfaces.projection_worker import NICENESS
from tests.e2e.conftest import Server

pytestmark = pytest.mark.e2e


def _worker_pid(server_pid: int) -> int | None:
    """The server's child running `projections run`, if any (Linux /proc; a child is listed
    under the thread that started it)."""
    children: list[str] = []
    for task in Path(f"/proc/{server_pid}/task").iterdir():
        with suppress(FileNotFoundError):  # a thread that just ended
            children += (task / "children").read_text().split()
    for child in children:
        try:
            command = Path(f"/proc/{child}/cmdline").read_bytes().split(b"\0")
        except FileNotFoundError:
            continue
        if b"projections" in command and b"run" in command:
            return int(child)
    return None


def _eventually(check: Callable[[], bool], what: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"{what} did not happen within {timeout} s"
        time.sleep(0.05)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def test_serve_follows_the_log_in_a_worker_process_it_restarts_and_stops(server: Server) -> None:
    headers = {"Authorization": f"Bearer {server.token}"}
    with httpx.Client(base_url=server.base_url, headers=headers, timeout=30) as client:
        org = client.post("/organizations", json={"name": "菅町会", "kind": "npo"}).json()
        program = client.post(
            "/programs",
            json={
                "name": "TeamSUGE",
                "policy": "2-2",
                "area": "community",
                "host_organization_ids": [org["id"]],
            },
        ).json()
        event = client.post(
            "/events",
            json={
                "program_id": program["id"],
                "title": "TeamSUGE 現地ツアー",
                "starts_at": "2026-06-14T10:00:00+09:00",
                "district_id": "suge",
            },
        ).json()
        people = [
            client.post("/participants", json={"birth_year": year, "district_id": "suge"}).json()
            for year in (1950, 2015)
        ]

        def attendances() -> int:
            answer = client.get("/indicators", params={"fiscal_year": 2026}).json()
            value: int = answer["indicators"]["total_attendances"]["value"]
            return value

        pid = server.process.pid
        _eventually(lambda: _worker_pid(pid) is not None, "the worker's start")
        first = _worker_pid(pid)
        assert first is not None
        # Background work: it gives way to the server's processes, which desks wait for.
        server_niceness = os.getpriority(os.PRIO_PROCESS, pid)
        _eventually(
            lambda: os.getpriority(os.PRIO_PROCESS, first) == server_niceness + NICENESS,
            "the worker's lowering of its priority",
        )
        check_ins = f"/events/{event['id']}/check-ins"
        assert client.post(check_ins, json={"participant_id": people[0]["id"]}).status_code == 201
        _eventually(lambda: attendances() == 1, "the first check-in's arrival in /indicators")

        os.kill(first, signal.SIGKILL)
        _eventually(lambda: _worker_pid(pid) not in (None, first), "the worker's restart")
        assert client.post(check_ins, json={"participant_id": people[1]["id"]}).status_code == 201
        _eventually(lambda: attendances() == 2, "the second check-in's arrival in /indicators")
        second = _worker_pid(pid)
        assert second is not None

    server.process.terminate()
    server.process.wait(timeout=30)
    assert not _alive(second), "the worker outlived the server"


def test_the_worker_ends_with_a_server_that_was_killed(server: Server) -> None:
    pid = server.process.pid
    _eventually(lambda: _worker_pid(pid) is not None, "the worker's start")
    worker = _worker_pid(pid)
    assert worker is not None
    server.process.kill()  # no shutdown: the server cannot stop its worker
    server.process.wait(timeout=10)
    _eventually(lambda: not _alive(worker), "the orphaned worker's exit", timeout=15)
