"""Several processes opening a new store at once (the server, its check-in writer and
projection worker, a command line) each find it whole: one at a time creates its tables."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

from domain.provenance import Role
from infrastructure.settings import Settings
from interfaces.bootstrap import Services, build_services, schema_lock


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


def test_an_indicator_generation_first_used_at_once_everywhere_is_created_once(
    settings: Settings,
) -> None:
    """A generation's tables are made at first use (the server's first indicators read, the
    projection worker's start, a command line), by whichever comes first."""
    opened = [build_services(settings) for _ in range(4)]
    start = threading.Barrier(4)

    def first_read(services: Services) -> int | None:
        start.wait(10)
        return services.indicators.position()  # makes generation 1's tables

    try:
        with ThreadPoolExecutor(4) as pool:
            positions = list(pool.map(first_read, opened))
    finally:
        for services in opened:
            services.close()
    assert positions == [None, None, None, None]  # nothing processed yet, and no failure


def test_the_schema_lock_is_taken_again_by_the_thread_that_holds_it(settings: Settings) -> None:
    with schema_lock(settings), schema_lock(settings):
        services = build_services(settings)  # inside both: no wait for itself
    services.close()
