"""Fiscal years (年度): 1 April to 31 March, labelled with the Japanese era (和暦)."""

from __future__ import annotations

from datetime import date

REIWA_FIRST_YEAR = 2019  # 令和元年


def fiscal_year_of(day: date) -> int:
    """The fiscal year a date falls in: 31 March 2027 is in 2026年度, 1 April 2027 in 2027年度."""
    return day.year if day.month >= 4 else day.year - 1


def fiscal_year_bounds(fiscal_year: int) -> tuple[date, date]:
    """First and last day of a fiscal year, both inclusive."""
    return date(fiscal_year, 4, 1), date(fiscal_year + 1, 3, 31)


def fiscal_year_label(fiscal_year: int) -> str:
    """``2026(令和8)年度``; 令和元 for 2019, and the Western year alone before 令和."""
    if fiscal_year < REIWA_FIRST_YEAR:
        return f"{fiscal_year}年度"
    era_year = fiscal_year - REIWA_FIRST_YEAR + 1
    era = "元" if era_year == 1 else str(era_year)
    return f"{fiscal_year}(令和{era})年度"
