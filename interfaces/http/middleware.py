"""Pure ASGI middleware: request ids and access logs, and a cap on request bodies."""

from __future__ import annotations

import logging
import re
import time
import uuid

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from interfaces.http.problems import problem_response

logger = structlog.get_logger("tsunagari.http")
REQUEST_ID_HEADER = b"x-request-id"
_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")


class RequestContextMiddleware:
    """Binds a request id (the client's X-Request-Id if sane, else a new one) for the request.

    Every log line written while serving carries it; the response returns it in X-Request-Id.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = dict(scope["headers"]).get(REQUEST_ID_HEADER, b"").decode("latin-1")
        request_id = given if _VALID_REQUEST_ID.match(given) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        status = 500
        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", []))
                headers.append((REQUEST_ID_HEADER, request_id.encode("latin-1")))
                message = {**message, "headers": headers}
            await send(message)

        structlog.contextvars.bind_contextvars(request_id=request_id)
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            # Asked first: at WARNING, a busy server's level, nothing is built for the line.
            if logger.is_enabled_for(logging.INFO):
                logger.info(
                    "request",
                    method=scope["method"],
                    path=scope["path"],
                    status=status,
                    duration_ms=round((time.perf_counter() - started) * 1000, 2),
                )
            structlog.contextvars.unbind_contextvars("request_id")


class RequestBodyMiddleware:
    """Refuses bodies over a size (413) or not sent as JSON (415), before they reach a route."""

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in {"GET", "HEAD", "OPTIONS"}:
            await self.app(scope, receive, send)
            return
        declared = _first(scope, b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(scope, send)
            return
        # Bodies here are small JSON documents: read all of it, then hand it on.
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await self._refuse(scope, send)
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        body = b"".join(chunks)
        content_type = (_first(scope, b"content-type") or b"").decode("latin-1")
        media_type = content_type.split(";")[0].strip().lower()
        if body and not (media_type == "application/json" or media_type.endswith("+json")):
            response = problem_response(
                None,
                status=415,
                slug="unsupported-media-type",
                title="Unsupported media type",
                detail=f"Send the body as application/json, not {media_type or 'untyped'}.",
                path=scope["path"],
                request_id=scope.get("state", {}).get("request_id"),
            )
            await response(scope, _no_receive, send)
            return
        whole = {"type": "http.request", "body": body, "more_body": False}
        await self.app(scope, replaying(whole, receive), send)

    async def _refuse(self, scope: Scope, send: Send) -> None:
        response = problem_response(
            None,
            status=413,
            slug="body-too-large",
            title="Request body too large",
            detail=f"The request body is over {self.max_bytes} bytes; send less.",
            path=scope["path"],
            request_id=scope.get("state", {}).get("request_id"),
        )
        await response(scope, _no_receive, send)


def replaying(first: Message, receive: Receive) -> Receive:
    """``receive`` that gives ``first`` (a message already read) before the rest."""
    delivered = False

    async def replay() -> Message:
        nonlocal delivered
        if delivered:
            return await receive()
        delivered = True
        return first

    return replay


def _first(scope: Scope, name: bytes) -> bytes | None:
    """A request header's first value, the one Starlette's ``Request.headers`` gives."""
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value)
    return None


async def _no_receive() -> Message:
    return {"type": "http.disconnect"}
