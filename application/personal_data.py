"""Opening a participant's sealed personal data, and the disclosure (開示) of all that is held.

Only the commands and queries that show personal data open envelopes: check-ins never need a
participant's key. Once a key is destroyed (erasure) nothing it sealed can be read again, and
every view shows the personal fields as erased.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import date, datetime
from enum import Enum
from typing import Any
from uuid import UUID

from pydantic import BaseModel, Field

from application.ports import ParticipantKeys, Sealer
from application.views import (
    EXAMPLE_EVENT,
    EXAMPLE_PARTICIPANT,
    AttendanceStatus,
    ParticipantView,
    SensitiveDataView,
    View,
)
from domain.generations import BandScheme
from domain.participants import Participant, PersonalData, SensitiveRecord, legacy_content
from domain.provenance import Provenance

ERASED = "[erased]"
"""What a sealed field reads as once its key is destroyed."""
UNAVAILABLE = "[unavailable]"
"""What a sealed field reads as in a store that never held its key (an imported copy)."""
_EVENT_META = {"originator_id", "originator_version", "timestamp", "originator_topic"}


Opener = Callable[[str], "dict[str, Any] | None"]


def open_envelope(sealer: Sealer | None, envelope: str) -> dict[str, Any] | None:
    """The content of an envelope, or None when its key is gone."""
    legacy = legacy_content(envelope)
    if legacy is not None:
        return legacy
    return sealer.open(envelope) if sealer is not None else None


class PersonalDataReader:
    """Opens what the log holds sealed for one participant."""

    def __init__(self, keys: ParticipantKeys) -> None:
        self.keys = keys

    def sealer(self, participant: Participant) -> Sealer | None:
        """The participant's key; None once erased."""
        return None if participant.erased else self.keys.find(participant.id)

    @staticmethod
    def unavailable(participant: Participant, sealer: Sealer | None) -> bool:
        """Sealed data without its key, though never erased: a store imported from an export,
        which by design carries no keys."""
        return not participant.erased and sealer is None and participant.holds_sealed_data()

    @classmethod
    def missing(cls, participant: Participant, sealer: Sealer | None) -> str:
        """What an envelope that cannot be opened reads as."""
        return UNAVAILABLE if cls.unavailable(participant, sealer) else ERASED

    def opener(self, participant: Participant, sealer: Sealer | None) -> Opener:
        """Opens this participant's envelopes; nothing opens once it was erased, not even the
        unsealed ones of version-1 events."""

        def open_one(envelope: str) -> dict[str, Any] | None:
            return None if participant.erased else open_envelope(sealer, envelope)

        return open_one

    def personal(self, participant: Participant, sealer: Sealer | None) -> PersonalData:
        """The current personal data: registration, then each correction in order."""
        personal = PersonalData()
        if participant.erased:
            return personal
        for envelope in participant.personal_envelopes:
            content = open_envelope(sealer, envelope)
            if content is not None:
                personal = personal.updated(content)
        return personal

    def sensitive(
        self, participant: Participant, sealer: Sealer | None
    ) -> list[tuple[SensitiveRecord, dict[str, Any]]]:
        if participant.erased:
            return []
        opened = []
        for record in participant.sensitive:
            content = open_envelope(sealer, record.envelope)
            if content is not None:
                opened.append((record, content))
        return opened

    def view(self, participant: Participant, bands: BandScheme, today: date) -> ParticipantView:
        """What the desk sees: personal data decrypted, sensitive data only while in use."""
        sealer = self.sealer(participant)
        in_use = [
            SensitiveDataView(
                purpose=record.purpose, category=content["category"], detail=content["detail"]
            )
            for record, content in self.sensitive(participant, sealer)
            if record.in_use
        ]
        return ParticipantView.of(
            participant,
            bands,
            today,
            self.personal(participant, sealer),
            in_use,
            unavailable=self.unavailable(participant, sealer),
        )


class ProvenanceView(BaseModel):
    actor_id: str
    actor_role: str
    desk_id: str | None
    request_id: str | None

    @classmethod
    def of(cls, provenance: Provenance) -> ProvenanceView:
        return cls(
            actor_id=provenance.actor_id,
            actor_role=provenance.actor_role.value,
            desk_id=provenance.desk_id,
            request_id=provenance.request_id,
        )


class HistoryEntry(View):
    """One stored event: what it recorded, when, by whom; sealed parts opened (or erased)."""

    version: int
    type: str
    recorded_at: datetime
    recorded_by: ProvenanceView | None
    details: dict[str, Any]


class SensitiveDisclosure(View):
    purpose: str
    category: str
    detail: str | None
    in_use: bool
    """False once the consent it was recorded under was withdrawn: shown here only."""
    version: int


class AttendanceDisclosure(View):
    event_id: UUID
    title: str | None
    local_date: date | None
    status: AttendanceStatus
    history: list[HistoryEntry]


_EXAMPLE_BY = {
    "actor_id": "1c0e5a52-7d3f-4b8e-9a61-0f2d3c4b5a69",
    "actor_role": "desk",
    "desk_id": "suge-tablet-2",
    "request_id": "0b132f3d424a4a528ea279d5eb317ced",
}


class DisclosureView(View):
    """開示: everything held on one participant."""

    participant: ParticipantView
    erased: bool = Field(examples=[False])
    erasure_reason: str | None = Field(examples=[None])
    sensitive_data: list[SensitiveDisclosure] = Field(
        examples=[
            [
                {
                    "purpose": "合理的配慮の提供",
                    "category": "disability",
                    "detail": "車いすを使用",
                    "in_use": True,
                    "version": 3,
                }
            ]
        ]
    )
    history: list[HistoryEntry] = Field(
        examples=[
            [
                {
                    "version": 1,
                    "type": "Participant.Registered",
                    "recorded_at": "2026-06-14T00:55:00Z",
                    "recorded_by": _EXAMPLE_BY,
                    "details": {
                        "birth_year": 1948,
                        "band_id": None,
                        "district_id": "suge",
                        "personal": {
                            "birth_date": "1948-03-09",
                            "contact": "044-000-0000",
                            "name": "多摩 花子",
                        },
                        "registered_on": "2026-06-14",
                    },
                }
            ]
        ]
    )
    attendance: list[AttendanceDisclosure] = Field(
        examples=[
            [
                {
                    "event_id": EXAMPLE_EVENT,
                    "title": "TeamSUGE 現地ツアー",
                    "local_date": "2026-06-14",
                    "status": "checked_in",
                    "history": [
                        {
                            "version": 1,
                            "type": "Attendance.CheckedIn",
                            "recorded_at": "2026-06-14T01:02:03.456789Z",
                            "recorded_by": _EXAMPLE_BY,
                            "details": {
                                "event_id": EXAMPLE_EVENT,
                                "participant_id": EXAMPLE_PARTICIPANT,
                            },
                        }
                    ],
                }
            ]
        ]
    )


def _jsonable(value: Any) -> Any:
    if isinstance(value, date | datetime):
        return value.isoformat()
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, list | tuple):
        return [_jsonable(item) for item in value]
    if isinstance(value, dict):
        return {key: _jsonable(item) for key, item in value.items()}
    return value


def history_of(events: Iterable[Any], opener: Opener, missing: str = ERASED) -> list[HistoryEntry]:
    """A stream's stored events as history entries, sealed parts opened when the key allows;
    ``missing`` is what an envelope that cannot be opened reads as."""
    entries = []
    for domain_event in events:
        state = dict(vars(domain_event))
        recorded_by = state.pop("recorded_by", None)
        details: dict[str, Any] = {}
        for name, value in state.items():
            if name in _EVENT_META:
                continue
            if name == "sealed":
                if value is not None:
                    content = opener(value)
                    details["personal"] = missing if content is None else content
                continue
            details[name] = _jsonable(value)
        entries.append(
            HistoryEntry(
                version=domain_event.originator_version,
                type=type(domain_event).__qualname__,
                recorded_at=domain_event.timestamp,
                recorded_by=ProvenanceView.of(recorded_by)
                if isinstance(recorded_by, Provenance)
                else None,
                details=details,
            )
        )
    return entries
