"""The evaluators' what-if: indicators under other definitions, straight from the log.

Nothing is written: the live read models are neither read nor touched.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from eventsourcing.application import Application

from projections.indicators.compute import IndicatorSet, Summarizer, compute_indicators
from projections.indicators.facts import Facts, epoch_us
from projections.indicators.model import Scope
from projections.indicators.parameters import Parameters
from projections.indicators.read_model import end_of_day
from projections.log_reader import LogReader


def facts_from_log(app: Application[Any], *, as_of: date | None = None) -> Facts:
    """Every fact in the log, or only those recorded by the end of a day (JST)."""
    until_us = epoch_us(end_of_day(as_of)) if as_of is not None else None
    facts = Facts()
    for rows, _ in LogReader(app).pages(0):
        for row in rows:
            facts.read(row, until_us=until_us)
    return facts


def what_if(
    app: Application[Any],
    fiscal_year: int,
    parameters: Parameters,
    *,
    as_of: date | None = None,
    scope: Scope | None = None,
) -> IndicatorSet:
    facts = facts_from_log(app, as_of=as_of)
    held = Summarizer(facts, parameters).held_events(fiscal_year)
    return compute_indicators(held, fiscal_year, scope or Scope(), parameters)
