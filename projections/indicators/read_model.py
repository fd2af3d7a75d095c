"""The indicators' read model as the rest of the system sees it: queries and projections."""

from __future__ import annotations

import gc
import json
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from datetime import date, datetime, time
from typing import Any

from domain.events import JST
from projections.indicators.compute import Summarizer, compute_indicators
from projections.indicators.facts import epoch_us
from projections.indicators.model import Scope
from projections.indicators.parameters import DEFAULT_PARAMETERS, Parameters
from projections.indicators.progress import Targets, progress
from projections.indicators.projection import IndicatorProjection
from projections.indicators.store import Control, Generation
from projections.sql import SqlDatastore


def end_of_day(day: date) -> datetime:
    """The last instant of a day in Asia/Tokyo (the day's last microsecond: the next day's
    midnight less one would not exist for 9999-12-31, a valid ``as_of``)."""
    return datetime.combine(day, time.max, JST)


class IndicatorReadModel:
    def __init__(
        self,
        datastore: SqlDatastore,
        parameters: Parameters = DEFAULT_PARAMETERS,
        *,
        creating: Callable[[], AbstractContextManager[object]] = nullcontext,
    ) -> None:
        self.datastore = datastore
        self.parameters = parameters
        self.creating = creating
        """Held while a generation's tables are created: another process may be creating
        them too (the server's first read, its projection worker, a command line)."""
        self.control = Control(datastore.schema)
        self.control.create(datastore.engine)
        self._generations: dict[int, Generation] = {}
        self._answers: tuple[tuple[int, int | None], dict[Any, str]] = ((0, None), {})
        """Answers computed from the facts (as of a day, or a scope not materialised), kept
        while the active generation stays at the same position: they cannot have changed."""
        with datastore.transaction(commit=True) as session:
            self.control.ensure(session)

    def generation(self, number: int, *, indexes: bool = True) -> Generation:
        """A generation's tables, created if they do not exist yet (see ``Generation.create``
        for ``indexes``)."""
        generation = self._generations.get(number)
        if generation is None:
            generation = Generation(number, self.datastore.schema, self.datastore.raw)
            with self.creating():
                generation.create(self.datastore.engine, indexes=indexes)
            self._generations[number] = generation
        return generation

    def forget(self, number: int) -> None:
        """Stop caching a generation whose tables were dropped."""
        self._generations.pop(number, None)

    def active_generation(self) -> int:
        return self.control_state()[0]

    def control_state(self) -> tuple[int, int | None]:
        """(active generation, generation a replay is building)."""
        with self.datastore.transaction(commit=False) as session:
            state = self.control.read(session)
        if state is None:
            raise RuntimeError("ix_control lost its row")  # created in __init__
        return state

    def open_projection(self) -> IndicatorProjection:
        """The projection of the active generation (not yet loaded)."""
        return IndicatorProjection(
            self.datastore, self.generation(self.active_generation()), self.parameters
        )

    def position(self) -> int | None:
        """The log position the active read model has processed."""
        return self.generation(self.active_generation()).position()

    def indicators(
        self, fiscal_year: int, scope: Scope, as_of: date | None = None
    ) -> dict[str, Any]:
        """Every indicator for a fiscal year and scope, now or as of the end of a day (JST)."""
        generation = self.generation(self.active_generation())
        if as_of is None:
            with self.datastore.transaction(commit=False) as session:
                stored = generation.read_values(session, fiscal_year, scope.key)
            if stored is not None:
                return {**stored[1], "as_of": None, "position": stored[0]}
        position = generation.position()
        key = (fiscal_year, scope.key, as_of)
        stand, answers = self._answers
        if stand != (generation.number, position):
            # The read model moved on: what it answered before may no longer hold.
            stand, answers = (generation.number, position), {}
            self._answers = (stand, answers)
        answer = answers.get(key)
        if answer is None:
            # Kept as JSON, like the materialised values: every caller gets its own copy.
            answer = answers[key] = json.dumps(self._compute(generation, fiscal_year, scope, as_of))
        return {**json.loads(answer), "position": position}

    def _compute(
        self, generation: Generation, fiscal_year: int, scope: Scope, as_of: date | None
    ) -> dict[str, Any]:
        """From the stored facts: only that year's, as they stood at the end of the day."""
        until_us = epoch_us(end_of_day(as_of)) if as_of is not None else None
        # Hundreds of thousands of rows, summaries and pair keys, none in a cycle, all freed by
        # reference counting on return: the cyclic collector would walk them again and again
        # while they are made (a third of the time at 1M events) and find nothing. The switch is
        # process-wide: other threads' collections wait until it ends, and only a caller that
        # found it on turns it on again, so overlapping calls never leave it off.
        collecting = gc.isenabled()
        gc.disable()
        try:
            with self.datastore.transaction(commit=False) as session:
                facts = generation.year_facts(session, fiscal_year, until_us=until_us)
            if scope != Scope():
                facts.only(lambda e, p: scope.admits_parts(e.district_id, e.program_id, p.policy))
            held = Summarizer(facts, self.parameters).held_events(fiscal_year)
            payload = compute_indicators(held, fiscal_year, scope, self.parameters).as_dict()
        finally:
            if collecting:
                gc.enable()
        return {**payload, "as_of": as_of.isoformat() if as_of is not None else None}

    def progress(self, targets: Targets, scope: Scope | None = None) -> dict[str, Any]:
        """Baseline, results per fiscal year with grades, and targets, for a scope."""
        scope = scope or Scope()
        results = {year: self.indicators(year, scope)["indicators"] for year in self.fiscal_years()}
        return {"scope": scope.as_dict(), "definitions": self.parameters.version} | progress(
            results, targets
        )

    def fiscal_years(self) -> list[int]:
        """Fiscal years with materialised values, oldest first."""
        generation = self.generation(self.active_generation())
        with self.datastore.transaction(commit=False) as session:
            return generation.materialised_years(session)
