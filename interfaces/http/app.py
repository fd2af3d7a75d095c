"""The FastAPI application factory. Nothing is built at import time."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.routing import APIRoute

from infrastructure.settings import ProjectionsMode, Settings, WriterMode
from interfaces.bootstrap import Services, build_services
from interfaces.check_in_writer import CheckInWriter
from interfaces.collector import settle_collector
from interfaces.http.direct import DirectCheckIn
from interfaces.http.middleware import RequestBodyMiddleware, RequestContextMiddleware
from interfaces.http.problems import install_problem_handlers
from interfaces.http.routes import (
    audit,
    events,
    health,
    indicators,
    organizations,
    participants,
    programs,
)
from interfaces.projection_worker import ProjectionWorker
from projections.follower import Follower

DESCRIPTION = """\
Participation records for Tama Ward's Basic Goal 2, **多世代交流でつながる地域づくり**
(community building through multi-generational exchange), kept as an immutable event log.

Every route but `/health` needs `Authorization: Bearer <token>`. Every POST honours an
`Idempotency-Key` header. Errors are `application/problem+json`.
"""

TAGS = [
    {"name": "organizations", "description": "団体: organisations that host programmes"},
    {"name": "programs", "description": "事業・取組: programmes of the plan"},
    {"name": "events", "description": "開催回: occurrences of a programme"},
    {"name": "attendance", "description": "受付: check-ins, corrections and walk-in headcounts"},
    {"name": "participants", "description": "参加者: residents, by generation and district"},
    {"name": "indicators", "description": "3年後の成果指標: outcome indicators from the log"},
    {"name": "audit", "description": "監査: the log itself, read-only, personal fields masked"},
    {"name": "health", "description": "Liveness"},
]


def operation_id(route: APIRoute) -> str:
    """Stable operation ids: the route function's name (check_in, cancel_event...)."""
    return route.name


def create_app(
    settings: Settings | None = None,
    *,
    services: Services | None = None,
    direct_check_in: bool = True,
) -> FastAPI:
    """The HTTP app; builds its services at startup unless given ready-made ones (tests)."""
    settings = services.settings if services is not None else (settings or Settings())

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        own = services is None
        in_process = not own or settings.check_in_writer is WriterMode.THREAD
        app.state.services = build_services(settings) if own else services
        writer = None if in_process else CheckInWriter(settings, app.state.services.app)
        app.state.writer = writer
        if writer is None:
            app.state.check_in = app.state.services.app.check_in_async
        else:
            await writer.start()
            app.state.check_in = writer.check_in
        if own:
            settle_collector()
        projections: Follower | ProjectionWorker | None = None
        if own and settings.run_projections is ProjectionsMode.PROCESS:
            projections = ProjectionWorker(settings)
        elif own and settings.run_projections is ProjectionsMode.THREAD:
            projections = app.state.services.follower()
        if projections is not None:
            projections.start()
        try:
            yield
        finally:
            if projections is not None:
                projections.stop()
            if writer is not None:
                await writer.stop()
            if own:
                app.state.services.close()

    app = FastAPI(
        title="Tsunagari つながり",
        version="0.1.0",
        description=DESCRIPTION,
        openapi_tags=TAGS,
        lifespan=lifespan,
        generate_unique_id_function=operation_id,
    )
    install_problem_handlers(app)
    # Requests are matched against the routers in this order, route by route (a regex each):
    # the liveness probe and the front desk's routes, the most frequent, come first. The
    # check-in route, last but one, paid about 60 µs a request for the others before it.
    app.include_router(health.router)
    app.include_router(events.attendance)
    for module in (events, organizations, programs, participants, indicators, audit):
        app.include_router(module.router)
    app.include_router(indicators.csv_router)
    if direct_check_in:  # innermost: after the body's size and type are checked
        app.add_middleware(DirectCheckIn)
    app.add_middleware(RequestBodyMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(RequestContextMiddleware)
    return app
