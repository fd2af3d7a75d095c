"""Follows the log into the indicators' read models: facts, then materialised values.

A batch's facts, the values of every fiscal year and scope it changed and the tracking position
are written in one transaction: a batch counts once or not at all. The facts are also kept in
memory, with each fiscal year's and scope's indicators as accumulators (``Ledger``), so a batch
only adds and removes the contributions of the events it changed.
"""

from __future__ import annotations

import gc
from collections.abc import Sequence
from typing import Any

from projections.forked import can_fork, forked_map
from projections.indicators.compute import BASE_SCOPES, Ledger, Summarizer
from projections.indicators.facts import CheckIns, Decoded, Facts, Recorded, StoredRow
from projections.indicators.model import Scope
from projections.indicators.parameters import DEFAULT_PARAMETERS, Parameters
from projections.indicators.store import Generation
from projections.sql import SqlDatastore


class IndicatorProjection:
    """The indicators' projection over one generation of tables."""

    def __init__(
        self,
        datastore: SqlDatastore,
        generation: Generation,
        parameters: Parameters = DEFAULT_PARAMETERS,
    ) -> None:
        self.datastore = datastore
        self.generation = generation
        self.parameters = parameters
        self.facts = Facts()
        self.summarizer = Summarizer(self.facts, parameters)
        self.ledger = Ledger(parameters)
        self._ledger_current = True
        """Whether the ledger holds every fact in memory (not after ``load(values=False)``)."""
        self.position: int | None = None

    def load(self, *, values: bool = True) -> None:
        """Take up where the stored read model stands; without ``values`` only the facts (a
        rebuild resuming, which computes every value at the end anyway)."""
        # Millions of small objects that live as long as the projection: the cyclic collector
        # would walk them over and over while they are made, and find nothing (facts hold no
        # cycles); frozen afterwards, later collections skip them.
        collecting = gc.isenabled()
        gc.disable()
        try:
            with self.datastore.transaction(commit=False) as session:
                self.facts = self.generation.load(session)
            self._ledger_current = False
            if values:
                self._restart_ledger()
        finally:
            if collecting:
                gc.enable()
        gc.freeze()
        self.position = self.generation.position()

    def _restart_ledger(self) -> None:
        """Accumulators over every event of the facts in memory, from scratch."""
        self.summarizer = Summarizer(self.facts, self.parameters)
        self.ledger = Ledger(self.parameters)
        summary = self.summarizer.summary
        self.ledger.build((event_id, summary(event_id)) for event_id in self.facts.events)
        self.facts.take_changed()
        self.facts.take_touched()
        self._ledger_current = True

    def process(self, rows: Sequence[StoredRow], *, through: int | None = None) -> set[int]:
        """Apply stored events (in log order); answers the fiscal years they touched.

        ``through`` is the log position the batch covers, when the rows were selected by topic.
        """
        last = through if through is not None else (rows[-1].position if rows else None)
        if last is None:
            return set()
        if not self._ledger_current:
            self._restart_ledger()
        try:
            recorded = [r for r in map(self.facts.read, rows) if r is not None]
            # Computed before the transaction: on SQLite it holds the process's write lock,
            # which check-ins wait for.
            values = self._changed_values()
            with self.datastore.transaction(commit=True) as session:
                self.generation.write_facts(session, recorded)
                for year, (payloads, gone) in values.items():
                    self.generation.write_scopes(session, year, payloads, gone, last)
                self.generation.write_tracking(session, last)
        except BaseException:
            # Memory may now be ahead of what was committed: reread the store.
            self.load()
            raise
        self.position = last
        return set(values)

    def apply(self, check_ins: CheckIns, others: Sequence[Decoded]) -> list[Recorded]:
        """A decoded page (see ``facts.decode_page``) into the facts in memory only, for
        ``write`` to commit: a rebuild, which materialises once at the end, applies a page
        while the last one is written. Answers the other events' recorded facts."""
        self.facts.add_check_ins(check_ins)
        return [r for r in map(self.facts.apply, others) if r is not None]

    def write(self, recorded: Sequence[Recorded], check_ins: CheckIns, through: int) -> None:
        """Commit a page that ``apply`` took in, with the log position it reaches."""
        with self.datastore.transaction(commit=True) as session:
            self.generation.write_check_ins(session, check_ins)
            self.generation.write_facts(session, recorded)
            self.generation.write_tracking(session, through)
        self.position = through

    def _changed_values(self) -> dict[int, tuple[dict[str, dict[str, Any]], set[str] | None]]:
        """Per fiscal year touched: the payloads of its scopes that changed, and the keys of
        the scopes that no longer have held events (None: the year has no events left)."""
        changed: set[tuple[int, Scope]] = set()
        for event_id in self.facts.take_changed():
            changed |= self.ledger.apply(event_id, self.summarizer.summary(event_id))
        years = self.facts.take_touched() | {year for year, _ in changed}
        answers: dict[int, tuple[dict[str, dict[str, Any]], set[str] | None]] = {}
        for year in sorted(years):
            if not self.facts.events_by_year.get(year):
                # A year left without events (all of them rescheduled away) has no values, as
                # in a rebuild, which never hears of that year.
                answers[year] = ({}, None)
                continue
            standard = set(self.ledger.standard_scopes(year))
            # The base scopes (all, each policy) exist as soon as the year has an event.
            scopes = {scope for y, scope in changed if y == year} | set(BASE_SCOPES)
            payloads = {
                scope.key: self.ledger.indicator_set(year, scope).as_dict()
                for scope in scopes
                if scope in standard
            }
            answers[year] = (payloads, {scope.key for scope in scopes if scope not in standard})
        return answers

    def materialise_all(self, *, workers: int = 1) -> None:
        """(Re)compute the values of every fiscal year, e.g. at the end of a rebuild."""
        self.write_all(self.compute_all(workers=workers))

    def compute_all(self, *, workers: int = 1) -> dict[int, dict[str, dict[str, Any]]]:
        """Every fiscal year's values from the facts in memory; with ``workers`` > 1, a year
        each in that many processes at a time, this one and forked children (a rebuild's last
        step: see ``projections.forked``). Then the ledger is not kept: a later ``process``
        builds it again."""
        years = self.facts.fiscal_years
        if workers <= 1 or len(years) <= 1 or not can_fork():
            self._restart_ledger()
            return {year: self.values(year) for year in years}
        self._ledger_current = False
        # The largest years first: the last ones, done while the others finish, are short.
        by_year = self.facts.events_by_year
        order = sorted(years, key=lambda year: -len(by_year.get(year, ())))
        answers = forked_map(self._year_values, order, workers=workers)
        return dict(sorted(zip(order, answers, strict=True)))

    def _year_values(self, fiscal_year: int) -> dict[str, dict[str, Any]]:
        """One fiscal year's values, with a ledger of that year's events only."""
        self.summarizer = Summarizer(self.facts, self.parameters)
        self.ledger = Ledger(self.parameters)
        summary = self.summarizer.summary
        events = self.facts.events_by_year.get(fiscal_year, ())
        self.ledger.build((event_id, summary(event_id)) for event_id in events)
        return self.values(fiscal_year)

    def write_all(self, values: dict[int, dict[str, dict[str, Any]]]) -> None:
        """Replace every fiscal year's values, as of the projection's position."""
        position = self.position or 0
        with self.datastore.transaction(commit=True) as session:
            for year, payloads in values.items():
                self.generation.write_values(session, year, payloads, position)

    def values(self, fiscal_year: int) -> dict[str, dict[str, Any]]:
        """Every standard scope's values; none for a year left without events (all of them
        rescheduled away), exactly as a rebuild, which never hears of that year, has none."""
        if not self.facts.events_by_year.get(fiscal_year):
            return {}
        return {
            scope.key: self.ledger.indicator_set(fiscal_year, scope).as_dict()
            for scope in self.ledger.standard_scopes(fiscal_year)
        }
