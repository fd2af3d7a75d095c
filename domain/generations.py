"""Generation bands and coarse groups: versioned reference data and the age rule.

Age at an event is the calendar year of the event date minus the birth year: the plan's
statistics count by year of birth, and residents rarely give a full birth date.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from enum import Enum

from domain.errors import InvalidValue, UnknownReference

OLDEST_BIRTH_YEAR = 1900


class CoarseGroup(Enum):
    """The three groups that decide whether generations met (こども / 現役 / 高齢者)."""

    CHILD = "child"
    WORKING = "working"
    SENIOR = "senior"


@dataclass(frozen=True)
class Band:
    """One generation band: an inclusive age range (``max_age`` None means no upper bound)."""

    id: str
    name_ja: str
    name_en: str
    min_age: int
    max_age: int | None
    group: CoarseGroup

    def contains(self, age: int) -> bool:
        return age >= self.min_age and (self.max_age is None or age <= self.max_age)


@dataclass(frozen=True)
class BandScheme:
    """A versioned table of generation bands covering every age from 0 without gaps."""

    version: str
    bands: tuple[Band, ...]

    def __post_init__(self) -> None:
        expected_min = 0
        for band in self.bands:
            if band.min_age != expected_min:
                raise InvalidValue(f"band {band.id!r} must start at age {expected_min}")
            if band.max_age is not None and band.max_age < band.min_age:
                raise InvalidValue(f"band {band.id!r} ends before it starts")
            if band.max_age is None:
                if band is not self.bands[-1]:
                    raise InvalidValue(f"only the last band may be open-ended, not {band.id!r}")
                return
            expected_min = band.max_age + 1
        raise InvalidValue("the last band must be open-ended")

    @property
    def ids(self) -> tuple[str, ...]:
        return tuple(band.id for band in self.bands)

    def get(self, band_id: str) -> Band:
        for band in self.bands:
            if band.id == band_id:
                return band
        known = ", ".join(self.ids)
        raise UnknownReference(f"unknown generation band {band_id!r}; known bands: {known}")

    def band_for_age(self, age: int) -> Band:
        if age < 0:
            raise InvalidValue(f"age {age} is negative: the birth year is after the event")
        for band in self.bands:
            if band.contains(age):
                return band
        raise AssertionError(
            "unreachable: __post_init__ guarantees full coverage"
        )  # pragma: no cover

    def band_on(self, on: date, *, birth_year: int | None, band_id: str | None) -> Band:
        """The band of a participant on a date: from the birth year, else the band given."""
        if birth_year is not None:
            return self.band_for_age(age_on(on, birth_year))
        if band_id is not None:
            return self.get(band_id)
        raise InvalidValue("a participant needs a birth year or a generation band")


def age_on(on: date, birth_year: int) -> int:
    """Age on a date by the plan's rule: calendar year of the date minus the birth year."""
    return on.year - birth_year


def validate_birth_year(birth_year: int, today: date) -> None:
    if birth_year > today.year:
        raise InvalidValue(f"birth year {birth_year} is in the future (this year is {today.year})")
    if birth_year < OLDEST_BIRTH_YEAR:
        raise InvalidValue(f"birth year {birth_year} is before {OLDEST_BIRTH_YEAR}")


DEFAULT_BANDS = BandScheme(
    version="bands-2026.1",
    bands=(
        Band("infant", "乳幼児", "Infants", 0, 5, CoarseGroup.CHILD),
        Band("elementary", "小学生", "Elementary school", 6, 12, CoarseGroup.CHILD),
        Band("teen", "中高生", "Junior and senior high school", 13, 18, CoarseGroup.CHILD),
        Band("young_adult", "若者", "Young adults", 19, 29, CoarseGroup.WORKING),
        Band("adult", "子育て・現役世代", "Parents and working age", 30, 64, CoarseGroup.WORKING),
        Band("young_old", "前期高齢者", "Young-old", 65, 74, CoarseGroup.SENIOR),
        Band("old_old", "後期高齢者", "Old-old", 75, None, CoarseGroup.SENIOR),
    ),
)

COARSE_GROUP_NAMES: dict[CoarseGroup, tuple[str, str]] = {
    CoarseGroup.CHILD: ("こども", "Children (0–18)"),
    CoarseGroup.WORKING: ("現役", "Working age (19–64)"),
    CoarseGroup.SENIOR: ("高齢者", "Seniors (65+)"),
}
