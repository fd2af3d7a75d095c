"""A rebuild as the command line runs it: a process with no other thread, whose reader processes
are its own forks (under pytest a timeout thread is always there, so the fork server's path is
what every other test takes). It must build exactly what a rebuild in one process builds."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import date
from pathlib import Path
from typing import Any

from sqlalchemy import select

from infrastructure.settings import Settings
from interfaces.bootstrap import Services
from interfaces.demo import DemoPlan, load_demo
from projections.replay import replay

ROOT = Path(__file__).resolve().parents[2]

# Pages of 97 positions: the demo's log is some thirty pages, enough for two readers to take
# turns many times and for the last page to be a short one.
REBUILD = """
import json, sys
import projections.forked as forked
from infrastructure.settings import Settings
from interfaces.bootstrap import build_services
from projections.replay import replay

started = []  # how each child was started, and what it runs
start = forked._start

def spy(context, produce, part, parts):
    started.append([context.get_start_method(), getattr(produce, "func", produce).__name__])
    return start(context, produce, part, parts)

forked._start = spy
services = build_services(Settings())
try:
    if sys.argv[1] == "resume":  # stopped after three pages, then resumed
        assert replay(services.app, services.indicators, page_size=97, stop_after_pages=3) is None
        started.clear()
    result = replay(services.app, services.indicators, page_size=97, workers=2)
    answer = {"generation": result.generation, "events": result.events, "started": started}
    print(json.dumps(answer))
finally:
    services.close()
"""


def values(services: Services, number: int) -> dict[tuple[int, str], dict[str, Any]]:
    table = services.indicators.generation(number).values
    with services.indicators.datastore.transaction(commit=False) as session:
        rows = session.execute(select(table.c.fiscal_year, table.c.scope, table.c.payload))
        return {(row.fiscal_year, row.scope): json.loads(row.payload) for row in rows}


def test_a_rebuild_with_forked_readers_builds_what_one_process_builds(
    settings: Settings, services: Services
) -> None:
    load_demo(
        services.app, DemoPlan(residents=120, fiscal_years=2, seed=11), today=date(2026, 11, 1)
    )
    alone = replay(services.app, services.indicators, workers=1)
    assert alone is not None
    expected = values(services, alone.generation)
    assert len(expected) > 10  # every year's base, district and programme scopes

    fresh = rebuild(settings, "fresh")
    # The readers were this process's own forks, as were the children adding up the years.
    assert fresh["started"].count(["fork", "_decoded_part"]) == 2
    assert {method for method, _ in fresh["started"]} == {"fork"}
    assert fresh["generation"] == alone.generation + 1
    assert fresh["events"] == alone.events > 30 * 97 / 2
    assert values(services, fresh["generation"]) == expected

    # Resumed, with facts already in memory: readers from the fork server, which copy none.
    resumed = rebuild(settings, "resume")
    assert resumed["started"].count(["forkserver", "_decoded_part"]) == 2
    assert resumed["generation"] == fresh["generation"] + 1
    assert values(services, resumed["generation"]) == expected
    assert services.indicators.active_generation() == resumed["generation"]


def rebuild(settings: Settings, how: str) -> dict[str, Any]:
    """``REBUILD`` in a process of its own, which has no other thread."""
    env = {**os.environ, "TSUNAGARI_DATABASE_URL": settings.database_url}
    if settings.database_schema:
        env["TSUNAGARI_DATABASE_SCHEMA"] = settings.database_schema
    done = subprocess.run(
        [sys.executable, "-c", REBUILD, how],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    answer: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return answer
