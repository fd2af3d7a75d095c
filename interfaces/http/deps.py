"""Dependencies shared by the routers: services, authentication, roles, provenance, idempotency."""

from __future__ import annotations

import asyncio
import contextvars
import copy
import functools
import hashlib
import json
import re
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Annotated, Any, ParamSpec, Protocol, TypeVar
from uuid import UUID

import structlog
from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.utils import deep_dict_update

from application.app import Outcome, Tsunagari
from application.ports import Idempotency
from application.views import CheckInView
from domain.provenance import Provenance, Role
from infrastructure.tokens import Principal
from interfaces.bootstrap import Services
from interfaces.http.problems import ApiError

logger = structlog.get_logger("tsunagari.http")
PRINTABLE = re.compile(r"^[\x21-\x7e]{1,255}$")
DESK_ID = re.compile(r"^[\x21-\x7e]{1,64}$")

P = ParamSpec("P")
T = TypeVar("T")

bearer = HTTPBearer(
    auto_error=False,
    description="An API token created with `tsunagari token create --role ROLE --name NAME`.",
)


async def get_services(request: Request) -> Services:
    # async: no I/O here, so no hop to the thread pool.
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]


async def get_app(request: Request) -> Tsunagari:
    # From the request, not from ServicesDep: each dependency level FastAPI solves costs the
    # event loop tens of microseconds on every request (bench/README.md).
    app: Tsunagari = request.app.state.services.app
    return app


AppDep = Annotated[Tsunagari, Depends(get_app)]


class CheckInCall(Protocol):
    """``Tsunagari.check_in_async``, or the check-in writer process's ``check_in``."""

    async def __call__(
        self,
        event_id: UUID,
        *,
        participant_id: UUID,
        recorded_by: Provenance,
        idempotency: Idempotency | None = None,
    ) -> Outcome[CheckInView]: ...


async def get_check_in(request: Request) -> CheckInCall:
    """Where this server's check-ins are written (set at start-up: ``create_app``)."""
    check_in: CheckInCall = request.app.state.check_in
    return check_in


CheckInDep = Annotated[CheckInCall, Depends(get_check_in)]

Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]


async def authenticate(
    request: Request, credentials: HTTPAuthorizationCredentials | None
) -> Principal:
    """The token's principal, or 401. A plain coroutine called by ``Allow`` and
    ``AllowCommand`` rather than a dependency of theirs: one level fewer to solve."""
    challenge = {"WWW-Authenticate": 'Bearer realm="tsunagari"'}
    if credentials is None:
        logger.info("authentication failed", reason="no bearer token", path=request.url.path)
        raise ApiError(
            401,
            "unauthenticated",
            "Authentication required",
            "Send an API token as 'Authorization: Bearer <token>'.",
            challenge,
        )
    tokens = request.app.state.services.tokens
    # A token checked moments ago is answered from memory, on the event loop; otherwise the
    # store is asked from a worker thread, so a slow database never stalls the loop.
    principal: Principal | None = tokens.recently_checked(credentials.credentials)
    if principal is None:
        principal = await run_in_threadpool(tokens.authenticate, credentials.credentials)
    if principal is None:
        # Never log the token itself: only that it failed, and where.
        logger.info(
            "authentication failed", reason="unknown or revoked token", path=request.url.path
        )
        raise ApiError(
            401,
            "unauthenticated",
            "Authentication required",
            "The API token is unknown or was revoked.",
            challenge,
        )
    return principal


_READERS = ThreadPoolExecutor(max_workers=4, thread_name_prefix="tsunagari-read")
"""Threads for the reads of one aggregate (GET /events/{id} and the like). Four rather than
the 40 of the framework's pool: 16 desks' reads in 16 threads spent their time handing the
interpreter to each other (GET /events/{id} ~15 % faster on SQLite, bench/README.md)."""


async def read_in_thread(read: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """``read(*args, **kwargs)`` in a reader thread, with this request's context (its log
    lines keep the request id), so the store is never waited for on the event loop."""
    context = contextvars.copy_context()
    call = functools.partial(context.run, read, *args, **kwargs)
    return await asyncio.get_running_loop().run_in_executor(_READERS, call)


def _ensure_role(principal: Principal, roles: frozenset[Role]) -> None:
    if principal.role not in roles:
        allowed = ", ".join(sorted(role.value for role in roles))
        raise ApiError(
            403,
            "forbidden",
            "Forbidden",
            f"Role {principal.role.value!r} may not do this; allowed roles: {allowed}.",
        )


class Allow:
    """A reader with one of the given roles."""

    def __init__(self, roles: frozenset[Role]) -> None:
        self.roles = roles

    async def __call__(self, request: Request, credentials: Credentials) -> Principal:
        principal = await authenticate(request, credentials)
        _ensure_role(principal, self.roles)
        return principal


@dataclass(frozen=True)
class Actor:
    """A writer: who they are, the provenance every event records, and their idempotency key."""

    principal: Principal
    provenance: Provenance
    idempotency: Idempotency | None


class AllowCommand:
    """A writer with one of the given roles, with X-Desk-Id and Idempotency-Key read."""

    def __init__(self, roles: frozenset[Role]) -> None:
        self.roles = roles

    async def __call__(self, request: Request) -> Actor:
        # The token and both headers are read here rather than declared as parameters for
        # FastAPI to solve: every command paid ~50 µs of event-loop CPU for that (two header
        # parameters and the bearer dependency). ApiRoute documents them in OpenAPI as
        # FastAPI did (COMMAND_OPENAPI).
        credentials = await bearer(request)
        headers = request.headers
        x_desk_id = headers.get("x-desk-id")
        idempotency_key = headers.get("idempotency-key")
        principal = await authenticate(request, credentials)
        _ensure_role(principal, self.roles)
        if x_desk_id is not None and not DESK_ID.match(x_desk_id):
            raise ApiError(
                400,
                "bad-header",
                "Bad header",
                "X-Desk-Id must be 1–64 printable ASCII characters.",
            )
        idempotency = None
        if idempotency_key is not None:
            if not PRINTABLE.match(idempotency_key):
                raise ApiError(
                    400,
                    "bad-header",
                    "Bad header",
                    "Idempotency-Key must be 1–255 printable ASCII characters.",
                )
            body = await request.body()
            idempotency = Idempotency(
                scope=str(principal.token_id),
                key=idempotency_key,
                fingerprint=fingerprint(request.method, _url_path(request), body),
            )
        provenance = Provenance(
            actor_id=str(principal.token_id),
            actor_role=principal.role,
            desk_id=x_desk_id,
            request_id=getattr(request.state, "request_id", None),
        )
        return Actor(principal, provenance, idempotency)


def _header_parameter(name: str, title: str, description: str) -> dict[str, Any]:
    """An optional string header in OpenAPI, as FastAPI writes ``Header()`` parameters."""
    schema = {"anyOf": [{"type": "string"}, {"type": "null"}], "description": description}
    return {
        "name": name,
        "in": "header",
        "required": False,
        "schema": {**schema, "title": title},
        "description": description,
    }


COMMAND_OPENAPI: dict[str, Any] = {
    "security": [{"HTTPBearer": []}],
    "parameters": [
        _header_parameter(
            "x-desk-id",
            "X-Desk-Id",
            "The desk or device recording this, kept with every event.",
        ),
        _header_parameter(
            "idempotency-key",
            "Idempotency-Key",
            "Retry-safe key: the same key with the same body replays the first answer and "
            "has one effect; with another body it is refused (422).",
        ),
    ],
}
"""What a command's operation says of the token and headers ``AllowCommand`` reads itself:
the same security requirement and parameters FastAPI wrote when they were declared."""


class ApiRoute(APIRoute):
    """The routes of this API. A command's (a route depending on ``AllowCommand``) gets
    COMMAND_OPENAPI added to its operation, after its path parameters as before."""

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        super().__init__(path, endpoint, **kwargs)
        if not any(isinstance(sub.call, AllowCommand) for sub in self.dependant.dependencies):
            return
        extra = self.openapi_extra or {}
        documented = {parameter.get("name") for parameter in extra.get("parameters", [])}
        if "x-desk-id" not in documented:  # not already added (a route copied on inclusion)
            merged = copy.deepcopy(COMMAND_OPENAPI)
            deep_dict_update(merged, extra)
            self.openapi_extra = merged


def _url_path(request: Request) -> str:
    """``request.url.path`` without building the URL (parsing the Host header, joining and
    splitting the URL): about 10 µs of every command. The two are the same string unless the
    path holds a character the URL escapes; then the URL's, as fingerprints always used."""
    path: str = request.scope["path"]
    if "?" in path or "#" in path or "\\" in path:
        return request.url.path
    return path


def fingerprint(method: str, path: str, body: bytes) -> str:
    """Same request, same fingerprint, whatever the JSON's key order or spacing."""
    try:
        parsed = json.loads(body)
    except ValueError:
        return _fingerprint(method, path, body)
    return fingerprint_of_json(method, path, parsed)


def fingerprint_of_json(method: str, path: str, parsed: object) -> str:
    """``fingerprint`` of a body already parsed from JSON."""
    canonical = json.dumps(parsed, sort_keys=True, separators=(",", ":")).encode()
    return _fingerprint(method, path, canonical)


def _fingerprint(method: str, path: str, canonical: bytes) -> str:
    return hashlib.sha256(f"{method} {path}\n".encode() + canonical).hexdigest()
