"""Participants (参加者): residents known by a pseudonymous id, a generation and a district.

Personal data (name, contact, exact birth date, 要配慮個人情報) never stands in clear in an event:
the domain hands it, cleaned, to a ``Seal`` the application gives (encryption with the
participant's own key) and records only the opaque envelope it returns. Birth year or band and
district stay in clear: the indicators count by them, and they survive an erasure.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import date
from typing import Any, ClassVar
from uuid import UUID, uuid4

from eventsourcing.domain import event

from domain.errors import InvalidValue, NoConsent, ParticipantErased
from domain.generations import BandScheme, validate_birth_year
from domain.organizations import clean_name, refuse_control_characters
from domain.provenance import Provenance
from domain.recording import RecordedAggregate

MAX_PERSONAL_FIELD = 200
MAX_SENSITIVE_DETAIL = 1000
PERSONAL_FIELDS = ("name", "contact", "birth_date")
"""What a resident may give and correct: every one of them is sealed."""

Seal = Callable[[dict[str, Any]], str]
"""Turns personal content (JSON-ready) into an opaque envelope: the application's encryption."""

LEGACY_PREFIX = "unsealed-v1:"
"""Envelopes that are not sealed: the plaintext version-1 events held, carried by the upcast."""


def _clean_optional(value: str | None, what: str) -> str | None:
    if value is None:
        return None
    cleaned = value.strip()
    if not cleaned:
        return None
    if len(cleaned) > MAX_PERSONAL_FIELD:
        raise InvalidValue(f"{what} is longer than {MAX_PERSONAL_FIELD} characters")
    refuse_control_characters(cleaned, what)
    return cleaned


def _check_birth_date(birth_date: date, today: date) -> None:
    validate_birth_year(birth_date.year, today)
    if birth_date > today:
        raise InvalidValue(f"birth date {birth_date.isoformat()} is in the future")


@dataclass(frozen=True)
class PersonalData:
    """What identifies a resident: never recorded in clear."""

    name: str | None = None
    contact: str | None = None
    birth_date: date | None = None

    @classmethod
    def clean(
        cls, *, name: str | None, contact: str | None, birth_date: date | None
    ) -> PersonalData:
        """Trimmed values; blank ones dropped; over-long ones refused."""
        return cls(_clean_optional(name, "name"), _clean_optional(contact, "contact"), birth_date)

    def is_empty(self) -> bool:
        return self.name is None and self.contact is None and self.birth_date is None

    def content(self) -> dict[str, Any]:
        """The JSON-ready content sealed into an envelope."""
        return {
            "name": self.name,
            "contact": self.contact,
            "birth_date": self.birth_date.isoformat() if self.birth_date else None,
        }

    def updated(self, content: Mapping[str, Any]) -> PersonalData:
        """This data with the fields an opened envelope holds (a registration or a correction)."""
        changes: dict[str, Any] = {k: v for k, v in content.items() if k in PERSONAL_FIELDS}
        if changes.get("birth_date") is not None:
            changes["birth_date"] = date.fromisoformat(changes["birth_date"])
        return replace(self, **changes)


def legacy_content(envelope: str) -> dict[str, Any] | None:
    """The plaintext of an envelope the upcast made from a version-1 event; None if sealed."""
    if not envelope.startswith(LEGACY_PREFIX):
        return None
    content: dict[str, Any] = json.loads(envelope[len(LEGACY_PREFIX) :])
    return content


@dataclass
class SensitiveRecord:
    """要配慮個人情報 recorded under a consent; ``in_use`` ends when that consent is withdrawn."""

    purpose: str
    envelope: str
    version: int
    """The participant's version its event made: where to find when and by whom."""
    in_use: bool = True


@dataclass
class ConsentState:
    purposes: dict[str, bool] = field(default_factory=dict)

    def current(self) -> list[str]:
        return sorted(purpose for purpose, given in self.purposes.items() if given)


class Participant(RecordedAggregate):
    """A resident who takes part. Band and district are what the indicators use."""

    class Registered(RecordedAggregate.Created):
        # Attributes holding personal data, in any stored version: the audit trail masks them.
        # Version 1 (before encryption) stored name and contact in clear.
        personal_fields: ClassVar[frozenset[str]] = frozenset({"sealed", "name", "contact"})
        class_version: ClassVar[int] = 2

        birth_year: int | None
        band_id: str | None
        district_id: str
        sealed: str | None
        registered_on: date
        recorded_by: Provenance

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            """Version 1 held name and contact in clear. An upcast cannot encrypt (it has no
            key): it carries them over as an unsealed envelope, which reads like a sealed
            one and is masked like one, so old events load."""
            legacy = {"name": state.pop("name", None), "contact": state.pop("contact", None)}
            has_any = any(value is not None for value in legacy.values())
            state["sealed"] = LEGACY_PREFIX + json.dumps(legacy) if has_any else None

    class PersonalDataCorrected(RecordedAggregate.Event):
        """訂正: the fields named, with their new values sealed (a null value clears one)."""

        personal_fields: ClassVar[frozenset[str]] = frozenset({"sealed"})

        fields: list[str]
        sealed: str
        recorded_by: Provenance

    class ConsentGiven(RecordedAggregate.Event):
        purpose: str
        recorded_by: Provenance

    class ConsentWithdrawn(RecordedAggregate.Event):
        purpose: str
        recorded_by: Provenance

    class SensitiveDataRecorded(RecordedAggregate.Event):
        personal_fields: ClassVar[frozenset[str]] = frozenset({"sealed"})

        purpose: str
        sealed: str
        recorded_by: Provenance

    class Erased(RecordedAggregate.Event):
        reason: str
        recorded_by: Provenance

    @classmethod
    def register(
        cls,
        *,
        birth_year: int | None,
        band_id: str | None,
        district_id: str,
        today: date,
        bands: BandScheme,
        recorded_by: Provenance,
        personal: PersonalData | None = None,
        seal: Seal | None = None,
        participant_id: UUID | None = None,
    ) -> Participant:
        """Register a resident from a birth year (or birth date) or, failing both, a band.

        Personal data, if any, is sealed with ``seal``; ``participant_id`` is given when the
        seal's key was made for it beforehand."""
        personal = personal or PersonalData()
        if personal.birth_date is not None:
            _check_birth_date(personal.birth_date, today)
            if birth_year is not None and birth_year != personal.birth_date.year:
                raise InvalidValue(
                    f"birth year {birth_year} does not match birth date "
                    f"{personal.birth_date.isoformat()}; give one of them"
                )
            birth_year = personal.birth_date.year
        if birth_year is None and band_id is None:
            raise InvalidValue("give a birth year, a birth date or a generation band")
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
        sealed = None
        if not personal.is_empty():
            if seal is None:
                raise InvalidValue("personal data can only be recorded sealed")
            sealed = seal(personal.content())
        return cls(
            id=participant_id or uuid4(),
            birth_year=birth_year,
            band_id=band_id if birth_year is None else None,
            district_id=district_id,
            sealed=sealed,
            registered_on=today,
            recorded_by=recorded_by,
        )

    @event(Registered)
    def __init__(
        self,
        *,
        id: UUID,  # the library passes a given aggregate id under this name
        birth_year: int | None,
        band_id: str | None,
        district_id: str,
        sealed: str | None,
        registered_on: date,
        recorded_by: Provenance,
    ) -> None:
        self.birth_year = birth_year
        self.band_id = band_id
        self.district_id = district_id
        self.registered_on = registered_on
        self.personal_envelopes: list[str] = [sealed] if sealed is not None else []
        self.consents = ConsentState()
        self.sensitive: list[SensitiveRecord] = []
        self.erased = False
        self.erasure_reason: str | None = None

    def holds_sealed_data(self) -> bool:
        """True when some event sealed personal data with a key (not the unsealed envelopes
        of version-1 events): without that key it cannot be read."""
        envelopes = [*self.personal_envelopes, *(record.envelope for record in self.sensitive)]
        return any(not envelope.startswith(LEGACY_PREFIX) for envelope in envelopes)

    def _ensure_not_erased(self, verb: str) -> None:
        if self.erased:
            raise ParticipantErased(
                f"participant {self.id}'s personal data was erased: cannot {verb}"
            )

    # 訂正 ------------------------------------------------------------------------------

    def correct_personal_data(
        self,
        *,
        changes: Mapping[str, str | date | None],
        today: date,
        seal: Seal,
        recorded_by: Provenance,
    ) -> None:
        """Record new values for the named fields (None clears one), sealed like the first."""
        self._ensure_not_erased("correct it")
        unknown = sorted(set(changes) - set(PERSONAL_FIELDS))
        if unknown:
            raise InvalidValue(f"cannot correct {', '.join(unknown)}: only {PERSONAL_FIELDS}")
        if not changes:
            raise InvalidValue(f"name at least one field to correct: {', '.join(PERSONAL_FIELDS)}")
        content: dict[str, Any] = {}
        for name in ("name", "contact"):
            if name in changes:
                value = changes[name]
                if value is not None and not isinstance(value, str):
                    raise InvalidValue(f"{name} must be text")
                content[name] = _clean_optional(value, name)
        if "birth_date" in changes:
            birth_date = changes["birth_date"]
            if birth_date is not None:
                if not isinstance(birth_date, date):
                    raise InvalidValue("birth_date must be a date")
                self._check_corrected_birth_date(birth_date, today)
            content["birth_date"] = birth_date.isoformat() if birth_date else None
        self._correct_personal_data(
            fields=sorted(content), sealed=seal(content), recorded_by=recorded_by
        )

    def _check_corrected_birth_date(self, birth_date: date, today: date) -> None:
        # The birth year is in clear and counted by the indicators: a correction of the sealed
        # birth date must not silently contradict it.
        _check_birth_date(birth_date, today)
        if self.birth_year is None:
            raise InvalidValue(
                "this participant was registered by generation band: a birth date would change "
                "the band the indicators count; register the birth year anew instead"
            )
        if birth_date.year != self.birth_year:
            raise InvalidValue(
                f"birth date {birth_date.isoformat()} does not match the recorded birth year "
                f"{self.birth_year}; correcting the birth year is not supported"
            )

    @event(PersonalDataCorrected)
    def _correct_personal_data(
        self, *, fields: list[str], sealed: str, recorded_by: Provenance
    ) -> None:
        self.personal_envelopes.append(sealed)

    # 同意と要配慮個人情報 -------------------------------------------------------------

    def _purpose(self, purpose: str) -> str:
        """A purpose as the participant's consents name it: one already on record is taken as
        it was recorded (a purpose recorded before control characters were refused can still
        be withdrawn, and its data used); a new one must be a clean name."""
        if purpose.strip() in self.consents.purposes:
            return purpose.strip()
        return clean_name(purpose, "purpose")

    def give_consent(self, *, purpose: str, recorded_by: Provenance) -> bool:
        """Record consent for a purpose; False (nothing recorded) when it is already given."""
        self._ensure_not_erased("record consent")
        purpose = self._purpose(purpose)
        if self.consents.purposes.get(purpose):
            return False
        self._give_consent(purpose=purpose, recorded_by=recorded_by)
        return True

    @event(ConsentGiven)
    def _give_consent(self, *, purpose: str, recorded_by: Provenance) -> None:
        self.consents.purposes[purpose] = True

    def withdraw_consent(self, *, purpose: str, recorded_by: Provenance) -> bool:
        """Withdraw consent: sensitive data recorded under it goes out of use. False when there
        was no consent to withdraw (nothing recorded)."""
        purpose = self._purpose(purpose)
        if not self.consents.purposes.get(purpose):
            return False
        self._withdraw_consent(purpose=purpose, recorded_by=recorded_by)
        return True

    @event(ConsentWithdrawn)
    def _withdraw_consent(self, *, purpose: str, recorded_by: Provenance) -> None:
        self.consents.purposes[purpose] = False
        for record in self.sensitive:
            if record.purpose == purpose:
                record.in_use = False

    def record_sensitive_data(
        self,
        *,
        purpose: str,
        category: str,
        detail: str | None,
        seal: Seal,
        recorded_by: Provenance,
    ) -> None:
        """Record 要配慮個人情報 (e.g. a disability) under a consent currently given."""
        self._ensure_not_erased("record sensitive data")
        purpose = self._purpose(purpose)
        if not self.consents.purposes.get(purpose):
            current = self.consents.current()
            raise NoConsent(
                f"participant {self.id} has no current consent for purpose {purpose!r}"
                + (f" (current: {', '.join(current)})" if current else "")
                + ": record the consent first"
            )
        category = clean_name(category, "category")
        detail = (detail or "").strip() or None
        if detail is not None:
            if len(detail) > MAX_SENSITIVE_DETAIL:
                raise InvalidValue(f"detail is longer than {MAX_SENSITIVE_DETAIL} characters")
            refuse_control_characters(detail, "detail")
        content = {"category": category, "detail": detail}
        self._record_sensitive_data(purpose=purpose, sealed=seal(content), recorded_by=recorded_by)

    @event(SensitiveDataRecorded)
    def _record_sensitive_data(self, *, purpose: str, sealed: str, recorded_by: Provenance) -> None:
        # The event being applied makes the next version.
        self.sensitive.append(SensitiveRecord(purpose, sealed, self.version + 1))

    # 消去 ------------------------------------------------------------------------------

    def erase(self, *, reason: str, recorded_by: Provenance) -> bool:
        """Record that the personal data was erased (its key destroyed); False when it was."""
        if self.erased:
            return False
        self._erase(reason=clean_name(reason, "reason"), recorded_by=recorded_by)
        return True

    @event(Erased)
    def _erase(self, *, reason: str, recorded_by: Provenance) -> None:
        self.erased = True
        self.erasure_reason = reason
