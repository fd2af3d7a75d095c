"""Helpers for the indicator tests: recording a history through the application, reading back.

Everything goes through the application's commands, so every domain event carries the test
clock's time: move ``clock.now`` between commands to control what "as of" a day sees.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from uuid import UUID

from application.app import Tsunagari
from domain.events import JST
from domain.organizations import OrganizationKind
from domain.programs import Policy, ProgramArea
from domain.provenance import Provenance, Role
from interfaces.bootstrap import Services
from projections.follower import Follower
from projections.indicators.model import Scope
from tests.support import Clock, settle

ADMIN = Provenance(actor_id="indicator-tests", actor_role=Role.ADMIN, desk_id="desk-ix")

INDICATOR_IDS = (
    "total_attendances",
    "unique_participants",
    "returning_participants",
    "held_events",
    "multigenerational_events",
    "cross_generation_encounters",
    "loose_ties",
    "support_activities",
    "organization_partnerships",
)

DEFINITIONS = "indicators-v1 (bands-2026.1; small ≤ 30; ties ≥ 2)"


def moment(text: str) -> datetime:
    """An ISO time; without an offset it is read in Asia/Tokyo."""
    parsed = datetime.fromisoformat(text)
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=JST)


def noon_jst(day: date) -> datetime:
    """12:00 in Tokyo on a day, as the clock's UTC time."""
    return datetime.combine(day, time(12), JST).astimezone(UTC)


def set_clock(clock: Clock, text: str) -> None:
    clock.now = moment(text).astimezone(UTC)


class World:
    """Records organisations, programmes, events, participants and attendance by command."""

    def __init__(self, app: Tsunagari) -> None:
        self.app = app
        self._organizations = 0

    def organization(self, name: str | None = None) -> UUID:
        self._organizations += 1
        return self.app.register_organization(
            name=name or f"団体{self._organizations}",
            kind=OrganizationKind.NPO,
            district_id=None,
            recorded_by=ADMIN,
        ).result.id

    def program(self, *hosts: UUID, policy: Policy = Policy.OPEN_ACTIVITIES) -> UUID:
        return self.app.launch_program(
            name="事業",
            policy=policy,
            area=ProgramArea.COMMUNITY,
            host_organization_ids=list(hosts),
            recorded_by=ADMIN,
        ).result.id

    def event(self, program: UUID, starts_at: str, district: str = "suge") -> UUID:
        return self.app.schedule_event(
            program_id=program,
            title="開催回",
            starts_at=moment(starts_at),
            ends_at=None,
            district_id=district,
            venue=None,
            recorded_by=ADMIN,
        ).result.id

    def participant(self, birth_year: int | None = None, band: str | None = None) -> UUID:
        return self.app.register_participant(
            birth_year=birth_year, band_id=band, district_id="suge", recorded_by=ADMIN
        ).result.id

    def participants(self, *birth_years: int) -> list[UUID]:
        return [self.participant(year) for year in birth_years]

    def check_in(self, event: UUID, *people: UUID) -> None:
        for person in people:
            self.app.check_in(event, participant_id=person, recorded_by=ADMIN)

    def revert(self, event: UUID, *people: UUID) -> None:
        for person in people:
            self.app.revert_check_in(event, person, reason="受付の誤り", recorded_by=ADMIN)

    def walk_ins(self, event: UUID, **counts: int) -> UUID:
        return self.app.record_walk_ins(event, counts=counts, recorded_by=ADMIN).result.id

    def revert_walk_ins(self, event: UUID, tally: UUID) -> None:
        self.app.revert_walk_ins(event, tally, reason="二重計上", recorded_by=ADMIN)

    def cancel(self, event: UUID) -> None:
        self.app.cancel_event(event, reason="雨天中止", recorded_by=ADMIN)

    def close(self, event: UUID) -> None:
        self.app.close_event(event, recorded_by=ADMIN)

    def reschedule(self, event: UUID, starts_at: str) -> None:
        self.app.reschedule_event(
            event, starts_at=moment(starts_at), ends_at=None, recorded_by=ADMIN
        )


def read(
    services: Services,
    follower: Follower,
    fiscal_year: int,
    *,
    district: str | None = None,
    program: UUID | None = None,
    policy: str | None = None,
    as_of: date | None = None,
) -> dict[str, Any]:
    """The read model's whole answer, once the projections have caught up with the log."""
    settle(services, follower)
    return services.indicators.indicators(fiscal_year, Scope(district, program, policy), as_of)


def headline(answer: dict[str, Any]) -> dict[str, int | float]:
    """Each indicator's value."""
    return {key: value["value"] for key, value in answer["indicators"].items()}


def detail(answer: dict[str, Any], indicator: str) -> dict[str, Any]:
    """One indicator's value, breakdowns and extras, without its names."""
    return {
        key: value
        for key, value in answer["indicators"][indicator].items()
        if key not in ("name_ja", "name_en")
    }


def zeros() -> dict[str, int | float]:
    return dict.fromkeys(INDICATOR_IDS, 0)


def next_day(clock: Clock, days: int = 1) -> None:
    clock.now = clock.now + timedelta(days=days)
