"""Organisations (団体) that host programmes."""

from __future__ import annotations

import unicodedata
from enum import Enum

from eventsourcing.domain import event

from domain.errors import InvalidValue
from domain.provenance import Provenance
from domain.recording import RecordedAggregate


class OrganizationKind(Enum):
    """Kinds of organisation named by the plan (のぼりとミーティング's participants and more)."""

    NEIGHBOURHOOD_ASSOCIATION = "neighbourhood_association"
    WELFARE_COMMISSIONERS = "welfare_commissioners"
    COMMUNITY_CAFE = "community_cafe"
    DISABILITY_SERVICE = "disability_service"
    CLINIC = "clinic"
    BUSINESS = "business"
    UNIVERSITY = "university"
    NPO = "npo"
    SOCIAL_WELFARE_COUNCIL = "social_welfare_council"
    WARD_OFFICE = "ward_office"
    OTHER = "other"


ORGANIZATION_KIND_NAMES: dict[OrganizationKind, str] = {
    OrganizationKind.NEIGHBOURHOOD_ASSOCIATION: "町内会・自治会",
    OrganizationKind.WELFARE_COMMISSIONERS: "民生委員児童委員",
    OrganizationKind.COMMUNITY_CAFE: "地域カフェ",
    OrganizationKind.DISABILITY_SERVICE: "障害福祉サービス事業所",
    OrganizationKind.CLINIC: "クリニック",
    OrganizationKind.BUSINESS: "企業",
    OrganizationKind.UNIVERSITY: "大学",
    OrganizationKind.NPO: "NPO",
    OrganizationKind.SOCIAL_WELFARE_COUNCIL: "社会福祉協議会",
    OrganizationKind.WARD_OFFICE: "区役所",
    OrganizationKind.OTHER: "その他",
}


_LINE_BREAKS_AND_TABS = frozenset("\t\n\r")


def refuse_control_characters(text: str, what: str) -> None:
    """Refuses text holding a control character (Unicode's Cc: C0, DEL, C1) other than tab,
    LF and CR: NUL, which PostgreSQL's text columns cannot hold (the roster's revert reason,
    say), and terminal escapes, which no one types at a desk and which would reach the audit
    exports and the CSV reports as they are. Format characters (zero-width, bidi marks) are
    text some scripts need, and stay."""
    for character in text:
        if unicodedata.category(character) == "Cc" and character not in _LINE_BREAKS_AND_TABS:
            raise InvalidValue(
                f"{what} must not contain control characters (found U+{ord(character):04X})"
            )


def clean_name(name: str, what: str) -> str:
    """A name stripped of surrounding space; refuses an empty or overlong one, or one with a
    control character."""
    cleaned = name.strip()
    if not cleaned:
        raise InvalidValue(f"{what} must not be empty")
    if len(cleaned) > 200:
        raise InvalidValue(f"{what} is longer than 200 characters")
    refuse_control_characters(cleaned, what)
    return cleaned


class Organization(RecordedAggregate):
    """An organisation: 町内会, 地域カフェ, 大学, 区役所..."""

    class Registered(RecordedAggregate.Created):
        name: str
        kind: OrganizationKind
        district_id: str | None
        recorded_by: Provenance

    @classmethod
    def register(
        cls,
        *,
        name: str,
        kind: OrganizationKind,
        district_id: str | None,
        recorded_by: Provenance,
    ) -> Organization:
        return cls(
            name=clean_name(name, "organisation name"),
            kind=kind,
            district_id=district_id,
            recorded_by=recorded_by,
        )

    @event(Registered)
    def __init__(
        self,
        *,
        name: str,
        kind: OrganizationKind,
        district_id: str | None,
        recorded_by: Provenance,
    ) -> None:
        self.name = name
        self.kind = kind
        self.district_id = district_id
