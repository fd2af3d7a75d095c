"""Aggregates: organisations, programmes, events, participants, check-ins and walk-in tallies."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta, timezone
from uuid import UUID, uuid4

import pytest
from eventsourcing.domain import Aggregate

from domain.attendance import Attendance, WalkInTally
from domain.errors import (
    EventNotOpen,
    EventNotScheduled,
    InvalidValue,
    NoConsent,
    NotCheckedIn,
    ParticipantErased,
    UnknownReference,
)
from domain.events import Event, EventStatus
from domain.generations import DEFAULT_BANDS
from domain.organizations import Organization, OrganizationKind
from domain.participants import Participant, PersonalData
from domain.programs import Policy, Program, ProgramArea
from domain.provenance import Provenance, Role

JST = timezone(timedelta(hours=9))
DESK = Provenance(actor_id="token-desk-1", actor_role=Role.DESK, desk_id="desk-A", request_id="r1")
COORDINATOR = Provenance(actor_id="token-coord-1", actor_role=Role.COORDINATOR, request_id="r0")
TODAY = date(2026, 5, 10)
SALON_STARTS = datetime(2026, 5, 10, 10, 0, tzinfo=JST)


def recorded_by(domain_event: object) -> Provenance:
    value = domain_event.recorded_by  # type: ignore[attr-defined]
    assert isinstance(value, Provenance)
    return value


def schedule_salon(
    *,
    starts_at: datetime = SALON_STARTS,
    ends_at: datetime | None = SALON_STARTS + timedelta(hours=2),
    title: str = "子育てサロン",
    venue: str | None = "登戸こども文化センター",
) -> Event:
    return Event.schedule(
        program_id=uuid4(),
        title=title,
        starts_at=starts_at,
        ends_at=ends_at,
        district_id="noborito",
        venue=venue,
        recorded_by=COORDINATOR,
    )


def register_resident(birth_year: int | None = 1950, band_id: str | None = None) -> Participant:
    return Participant.register(
        birth_year=birth_year,
        band_id=band_id,
        district_id="suge",
        today=TODAY,
        bands=DEFAULT_BANDS,
        recorded_by=DESK,
    )


def launch_program(name: str, hosts: list[UUID]) -> Program:
    return Program.launch(
        name=name,
        policy=Policy.MUTUAL_SUPPORT,
        area=ProgramArea.COMMUNITY,
        host_organization_ids=hosts,
        recorded_by=COORDINATOR,
    )


def pending_event_names(aggregate: Aggregate) -> list[str]:
    return [type(domain_event).__name__ for domain_event in aggregate.collect_events()]


# Organisations


def test_an_organisation_is_registered_with_its_name_trimmed() -> None:
    organization = Organization.register(
        name="  菅町会  ",
        kind=OrganizationKind.NEIGHBOURHOOD_ASSOCIATION,
        district_id="suge",
        recorded_by=COORDINATOR,
    )

    assert organization.name == "菅町会"
    assert organization.kind is OrganizationKind.NEIGHBOURHOOD_ASSOCIATION
    assert pending_event_names(organization) == ["Registered"]


@pytest.mark.parametrize("name", ["", "   ", "\u3000\n"])
def test_an_organisation_without_a_name_is_refused(name: str) -> None:
    with pytest.raises(InvalidValue, match="organisation name must not be empty"):
        Organization.register(
            name=name, kind=OrganizationKind.NPO, district_id=None, recorded_by=COORDINATOR
        )


def test_an_organisation_name_over_200_characters_is_refused() -> None:
    with pytest.raises(InvalidValue, match="longer than 200"):
        Organization.register(
            name="あ" * 201, kind=OrganizationKind.NPO, district_id=None, recorded_by=COORDINATOR
        )


@pytest.mark.parametrize(("name", "found"), [("菅\x00町会", "U+0000"), ("町会\x1b[31m", "U+001B")])
def test_an_organisation_name_with_a_control_character_is_refused(name: str, found: str) -> None:
    expected = f"organisation name must not contain control characters (found {found})"
    with pytest.raises(InvalidValue, match=re.escape(expected)):
        Organization.register(
            name=name, kind=OrganizationKind.NPO, district_id=None, recorded_by=COORDINATOR
        )


def test_a_reason_may_hold_a_line_break_and_a_tab_but_no_other_control_character() -> None:
    attendance = Attendance.check_in(
        event=schedule_salon(), participant=register_resident(), recorded_by=DESK
    )
    with pytest.raises(InvalidValue, match="reason must not contain control characters"):
        attendance.revert(reason="取り違え\x00", recorded_by=DESK)
    assert attendance.counted

    attendance.revert(reason="取り違え\n受付\t2", recorded_by=DESK)

    assert attendance.revert_reason == "取り違え\n受付\t2"


# Programmes


def test_a_programme_lists_each_host_once_in_the_order_given() -> None:
    town_council, cafe = uuid4(), uuid4()

    program = launch_program("中野島多世代つながり愛プロジェクト", [cafe, town_council, cafe])

    assert program.host_organization_ids == [cafe, town_council]
    assert program.policy is Policy.MUTUAL_SUPPORT
    assert pending_event_names(program) == ["Launched"]


def test_a_programme_without_a_host_organisation_is_refused() -> None:
    with pytest.raises(InvalidValue, match="at least one host"):
        launch_program("TeamSUGE", [])


def test_a_programme_with_more_than_50_hosts_is_refused() -> None:
    with pytest.raises(InvalidValue, match="at most 50"):
        launch_program("多摩区スポーツフェスタ", [uuid4() for _ in range(51)])


def test_a_host_named_sixty_times_is_still_one_host() -> None:
    host = uuid4()

    program = launch_program("多摩区スポーツフェスタ", [host] * 60)

    assert program.host_organization_ids == [host]


@pytest.mark.parametrize("name", ["", "  "])
def test_a_programme_without_a_name_is_refused(name: str) -> None:
    with pytest.raises(InvalidValue, match="programme name must not be empty"):
        launch_program(name, [uuid4()])


# Events


def test_a_scheduled_event_takes_attendance_and_is_dated_in_tokyo() -> None:
    event = schedule_salon(title=" 子育てサロン ")

    assert event.status is EventStatus.SCHEDULED
    assert event.takes_attendance
    assert event.title == "子育てサロン"
    assert event.local_date == date(2026, 5, 10)
    assert pending_event_names(event) == ["Scheduled"]


def test_an_event_may_be_scheduled_without_an_end_or_a_venue() -> None:
    event = schedule_salon(ends_at=None, venue=None)

    assert event.ends_at is None
    assert event.venue is None


def test_an_event_start_without_a_utc_offset_is_refused() -> None:
    with pytest.raises(InvalidValue, match="starts_at needs a UTC offset"):
        schedule_salon(starts_at=datetime(2026, 5, 10, 10, 0), ends_at=None)


def test_an_event_end_without_a_utc_offset_is_refused() -> None:
    with pytest.raises(InvalidValue, match="ends_at needs a UTC offset"):
        schedule_salon(ends_at=datetime(2026, 5, 10, 12, 0))


@pytest.mark.parametrize(
    "moment",
    [
        "0001-01-01T00:00:00+14:00",  # no date in UTC
        "9999-12-31T23:59:00-12:00",  # no date in Tokyo
        "0202-05-10T10:00:00+09:00",  # 2026 mistyped
        "1899-12-31T23:59:59+09:00",
        "1899-12-31T14:59:59+00:00",  # 1899-12-31T23:59:59 in Tokyo
        "3000-01-01T00:00:00+09:00",
    ],
)
def test_an_event_time_out_of_range_is_refused_when_scheduled_and_rescheduled(
    moment: str,
) -> None:
    with pytest.raises(InvalidValue, match=r"starts_at .* is out of range"):
        schedule_salon(starts_at=datetime.fromisoformat(moment), ends_at=None)
    event = schedule_salon()
    with pytest.raises(InvalidValue, match=r"ends_at .* is out of range"):
        event.reschedule(
            starts_at=SALON_STARTS, ends_at=datetime.fromisoformat(moment), recorded_by=COORDINATOR
        )
    assert event.starts_at == SALON_STARTS


@pytest.mark.parametrize(
    "moment",
    ["1900-01-01T00:00:00+09:00", "1899-12-31T15:00:00+00:00", "2999-12-31T23:59:59+09:00"],
)
def test_an_event_at_either_end_of_the_range_is_accepted(moment: str) -> None:
    starts_at = datetime.fromisoformat(moment)

    event = schedule_salon(starts_at=starts_at, ends_at=None)

    assert event.starts_at == starts_at
    assert event.local_date == starts_at.astimezone(JST).date()


@pytest.mark.parametrize(
    "ends_at",
    [
        SALON_STARTS,
        SALON_STARTS - timedelta(minutes=1),
        # 10:00 JST is 01:00 UTC: 09:00 UTC on the same day is later, 00:30 UTC is earlier.
        datetime(2026, 5, 10, 0, 30, tzinfo=UTC),
    ],
)
def test_an_event_that_ends_when_or_before_it_starts_is_refused(ends_at: datetime) -> None:
    with pytest.raises(InvalidValue, match="ends_at must be after starts_at"):
        schedule_salon(ends_at=ends_at)


def test_an_event_ending_later_in_another_time_zone_is_accepted() -> None:
    event = schedule_salon(ends_at=datetime(2026, 5, 10, 3, 0, tzinfo=UTC))

    assert event.ends_at == SALON_STARTS + timedelta(hours=2)


def test_an_event_lasts_at_most_14_days() -> None:
    event = schedule_salon(ends_at=SALON_STARTS + timedelta(days=14))
    assert event.takes_attendance

    with pytest.raises(InvalidValue, match="at most 14 days"):
        schedule_salon(ends_at=SALON_STARTS + timedelta(days=14, seconds=1))


def test_a_scheduled_event_can_be_rescheduled() -> None:
    event = schedule_salon()
    later = SALON_STARTS + timedelta(days=7)

    event.reschedule(starts_at=later, ends_at=None, recorded_by=COORDINATOR)

    assert event.starts_at == later
    assert event.ends_at is None
    assert event.local_date == date(2026, 5, 17)
    assert pending_event_names(event) == ["Scheduled", "Rescheduled"]


def test_a_reschedule_to_invalid_times_is_refused_and_changes_nothing() -> None:
    event = schedule_salon()

    with pytest.raises(InvalidValue):
        event.reschedule(
            starts_at=SALON_STARTS, ends_at=SALON_STARTS - timedelta(hours=1), recorded_by=DESK
        )

    assert event.starts_at == SALON_STARTS
    assert pending_event_names(event) == ["Scheduled"]


def test_a_cancelled_event_keeps_its_reason_and_takes_no_attendance() -> None:
    event = schedule_salon()

    event.cancel(reason=" 台風のため中止 ", recorded_by=COORDINATOR)

    assert event.status is EventStatus.CANCELLED
    assert event.cancellation_reason == "台風のため中止"
    assert not event.takes_attendance
    with pytest.raises(EventNotOpen, match="cancelled"):
        event.ensure_takes_attendance()


def test_a_cancellation_without_a_reason_is_refused_and_the_event_stays_scheduled() -> None:
    event = schedule_salon()

    with pytest.raises(InvalidValue, match="reason must not be empty"):
        event.cancel(reason="  ", recorded_by=COORDINATOR)

    assert event.status is EventStatus.SCHEDULED


def test_a_closed_event_takes_no_more_attendance() -> None:
    event = schedule_salon()

    event.close(recorded_by=COORDINATOR)

    assert event.status is EventStatus.CLOSED
    with pytest.raises(EventNotOpen, match="closed"):
        event.ensure_takes_attendance()


@pytest.mark.parametrize("ending", ["cancel", "close"])
@pytest.mark.parametrize("then", ["reschedule", "cancel", "close"])
def test_only_a_scheduled_event_can_be_rescheduled_cancelled_or_closed(
    ending: str, then: str
) -> None:
    event = schedule_salon()
    if ending == "cancel":
        event.cancel(reason="雨天中止", recorded_by=COORDINATOR)
    else:
        event.close(recorded_by=COORDINATOR)
    status_before = event.status
    commands: dict[str, Callable[[], None]] = {
        "reschedule": lambda: event.reschedule(
            starts_at=SALON_STARTS, ends_at=None, recorded_by=COORDINATOR
        ),
        "cancel": lambda: event.cancel(reason="重複登録", recorded_by=COORDINATOR),
        "close": lambda: event.close(recorded_by=COORDINATOR),
    }

    with pytest.raises(EventNotScheduled, match=f"cannot {then} it"):
        commands[then]()

    assert event.status is status_before
    assert len(event.collect_events()) == 2


# Participants


def test_a_resident_registered_by_birth_year_has_no_band_stored() -> None:
    participant = register_resident(birth_year=1950)

    assert participant.birth_year == 1950
    assert participant.band_id is None
    assert participant.registered_on == TODAY
    assert pending_event_names(participant) == ["Registered"]


def test_a_resident_registered_by_band_alone_keeps_that_band() -> None:
    participant = register_resident(birth_year=None, band_id="young_old")

    assert participant.birth_year is None
    assert participant.band_id == "young_old"


def test_a_band_that_matches_the_birth_year_is_accepted_and_the_birth_year_kept() -> None:
    participant = register_resident(birth_year=2010, band_id="teen")

    assert participant.birth_year == 2010
    assert participant.band_id is None


def test_a_band_that_contradicts_the_birth_year_is_refused() -> None:
    with pytest.raises(InvalidValue, match="does not match birth year 2010"):
        register_resident(birth_year=2010, band_id="old_old")


def test_a_resident_with_neither_birth_year_nor_band_is_refused() -> None:
    with pytest.raises(InvalidValue, match="a birth date or a generation band"):
        register_resident(birth_year=None, band_id=None)


def test_a_resident_with_an_unknown_band_is_refused() -> None:
    with pytest.raises(UnknownReference, match="known bands"):
        register_resident(birth_year=None, band_id="toddler")


@pytest.mark.parametrize("birth_year", [2027, 1899])
def test_a_resident_with_an_impossible_birth_year_is_refused(birth_year: int) -> None:
    with pytest.raises(InvalidValue, match=str(birth_year)):
        register_resident(birth_year=birth_year)


class Vault:
    """A seal for the domain's tests: keeps what it was given, answers a numbered envelope."""

    def __init__(self) -> None:
        self.sealed: list[dict[str, object]] = []

    def seal(self, content: dict[str, object]) -> str:
        self.sealed.append(content)
        return f"envelope-{len(self.sealed)}"


def register_with(
    vault: Vault,
    *,
    birth_year: int | None = None,
    name: str | None = None,
    contact: str | None = None,
    birth_date: date | None = None,
) -> Participant:
    return Participant.register(
        birth_year=birth_year,
        band_id=None,
        district_id="ikuta",
        personal=PersonalData.clean(name=name, contact=contact, birth_date=birth_date),
        seal=vault.seal,
        today=TODAY,
        bands=DEFAULT_BANDS,
        recorded_by=DESK,
    )


def test_personal_fields_are_trimmed_sealed_and_never_recorded_in_clear() -> None:
    vault = Vault()
    participant = register_with(vault, birth_year=1985, name="  多摩 花子 ", contact="   ")

    assert vault.sealed == [{"name": "多摩 花子", "contact": None, "birth_date": None}]
    registered = participant.collect_events()[0]
    assert vars(registered)["sealed"] == "envelope-1"
    assert "多摩" not in repr(vars(registered))
    assert Participant.Registered.personal_fields >= {"sealed"}


def test_a_birth_date_gives_the_birth_year_in_clear_and_is_itself_sealed() -> None:
    vault = Vault()
    participant = register_with(vault, birth_date=date(1948, 3, 9))

    assert participant.birth_year == 1948
    assert vault.sealed[0]["birth_date"] == "1948-03-09"
    with pytest.raises(InvalidValue, match="does not match birth date"):
        register_with(Vault(), birth_year=1950, birth_date=date(1948, 3, 9))


def test_a_consent_recorded_before_control_characters_were_refused_can_still_be_withdrawn() -> None:
    vault = Vault()
    participant = register_with(vault, birth_year=1985)
    participant._give_consent(purpose="見守り\x1b", recorded_by=DESK)  # as an old event replays
    with pytest.raises(InvalidValue, match="must not contain control characters"):
        participant.give_consent(purpose="見守り\x00", recorded_by=DESK)  # a new one: refused

    participant.record_sensitive_data(
        purpose=" 見守り\x1b ",
        category="disability",
        detail=None,
        seal=vault.seal,
        recorded_by=DESK,
    )
    assert participant.withdraw_consent(purpose="見守り\x1b", recorded_by=DESK)

    assert participant.consents.current() == []
    assert [record.in_use for record in participant.sensitive] == [False]


def test_sensitive_data_needs_a_current_consent_and_goes_out_of_use_when_it_is_withdrawn() -> None:
    vault = Vault()
    participant = register_with(vault, birth_year=1985)
    with pytest.raises(NoConsent, match="no current consent for purpose '合理的配慮'"):
        participant.record_sensitive_data(
            purpose="合理的配慮",
            category="disability",
            detail=None,
            seal=vault.seal,
            recorded_by=DESK,
        )
    assert participant.give_consent(purpose="合理的配慮", recorded_by=DESK)
    assert not participant.give_consent(purpose="合理的配慮", recorded_by=DESK)
    participant.record_sensitive_data(
        purpose="合理的配慮",
        category="disability",
        detail="車いす",
        seal=vault.seal,
        recorded_by=DESK,
    )
    assert [record.in_use for record in participant.sensitive] == [True]

    assert participant.withdraw_consent(purpose="合理的配慮", recorded_by=DESK)

    assert [record.in_use for record in participant.sensitive] == [False]
    assert participant.consents.current() == []
    # Consent given again covers what is recorded from then on, not what was withdrawn.
    assert participant.give_consent(purpose="合理的配慮", recorded_by=DESK)
    assert [record.in_use for record in participant.sensitive] == [False]


def test_an_erased_participant_takes_no_more_personal_data_and_erasing_again_records_nothing() -> (
    None
):
    vault = Vault()
    participant = register_with(vault, birth_year=1985, name="多摩 花子")
    assert participant.erase(reason="本人の申出", recorded_by=DESK)
    assert not participant.erase(reason="本人の申出", recorded_by=DESK)
    with pytest.raises(ParticipantErased):
        participant.correct_personal_data(
            changes={"name": "x"}, today=TODAY, seal=vault.seal, recorded_by=DESK
        )
    assert participant.birth_year == 1985
    assert participant.district_id == "ikuta"


def test_a_corrected_birth_date_must_keep_the_recorded_birth_year() -> None:
    vault = Vault()
    participant = register_with(vault, birth_year=1985)
    participant.correct_personal_data(
        changes={"birth_date": date(1985, 5, 1)}, today=TODAY, seal=vault.seal, recorded_by=DESK
    )
    assert vault.sealed[-1] == {"birth_date": "1985-05-01"}
    with pytest.raises(InvalidValue, match="does not match the recorded birth year 1985"):
        participant.correct_personal_data(
            changes={"birth_date": date(1986, 5, 1)},
            today=TODAY,
            seal=vault.seal,
            recorded_by=DESK,
        )


def test_a_personal_field_over_200_characters_is_refused() -> None:
    with pytest.raises(InvalidValue, match="contact is longer than 200"):
        register_with(Vault(), birth_year=1985, contact="x" * 201)


# Walk-in tallies


def record_walk_ins(event: Event, counts: dict[str, int]) -> WalkInTally:
    return WalkInTally.record(event=event, counts=counts, bands=DEFAULT_BANDS, recorded_by=DESK)


def test_a_walk_in_tally_keeps_the_bands_counted_and_drops_zero_entries() -> None:
    tally = record_walk_ins(schedule_salon(), {"infant": 3, "adult": 0, "old_old": 2})

    assert tally.counts == {"infant": 3, "old_old": 2}
    assert tally.total == 5
    assert tally.counted


def test_a_walk_in_tally_for_an_unknown_band_is_refused() -> None:
    with pytest.raises(UnknownReference, match="'babies'"):
        record_walk_ins(schedule_salon(), {"infant": 1, "babies": 2})


@pytest.mark.parametrize("count", [-1, True, False])
def test_a_walk_in_count_that_is_negative_or_a_boolean_is_refused(count: int) -> None:
    with pytest.raises(InvalidValue, match="whole number"):
        record_walk_ins(schedule_salon(), {"infant": 1, "teen": count})


def test_a_walk_in_count_that_is_not_a_whole_number_is_refused() -> None:
    with pytest.raises(InvalidValue, match="whole number"):
        record_walk_ins(schedule_salon(), {"infant": 1.5})  # type: ignore[dict-item]


def test_a_walk_in_count_over_10000_is_refused() -> None:
    with pytest.raises(InvalidValue, match="over 10000"):
        record_walk_ins(schedule_salon(), {"adult": 10_001})


@pytest.mark.parametrize("counts", [{}, {"infant": 0, "adult": 0}])
def test_a_walk_in_tally_with_nobody_counted_is_refused(counts: dict[str, int]) -> None:
    with pytest.raises(InvalidValue, match="at least one band"):
        record_walk_ins(schedule_salon(), counts)


@pytest.mark.parametrize("ending", ["cancel", "close"])
def test_walk_ins_are_refused_once_the_event_is_cancelled_or_closed(ending: str) -> None:
    event = schedule_salon()
    if ending == "cancel":
        event.cancel(reason="雨天中止", recorded_by=COORDINATOR)
    else:
        event.close(recorded_by=COORDINATOR)

    with pytest.raises(EventNotOpen):
        record_walk_ins(event, {"adult": 4})


def test_a_reverted_walk_in_tally_stops_counting_and_cannot_be_reverted_twice() -> None:
    tally = record_walk_ins(schedule_salon(), {"adult": 4})

    tally.revert(reason="二重入力", recorded_by=DESK)

    assert not tally.counted
    assert tally.revert_reason == "二重入力"
    with pytest.raises(NotCheckedIn, match="already reverted"):
        tally.revert(reason="二重入力", recorded_by=DESK)


# Check-ins


def test_a_check_in_has_one_id_per_event_and_participant() -> None:
    event, participant = schedule_salon(), register_resident()

    attendance = Attendance.check_in(event=event, participant=participant, recorded_by=DESK)

    assert attendance.id == Attendance.create_id(event.id, participant.id)
    assert attendance.event_id == event.id
    assert attendance.participant_id == participant.id
    assert attendance.counted
    assert Attendance.create_id(event.id, uuid4()) != attendance.id


@pytest.mark.parametrize("ending", ["cancel", "close"])
def test_a_check_in_is_refused_once_the_event_is_cancelled_or_closed(ending: str) -> None:
    event = schedule_salon()
    if ending == "cancel":
        event.cancel(reason="雨天中止", recorded_by=COORDINATOR)
    else:
        event.close(recorded_by=COORDINATOR)

    with pytest.raises(EventNotOpen):
        Attendance.check_in(event=event, participant=register_resident(), recorded_by=DESK)


def test_a_reverted_check_in_stops_counting_and_keeps_its_reason() -> None:
    attendance = Attendance.check_in(
        event=schedule_salon(), participant=register_resident(), recorded_by=DESK
    )

    attendance.revert(reason=" 別の方と取り違え ", recorded_by=DESK)

    assert not attendance.counted
    assert attendance.revert_reason == "別の方と取り違え"
    assert pending_event_names(attendance) == ["CheckedIn", "CheckInReverted"]


def test_a_check_in_cannot_be_reverted_twice() -> None:
    attendance = Attendance.check_in(
        event=schedule_salon(), participant=register_resident(), recorded_by=DESK
    )
    attendance.revert(reason="取り違え", recorded_by=DESK)

    with pytest.raises(NotCheckedIn, match="already reverted"):
        attendance.revert(reason="取り違え", recorded_by=DESK)


def test_a_revert_without_a_reason_is_refused_and_the_check_in_still_counts() -> None:
    attendance = Attendance.check_in(
        event=schedule_salon(), participant=register_resident(), recorded_by=DESK
    )

    with pytest.raises(InvalidValue, match="reason must not be empty"):
        attendance.revert(reason="", recorded_by=DESK)

    assert attendance.counted


def test_checking_in_again_while_already_counted_changes_nothing() -> None:
    event = schedule_salon()
    attendance = Attendance.check_in(event=event, participant=register_resident(), recorded_by=DESK)

    assert attendance.check_in_again(event=event, recorded_by=DESK) is False
    assert attendance.counted
    assert pending_event_names(attendance) == ["CheckedIn"]


def test_a_retried_check_in_after_the_event_closed_is_still_answered_calmly() -> None:
    event = schedule_salon()
    attendance = Attendance.check_in(event=event, participant=register_resident(), recorded_by=DESK)
    event.close(recorded_by=COORDINATOR)

    assert attendance.check_in_again(event=event, recorded_by=DESK) is False
    assert attendance.counted


def test_a_reverted_check_in_can_be_made_again_and_counts_once_more() -> None:
    event = schedule_salon()
    attendance = Attendance.check_in(event=event, participant=register_resident(), recorded_by=DESK)
    attendance.revert(reason="取り違え", recorded_by=DESK)

    assert attendance.check_in_again(event=event, recorded_by=DESK) is True
    assert attendance.counted
    assert attendance.revert_reason is None
    assert pending_event_names(attendance) == ["CheckedIn", "CheckInReverted", "CheckedInAgain"]


@pytest.mark.parametrize("ending", ["cancel", "close"])
def test_a_reverted_check_in_cannot_be_made_again_once_the_event_ended(ending: str) -> None:
    event = schedule_salon()
    attendance = Attendance.check_in(event=event, participant=register_resident(), recorded_by=DESK)
    attendance.revert(reason="取り違え", recorded_by=DESK)
    if ending == "cancel":
        event.cancel(reason="雨天中止", recorded_by=COORDINATOR)
    else:
        event.close(recorded_by=COORDINATOR)

    with pytest.raises(EventNotOpen):
        attendance.check_in_again(event=event, recorded_by=DESK)

    assert not attendance.counted


# Provenance


def test_every_domain_event_carries_the_provenance_of_the_command_that_caused_it() -> None:
    def by(n: int) -> Provenance:
        return Provenance(
            actor_id=f"token-{n}", actor_role=Role.DESK, desk_id=f"desk-{n}", request_id=f"req-{n}"
        )

    organization = Organization.register(
        name="菅町会",
        kind=OrganizationKind.NEIGHBOURHOOD_ASSOCIATION,
        district_id="suge",
        recorded_by=by(1),
    )
    program = Program.launch(
        name="TeamSUGE",
        policy=Policy.MUTUAL_SUPPORT,
        area=ProgramArea.COMMUNITY,
        host_organization_ids=[organization.id],
        recorded_by=by(2),
    )
    event = Event.schedule(
        program_id=program.id,
        title="TeamSUGE 交流会",
        starts_at=SALON_STARTS,
        ends_at=None,
        district_id="suge",
        venue=None,
        recorded_by=by(3),
    )
    event.reschedule(starts_at=SALON_STARTS, ends_at=None, recorded_by=by(4))
    participant = Participant.register(
        birth_year=1950,
        band_id=None,
        district_id="suge",
        today=TODAY,
        bands=DEFAULT_BANDS,
        recorded_by=by(5),
    )
    attendance = Attendance.check_in(event=event, participant=participant, recorded_by=by(6))
    attendance.revert(reason="取り違え", recorded_by=by(7))
    attendance.check_in_again(event=event, recorded_by=by(8))
    tally = WalkInTally.record(
        event=event, counts={"infant": 2}, bands=DEFAULT_BANDS, recorded_by=by(9)
    )
    tally.revert(reason="二重入力", recorded_by=by(10))
    event.close(recorded_by=by(11))
    cancelled = schedule_salon()
    cancelled.cancel(reason="雨天中止", recorded_by=by(12))

    aggregates: list[Aggregate] = [organization, program, event, participant, attendance, tally]
    provenances = [
        recorded_by(domain_event)
        for aggregate in aggregates
        for domain_event in aggregate.collect_events()
    ]
    assert provenances == [by(n) for n in (1, 2, 3, 4, 11, 5, 6, 7, 8, 9, 10)]
    assert [recorded_by(e) for e in cancelled.collect_events()] == [COORDINATOR, by(12)]
