"""Who recorded a fact, from where, in which request: carried by every domain event."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class Role(Enum):
    """Roles an API token can have."""

    DESK = "desk"
    COORDINATOR = "coordinator"
    EVALUATOR = "evaluator"
    AUDITOR = "auditor"
    ADMIN = "admin"


@dataclass(frozen=True)
class Provenance:
    """The actor (token id and role), the desk or device, and the request that caused an event."""

    actor_id: str
    actor_role: Role
    desk_id: str | None = None
    request_id: str | None = None
