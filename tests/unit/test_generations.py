"""Generation bands, coarse groups, and the age rule: event year minus birth year."""

from __future__ import annotations

from datetime import date
from itertools import pairwise

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from domain.errors import InvalidValue, UnknownReference
from domain.generations import (
    COARSE_GROUP_NAMES,
    DEFAULT_BANDS,
    Band,
    BandScheme,
    CoarseGroup,
    age_on,
    validate_birth_year,
)

COARSE_GROUP_RANGES: dict[CoarseGroup, tuple[int, int | None]] = {
    CoarseGroup.CHILD: (0, 18),
    CoarseGroup.WORKING: (19, 64),
    CoarseGroup.SENIOR: (65, None),
}


def _in_range(age: int, bounds: tuple[int, int | None]) -> bool:
    low, high = bounds
    return age >= low and (high is None or age <= high)


def _scheme(ranges: list[tuple[int, int | None]]) -> BandScheme:
    return BandScheme(
        version="test",
        bands=tuple(
            Band(f"b{i}", f"帯{i}", f"Band {i}", low, high, CoarseGroup.WORKING)
            for i, (low, high) in enumerate(ranges)
        ),
    )


def _tiles_every_age(ranges: list[tuple[int, int | None]]) -> bool:
    """True when the ranges cover 0, 1, 2, ... exactly once each, in order, the last open-ended."""
    expected_low = 0
    for index, (low, high) in enumerate(ranges):
        if low != expected_low:
            return False
        if high is None:
            return index == len(ranges) - 1
        if high < low:
            return False
        expected_low = high + 1
    return False


@pytest.mark.parametrize(
    ("age", "band_id"),
    [
        (0, "infant"),
        (5, "infant"),
        (6, "elementary"),
        (12, "elementary"),
        (13, "teen"),
        (18, "teen"),
        (19, "young_adult"),
        (29, "young_adult"),
        (30, "adult"),
        (64, "adult"),
        (65, "young_old"),
        (74, "young_old"),
        (75, "old_old"),
        (120, "old_old"),
    ],
)
def test_each_age_at_a_band_edge_falls_in_the_band_of_the_statistics(
    age: int, band_id: str
) -> None:
    assert DEFAULT_BANDS.band_for_age(age).id == band_id


@pytest.mark.parametrize(
    ("age", "group"),
    [
        (0, CoarseGroup.CHILD),
        (18, CoarseGroup.CHILD),
        (19, CoarseGroup.WORKING),
        (64, CoarseGroup.WORKING),
        (65, CoarseGroup.SENIOR),
        (100, CoarseGroup.SENIOR),
    ],
)
def test_children_are_0_to_18_working_age_19_to_64_and_seniors_65_and_over(
    age: int, group: CoarseGroup
) -> None:
    assert DEFAULT_BANDS.band_for_age(age).group is group


def test_the_default_bands_are_named_in_japanese_as_in_the_plan() -> None:
    names = [band.name_ja for band in DEFAULT_BANDS.bands]
    assert names == [
        "乳幼児",
        "小学生",
        "中高生",
        "若者",
        "子育て・現役世代",
        "前期高齢者",
        "後期高齢者",
    ]


def test_every_coarse_group_has_a_japanese_and_an_english_name() -> None:
    assert set(COARSE_GROUP_NAMES) == set(CoarseGroup)
    assert COARSE_GROUP_NAMES[CoarseGroup.CHILD][0] == "こども"
    assert COARSE_GROUP_NAMES[CoarseGroup.WORKING][0] == "現役"
    assert COARSE_GROUP_NAMES[CoarseGroup.SENIOR][0] == "高齢者"


def test_a_child_born_in_2008_is_a_teen_until_the_end_of_2026() -> None:
    on_new_years_eve = DEFAULT_BANDS.band_on(date(2026, 12, 31), birth_year=2008, band_id=None)
    on_new_years_day = DEFAULT_BANDS.band_on(date(2027, 1, 1), birth_year=2008, band_id=None)

    assert on_new_years_eve.id == "teen"
    assert on_new_years_day.id == "young_adult"


def test_age_is_the_calendar_year_of_the_event_minus_the_birth_year() -> None:
    assert age_on(date(2026, 12, 31), 2008) == 18
    assert age_on(date(2027, 1, 1), 2008) == 19
    assert age_on(date(2026, 1, 1), 2026) == 0


def test_a_child_moves_from_infant_to_elementary_to_teen_over_the_years_of_data() -> None:
    bands = [
        DEFAULT_BANDS.band_on(date(year, 6, 1), birth_year=2015, band_id=None).id
        for year in (2020, 2021, 2027, 2028)
    ]
    assert bands == ["infant", "elementary", "elementary", "teen"]


def test_a_negative_age_is_refused() -> None:
    with pytest.raises(InvalidValue, match="negative"):
        DEFAULT_BANDS.band_for_age(-1)


def test_an_event_before_the_birth_year_is_refused() -> None:
    with pytest.raises(InvalidValue, match="negative"):
        DEFAULT_BANDS.band_on(date(2025, 12, 31), birth_year=2026, band_id=None)


def test_the_band_given_directly_is_used_when_there_is_no_birth_year() -> None:
    band = DEFAULT_BANDS.band_on(date(2026, 5, 1), birth_year=None, band_id="young_old")

    assert band.id == "young_old"
    assert band.group is CoarseGroup.SENIOR


def test_the_birth_year_decides_the_band_when_both_are_known() -> None:
    band = DEFAULT_BANDS.band_on(date(2026, 5, 1), birth_year=1950, band_id="infant")

    assert band.id == "old_old"


def test_a_participant_with_neither_birth_year_nor_band_has_no_band() -> None:
    with pytest.raises(InvalidValue, match="birth year or a generation band"):
        DEFAULT_BANDS.band_on(date(2026, 5, 1), birth_year=None, band_id=None)


def test_an_unknown_band_id_is_refused_with_the_known_bands_named() -> None:
    with pytest.raises(UnknownReference) as refused:
        DEFAULT_BANDS.band_on(date(2026, 5, 1), birth_year=None, band_id="toddler")

    message = str(refused.value)
    assert "'toddler'" in message
    for band_id in (
        "infant",
        "elementary",
        "teen",
        "young_adult",
        "adult",
        "young_old",
        "old_old",
    ):
        assert band_id in message


def test_an_unknown_band_is_also_an_invalid_value_for_callers_that_catch_those() -> None:
    with pytest.raises(InvalidValue):
        DEFAULT_BANDS.get("Infant")


def test_a_birth_year_in_the_future_is_refused() -> None:
    with pytest.raises(InvalidValue, match="future"):
        validate_birth_year(2027, today=date(2026, 12, 31))


def test_a_birth_year_before_1900_is_refused() -> None:
    with pytest.raises(InvalidValue, match="1900"):
        validate_birth_year(1899, today=date(2026, 5, 1))


@pytest.mark.parametrize("birth_year", [1900, 1960, 2026])
def test_birth_years_from_1900_to_this_year_are_accepted(birth_year: int) -> None:
    validate_birth_year(birth_year, today=date(2026, 1, 1))


@given(age=st.integers(min_value=0, max_value=130))
def test_every_age_lies_in_exactly_one_band_of_the_right_coarse_group(age: int) -> None:
    containing = [band for band in DEFAULT_BANDS.bands if band.contains(age)]

    assert len(containing) == 1
    assert DEFAULT_BANDS.band_for_age(age) == containing[0]
    assert _in_range(age, COARSE_GROUP_RANGES[containing[0].group])


@given(
    birth_year=st.integers(min_value=1900, max_value=2100),
    on=st.dates(min_value=date(1900, 1, 1), max_value=date(2100, 12, 31)),
)
def test_the_band_from_a_birth_year_is_the_band_of_the_age_in_that_calendar_year(
    birth_year: int, on: date
) -> None:
    age = on.year - birth_year
    if age < 0:
        with pytest.raises(InvalidValue):
            DEFAULT_BANDS.band_on(on, birth_year=birth_year, band_id=None)
    else:
        band = DEFAULT_BANDS.band_on(on, birth_year=birth_year, band_id=None)
        assert band.contains(age)


# A band is a pair (min_age, max_age) with max_age >= min_age, or open-ended (None).
_well_formed_band = st.integers(min_value=0, max_value=40).flatmap(
    lambda low: st.tuples(
        st.just(low),
        st.one_of(st.none(), st.integers(min_value=low, max_value=low + 20)),
    )
)


@given(cuts=st.lists(st.integers(min_value=1, max_value=120), max_size=8, unique=True))
def test_any_scheme_that_tiles_the_ages_is_accepted_and_places_each_age_once(
    cuts: list[int],
) -> None:
    starts = [0, *sorted(cuts)]
    ranges: list[tuple[int, int | None]] = [(low, high - 1) for low, high in pairwise(starts)]
    ranges.append((starts[-1], None))

    scheme = _scheme(ranges)

    for age in range(131):
        assert sum(band.contains(age) for band in scheme.bands) == 1
        assert scheme.band_for_age(age).contains(age)


@given(ranges=st.lists(_well_formed_band, max_size=6))
def test_a_scheme_with_a_gap_an_overlap_or_a_closed_end_is_refused(
    ranges: list[tuple[int, int | None]],
) -> None:
    if _tiles_every_age(ranges):
        _scheme(ranges)
    else:
        with pytest.raises(InvalidValue):
            _scheme(ranges)


@pytest.mark.parametrize(
    ("ranges", "problem"),
    [
        ([(1, None)], "must start at age 0"),
        ([(0, 5), (7, None)], "must start at age 6"),
        ([(0, 5), (5, None)], "must start at age 6"),
        ([(0, None), (6, None)], "only the last band may be open-ended"),
        ([(0, 5), (6, 64)], "must be open-ended"),
        ([], "must be open-ended"),
    ],
)
def test_a_scheme_that_misses_or_doubles_an_age_is_refused_with_the_reason(
    ranges: list[tuple[int, int | None]], problem: str
) -> None:
    with pytest.raises(InvalidValue, match=problem):
        _scheme(ranges)


def test_a_band_that_ends_before_it_starts_is_refused() -> None:
    # 0-5, then "6-3" (which contains no age), then 4+: ages 4 and 5 lie in two bands.
    with pytest.raises(InvalidValue, match="ends before it starts"):
        _scheme([(0, 5), (6, 3), (4, None)])


@given(
    ranges=st.lists(
        st.tuples(
            st.integers(min_value=0, max_value=30),
            st.one_of(st.none(), st.integers(min_value=0, max_value=30)),
        ),
        max_size=5,
    )
)
@example(ranges=[(0, 5), (6, 3), (4, None)])
def test_every_accepted_scheme_places_each_age_in_exactly_one_band(
    ranges: list[tuple[int, int | None]],
) -> None:
    try:
        scheme = _scheme(ranges)
    except InvalidValue:
        return
    for age in range(61):
        assert sum(band.contains(age) for band in scheme.bands) == 1
