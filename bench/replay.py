"""Rebuilding every indicator from 100k and 1M stored events, against the plain read+decode floor.

    .venv/bin/python bench/replay.py [--sizes 100000,1000000] [--skip-postgres]
                                     [--cache-dir bench/.cache] [--repeat 3] [--no-readme]

Each size is ⌈size / base⌉ copies, with fresh ids, of the log of the demo's default plan (the demo
cannot reach 1M events: see bench/README.md), cached as SQLite files. Each measurement is a fresh
subprocess on a working copy of the store, or on a PostgreSQL schema of its own, dropped afterwards.
At the largest size: query and as-of latency, and check-in visibility on the real server.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import re
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager, suppress
from datetime import UTC, date, datetime
from pathlib import Path
from resource import RUSAGE_SELF, getrusage
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid4, uuid5

import httpx
import psycopg
from checkin import children_of  # bench/ is the script's folder: its first import path
from eventsourcing.persistence import StoredEvent
from eventsourcing.utils import get_topic
from sqlalchemy import select, text

from domain.attendance import Attendance
from domain.fiscal import fiscal_year_of
from domain.participants import Participant
from domain.programs import Program
from domain.provenance import Provenance, Role
from infrastructure.settings import Settings
from interfaces.bootstrap import Services, build_services
from interfaces.demo import DemoPlan, load_demo
from projections.indicators.facts import hex_id
from projections.indicators.model import Scope
from projections.log_reader import LogReader
from projections.replay import PAGE_SIZE, replay

ROOT = Path(__file__).resolve().parent.parent
POSTGRES_URL = os.environ.get(
    "TSUNAGARI_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
LIBPQ_URL = POSTGRES_URL.replace("postgresql+psycopg://", "postgresql://", 1)
COPIES = uuid5(NAMESPACE_URL, "https://tsunagari.invalid/bench/replica")
UUID_HEX = re.compile(rb'"_data_":"([0-9a-f]{32})"')
EVENTS = "SELECT originator_id, originator_version, topic, state FROM tsunagari_events ORDER BY id"


def sqlite(path: Path) -> Settings:
    return Settings(database_url=f"sqlite:///{path}")


def clock(call: Callable[[], object]) -> float:
    started = time.perf_counter()
    call()
    return time.perf_counter() - started


def ms(seconds: list[float], q: float) -> float:
    """Nearest-rank percentile, in milliseconds."""
    ordered = sorted(seconds)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))] * 1000


def verdict(ok: bool) -> str:
    return "met" if ok else "**NOT met**"


# Stores ------------------------------------------------------------------------------------


def cached(path: Path, make: Callable[[Path], dict[str, Any]]) -> dict[str, Any]:
    """A store made once (into a partial file, renamed when complete), and what it holds."""
    if not path.with_suffix(".json").exists():
        partial = path.with_suffix(".partial.sqlite3")
        partial.unlink(missing_ok=True)
        started = time.perf_counter()
        made = make(partial) | {"made": f"{datetime.now(UTC):%Y-%m-%d}"}
        partial.rename(path)
        made["seconds"] = time.perf_counter() - started
        path.with_suffix(".json").write_text(json.dumps(made))
    facts: dict[str, Any] = json.loads(path.with_suffix(".json").read_text())
    return facts


def load_base(path: Path, plan: DemoPlan) -> dict[str, Any]:
    services = build_services(sqlite(path))
    summary = load_demo(services.app, plan, today=services.app.today())
    services.close()
    return {"events": summary.stored_events}


class Remap:
    """Fresh ids for one copy of the base log, consistent across references (None: the same)."""

    def __init__(self, attendances: dict[str, tuple[str, str]], copy: int | None) -> None:
        self.attendances, self.copy = attendances, copy

    def hex(self, old: str) -> str:
        pair = self.attendances.get(old)  # its id is derived from event and participant
        if self.copy is None:
            return old
        if pair is None:
            return uuid5(COPIES, f"{self.copy}/{old}").hex
        return Attendance.create_id(UUID(self.hex(pair[0])), UUID(self.hex(pair[1]))).hex

    def state(self, state: bytes) -> bytes:
        if self.copy is None:
            return state
        return UUID_HEX.sub(lambda m: b'"_data_":"%s"' % self.hex(m[1].decode()).encode(), state)


def write_log(source: Path, settings: Settings, copies: int | None = None) -> int:
    """A SQLite store's log through the recorder: as it is, or as copies interleaved by page."""
    attendances: dict[str, tuple[str, str]] = {}
    remaps = [Remap(attendances, copy) for copy in range(copies or 0)] or [Remap({}, None)]
    services = build_services(settings)
    with closing(sqlite3.connect(source)) as connection:
        cursor = connection.execute(EVENTS)
        while rows := cursor.fetchmany(1000 if copies else 20_000):
            for oid, _, topic, state in rows:
                if copies and topic == get_topic(Attendance.CheckedIn):
                    fields = json.loads(state)
                    pair = fields["event_id"]["_data_"], fields["participant_id"]["_data_"]
                    attendances[oid.hex()] = pair
            services.app.recorder.insert_events(
                [
                    StoredEvent(UUID(r.hex(oid.hex())), version, topic, r.state(state))
                    for r in remaps
                    for oid, version, topic, state in rows
                ]
            )
    written = LogReader(services.app).head()
    services.close()
    return written


def store_for(cache: Path, size: int, seed: int) -> tuple[Path, str]:
    plan, base = DemoPlan(seed=seed), cache / f"demo-seed{seed}.sqlite3"
    demo = cached(base, lambda to: load_base(to, plan))
    copies = math.ceil(size / demo["events"])
    path = cache / f"replica-{size}-seed{seed}.sqlite3"
    made = cached(path, lambda to: {"events": write_log(base, sqlite(to), copies)})
    method = (
        f"{made['events']:,} events: {copies} copies with fresh ids of the log of "
        f"load_demo({plan}), "
        f"{demo['events']:,} events in {demo['seconds']:.0f} s "
        f"({demo['events'] / demo['seconds']:.0f} events/s) on {demo['made']}; "
        f"copies written through the recorder in {made['seconds']:.0f} s on {made['made']}"
    )
    print(method, flush=True)
    return path, method


@contextmanager
def working_store(store: str, source: Path, tmp: Path) -> Iterator[Settings]:
    """A copy of a cached store: a SQLite file, or a PostgreSQL schema dropped afterwards."""
    if store == "sqlite":
        shutil.copyfile(source, tmp / "work.sqlite3")
        yield sqlite(tmp / "work.sqlite3")
        return
    schema = f"bench_replay_{uuid4().hex[:12]}"
    with psycopg.connect(LIBPQ_URL, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        settings = Settings(database_url=POSTGRES_URL, database_schema=schema)
        seconds = clock(lambda: write_log(source, settings))
        print(f"  copied into PostgreSQL schema {schema} in {seconds:.0f} s", flush=True)
        yield settings
    finally:
        with psycopg.connect(LIBPQ_URL, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


# Measured in a fresh subprocess each --------------------------------------------------------


def floor(services: Services) -> dict[str, Any]:
    """Plain paged SELECT of every stored row, and json.loads of each state."""
    reader, rows = LogReader(services.app), 0
    query = text(
        "SELECT id, originator_id, topic, state "  # noqa: S608 - our own table name
        f"FROM {reader.table.fullname} WHERE id > :after AND id <= :upto ORDER BY id"
    )
    for after in range(0, reader.head(), PAGE_SIZE):
        with reader.engine.connect() as connection:
            page = connection.execute(query, {"after": after, "upto": after + PAGE_SIZE}).all()
        for row in page:
            json.loads(bytes(row[3]))
        rows += len(page)
    return {"rows": rows}


def queries(services: Services) -> dict[str, Any]:
    model = services.indicators
    year = max(model.fiscal_years())

    def timed(calls: int, scope: Scope, as_of: date | None = None) -> list[float]:
        return [clock(lambda: model.indicators(year, scope, as_of)) for _ in range(calls)]

    latencies = {"all": timed(200, Scope()), "district": timed(200, Scope(district_id="ikuta"))}
    return latencies | {"year": year, "as_of": timed(10, Scope(), date(year, 10, 1))}


def descendants(pid: int) -> list[int]:
    """A process and, recursively, its children (a fork server's children are grandchildren)."""
    found, unseen = [], [pid]
    while unseen:
        process = unseen.pop()
        found.append(process)
        with suppress(OSError):  # one that just ended
            unseen += children_of(process)
    return found


class TreeMemory:
    """The peak of the proportional memory (Pss) of a process and its children, sampled from
    outside (a thread in the measured process would change how a replay starts its readers):
    a replay forks children that share its pages, so their resident sizes cannot be added."""

    def __init__(self, pid: int, every: float = 0.5) -> None:
        self.pid, self.peak_kb, self._every, self._stop = pid, 0, every, threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> TreeMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _sample(self) -> None:
        while not self._stop.wait(self._every):
            total = 0
            for pid in descendants(self.pid):
                with suppress(OSError, IndexError):  # a child that just ended
                    rollup = Path(f"/proc/{pid}/smaps_rollup").read_text()
                    total += int(rollup.split("\nPss:")[1].split()[0])
            self.peak_kb = max(self.peak_kb, total)


def child(kind: str, settings: Settings) -> dict[str, Any]:
    services = build_services(settings)
    started = time.perf_counter()
    if kind == "replay":
        result = replay(services.app, services.indicators)
        out: dict[str, Any] = {"facts": result.events if result else None}
    else:
        out = floor(services) if kind == "floor" else queries(services)
    out["seconds"] = time.perf_counter() - started
    out["events"] = LogReader(services.app).head()
    out["peak_mb"] = getrusage(RUSAGE_SELF).ru_maxrss / 1024
    services.close()
    return out


def measure(kind: str, settings: Settings) -> dict[str, Any]:
    command = [sys.executable, __file__, "--child", kind, "--url", settings.database_url]
    command += ["--schema", settings.database_schema or ""]
    with (
        subprocess.Popen(
            command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        ) as process,
        TreeMemory(process.pid) as memory,
    ):
        stdout, stderr = process.communicate()
    if process.returncode:
        raise RuntimeError(f"{kind} failed:\n{stderr}")
    result: dict[str, Any] = json.loads(stdout.strip().splitlines()[-1])
    # The larger of the process's own peak and the sampled peak of it with its children.
    result["peak_mb"] = max(result["peak_mb"], memory.peak_kb / 1024)
    return result


# Visibility: the real server; desks check in at ikuta, a probe at suge ------------------------


@contextmanager
def server(settings: Settings, log: Path) -> Iterator[tuple[str, int]]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    env = {**os.environ, "TSUNAGARI_DATABASE_URL": settings.database_url}
    if settings.database_schema:
        env["TSUNAGARI_DATABASE_SCHEMA"] = settings.database_schema
    command = [sys.executable, "-m", "interfaces.cli", "serve", "--port", url.split(":")[-1]]
    with log.open("w") as out:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=out)
    try:
        while True:
            try:
                httpx.get(f"{url}/health").raise_for_status()
                break
            except httpx.TransportError:
                if process.poll() is not None:
                    raise RuntimeError(f"the server did not start:\n{log.read_text()}") from None
                time.sleep(0.1)
        yield url, process.pid
    finally:
        process.terminate()
        process.wait(timeout=60)


def visibility(settings: Settings, log: Path, seconds: float, desks: int) -> dict[str, Any]:
    services = build_services(settings)
    app, table = services.app, LogReader(services.app).table
    record, token = services.tokens.create(name="bench-replay", role=Role.ADMIN)
    by = Provenance(actor_id=str(record.id), actor_role=Role.ADMIN, desk_id="bench-replay")
    with services.datastore.engine.connect() as connection:
        query = select(table.c.originator_id).where(table.c.topic == get_topic(Program.Launched))
        program = UUID(hex_id(connection.execute(query.limit(1)).scalar()))
        query = select(table.c.originator_id).limit(5000)
        found = connection.execute(query.where(table.c.topic == get_topic(Participant.Registered)))
        people = [str(UUID(hex_id(row[0]))) for row in found]
    events = [  # the first, in suge, only for the probe; then one in ikuta per desk
        app.schedule_event(
            program_id=program, title=f"bench {desk}", starts_at=app.clock(), ends_at=None,
            district_id="ikuta" if desk else "suge", venue=None, recorded_by=by,
        ).result.id
        for desk in range(desks + 1)
    ]  # fmt: skip
    year, auth = fiscal_year_of(app.today()), {"Authorization": f"Bearer {token}"}
    out: dict[str, Any] = {}
    with (
        server(settings, log) as (url, pid),
        httpx.Client(base_url=url, headers=auth, timeout=600) as http,
    ):

        def check_in(client: httpx.Client, event: UUID, person: str) -> float:
            answer = client.post(f"/events/{event}/check-ins", json={"participant_id": person})
            answer.raise_for_status()
            return time.perf_counter()

        def read(district: str | None = None) -> tuple[int, int]:
            params = {"fiscal_year": year} | ({"district": district} if district else {})
            body = http.get("/indicators", params=params).json()
            return body["indicators"]["total_attendances"]["value"], body["position"] or 0

        for event in events:
            check_in(http, event, people[0])
        head, started = app.recorder.max_notification_id() or 0, time.perf_counter()
        while read()[1] < head:  # the follower loads the read model, then catches up
            assert time.perf_counter() - started < 900, "the follower did not catch up"
            time.sleep(0.5)
        out["startup_s"] = time.perf_counter() - started
        out["http_all"] = [clock(read) for _ in range(200)]
        out["http_district"] = [clock(lambda: read("ikuta")) for _ in range(200)]
        stop, counts = threading.Event(), [0] * desks

        def desk(number: int) -> None:
            with httpx.Client(base_url=url, headers=auth, timeout=600) as client:
                for person in people[1:]:
                    if stop.is_set():
                        break
                    check_in(client, events[number + 1], person)
                    counts[number] += 1

        threads = [threading.Thread(target=desk, args=(number,)) for number in range(desks)]
        for thread in threads:
            thread.start()
        delays: list[float] = []
        started = time.perf_counter()
        for person in people[1:]:
            if time.perf_counter() - started > seconds and len(delays) >= 5:
                break  # enough: the load ran its time, and there are a few samples
            before, answered = read("suge")[0], check_in(http, events[0], person)
            while read("suge")[0] <= before:
                assert time.perf_counter() - answered < 600, "the probe's check-in never showed"
                time.sleep(0.02)
            delays.append(time.perf_counter() - answered)
        stop.set()
        for thread in threads:
            thread.join()
        out |= {"delays": delays, "load_rate": sum(counts) / (time.perf_counter() - started)}
        out["server_peak_mb"] = _peak_mb(pid)
        out["worker_peak_mb"] = sum(map(_peak_mb, children_of(pid)))
    services.close()
    return out


# Report ------------------------------------------------------------------------------------


def rebuilds(store: str, settings: Settings, repeat: int) -> str:
    """Floor and replay, alternately, ``repeat`` times each; a row of the table."""
    runs: dict[str, list[dict[str, Any]]] = {"floor": [], "replay": []}
    for _ in range(repeat):
        for kind, done in runs.items():
            done.append(run := measure(kind, settings))
            print(f"  {store} {kind}: {run['seconds']:.1f} s, {run['peak_mb']:.0f} MB", flush=True)
    events, limit = runs["replay"][0]["events"], 20 if store == "sqlite" else 40
    (rebuild, rebuild_mb), (floor_s, floor_mb) = (
        ([run["seconds"] for run in runs[kind]], max(run["peak_mb"] for run in runs[kind]))
        for kind in ("replay", "floor")
    )
    median = statistics.median(rebuild)
    ratio = statistics.median(floor_s) / median
    spread = f"{median:.1f} ({min(rebuild):.1f}–{max(rebuild):.1f})"
    if events >= 1_000_000:
        spread += f" ≤ {limit}: {verdict(median <= limit)}"
    return (
        f"| {events:,} | {store} | {spread} | {events / median:,.0f} "
        f"| {statistics.median(floor_s):.1f} | {events / statistics.median(floor_s):,.0f} "
        f"| {ratio:.2f}: {verdict(ratio >= 0.5)} | {rebuild_mb:.0f}: {verdict(rebuild_mb <= 2048)} "
        f"| {floor_mb:.0f} |"
    )


def latencies(store: str, settings: Settings, args: Any, log: Path) -> tuple[str, str]:
    q, v = measure("queries", settings), visibility(settings, log, args.load_seconds, args.desks)
    p99s = [ms(source[key], 0.99) for source, key in ((q, "all"), (q, "district"))]
    p99s += [ms(v[key], 0.99) for key in ("http_all", "http_district")]
    delays, as_of = v["delays"], max(q["as_of"])
    row = (
        f"| {store} | FY{q['year']} | {' / '.join(f'{p:.1f}' for p in p99s)}: "
        f"{verdict(max(p99s) <= 50)} | {ms(q['as_of'], 0.5):.0f} / {as_of * 1000:.0f}: "
        f"{verdict(as_of <= 2)} | {ms(delays, 0.5):.0f} / {ms(delays, 0.99):.0f} / "
        f"{max(delays) * 1000:.0f}: {verdict(ms(delays, 0.99) <= 1000)} | {len(delays)} "
        f"| {v['load_rate']:.0f} |"
    )
    note = f"- Server on {store}: caught up {v['startup_s']:.0f} s after start; peak RSS "
    note += f"{v['server_peak_mb']:.0f} MB, and {v['worker_peak_mb']:.0f} MB for its projection "
    return row, note + "worker (which holds every fact)."


def _peak_mb(pid: int) -> float:
    """A live process's peak resident memory (Linux /proc)."""
    status = Path(f"/proc/{pid}/status").read_text()
    return int(status.split("VmHWM:")[1].split()[0]) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description="Replay against the read+decode floor.")
    parser.add_argument("--sizes", default="100000,1000000", help="stored events, comma-separated")
    parser.add_argument("--skip-postgres", action="store_true", help="measure SQLite only")
    parser.add_argument("--cache-dir", type=Path, default=ROOT / "bench" / ".cache")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each measurement")
    parser.add_argument("--seed", type=int, default=DemoPlan.seed)
    parser.add_argument("--desks", type=int, default=8, help="concurrent check-in clients")
    parser.add_argument("--load-seconds", type=float, default=10.0)
    parser.add_argument("--no-readme", action="store_true", help="do not append to the README")
    for hidden in ("--child", "--url", "--schema"):
        parser.add_argument(hidden, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        settings = Settings(database_url=args.url, database_schema=args.schema or None)
        print(json.dumps(child(args.child, settings)))
        return
    stores = ["sqlite"] if args.skip_postgres else ["sqlite", "postgresql"]
    sizes = sorted(int(size) for size in args.sizes.split(","))
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    machine = f"nproc {os.cpu_count()}, {platform.machine()}, Python {platform.python_version()}"
    machine += f", {datetime.now(UTC):%a %b %d %H:%M:%S UTC %Y}, load average {load}"
    print(machine, flush=True)
    args.cache_dir.mkdir(parents=True, exist_ok=True)
    methods: list[str] = []
    rows: list[str] = []
    latency: list[str] = []
    notes: list[str] = []
    with tempfile.TemporaryDirectory(prefix="tsunagari-replay-") as tmp:
        for size in sizes:
            path, method = store_for(args.cache_dir, size, args.seed)
            methods.append(f"- {method}.")
            for store in stores:
                with working_store(store, path, Path(tmp)) as settings:
                    rows.append(rebuilds(store, settings, args.repeat))
                    if size == sizes[-1]:
                        row, note = latencies(store, settings, args, Path(tmp) / f"{store}.log")
                        latency, notes = [*latency, row], [*notes, note]
    lines = [
        f"### Run of {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        "",
        f"Machine: {machine}. Times: median of {args.repeat} (min–max).",
        "",
        *methods,
        *notes,
        "",
        "| stored events | store | rebuild s | rebuild events/s | floor s | floor rows/s "
        "| rebuild / floor rate ≥ 0.5 | rebuild peak MB ≤ 2048 | floor peak MB |",
        "|---|---|---|---|---|---|---|---|---|",
        *rows,
        "",
        "| store | year | query p99 ms ≤ 50: in-process all / ikuta, HTTP all / ikuta "
        "| as-of ms p50 / max ≤ 2000 | visibility ms p50 / p99 ≤ 1000 / max | probes "
        f"| check-ins/s by {args.desks} desks |",
        "|---|---|---|---|---|---|---|",
        *latency,
    ]
    print("\n" + "\n".join(lines))
    if not args.no_readme:
        readme = ROOT / "bench" / "README.md"
        heading = "## Replay and indicators"
        known = readme.exists() and heading in readme.read_text()
        with readme.open("a") as out:
            out.write(("" if known else f"\n{heading}\n") + "\n" + "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
