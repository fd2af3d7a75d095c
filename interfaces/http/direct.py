"""The front desk's check-in answered straight from ASGI, beside FastAPI's route for it.

A check-in is the request this server answers most, 16 desks at once at a festival's gate,
and FastAPI's machinery around it (route matching, dependency solving, the response model's
validation and serialisation) cost the event loop more than half of the request's CPU: the
loop, shared by every request, was what bounded the check-in rate (bench/README.md). Neither
FastAPI nor Starlette have a cheaper way to answer one route, hence this small ASGI layer.

It answers only a check-in that passes, as it stands, every check the route makes: the path's
event id and the body's participant id in canonical UUID form, a token the server checked
moments ago (``TokenStore.recently_checked``) with a front-desk role, a valid X-Desk-Id and
Idempotency-Key, each of these headers and Content-Type at most once, Content-Type
``application/json``, and a body of exactly ``{"participant_id": ...}``.
Anything else goes on, untouched, to FastAPI's route, which stays the documented operation
(OpenAPI) and gives every refusal of the request itself (400, 401, 403, 422) as before. The
command's own errors (404, 409, 503, ...) are answered by the app's exception handlers, as the
route's are; the answer is the route's, byte for byte (tests/http/test_direct_check_in.py).
"""

from __future__ import annotations

import json
import re
from typing import Any
from uuid import UUID

from pydantic import TypeAdapter
from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from application.ports import Idempotency
from application.views import CheckInView
from domain.provenance import Provenance
from interfaces.http.access import FRONT_DESK
from interfaces.http.deps import DESK_ID, PRINTABLE, fingerprint_of_json
from interfaces.http.middleware import replaying

_HEX = "[0-9a-fA-F]"
_UUID = f"{_HEX}{{8}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{12}}"
_PATH = re.compile(f"/events/({_UUID})/check-ins")
_CANONICAL_UUID = re.compile(_UUID)
_HEADERS = (b"authorization", b"x-desk-id", b"idempotency-key", b"content-type")
_VIEW: TypeAdapter[CheckInView] = TypeAdapter(CheckInView)
_JSON = (b"content-type", b"application/json")


class DirectCheckIn:
    """ASGI middleware: ``POST /events/{id}/check-ins`` answered without FastAPI's routing
    when the request is one the route would accept as it is (see the module's text)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope["path"] if scope["type"] == "http" else ""
        if scope.get("method") != "POST" or not path.endswith("/check-ins"):
            await self.app(scope, receive, send)
            return
        match = _PATH.fullmatch(path)
        if match is None or scope.get("query_string"):
            await self.app(scope, receive, send)
            return
        message = await receive()
        command = None
        if message["type"] == "http.request" and not message.get("more_body", False):
            command = _accept(scope, match[1], message.get("body", b""))
        if command is None:
            await self.app(scope, replaying(message, receive), send)
            return
        await _check_in(scope, receive, send, command)


class _Command:
    __slots__ = ("event_id", "idempotency", "participant_id", "provenance")

    def __init__(
        self,
        event_id: UUID,
        participant_id: UUID,
        provenance: Provenance,
        idempotency: Idempotency | None,
    ) -> None:
        self.event_id = event_id
        self.participant_id = participant_id
        self.provenance = provenance
        self.idempotency = idempotency


def _accept(scope: Scope, event_id: str, body: bytes) -> _Command | None:
    """The check-in, when the request passes every check of the route as it is; else None."""
    found: dict[bytes, bytes] = {}
    for name, value in scope["headers"]:
        if name in _HEADERS:
            if name in found:
                return None  # a header twice: which one counts is the route's to say
            found[name] = value
    authorization = found.get(b"authorization", b"").decode("latin-1")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token or token != token.strip():
        return None
    services = scope["app"].state.services
    principal = services.tokens.recently_checked(token)
    if principal is None or principal.role not in FRONT_DESK:
        return None
    desk_id = found.get(b"x-desk-id")
    desk = None if desk_id is None else desk_id.decode("latin-1")
    if desk is not None and not DESK_ID.match(desk):
        return None
    content_type = found.get(b"content-type", b"").split(b";")[0].strip().lower()
    if content_type != b"application/json":
        return None  # FastAPI reads other types its own way (some as JSON, some not)
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):  # the route answers 400 for what will not parse
        return None
    if type(data) is not dict or len(data) != 1:
        return None
    participant = data.get("participant_id")
    if type(participant) is not str or not _CANONICAL_UUID.fullmatch(participant):
        return None
    scope_id = str(principal.token_id)
    key = found.get(b"idempotency-key")
    idempotency = None
    if key is not None:
        idempotency_key = key.decode("latin-1")
        if not PRINTABLE.match(idempotency_key):
            return None
        idempotency = Idempotency(
            scope=scope_id,
            key=idempotency_key,
            fingerprint=fingerprint_of_json("POST", scope["path"], data),
        )
    provenance = Provenance(
        actor_id=scope_id,
        actor_role=principal.role,
        desk_id=desk,
        request_id=scope.get("state", {}).get("request_id"),
    )
    return _Command(UUID(event_id), UUID(participant), provenance, idempotency)


async def _check_in(scope: Scope, receive: Receive, send: Send, command: _Command) -> None:
    fastapi: Any = scope["app"]
    try:
        outcome = await fastapi.state.check_in(
            command.event_id,
            participant_id=command.participant_id,
            recorded_by=command.provenance,
            idempotency=command.idempotency,
        )
    except Exception as error:
        handler = _handler(fastapi, error)
        if handler is None:
            raise  # as from the route: the server-error handler answers it
        response = handler(Request(scope, receive), error)
        if hasattr(response, "__await__"):
            response = await response
        await response(scope, receive, send)
        return
    body = _VIEW.dump_json(outcome.result, by_alias=True)
    headers = [(b"content-length", str(len(body)).encode("latin-1")), _JSON]
    if outcome.created:
        location = f"/events/{command.event_id}/check-ins/{command.participant_id}"
        headers.append((b"location", location.encode("latin-1")))
    if outcome.replayed:
        headers.append((b"idempotent-replayed", b"true"))
    status = 201 if outcome.created else 200
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _handler(fastapi: Any, error: Exception) -> Any:
    """The app's handler for this error, as Starlette's exception middleware looks it up;
    None for the catch-all, which answers from outside the middleware, as for the route."""
    handlers: dict[Any, Any] = fastapi.exception_handlers
    for cls in type(error).__mro__:
        if cls is Exception:
            return None
        if cls in handlers:
            return handlers[cls]
    return None
