"""JSON transcodings for what domain events carry beyond UUID, Decimal and datetime.

Registered before anything is saved: an unregistered type fails only at save time, after the
in-memory aggregate has already changed.
"""

from __future__ import annotations

from datetime import date
from enum import Enum
from typing import Any

from eventsourcing.persistence import JSONTranscoder, Transcoding

from domain.organizations import OrganizationKind
from domain.programs import Policy, ProgramArea
from domain.provenance import Provenance, Role


class DateAsISO(Transcoding):
    type = date
    name = "date_iso"

    def encode(self, obj: date) -> str:
        return obj.isoformat()

    def decode(self, data: str) -> date:
        return date.fromisoformat(data)


class EnumAsValue(Transcoding):
    """One transcoding per Enum class, named after it so stored events say what they hold."""

    def __init__(self, enum_type: type[Enum]) -> None:
        self.type = enum_type
        self.name = enum_type.__name__

    def encode(self, obj: Enum) -> Any:
        return obj.value

    def decode(self, data: Any) -> Enum:
        member: Enum = self.type(data)
        return member


class ProvenanceAsDict(Transcoding):
    type = Provenance
    name = "provenance"

    def encode(self, obj: Provenance) -> dict[str, Any]:
        return {
            "actor_id": obj.actor_id,
            "actor_role": obj.actor_role,
            "desk_id": obj.desk_id,
            "request_id": obj.request_id,
        }

    def decode(self, data: dict[str, Any]) -> Provenance:
        return Provenance(**data)


ENUMS_IN_EVENTS: tuple[type[Enum], ...] = (Role, OrganizationKind, Policy, ProgramArea)


def register_domain_transcodings(transcoder: JSONTranscoder) -> None:
    transcoder.register(DateAsISO())
    transcoder.register(ProvenanceAsDict())
    for enum_type in ENUMS_IN_EVENTS:
        transcoder.register(EnumAsValue(enum_type))
