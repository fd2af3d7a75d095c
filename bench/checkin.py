"""Check-ins over HTTP against the same server's bare /health and against in-process calls.

    .venv/bin/python bench/checkin.py [--count 3000] [--desks 16] [--skip-postgres]

Per store (a temporary SQLite file; PostgreSQL in a schema of its own, dropped afterwards): seed
a token, an organisation, a programme, an event and participants in-process, start
``python -m interfaces.cli serve`` on a free loopback port, drive the desks over HTTP, then call
``Tsunagari.check_in`` directly on a fresh store of the same kind. See bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from uuid import UUID, uuid4

import psycopg

from application.app import Tsunagari
from application.ports import Idempotency
from domain.organizations import OrganizationKind
from domain.participants import Participant
from domain.programs import Policy, ProgramArea
from domain.provenance import Provenance, Role
from infrastructure.settings import ProjectionsMode, Settings
from interfaces.bootstrap import build_services
from interfaces.http.deps import fingerprint

ROOT = Path(__file__).resolve().parent.parent
POSTGRES_URL = os.environ.get(
    "TSUNAGARI_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
LIBPQ_URL = POSTGRES_URL.replace("postgresql+psycopg://", "postgresql://", 1)
WRITER_COMMAND = b"writer"
"""The word of its command line that tells the check-in writer from the projection worker."""
CLIENT = (
    "pure-Python asyncio client in this process, one raw HTTP/1.1 keep-alive connection per "
    "desk over asyncio streams, requests encoded beforehand"
)


@dataclass(frozen=True)
class Result:
    store: str
    what: str
    seconds: float
    latencies: list[float]  # seconds, sorted
    bench_cpu: float  # CPU seconds of this process (the client, or the app in-process)
    server_cpu: float | None = None  # CPU seconds of the server process
    # The server's CPU seconds by where they went: its event loop (the main thread), its
    # other threads (readers; the group-commit writer when it is a thread), and its child
    # processes: the check-in writer, the projection worker.
    server_split: tuple[float, float, float, float] | None = None
    database_cpu: float = 0.0  # CPU seconds of this machine's PostgreSQL processes meanwhile
    # Seconds the server's event loop and its check-in writer spent running and runnable but
    # waiting for a core (Linux schedstat): what the wall time of the writer, which every
    # desk of a batch waits for, went on besides its own work.
    scheduled: tuple[float, float, float, float] | None = None

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.seconds

    def ms(self, q: float) -> float:  # nearest-rank percentile
        n = len(self.latencies)
        return self.latencies[min(n - 1, max(0, round(q * n) - 1))] * 1000

    def row(self) -> str:
        server = "-" if self.server_cpu is None else f"{self.server_cpu / self.seconds:.0%}"
        return (
            f"{self.store:<10} {self.what:<22} {len(self.latencies):>6} {self.rate:>8.1f} "
            f"{self.ms(0.5):>7.1f} {self.ms(0.99):>7.1f} {self.bench_cpu / self.seconds:>9.0%} "
            f"{server:>10}"
        )


@dataclass(frozen=True)
class Seed:
    token: str
    token_id: UUID
    event: UUID
    people: list[UUID]


@contextmanager
def fresh_store(kind: str, tmp: Path) -> Iterator[Settings]:
    """An empty store: a new SQLite file, or a new PostgreSQL schema dropped afterwards."""
    if kind == "sqlite":
        yield Settings(database_url=f"sqlite:///{tmp}/{uuid4().hex}.sqlite3")
        return
    schema = f"bench_{uuid4().hex[:16]}"
    with psycopg.connect(LIBPQ_URL, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield Settings(database_url=POSTGRES_URL, database_schema=schema)
    finally:
        with psycopg.connect(LIBPQ_URL, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def seed(settings: Settings, people: int) -> Seed:
    """An admin token, an organisation, a programme, an event, and participants saved in bulk."""
    services = build_services(settings)
    try:
        record, token = services.tokens.create(name="bench", role=Role.ADMIN)
        by = Provenance(actor_id=str(record.id), actor_role=Role.ADMIN, desk_id="bench-seed")
        app = services.app
        org = app.register_organization(
            name="多摩区役所", kind=OrganizationKind.WARD_OFFICE, district_id=None, recorded_by=by
        ).result.id
        program = app.launch_program(
            name="多摩区スポーツフェスタ",
            policy=Policy.OPEN_ACTIVITIES,
            area=ProgramArea.COMMUNITY,
            host_organization_ids=[org],
            recorded_by=by,
        ).result.id
        event = app.schedule_event(
            program_id=program,
            title="多摩区スポーツフェスタ2026",
            starts_at=datetime(2026, 10, 11, 0, tzinfo=UTC),
            ends_at=None,
            district_id="ikuta",
            venue=None,
            recorded_by=by,
        ).result.id
        registered = [
            Participant.register(
                birth_year=1940 + i % 80,
                band_id=None,
                district_id="ikuta",
                today=app.today(),
                bands=app.bands,
                recorded_by=by,
            )
            for i in range(people)
        ]
        for start in range(0, people, 500):
            app.save(*registered[start : start + 500])
        return Seed(token, record.id, event, [p.id for p in registered])
    finally:
        services.close()


def http_request(method: str, path: str, headers: dict[str, str], body: bytes = b"") -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", f"Content-Length: {len(body)}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


class Connection:
    """One keep-alive HTTP/1.1 connection, one desk's tablet. Answers must have Content-Length."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, port: int) -> Connection:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return cls(reader, writer)

    async def call(self, request: bytes) -> int:
        self.writer.write(request)
        head = (await self.reader.readuntil(b"\r\n\r\n")).lower()
        start = head.index(b"content-length:") + 15
        await self.reader.readexactly(int(head[start : head.index(b"\r\n", start)]))
        return int(head[9:12])


@contextmanager
def running_server(settings: Settings, log: Path) -> Iterator[tuple[int, int]]:
    """``python -m interfaces.cli serve`` on a free loopback port, logging at WARNING."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    env = {**os.environ, "TSUNAGARI_DATABASE_URL": settings.database_url}
    env |= {"TSUNAGARI_LOG_LEVEL": "WARNING", "TSUNAGARI_LOG_FORMAT": "json"}
    if settings.database_schema:
        env["TSUNAGARI_DATABASE_SCHEMA"] = settings.database_schema
    serve = [sys.executable, "-m", "interfaces.cli", "serve", "--host", "127.0.0.1"]
    with log.open("w") as out:
        process = subprocess.Popen(
            [*serve, "--port", str(port)], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT
        )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                asyncio.run(drive(port, [[http_request("GET", "/health", {})]], 200))
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"the server did not start:\n{log.read_text()}") from None
                time.sleep(0.1)
        yield port, process.pid
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def caught_up(settings: Settings, timeout: float = 120.0) -> None:
    """Wait until the server's projection worker has processed the whole log (unless the
    projections are off): it starts with the server and first catches up on the seeded
    participants, work that is not the live check-ins' and would land in their measurement."""
    if Settings().run_projections is ProjectionsMode.OFF:
        return
    services = build_services(settings)
    try:
        head = services.app.recorder.max_notification_id() or 0
        deadline = time.monotonic() + timeout
        while (services.indicators.position() or 0) < head:
            if time.monotonic() > deadline:
                raise RuntimeError(f"the projections did not reach log position {head}")
            time.sleep(0.1)
    finally:
        services.close()


def cpu_of(pid: int) -> float:
    """User + system CPU seconds so far of a process and its live children, such as the
    projection worker `serve` starts (Linux /proc)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return 0.0
    seconds = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return seconds + sum(map(cpu_of, children_of(pid)))


def cpu_split(pid: int) -> tuple[float, float, float, float]:
    """CPU seconds so far of a process's main thread, of its other threads, of its live check-in
    writer child, and of its other live children (the projection worker; Linux /proc)."""
    tick = os.sysconf("SC_CLK_TCK")
    loop = others = 0.0
    for task in Path(f"/proc/{pid}/task").iterdir():
        with suppress(FileNotFoundError):  # a thread that just ended
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
            seconds = (int(fields[11]) + int(fields[12])) / tick
            if task.name == str(pid):
                loop += seconds
            else:
                others += seconds
    writer = projections = 0.0
    for child in children_of(pid):
        with suppress(FileNotFoundError):
            command = Path(f"/proc/{child}/cmdline").read_bytes().split(b"\0")
            if WRITER_COMMAND in command:
                writer += cpu_of(child)
            else:
                projections += cpu_of(child)
    return loop, others, writer, projections


def scheduled(pid: int) -> tuple[float, float, float, float] | None:
    """Seconds so far the server's event loop (its main thread) and its check-in writer have
    run, and have waited to run while runnable (``/proc/<pid>/schedstat``: run time, run-queue
    delay); None where the kernel keeps no schedstat."""
    try:
        loop = Path(f"/proc/{pid}/task/{pid}/schedstat").read_text().split()
        writers = [
            child
            for child in children_of(pid)
            if WRITER_COMMAND in Path(f"/proc/{child}/cmdline").read_bytes().split(b"\0")
        ]
        writer = Path(f"/proc/{writers[0]}/schedstat").read_text().split() if writers else []
    except (FileNotFoundError, ProcessLookupError):
        return None
    ran, waited = (int(writer[0]), int(writer[1])) if writer else (0, 0)
    return int(loop[0]) / 1e9, int(loop[1]) / 1e9, ran / 1e9, waited / 1e9


def postgres_cpu() -> float:
    """CPU seconds so far of this machine's PostgreSQL server processes (Linux /proc): the
    database's share of a check-in, when it runs here, as in the bench's default setting."""
    tick, total = os.sysconf("SC_CLK_TCK"), 0.0
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with suppress(FileNotFoundError, ProcessLookupError, PermissionError):
                stat = (entry / "stat").read_text()
                if stat.split(" (", 1)[1].startswith("postgres)"):
                    fields = stat.rsplit(")", 1)[1].split()
                    total += (int(fields[11]) + int(fields[12])) / tick
    return total


def children_of(pid: int) -> list[int]:
    """A live process's children (Linux /proc: each is listed under the thread that started it)."""
    children: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        with suppress(FileNotFoundError):  # a thread that just ended
            children += [int(child) for child in (task / "children").read_text().split()]
    return children


async def drive(port: int, per_desk: list[list[bytes]], expect: int) -> tuple[float, list[float]]:
    """Every desk sends its requests one after the other on its own connection."""
    connections = [await Connection.open(port) for _ in per_desk]
    latencies: list[float] = []
    statuses: Counter[int] = Counter()

    async def desk(connection: Connection, requests: list[bytes]) -> None:
        for request in requests:
            sent = time.perf_counter()
            statuses[await connection.call(request)] += 1
            latencies.append(time.perf_counter() - sent)

    started = time.perf_counter()
    await asyncio.gather(*map(desk, connections, per_desk))
    seconds = time.perf_counter() - started
    for connection in connections:
        connection.writer.close()
    if set(statuses) != {expect}:
        raise RuntimeError(f"expected only {expect} answers, got {dict(statuses)}")
    return seconds, sorted(latencies)


def merged(results: list[Result]) -> Result:
    """Rounds of one measurement as one: their requests, seconds and CPU added up."""
    first = results[0]
    splits = [result.server_split for result in results]
    waits = [result.scheduled for result in results]
    servers = [result.server_cpu for result in results]
    return Result(
        first.store,
        first.what,
        sum(result.seconds for result in results),
        sorted(latency for result in results for latency in result.latencies),
        sum(result.bench_cpu for result in results),
        None if None in servers else sum(cpu for cpu in servers if cpu is not None),
        _summed(splits),
        sum(result.database_cpu for result in results),
        _summed(waits),
    )


def _summed(
    parts: list[tuple[float, float, float, float] | None],
) -> tuple[float, float, float, float] | None:
    """Rounds' figures added up, column by column; None if a round has none."""
    if any(part is None for part in parts):
        return None
    known = [part for part in parts if part is not None]
    return (
        sum(part[0] for part in known),
        sum(part[1] for part in known),
        sum(part[2] for part in known),
        sum(part[3] for part in known),
    )


@dataclass(frozen=True)
class Bench:
    store: str
    count: int
    desks: int
    rounds: int = 5

    def over_http(self, what: str, server: tuple[int, int], requests: list[bytes]) -> Result:
        port, pid = server
        per_desk = [requests[d :: self.desks] for d in range(self.desks)]
        expect = 201 if requests[0].startswith(b"POST") else 200
        database = postgres_cpu()
        cpu, split, sched = time.process_time(), cpu_split(pid), scheduled(pid)
        seconds, latencies = asyncio.run(drive(port, per_desk, expect))
        cpu, after, sched_after = time.process_time() - cpu, cpu_split(pid), scheduled(pid)
        database = postgres_cpu() - database
        waits = None
        if sched is not None and sched_after is not None:
            w = tuple(b - a for a, b in zip(sched, sched_after, strict=True))
            waits = (w[0], w[1], w[2], w[3])
        spent = (
            after[0] - split[0],
            after[1] - split[1],
            after[2] - split[2],
            after[3] - split[3],
        )
        return Result(self.store, what, seconds, latencies, cpu, sum(spent), spent, database, waits)

    def check_ins(self, seed: Seed, people: list[UUID], tag: str) -> list[bytes]:
        """Check-ins as desks send them: token, X-Desk-Id, an Idempotency-Key, a new person."""
        path, requests = f"/events/{seed.event}/check-ins", []
        for i, person in enumerate(people):
            desk = f"bench-desk-{i % self.desks}"
            headers = {"Authorization": f"Bearer {seed.token}", "X-Desk-Id": desk}
            headers |= {"Content-Type": "application/json", "Idempotency-Key": f"{desk}/{tag}{i}"}
            body = json.dumps({"participant_id": str(person)}).encode()
            requests.append(http_request("POST", path, headers, body))
        return requests

    def http(self, settings: Settings, log: Path) -> list[Result]:
        data = seed(settings, self.count + 4 * self.desks)
        health = [http_request("GET", "/health", {})] * self.count
        warm_up = self.check_ins(data, data.people[self.count :], "warm-up-")
        measured = self.check_ins(data, data.people[: self.count], "")
        # The cheapest authenticated route: a token, routing, one cached aggregate read. It
        # shows what any route with a token costs this framework beside the bare /health.
        auth = {"Authorization": f"Bearer {data.token}"}
        reads = [http_request("GET", f"/events/{data.event}", auth)] * self.count
        names = [f"HTTP POST check-in {self.desks}", f"HTTP GET /health {self.desks}"]
        names.append(f"HTTP GET /events/id {self.desks}")
        rounds: list[list[Result]] = [[], [], []]
        with running_server(settings, log) as server:
            self.over_http("warm-up", server, health[: 10 * self.desks])
            self.over_http("warm-up", server, warm_up)
            caught_up(settings)
            # In rounds, each measurement in turn: a machine whose speed drifts from one
            # minute to the next (a shared VM's can, by 2x) then drifts under all three alike,
            # and their ratios compare like with like.
            for r in range(self.rounds):
                for kind, requests in enumerate((measured, health, reads)):
                    part = requests[
                        r * len(requests) // self.rounds : (r + 1) * len(requests) // self.rounds
                    ]
                    rounds[kind].append(self.over_http(names[kind], server, part))
        return [merged(results) for results in rounds]

    def direct(self, app: Tsunagari, seed: Seed, people: list[UUID], threads: int) -> Result:
        """``Tsunagari.check_in`` for each person from ``threads`` threads, as the route does."""
        event_id, scope = seed.event, str(seed.token_id)
        path, latencies = f"/events/{event_id}/check-ins", list[float]()

        def worker(first: int) -> None:
            for i in range(first, len(people), threads):
                body = json.dumps({"participant_id": str(people[i])}).encode()
                fingerprinted = fingerprint("POST", path, body)
                idempotency = Idempotency(scope, f"direct/{people[i]}", fingerprinted)
                by = Provenance(scope, Role.ADMIN, f"bench-desk-{i % self.desks}", uuid4().hex)
                sent = time.perf_counter()
                app.check_in(
                    event_id, participant_id=people[i], recorded_by=by, idempotency=idempotency
                )
                latencies.append(time.perf_counter() - sent)

        with ThreadPoolExecutor(threads) as pool:
            cpu, started = time.process_time(), time.perf_counter()
            list(pool.map(worker, range(threads)))
            seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
        return Result(self.store, f"direct check_in {threads} thr", seconds, sorted(latencies), cpu)

    def in_process(self, settings: Settings) -> list[Result]:
        """Without HTTP, on a store of its own, reopened for each run so nothing is cached."""
        warm, each = 4 * self.desks, self.count + 4 * self.desks
        data, results = seed(settings, 2 * each), []
        for run, threads in enumerate((self.desks, 1)):
            people = data.people[run * each : (run + 1) * each]
            services = build_services(settings)
            try:
                self.direct(services.app, data, people[:warm], threads)  # warm-up
                results.append(self.direct(services.app, data, people[warm:], threads))
            finally:
                services.close()
        return results


def verdicts(results: list[Result]) -> str:
    http, health, read, threaded, single = results
    share, p99 = http.rate / health.rate, http.ms(0.99)
    return (
        f"{http.store:<10} {share:>5.2f} {'met' if share >= 0.5 else 'NOT met':<9} "
        f"{p99:>6.1f} {'met' if p99 <= 50 else 'NOT met':<9} "
        f"{http.rate / threaded.rate:>13.2f} {http.rate / single.rate:>13.2f} "
        f"{read.rate / health.rate:>13.2f}"
    )


def stores_to_measure(*, skip_sqlite: bool, skip_postgres: bool) -> list[str]:
    """The stores a bench measures: SQLite unless skipped, PostgreSQL unless skipped or not
    reachable at ``LIBPQ_URL`` (then it says why)."""
    stores = [] if skip_sqlite else ["sqlite"]
    if not skip_postgres:
        try:
            psycopg.connect(LIBPQ_URL, connect_timeout=3).close()
            stores.append("postgresql")
        except psycopg.OperationalError as error:
            print(f"PostgreSQL skipped, not reachable at {LIBPQ_URL}: {error}".strip())
    return stores


def main() -> None:
    parser = argparse.ArgumentParser(description="Check-ins over HTTP, /health and in-process.")
    parser.add_argument("--count", type=int, default=3000, help="requests per measurement")
    parser.add_argument("--desks", type=int, default=16, help="concurrent desks (connections)")
    parser.add_argument("--skip-postgres", action="store_true", help="measure SQLite only")
    parser.add_argument("--skip-sqlite", action="store_true", help="measure PostgreSQL only")
    parser.add_argument(
        "--rounds", type=int, default=5, help="HTTP measurements taken in turn, in this many parts"
    )
    args = parser.parse_args()
    stores = stores_to_measure(skip_sqlite=args.skip_sqlite, skip_postgres=args.skip_postgres)
    cores, load = os.cpu_count(), ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(
        f"{datetime.now(UTC):%Y-%m-%d %H:%M:%SZ}: nproc {cores}, {platform.machine()}, "
        f"Python {platform.python_version()}, load average {load}; "
        f"{args.count} requests per measurement, {args.desks} desks, HTTP in {args.rounds} rounds"
    )
    print(f"client: {CLIENT}; client and server share this machine's {cores} cores")
    results: dict[str, list[Result]] = {}
    with tempfile.TemporaryDirectory(prefix="tsunagari-bench-") as tmp:
        for store in stores:
            bench = Bench(store, args.count, args.desks, max(1, args.rounds))
            with fresh_store(store, Path(tmp)) as settings:
                results[store] = bench.http(settings, Path(tmp) / f"server-{store}.log")
            with fresh_store(store, Path(tmp)) as settings:
                results[store] += bench.in_process(settings)
    head = f"{'store':<10} {'measurement':<22} {'n':>6} {'rate/s':>8} {'p50 ms':>7} {'p99 ms':>7}"
    print(f"\n{head} {'bench CPU':>9} {'server CPU':>10}")
    print("\n".join(result.row() for rows in results.values() for result in rows))
    print("CPU time / wall time, 100% = one core; bench = this process (the client, or the app).")
    columns = f"{'event loop':>10} {'threads':>8} {'writer':>8} {'projections':>11} {'database':>8}"
    print(f"\n{'server CPU per request, µs':<33} {columns}")
    for rows in results.values():
        for result in rows:
            if result.server_split is not None:
                loop, threads, writer, projections = (
                    x / len(result.latencies) * 1e6 for x in result.server_split
                )
                database = result.database_cpu / len(result.latencies) * 1e6
                name = f"{result.store:<10} {result.what:<22}"
                cells = f"{loop:>10.0f} {threads:>8.0f} {writer:>8.0f} {projections:>11.0f}"
                print(f"{name} {cells} {database:>8.0f}")
    print("threads: the server's other threads (readers; the group-commit writer when it is one);")
    print("writer: the check-in writer process; projections: the projection worker process;")
    print("database: this machine's PostgreSQL processes (every one, the bench's own included).")
    print("The loop and the threads share one interpreter lock; each process has its own.")
    print(
        f"\n{'share of the wall time':<33} {'loop runs':>10} {'waits':>8} {'writer runs':>12}",
        end="",
    )
    print(f" {'waits':>8}")
    for rows in results.values():
        for result in rows:
            if result.scheduled is not None and result.what.startswith("HTTP POST"):
                shares = (f"{x / result.seconds:.0%}" for x in result.scheduled)
                loop_ran, loop_waited, writer_ran, writer_waited = shares
                print(
                    f"{result.store:<10} {result.what:<22} {loop_ran:>10} {loop_waited:>8} "
                    f"{writer_ran:>12} {writer_waited:>8}"
                )
    print("runs: on a core; waits: runnable, waiting for one (Linux schedstat). The rest of the")
    print("writer's time it waits for PostgreSQL's answers or for the server's next check-ins.")
    ratio = f"{'HTTP/direct':>13}"
    print(
        f"\n{'':<10} {'HTTP/health':<15} {'HTTP p99 ms':<16} {ratio} {ratio} {'GET id/health':>13}"
    )
    print(f"{'store':<10} {'goal >= 0.5':<15} {'goal <= 50':<16} {args.desks:>9} thr {1:>9} thr")
    print("\n".join(verdicts(rows) for rows in results.values()))


if __name__ == "__main__":
    main()
