"""What queries and commands answer: typed, JSON-ready views of the aggregates."""

from __future__ import annotations

from datetime import date, datetime
from enum import Enum
from typing import Any, ClassVar
from uuid import UUID

from pydantic import BaseModel, ConfigDict

from domain.attendance import Attendance, WalkInTally
from domain.events import Event
from domain.fiscal import fiscal_year_label, fiscal_year_of
from domain.generations import BandScheme
from domain.organizations import ORGANIZATION_KIND_NAMES, Organization
from domain.participants import Participant, PersonalData
from domain.programs import AREA_NAMES, POLICY_NAMES, Program


class View(BaseModel):
    model_config = ConfigDict(frozen=True)


def example(**answer: Any) -> ConfigDict:
    """A view's configuration with one example answer, for the OpenAPI document: the ids are
    those of one story (an organisation's programme, its event, a resident checked in)."""
    return ConfigDict(frozen=True, json_schema_extra={"examples": [answer]})


EXAMPLE_ORGANIZATION = "0b6f2a4e-5c1d-4d8a-9f3e-2a7c1b9d4e61"
EXAMPLE_PROGRAM = "5e2c8d71-3a94-4f0b-8c6e-9d1a2b3c4f50"
EXAMPLE_EVENT = "8f14e45f-ceea-467f-a0e6-1d2c3b4a5f60"
EXAMPLE_PARTICIPANT = "c9bf9e57-1685-4c89-bafb-ff5af830be8a"
EXAMPLE_TALLY = "3f2a1b0c-9d8e-4f7a-b6c5-d4e3f2a1b0c9"


class OrganizationView(View):
    model_config = example(
        id=EXAMPLE_ORGANIZATION,
        name="菅地区社会福祉協議会",
        kind="social_welfare_council",
        kind_name_ja="社会福祉協議会",
        district_id="suge",
        registered_at="2026-04-01T00:30:00Z",
    )

    id: UUID
    name: str
    kind: str
    kind_name_ja: str
    district_id: str | None
    registered_at: datetime

    @classmethod
    def of(cls, organization: Organization) -> OrganizationView:
        return cls(
            id=organization.id,
            name=organization.name,
            kind=organization.kind.value,
            kind_name_ja=ORGANIZATION_KIND_NAMES[organization.kind],
            district_id=organization.district_id,
            registered_at=organization.created_on,
        )


class ProgramView(View):
    model_config = example(
        id=EXAMPLE_PROGRAM,
        name="地ケアつながりプロジェクト～TeamSUGE～",
        policy="2-2",
        policy_name_ja="身近な地域での支え合い活動の推進",
        area="community",
        area_name_ja="地域・防災・暮らし",
        host_organization_ids=[EXAMPLE_ORGANIZATION],
        launched_at="2026-04-01T00:35:00Z",
    )

    id: UUID
    name: str
    policy: str
    policy_name_ja: str
    area: str
    area_name_ja: str
    host_organization_ids: list[UUID]
    launched_at: datetime

    @classmethod
    def of(cls, program: Program) -> ProgramView:
        return cls(
            id=program.id,
            name=program.name,
            policy=program.policy.value,
            policy_name_ja=POLICY_NAMES[program.policy],
            area=program.area.value,
            area_name_ja=AREA_NAMES[program.area],
            host_organization_ids=program.host_organization_ids,
            launched_at=program.created_on,
        )


class EventView(View):
    model_config = example(
        id=EXAMPLE_EVENT,
        program_id=EXAMPLE_PROGRAM,
        title="TeamSUGE 現地ツアー",
        starts_at="2026-06-14T10:00:00+09:00",
        ends_at="2026-06-14T12:00:00+09:00",
        local_date="2026-06-14",
        fiscal_year=2026,
        fiscal_year_label="2026(令和8)年度",
        district_id="suge",
        venue="菅こども文化センター",
        status="scheduled",
        cancellation_reason=None,
    )

    id: UUID
    program_id: UUID
    title: str
    starts_at: datetime
    ends_at: datetime | None
    local_date: date
    fiscal_year: int
    fiscal_year_label: str
    district_id: str
    venue: str | None
    status: str
    cancellation_reason: str | None

    @classmethod
    def of(cls, event: Event) -> EventView:
        fiscal_year = fiscal_year_of(event.local_date)
        return cls(
            id=event.id,
            program_id=event.program_id,
            title=event.title,
            starts_at=event.starts_at,
            ends_at=event.ends_at,
            local_date=event.local_date,
            fiscal_year=fiscal_year,
            fiscal_year_label=fiscal_year_label(fiscal_year),
            district_id=event.district_id,
            venue=event.venue,
            status=event.status.value,
            cancellation_reason=event.cancellation_reason,
        )


class SensitiveDataView(View):
    """要配慮個人情報 in use: recorded under a consent that still stands."""

    purpose: str
    category: str
    detail: str | None


class PersonalDataState(Enum):
    """Whether a participant's personal data can be read here."""

    AVAILABLE = "available"
    ERASED = "erased"
    """Its key was destroyed (消去): gone for good."""
    UNAVAILABLE = "unavailable"
    """Sealed with a key this store does not hold (an auditor's copy made by
    ``tsunagari audit import``), or known only from an answer stored before it was sealed."""


class ParticipantView(View):
    """A participant as the desk sees it; personal fields are null unless ``personal_data`` is
    available (erased, or unavailable in this store)."""

    model_config = example(
        id=EXAMPLE_PARTICIPANT,
        birth_year=1948,
        band_id="old_old",
        group="senior",
        district_id="suge",
        name="多摩 花子",
        contact="044-000-0000",
        birth_date="1948-03-09",
        registered_on="2026-06-14",
        erased=False,
        personal_data="available",
        consents=["合理的配慮の提供"],
        sensitive_data=[
            {"purpose": "合理的配慮の提供", "category": "disability", "detail": "車いすを使用"}
        ],
    )

    SEALED: ClassVar[tuple[str, ...]] = ("name", "contact", "birth_date", "sensitive_data")
    """Fields stored only sealed with the participant's key (e.g. in replayable answers)."""
    ERASED: ClassVar[dict[str, Any]] = {
        "name": None,
        "contact": None,
        "birth_date": None,
        "sensitive_data": [],
    }

    id: UUID
    birth_year: int | None
    band_id: str
    group: str
    district_id: str
    name: str | None
    contact: str | None
    birth_date: date | None
    registered_on: date
    erased: bool
    personal_data: PersonalDataState
    consents: list[str]
    """Purposes the participant currently consents to."""
    sensitive_data: list[SensitiveDataView]

    @classmethod
    def of(
        cls,
        participant: Participant,
        bands: BandScheme,
        today: date,
        personal: PersonalData,
        sensitive: list[SensitiveDataView],
        *,
        unavailable: bool = False,
    ) -> ParticipantView:
        """``unavailable``: the participant's sealed data cannot be opened in this store."""
        if participant.erased:
            state = PersonalDataState.ERASED
        elif unavailable:
            state = PersonalDataState.UNAVAILABLE
        else:
            state = PersonalDataState.AVAILABLE
        band = bands.band_on(today, birth_year=participant.birth_year, band_id=participant.band_id)
        return cls(
            id=participant.id,
            birth_year=participant.birth_year,
            band_id=band.id,
            group=band.group.value,
            district_id=participant.district_id,
            name=personal.name,
            contact=personal.contact,
            birth_date=personal.birth_date,
            registered_on=participant.registered_on,
            erased=participant.erased,
            personal_data=state,
            consents=participant.consents.current(),
            sensitive_data=sensitive,
        )


class AttendanceStatus(Enum):
    CHECKED_IN = "checked_in"
    REVERTED = "reverted"


class CheckInView(View):
    model_config = example(
        event_id=EXAMPLE_EVENT,
        participant_id=EXAMPLE_PARTICIPANT,
        status="checked_in",
        band_id="old_old",
        group="senior",
        recorded_at="2026-06-14T01:02:03.456789Z",
        revert_reason=None,
    )

    event_id: UUID
    participant_id: UUID
    status: AttendanceStatus
    band_id: str
    group: str
    recorded_at: datetime
    revert_reason: str | None

    @classmethod
    def of(
        cls, attendance: Attendance, event: Event, participant: Participant, bands: BandScheme
    ) -> CheckInView:
        band = bands.band_on(
            event.local_date, birth_year=participant.birth_year, band_id=participant.band_id
        )
        return cls(
            event_id=attendance.event_id,
            participant_id=attendance.participant_id,
            status=AttendanceStatus.CHECKED_IN if attendance.counted else AttendanceStatus.REVERTED,
            band_id=band.id,
            group=band.group.value,
            recorded_at=attendance.modified_on,
            revert_reason=attendance.revert_reason,
        )


class WalkInView(View):
    model_config = example(
        id=EXAMPLE_TALLY,
        event_id=EXAMPLE_EVENT,
        counts={"infant": 4, "adult": 3, "young_old": 2},
        total=9,
        counted=True,
        recorded_at="2026-06-14T01:30:00Z",
        revert_reason=None,
    )

    id: UUID
    event_id: UUID
    counts: dict[str, int]
    total: int
    counted: bool
    recorded_at: datetime
    revert_reason: str | None

    @classmethod
    def of(cls, tally: WalkInTally) -> WalkInView:
        return cls(
            id=tally.id,
            event_id=tally.event_id,
            counts=tally.counts,
            total=tally.total,
            counted=tally.counted,
            recorded_at=tally.modified_on,
            revert_reason=tally.revert_reason,
        )
