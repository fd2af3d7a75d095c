"""Follows the log into the indicators' read models: facts, then materialised values.

A batch's facts, the values of every fiscal year it touched and the tracking position are
written in one transaction: a batch counts once or not at all. The facts are also kept in
memory so that a fiscal year's values are recomputed without reading it back.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

from domain.programs import Policy
from projections.indicators.compute import Summarizer, compute_scopes
from projections.indicators.facts import Facts, StoredRow
from projections.indicators.model import Scope
from projections.indicators.parameters import DEFAULT_PARAMETERS, Parameters
from projections.indicators.store import Generation
from projections.sql import SqlDatastore


def standard_scopes(held: Sequence[Any]) -> list[Scope]:
    """The scopes materialised for a fiscal year: all, and each district, programme, policy."""
    return (
        [Scope()]
        + [Scope(district_id=d) for d in sorted({event.district_id for event in held})]
        + [Scope(program_id=UUID(p)) for p in sorted({event.program_id for event in held})]
        + [Scope(policy=policy.value) for policy in Policy]
    )


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
        self.position: int | None = None

    def load(self) -> None:
        """Take up where the stored read model stands."""
        with self.datastore.transaction(commit=False) as session:
            self.facts = self.generation.load(session)
        self.summarizer = Summarizer(self.facts, self.parameters)
        self.position = self.generation.position()

    def process(
        self, rows: Sequence[StoredRow], *, through: int | None = None, materialise: bool = True
    ) -> set[int]:
        """Apply stored events (in log order); answers the fiscal years they touched.

        ``through`` is the log position the batch covers, when the rows were selected by topic.
        """
        last = through if through is not None else (rows[-1].position if rows else None)
        if last is None:
            return set()
        try:
            recorded = [r for r in map(self.facts.read, rows) if r is not None]
            years = self.facts.take_touched()
            # Computed before the transaction: on SQLite it holds the process's write lock,
            # which check-ins wait for.
            values = {year: self.values(year) for year in sorted(years)} if materialise else {}
            with self.datastore.transaction(commit=True) as session:
                self.generation.write_facts(session, recorded)
                for year, payloads in values.items():
                    self.generation.write_values(session, year, payloads, last)
                self.generation.write_tracking(session, last)
        except BaseException:
            # Memory may now be ahead of what was committed: reread the store.
            self.load()
            raise
        self.position = last
        return years

    def materialise_all(self) -> None:
        """(Re)compute the values of every fiscal year, e.g. at the end of a rebuild."""
        position = self.position or 0
        with self.datastore.transaction(commit=True) as session:
            for year in self.facts.fiscal_years:
                self.generation.write_values(session, year, self.values(year), position)

    def values(self, fiscal_year: int) -> dict[str, dict[str, Any]]:
        """Every standard scope's values; none for a year left without events (all of them
        rescheduled away), exactly as a rebuild, which never hears of that year, has none."""
        if not self.facts.events_by_year.get(fiscal_year):
            return {}
        held = self.summarizer.held_events(fiscal_year)
        answers = compute_scopes(held, fiscal_year, standard_scopes(held), self.parameters)
        return {key: answer.as_dict() for key, answer in answers.items()}
