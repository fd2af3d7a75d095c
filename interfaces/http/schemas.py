"""Request bodies and list answers. Single resources answer with the application's views."""

from __future__ import annotations

from datetime import date, datetime
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from application.views import (
    EXAMPLE_EVENT,
    EXAMPLE_ORGANIZATION,
    EXAMPLE_PARTICIPANT,
    EXAMPLE_PROGRAM,
    EXAMPLE_TALLY,
)
from domain.attendance import MAX_WALK_INS_PER_BAND
from domain.organizations import OrganizationKind
from domain.programs import MAX_HOSTS, Policy, ProgramArea


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class OrganizationIn(Body):
    name: str = Field(min_length=1, max_length=200, examples=["菅地区社会福祉協議会"])
    kind: OrganizationKind = Field(examples=["social_welfare_council"])
    district_id: str | None = Field(None, max_length=50, examples=["suge"])


class ProgramIn(Body):
    name: str = Field(
        min_length=1, max_length=200, examples=["地ケアつながりプロジェクト～TeamSUGE～"]
    )
    policy: Policy = Field(examples=["2-2"])
    area: ProgramArea = Field(examples=["community"])
    host_organization_ids: list[UUID] = Field(
        min_length=1, max_length=MAX_HOSTS, examples=[[EXAMPLE_ORGANIZATION]]
    )


class EventIn(Body):
    program_id: UUID = Field(examples=[EXAMPLE_PROGRAM])
    title: str = Field(min_length=1, max_length=200, examples=["TeamSUGE 現地ツアー"])
    starts_at: AwareDatetime = Field(examples=["2026-06-14T10:00:00+09:00"])
    ends_at: AwareDatetime | None = Field(None, examples=["2026-06-14T12:00:00+09:00"])
    district_id: str = Field(max_length=50, examples=["suge"])
    venue: str | None = Field(None, max_length=200, examples=["菅こども文化センター"])


class RescheduleIn(Body):
    starts_at: AwareDatetime = Field(examples=["2026-06-21T10:00:00+09:00"])
    ends_at: AwareDatetime | None = Field(None, examples=["2026-06-21T12:00:00+09:00"])


class ReasonIn(Body):
    reason: str = Field(min_length=1, max_length=500, examples=["台風接近のため中止"])


class ParticipantIn(Body):
    birth_year: int | None = Field(None, ge=1900, le=9999, examples=[1948])
    band_id: str | None = Field(
        None, max_length=50, description="Only when the birth year is not given", examples=[None]
    )
    district_id: str = Field(max_length=50, examples=["nakanoshima"])
    name: str | None = Field(
        None, max_length=200, description="Optional; personal data", examples=["多摩 花子"]
    )
    contact: str | None = Field(
        None, max_length=200, description="Optional; personal data", examples=["044-000-0000"]
    )
    birth_date: date | None = Field(
        None,
        description="Optional; personal data, sealed. When given, the birth year follows from it",
        examples=["1948-03-09"],
    )


class CorrectionIn(Body):
    """訂正: only the fields present are corrected; a field given as null is cleared."""

    name: str | None = Field(None, max_length=200, examples=["多摩 はな子"])
    contact: str | None = Field(None, max_length=200, examples=["hanako@example.jp"])
    birth_date: date | None = Field(
        None, description="Must keep the recorded birth year", examples=["1948-03-09"]
    )


class ConsentIn(Body):
    purpose: str = Field(min_length=1, max_length=200, examples=["合理的配慮の提供"])
    given: bool = Field(description="true gives consent, false withdraws it", examples=[True])


class SensitiveDataIn(Body):
    purpose: str = Field(
        min_length=1,
        max_length=200,
        description="A purpose the participant currently consents to",
        examples=["合理的配慮の提供"],
    )
    category: str = Field(min_length=1, max_length=200, examples=["disability"])
    detail: str | None = Field(None, max_length=1000, examples=["車いすを使用"])


class CheckInIn(Body):
    participant_id: UUID = Field(examples=[EXAMPLE_PARTICIPANT])


class WalkInsIn(Body):
    counts: dict[str, int] = Field(
        min_length=1,
        max_length=20,
        description="Headcount per generation band id",
        examples=[{"infant": 4, "adult": 3, "young_old": 2}],
    )

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"description": f"Each count is 0–{MAX_WALK_INS_PER_BAND}."},
    )


class RosterEntryOut(BaseModel):
    participant_id: UUID
    status: str = Field(examples=["checked_in"])
    recorded_at: datetime
    revert_reason: str | None


class CheckInListOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "event_id": EXAMPLE_EVENT,
                    "checked_in": 1,
                    "check_ins": [
                        {
                            "participant_id": EXAMPLE_PARTICIPANT,
                            "status": "checked_in",
                            "recorded_at": "2026-06-14T01:02:03.456789Z",
                            "revert_reason": None,
                        },
                        {
                            "participant_id": "6a1d7e0f-2b3c-4d5e-8f90-a1b2c3d4e5f6",
                            "status": "reverted",
                            "recorded_at": "2026-06-14T01:10:00Z",
                            "revert_reason": "別の方と取り違え",
                        },
                    ],
                }
            ]
        }
    )
    event_id: UUID
    checked_in: int = Field(description="Counted check-ins (reverted ones excluded)")
    check_ins: list[RosterEntryOut]


class WalkInEntryOut(BaseModel):
    id: UUID
    counts: dict[str, int]
    counted: bool
    recorded_at: datetime
    revert_reason: str | None


class WalkInListOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "event_id": EXAMPLE_EVENT,
                    "total": 9,
                    "by_band": {"infant": 4, "adult": 3, "young_old": 2},
                    "tallies": [
                        {
                            "id": EXAMPLE_TALLY,
                            "counts": {"infant": 4, "adult": 3, "young_old": 2},
                            "counted": True,
                            "recorded_at": "2026-06-14T01:30:00Z",
                            "revert_reason": None,
                        }
                    ],
                }
            ]
        }
    )
    event_id: UUID
    total: int = Field(description="Walk-ins of counted tallies")
    by_band: dict[str, int]
    tallies: list[WalkInEntryOut]


class HealthOut(BaseModel):
    status: str = Field(examples=["ok"])
