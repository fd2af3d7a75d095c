"""Errors as RFC 9457 problem details (``application/problem+json``), one handler for all."""

from __future__ import annotations

from typing import Any

import structlog
from eventsourcing.persistence import OperationalError
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from application.errors import (
    IdempotencyKeyReused,
    NotFound,
    PersonalDataUnavailable,
    TooMuchContention,
)
from domain.errors import (
    DomainError,
    EventNotOpen,
    EventNotScheduled,
    InvalidValue,
    NoConsent,
    NotCheckedIn,
    ParticipantErased,
)

PROBLEM_MEDIA_TYPE = "application/problem+json"
logger = structlog.get_logger("tsunagari.http")


class Problem(BaseModel):
    """What every error answers."""

    type: str = Field(examples=["/problems/event-not-open"])
    title: str = Field(examples=["The event takes no attendance"])
    status: int = Field(examples=[409])
    detail: str = Field(examples=["event 6f1c… was cancelled: it takes no attendance"])
    instance: str = Field(examples=["/events/6f1c…/check-ins"])
    request_id: str | None = None
    errors: list[dict[str, Any]] | None = None


class ApiError(Exception):
    """An error raised by the HTTP layer itself (authentication, headers)."""

    def __init__(
        self,
        status: int,
        slug: str,
        title: str,
        detail: str,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.slug = slug
        self.title = title
        self.detail = detail
        self.headers = headers or {}


# The most specific class wins: the table is searched along each error's MRO.
DOMAIN_PROBLEMS: dict[type[Exception], tuple[int, str, str]] = {
    NotFound: (404, "not-found", "No such resource"),
    IdempotencyKeyReused: (422, "idempotency-key-reused", "Idempotency-Key reused"),
    TooMuchContention: (503, "contention", "Too many concurrent changes"),
    EventNotOpen: (409, "event-not-open", "The event takes no attendance"),
    EventNotScheduled: (409, "event-not-scheduled", "The event is no longer scheduled"),
    NotCheckedIn: (409, "not-checked-in", "Nothing to revert"),
    NoConsent: (409, "no-consent", "No current consent for this purpose"),
    ParticipantErased: (409, "participant-erased", "The participant's personal data was erased"),
    PersonalDataUnavailable: (
        409,
        "personal-data-unavailable",
        "The participant's personal data is not held in this store",
    ),
    InvalidValue: (422, "invalid-value", "Invalid value"),
    DomainError: (422, "domain-rule", "Refused by a domain rule"),
}

STATUS_TITLES = {
    400: "Bad request",
    401: "Authentication required",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    413: "Request body too large",
    415: "Unsupported media type",
    422: "Invalid request",
    503: "Service unavailable",
}


def problem_response(
    request: Request | None,
    *,
    status: int,
    slug: str,
    title: str,
    detail: str,
    errors: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
    path: str = "",
    request_id: str | None = None,
) -> JSONResponse:
    if request is not None:
        path = request.url.path
        request_id = getattr(request.state, "request_id", None)
    body = Problem(
        type=f"/problems/{slug}",
        title=title,
        status=status,
        detail=detail,
        instance=path,
        request_id=request_id,
        errors=errors,
    )
    return JSONResponse(
        body.model_dump(exclude_none=True),
        status_code=status,
        media_type=PROBLEM_MEDIA_TYPE,
        headers=headers,
    )


def _known_error(request: Request, error: Exception) -> JSONResponse:
    for cls in type(error).__mro__:
        if cls in DOMAIN_PROBLEMS:
            status, slug, title = DOMAIN_PROBLEMS[cls]
            headers = {"Retry-After": "1"} if status == 503 else None
            return problem_response(
                request, status=status, slug=slug, title=title, detail=str(error), headers=headers
            )
    raise error  # pragma: no cover - handlers are only registered for mapped classes


def _api_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, ApiError)  # noqa: S101 - registered for ApiError only
    return problem_response(
        request,
        status=error.status,
        slug=error.slug,
        title=error.title,
        detail=error.detail,
        headers=error.headers,
    )


def _validation_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, RequestValidationError)  # noqa: S101
    errors = [
        {
            "location": [str(part) for part in item.get("loc", ())],
            "message": item.get("msg", ""),
            "type": item.get("type", ""),
        }
        for item in error.errors()
    ]
    if any(item["type"] == "json_invalid" for item in errors):
        return problem_response(
            request,
            status=400,
            slug="malformed-json",
            title="Malformed JSON",
            detail="The request body is not valid JSON: " + errors[0]["message"],
            errors=errors,
        )
    summary = "; ".join(
        f"{'.'.join(e['location'][1:]) or e['location'][0]}: {e['message']}" for e in errors
    )
    return problem_response(
        request,
        status=422,
        slug="validation",
        title="Invalid request",
        detail=summary,
        errors=errors,
    )


_UNPARSED_BODY = "There was an error parsing the body"
"""FastAPI's 400 for a JSON body its parser gave up on before pydantic saw it: bytes that are
not UTF-8, or nesting deeper than Python's recursion limit."""


def _http_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, StarletteHTTPException)  # noqa: S101
    status = error.status_code
    if status == 400 and error.detail == _UNPARSED_BODY:
        return problem_response(
            request,
            status=400,
            slug="malformed-json",
            title="Malformed JSON",
            detail="The request body is not valid JSON this server can read: send UTF-8 "
            "text, nested fewer than 900 levels deep",
        )
    detail = error.detail if isinstance(error.detail, str) else STATUS_TITLES.get(status, "")
    return problem_response(
        request,
        status=status,
        slug=STATUS_TITLES.get(status, "http-error").lower().replace(" ", "-"),
        title=STATUS_TITLES.get(status, "HTTP error"),
        detail=detail,
        headers=dict(error.headers or {}),
    )


def _unavailable(request: Request, error: Exception) -> JSONResponse:
    logger.warning("database unavailable", error=str(error))
    return problem_response(
        request,
        status=503,
        slug="database-unavailable",
        title="Database unavailable",
        detail="The database did not answer in time; nothing was recorded. Retry shortly.",
        headers={"Retry-After": "1"},
    )


def _unexpected(request: Request, error: Exception) -> JSONResponse:
    logger.exception("unhandled error", exc_info=error)
    return problem_response(
        request,
        status=500,
        slug="internal",
        title="Internal error",
        detail="Something went wrong on our side; quote the request id when reporting it.",
    )


def install_problem_handlers(app: FastAPI) -> None:
    for cls in DOMAIN_PROBLEMS:
        app.add_exception_handler(cls, _known_error)
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(OperationalError, _unavailable)
    app.add_exception_handler(Exception, _unexpected)


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses=`` entries for the given error statuses."""
    return {
        status: {
            "model": Problem,
            "description": STATUS_TITLES.get(status, "Error"),
            "content": {PROBLEM_MEDIA_TYPE: {}},
        }
        for status in statuses
    }
