"""How a command's outcome becomes an HTTP answer."""

from __future__ import annotations

from typing import TypeVar

from fastapi import Response

from application.app import Outcome
from application.views import View

V = TypeVar("V", bound=View)


def answer(response: Response, outcome: Outcome[V], *, location: str | None = None) -> V:
    """201 when the command created something, else 200; replays answer as the first time."""
    response.status_code = 201 if outcome.created else 200
    if outcome.created and location is not None:
        response.headers["Location"] = location
    if outcome.replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return outcome.result
