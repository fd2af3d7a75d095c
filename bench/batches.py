"""The check-in writer's work without HTTP or processes: ``check_in_all`` batch by batch.

    .venv/bin/python bench/batches.py [--sizes 1,8,16] [--check-ins 2400]
                                      [--skip-sqlite | --skip-postgres]

Per store (a temporary SQLite file; PostgreSQL in a schema of its own, dropped afterwards) and
batch size: seed participants in-process (bench/checkin.py's ``seed``), open the application as
the check-in writer does (its own statements prepared, its collector settled), warm it with 20
batches, then run ``--check-ins`` check-ins in batches of that size, each with an idempotency
key as a desk's, and print the wall and CPU time per batch and per check-in.

One process and one thread: on a shared machine whose speed drifts (bench/README.md), its CPU
figures drift less than the HTTP bench's rates, which hang on four processes sharing two
cores. What it measures is the writer's own cost, fixed (a batch's transaction, its round
trips) and per check-in: compare two commits by running this script in both, alternately.
"""

from __future__ import annotations

import argparse
import platform
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from checkin import fresh_store, seed, stores_to_measure  # bench/ is the script's folder

from application.app import CheckIn
from application.ports import Idempotency
from domain.provenance import Provenance, Role
from infrastructure.persistence import own_statements
from interfaces.bootstrap import build_services
from interfaces.collector import settle_collector

WARM_BATCHES = 20


def measure(kind: str, size: int, count: int) -> tuple[float, float]:
    """Seconds of wall and CPU time per batch of ``size``, over ``count`` check-ins."""
    batches = max(count // size, 1)
    with tempfile.TemporaryDirectory() as tmp, fresh_store(kind, Path(tmp)) as settings:
        data = seed(settings, (batches + WARM_BATCHES) * size)
        services = build_services(settings)
        try:
            own_statements(services.datastore)
            settle_collector()
            by = Provenance(actor_id=str(data.token_id), actor_role=Role.DESK, desk_id="bench")
            scope = f"token:{data.token_id}"
            people = iter(data.people)

            def batch() -> list[CheckIn]:
                return [
                    CheckIn(data.event, p, by, Idempotency(scope, f"batch/{p}", "0" * 64))
                    for p in (next(people) for _ in range(size))
                ]

            for _ in range(WARM_BATCHES):
                services.app.check_in_all(batch())
            commands = [batch() for _ in range(batches)]
            wall, cpu = time.perf_counter(), time.thread_time()
            for commands_of_one in commands:
                answers = services.app.check_in_all(commands_of_one)
                failed = [a for a in answers if isinstance(a, Exception)]
                if failed:
                    sys.exit(f"a check-in failed: {failed[0]!r}")
            wall, cpu = time.perf_counter() - wall, time.thread_time() - cpu
        finally:
            services.close()
    return wall / batches, cpu / batches


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1,8,16", help="batch sizes, comma-separated")
    parser.add_argument("--check-ins", type=int, default=2400, help="check-ins per size")
    parser.add_argument("--skip-sqlite", action="store_true", help="PostgreSQL only")
    parser.add_argument("--skip-postgres", action="store_true", help="SQLite only")
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",")]
    kinds = stores_to_measure(skip_sqlite=args.skip_sqlite, skip_postgres=args.skip_postgres)
    print(
        f"{datetime.now(UTC):%Y-%m-%d %H:%M}Z: {platform.machine()}, Python "
        f"{platform.python_version()}; {args.check_ins} check-ins per batch size, one thread"
    )
    print(f"{'':<17}{'a batch, ms':>19}{'a check-in, µs':>19}")
    print(f"{'store':<11}{'size':>6}{'wall':>10}{'CPU':>9}{'wall':>10}{'CPU':>9}")
    for kind in kinds:
        for size in sizes:
            wall, cpu = measure(kind, size, args.check_ins)
            print(
                f"{kind:<11}{size:>6}{wall * 1e3:>10.2f}{cpu * 1e3:>9.2f}"
                f"{wall / size * 1e6:>10.0f}{cpu / size * 1e6:>9.0f}"
            )


if __name__ == "__main__":
    main()
