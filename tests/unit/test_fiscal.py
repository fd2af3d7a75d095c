"""Fiscal years (年度, 1 April – 31 March) and the date of a moment in Asia/Tokyo."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from uuid import uuid4

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.events import Event, local_date
from domain.fiscal import fiscal_year_bounds, fiscal_year_label, fiscal_year_of
from domain.provenance import Provenance, Role


@pytest.mark.parametrize(
    ("day", "fiscal_year"),
    [
        (date(2027, 3, 31), 2026),
        (date(2027, 4, 1), 2027),
        (date(2026, 4, 1), 2026),
        (date(2026, 12, 31), 2026),
        (date(2027, 1, 1), 2026),
        (date(2028, 2, 29), 2027),
    ],
)
def test_a_fiscal_year_runs_from_1_april_to_31_march(day: date, fiscal_year: int) -> None:
    assert fiscal_year_of(day) == fiscal_year


def test_fiscal_year_2026_is_bounded_by_1_april_2026_and_31_march_2027() -> None:
    assert fiscal_year_bounds(2026) == (date(2026, 4, 1), date(2027, 3, 31))


@pytest.mark.parametrize(
    ("fiscal_year", "label"),
    [
        (2026, "2026(令和8)年度"),
        (2020, "2020(令和2)年度"),
        (2019, "2019(令和元)年度"),
        (2018, "2018年度"),
    ],
)
def test_a_fiscal_year_is_labelled_with_the_reiwa_year_from_2019(
    fiscal_year: int, label: str
) -> None:
    assert fiscal_year_label(fiscal_year) == label


@given(day=st.dates(min_value=date(1901, 1, 1), max_value=date(9998, 12, 31)))
def test_every_date_lies_within_the_bounds_of_its_fiscal_year(day: date) -> None:
    first, last = fiscal_year_bounds(fiscal_year_of(day))

    assert first <= day <= last


@given(fiscal_year=st.integers(min_value=1901, max_value=9997))
def test_consecutive_fiscal_years_meet_without_a_gap(fiscal_year: int) -> None:
    first, last = fiscal_year_bounds(fiscal_year)
    next_first, _ = fiscal_year_bounds(fiscal_year + 1)

    assert next_first == last + timedelta(days=1)
    assert fiscal_year_of(first - timedelta(days=1)) == fiscal_year - 1
    assert fiscal_year_of(first) == fiscal_year_of(last) == fiscal_year


def test_a_moment_late_on_31_march_utc_is_already_1_april_in_tokyo() -> None:
    moment = datetime(2027, 3, 31, 15, 30, tzinfo=UTC)

    assert local_date(moment) == date(2027, 4, 1)
    assert fiscal_year_of(local_date(moment)) == 2027


def test_a_moment_just_before_midnight_in_tokyo_stays_on_31_march() -> None:
    moment = datetime(2027, 3, 31, 14, 59, 59, tzinfo=UTC)

    assert local_date(moment) == date(2027, 3, 31)
    assert fiscal_year_of(local_date(moment)) == 2026


def test_an_event_starting_at_00_30_in_tokyo_on_1_april_counts_in_the_new_fiscal_year() -> None:
    event = Event.schedule(
        program_id=uuid4(),
        title="たまたま子育てまつり",
        starts_at=datetime(2027, 3, 31, 15, 30, tzinfo=UTC),
        ends_at=None,
        district_id="noborito",
        venue=None,
        recorded_by=Provenance(actor_id="coordinator-1", actor_role=Role.COORDINATOR),
    )

    assert event.local_date == date(2027, 4, 1)
    assert fiscal_year_of(event.local_date) == 2027


@given(
    moment=st.datetimes(
        min_value=datetime(2000, 1, 1),
        max_value=datetime(2100, 1, 1),
        timezones=st.sampled_from(
            [UTC, timezone(timedelta(hours=-5)), timezone(timedelta(hours=9))]
        ),
    )
)
def test_the_local_date_is_the_date_on_a_tokyo_wall_clock(moment: datetime) -> None:
    tokyo_wall_clock = moment.astimezone(UTC).replace(tzinfo=None) + timedelta(hours=9)

    assert local_date(moment) == tokyo_wall_clock.date()
