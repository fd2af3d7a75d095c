"""Several processes opening a new store at once (the server, its check-in writer and
projection worker, a command line) each find it whole: one at a time creates its tables."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

from domain.provenance import Role
from infrastructure.settings import Settings
from interfaces.bootstrap import Services, build_services


def test_stores_opened_at_once_on_a_new_database_all_open_and_work(settings: Settings) -> None:
    start = threading.Barrier(4)
    opened: list[Services] = []

    def open_store() -> int:
        start.wait(10)
        services = build_services(settings)
        opened.append(services)
        # Each can use every table: the log, the side tables, the indicators' read model.
        services.tokens.create(name=f"desk {threading.get_ident()}", role=Role.DESK)
        return services.indicators.active_generation()

    try:
        with ThreadPoolExecutor(4) as pool:
            generations = list(pool.map(lambda _: open_store(), range(4)))
    finally:
        for services in opened:
            services.close()
    assert generations == [1, 1, 1, 1]
    check = build_services(settings)
    try:
        assert len(check.tokens.list()) == 4
    finally:
        check.close()
