"""Indicator answers as CSV that Excel opens as it should: UTF-8 with a BOM, a tidy long table.

One row per value: the headline value of each indicator (``breakdown`` and ``key`` empty), one
per breakdown entry (``by_band`` / ``infant``…) and one per extra figure (``share``,
``registered``…, with ``key`` empty). Every row repeats the answer's fiscal year, its 和暦 label,
its scope, ``as_of`` and the definitions version, so rows can be filtered, pivoted or stacked
with other exports without losing what they mean.

Pure functions: an answer is the dict ``IndicatorReadModel.indicators`` returns (the body of
``GET /indicators``); nothing here reads the store.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from projections.indicators.definitions import all_indicators

BOM = "\ufeff"
"""Excel reads a CSV as UTF-8 only when it starts with a byte order mark."""

COLUMNS = (
    "fiscal_year",
    "fiscal_year_label",
    "district",
    "program_id",
    "policy",
    "as_of",
    "definitions",
    "indicator_id",
    "name_ja",
    "name_en",
    "breakdown",
    "key",
    "value",
)

_HEADLINE_FIELDS = frozenset({"value", "name_ja", "name_en"})
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _text(value: object) -> str:
    """A text cell that a spreadsheet will never run as a formula."""
    text = "" if value is None else str(value)
    return f"'{text}" if text.startswith(_FORMULA_STARTS) else text


def _number(value: object) -> str:
    """A value cell: integers as digits, fractions as Python writes them (0.4167), None empty."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int | float):
        return repr(value)
    return _text(value)


def ordered_ids(indicators: Mapping[str, Any]) -> list[str]:
    """Indicator ids in the order of the definitions (as reports show them), then any others."""
    known = [indicator.id for indicator in all_indicators() if indicator.id in indicators]
    return known + sorted(key for key in indicators if key not in known)


def csv_rows(answer: Mapping[str, Any]) -> Iterator[tuple[str, ...]]:
    """The rows of one answer (one fiscal year and scope), without the header."""
    scope: Mapping[str, Any] = answer.get("scope") or {}
    common = (
        str(answer["fiscal_year"]),
        _text(answer.get("label")),
        _text(scope.get("district")),
        _text(scope.get("program_id")),
        _text(scope.get("policy")),
        _text(answer.get("as_of")),
        _text(answer.get("definitions")),
    )
    indicators: Mapping[str, Mapping[str, Any]] = answer["indicators"]
    for indicator_id in ordered_ids(indicators):
        figures = indicators[indicator_id]
        head = (
            *common,
            _text(indicator_id),
            _text(figures.get("name_ja")),
            _text(figures.get("name_en")),
        )
        yield (*head, "", "", _number(figures.get("value")))
        for name, figure in figures.items():
            if name in _HEADLINE_FIELDS:
                continue
            if isinstance(figure, Mapping):
                for key, value in figure.items():
                    yield (*head, _text(name), _text(key), _number(value))
            else:
                yield (*head, _text(name), "", _number(figure))


def indicators_csv(answers: Mapping[str, Any] | Iterable[Mapping[str, Any]]) -> bytes:
    """One answer, or several stacked in one table, as CSV bytes (UTF-8 with BOM, CRLF)."""
    if isinstance(answers, Mapping):
        answers = [answers]
    buffer = io.StringIO(newline="")
    buffer.write(BOM)
    writer = csv.writer(buffer)
    writer.writerow(COLUMNS)
    for answer in answers:
        writer.writerows(csv_rows(answer))
    return buffer.getvalue().encode("utf-8")


def csv_filename(answer: Mapping[str, Any]) -> str:
    """An ASCII file name naming the year and scope: ``tsunagari-indicators-2026.csv``."""
    scope: Mapping[str, Any] = answer.get("scope") or {}
    parts = ["tsunagari-indicators", str(int(answer["fiscal_year"]))]
    if scope.get("district"):
        parts.append(str(scope["district"]))
    if scope.get("policy"):
        parts.append(f"policy{scope['policy']}")
    if scope.get("program_id"):
        parts.append(f"program-{str(scope['program_id'])[:8]}")
    if answer.get("as_of"):
        parts.append(f"as-of-{answer['as_of']}")
    name = "-".join(parts)
    safe = "".join(c if c.isascii() and (c.isalnum() or c in "-_.") else "_" for c in name)
    return f"{safe}.csv"
