"""Named domain errors. Each says what a person can do about it."""

from __future__ import annotations


class DomainError(Exception):
    """Base of every rule the domain refuses to break."""


class InvalidValue(DomainError):
    """A value is outside what the domain accepts (an unknown band, a future birth year...)."""


class UnknownReference(InvalidValue):
    """An identifier does not name an entry of a reference table (district, band...)."""


class EventNotOpen(DomainError):
    """The event is cancelled or closed, so it takes no more attendance."""


class EventNotScheduled(DomainError):
    """The event can no longer be rescheduled, cancelled or closed in its current state."""


class NotCheckedIn(DomainError):
    """There is no counted check-in to revert."""


class ParticipantErased(DomainError):
    """The participant's personal data was erased: nothing personal can be added any more."""


class NoConsent(DomainError):
    """要配慮個人情報 needs the participant's current consent for the purpose."""
