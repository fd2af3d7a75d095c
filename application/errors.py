"""Errors the application raises beside the domain's own (see ``domain.errors``)."""

from __future__ import annotations


class ApplicationError(Exception):
    """Base of the application's refusals."""


class NotFound(ApplicationError):
    """No resource of that kind has that id."""


class IdempotencyKeyReused(ApplicationError):
    """An Idempotency-Key was used before with a different request."""


class TooMuchContention(ApplicationError):
    """Concurrent writers kept changing the same record; the command was not applied."""


class PersonalDataUnavailable(ApplicationError):
    """The participant's personal data is sealed with a key this store does not hold."""
