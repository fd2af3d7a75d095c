"""Participants (参加者): residents known by a pseudonymous id, a generation and a district."""

from __future__ import annotations

from datetime import date
from typing import ClassVar

from eventsourcing.domain import event

from domain.errors import InvalidValue
from domain.generations import BandScheme, validate_birth_year
from domain.provenance import Provenance
from domain.recording import RecordedAggregate

MAX_PERSONAL_FIELD = 200


def _clean_optional(value: str | None, what: str) -> str | None:
    if value is None:
        return None
    cleaned = value.strip()
    if not cleaned:
        return None
    if len(cleaned) > MAX_PERSONAL_FIELD:
        raise InvalidValue(f"{what} is longer than {MAX_PERSONAL_FIELD} characters")
    return cleaned


class Participant(RecordedAggregate):
    """A resident who takes part. Band and district are what the indicators use."""

    class Registered(RecordedAggregate.Created):
        # Attributes holding personal data: the audit trail never shows them.
        personal_fields: ClassVar[frozenset[str]] = frozenset({"name", "contact"})

        birth_year: int | None
        band_id: str | None
        district_id: str
        name: str | None
        contact: str | None
        registered_on: date
        recorded_by: Provenance

    @classmethod
    def register(
        cls,
        *,
        birth_year: int | None,
        band_id: str | None,
        district_id: str,
        name: str | None,
        contact: str | None,
        today: date,
        bands: BandScheme,
        recorded_by: Provenance,
    ) -> Participant:
        """Register a resident from a birth year or, when none is given, a band given directly."""
        if birth_year is None and band_id is None:
            raise InvalidValue("give a birth year or a generation band")
        if birth_year is not None:
            validate_birth_year(birth_year, today)
            if (
                band_id is not None
                and bands.band_on(today, birth_year=birth_year, band_id=None).id != band_id
            ):
                raise InvalidValue(
                    f"band {band_id!r} does not match birth year {birth_year}; give one of them"
                )
        elif band_id is not None:
            bands.get(band_id)
        return cls(
            birth_year=birth_year,
            band_id=band_id if birth_year is None else None,
            district_id=district_id,
            name=_clean_optional(name, "name"),
            contact=_clean_optional(contact, "contact"),
            registered_on=today,
            recorded_by=recorded_by,
        )

    @event(Registered)
    def __init__(
        self,
        *,
        birth_year: int | None,
        band_id: str | None,
        district_id: str,
        name: str | None,
        contact: str | None,
        registered_on: date,
        recorded_by: Provenance,
    ) -> None:
        self.birth_year = birth_year
        self.band_id = band_id
        self.district_id = district_id
        self.name = name
        self.contact = contact
        self.registered_on = registered_on
