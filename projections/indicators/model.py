"""What indicator definitions read: each held event of a fiscal year, summarised once."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from uuid import UUID


@dataclass(frozen=True, slots=True)
class HeldEvent:
    """An event that was held: not cancelled, with at least one counted attendance.

    Registered attendees are participants interned to small ints, in ascending order, with
    their band and group at the event's date; the ``*_keys`` pack (participant, band or group)
    into one int, the keys the accumulators count by.
    """

    event_id: str
    fiscal_year: int
    program_id: str
    policy: str
    district_id: str
    host_ids: tuple[str, ...]
    host_pairs: tuple[tuple[str, str], ...]
    """Unordered pairs of co-hosts, each sorted."""
    participants: tuple[int, ...]
    """Registered participants with a counted check-in."""
    bands: tuple[str, ...]
    """Each participant's band at the event's date."""
    groups_of: tuple[str, ...]
    """Each participant's coarse group at the event's date."""
    band_keys: tuple[int, ...]
    group_keys: tuple[int, ...]
    registered_by_band: tuple[tuple[str, str, int], ...]
    """(band, group, attendees) over the participants."""
    walk_ins: dict[str, int]
    """Walk-in headcount per band, over tallies that still count."""
    walk_in_total: int
    groups: frozenset[str]
    """Coarse groups present, registered and walk-in."""
    small: bool
    cross_pairs: tuple[int, ...]
    """Unordered pairs of participants in different groups, each packed into one int as
    ``a << 32 | b`` (a < b: a much smaller dict key than a tuple, and there are millions of
    pairs); empty unless small."""


KEY_WIDTH = 1 << 16
"""``band_keys`` and ``group_keys`` are ``participant * KEY_WIDTH + index`` of the band in its
scheme (or of the group in ``CoarseGroup``): no scheme has that many bands."""


@dataclass(frozen=True)
class Scope:
    """Which held events an answer covers: a district (the event's), a programme, a policy."""

    district_id: str | None = None
    program_id: UUID | None = None
    policy: str | None = None

    def admits(self, event: HeldEvent) -> bool:
        return self.admits_parts(event.district_id, event.program_id, event.policy)

    def admits_parts(self, district_id: str, program_id: str, policy: str) -> bool:
        """Whether an event of that district, programme (hex id) and policy is in scope."""
        return (
            (self.district_id is None or district_id == self.district_id)
            and (self.program_id is None or program_id == self._program_hex)
            and (self.policy is None or policy == self.policy)
        )

    @property
    def _program_hex(self) -> str | None:
        return None if self.program_id is None else self.program_id.hex

    @property
    def key(self) -> str:
        parts = [
            f"district={self.district_id}" if self.district_id else "",
            f"program={self.program_id}" if self.program_id else "",
            f"policy={self.policy}" if self.policy else "",
        ]
        return "&".join(part for part in parts if part) or "all"

    def as_dict(self) -> dict[str, str | None]:
        return {
            "district": self.district_id,
            "program_id": str(self.program_id) if self.program_id else None,
            "policy": self.policy,
        }


@dataclass(frozen=True)
class IndicatorValue:
    value: int | float
    breakdowns: dict[str, dict[str, int]] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"value": self.value, **self.extra, **self.breakdowns}
